"""Run `callswitch` with a probe of its allocators: what holds the RSS an idle node keeps.

A debugging aid for the soak, never part of the server: `loadtest/soak.py
--allocator DIR` starts the server through this module (the harness's
CALLSWITCH_INTEROP_SERVER override) and sends it SIGUSR1 idle before the load,
idle after it and once settled; by hand:

    CALLSWITCH_INTEROP_SERVER="python loadtest/alloc_probe.py --out /tmp/probe" ...
    kill -USR1 <server pid>

Each SIGUSR1 writes DIR/probe-NN.txt:

  - RSS (anonymous and file-backed) and the process's CPU seconds;
  - pymalloc's figures (``sys._debugmallocstats``: arenas, bytes in allocated
    and in free blocks, unused pools, blocks by size class) and glibc's
    (``mallinfo2``: heap, in use, free);
  - a census of pools: the first probe records which 16 KiB pymalloc pools hold
    objects; each later one counts the objects in pools that did not, by type,
    with a few examples. pymalloc returns an arena (64 pools) only once every pool
    in it is empty, so these are the objects that keep the arenas a load added;
  - from the third probe on, before the census, the same figures again after
    ``gc.collect()`` (which also empties the free lists) and after glibc's
    ``malloc_trim(0)``: what each would give back.

The census walks every object: it unfreezes what the server froze at start-up
(its collections then walk those too), pauses the server a second or two, and
its own lists take memory while it runs, so RSS sampled after a probe is not a
soak's figure.
"""

from __future__ import annotations

import argparse
import collections
import contextlib
import ctypes
import gc
import os
import signal
import sys
import tempfile
from pathlib import Path

POOL_BITS = 14  # pymalloc's pools are 16 KiB, aligned (CPython 3.10 and later)
SMALL = 512  # pymalloc serves requests up to this size; larger ones go to malloc
TYPES = 30
EXAMPLES = 4


def type_name(obj: object) -> str:
    kind = type(obj)
    return f"{kind.__module__}.{kind.__qualname__}"


def debugmallocstats() -> str:
    """sys._debugmallocstats()'s report (it writes to file descriptor 2)."""
    with tempfile.TemporaryFile("w+") as out:
        saved = os.dup(2)
        os.dup2(out.fileno(), 2)
        try:
            sys._debugmallocstats()
        finally:
            os.dup2(saved, 2)
            os.close(saved)
        out.seek(0)
        return out.read()


def pymalloc_summary(text: str) -> list[str]:
    """The arena and block lines of a _debugmallocstats report."""
    keep = ("# arenas allocated current", "# bytes in allocated blocks",
            "# bytes in available blocks", "unused pools")  # fmt: skip
    return [" ".join(line.split()) for line in text.splitlines() if any(k in line for k in keep)]


def _status() -> str:
    fields = {}
    for line in Path("/proc/self/status").read_text().splitlines():
        name = line.split(":")[0]
        if name in ("VmRSS", "RssAnon", "RssFile"):
            fields[name] = f"{int(line.split()[1]) / 1024:.1f} MB"
    times = os.times()
    return f"{fields}, CPU {times.user + times.system:.1f} s"


def _malloc_line() -> str:
    from callswitch.memory_debug import mallinfo2  # once the server has put the repo first

    info = mallinfo2()
    if info is None:
        return "malloc: no mallinfo2"
    return (
        f"malloc: heap {info.arena / 1e6:.2f} MB, in use {info.uordblks / 1e6:.2f}, free "
        f"{info.fordblks / 1e6:.2f}, mmapped {info.hblkhd / 1e6:.2f}"
    )


def _objects():
    """Every object the collector knows (frozen ones too: they are unfrozen for good)
    and what they refer to; duplicates included."""
    gc.unfreeze()
    for obj in gc.get_objects():
        yield obj
        yield from gc.get_referents(obj)


class Probe:
    def __init__(self, out: Path) -> None:
        self.out = out
        self.number = 0
        self.baseline: set[int] | None = None  # pools holding objects at the first probe
        try:
            self.libc: ctypes.CDLL | None = ctypes.CDLL(None)
        except OSError:
            self.libc = None

    def figures(self, title: str) -> list[str]:
        text = debugmallocstats()
        return [f"== {title}: {_status()}", _malloc_line(), *pymalloc_summary(text)]

    def census(self) -> list[str]:
        pools: set[int] = set()
        new: dict[int, object] = {}
        for obj in _objects():
            if sys.getsizeof(obj) > SMALL:
                continue
            pool = id(obj) >> POOL_BITS
            pools.add(pool)
            if self.baseline is not None and pool not in self.baseline:
                new[id(obj)] = obj
        if self.baseline is None:
            self.baseline = pools
            return [f"pools holding objects: {len(pools)} (the baseline)"]
        per_pool = collections.Counter(i >> POOL_BITS for i in new)
        kinds = collections.Counter(
            f"{type(o).__module__}.{type(o).__qualname__}" for o in new.values()
        )
        lines = [
            f"pools holding objects: {len(pools)}; {len(per_pool)} not at the baseline, holding "
            f"{len(new)} objects (per pool: median "
            f"{sorted(per_pool.values())[len(per_pool) // 2] if per_pool else 0})"
        ]
        examples: dict[str, list[str]] = collections.defaultdict(list)
        for obj in new.values():
            name = type_name(obj)
            if len(examples[name]) < EXAMPLES:
                with contextlib.suppress(Exception):  # a repr may fail on a half-closed object
                    examples[name].append(repr(obj)[:80])
        for name, count in kinds.most_common(TYPES):
            lines.append(f"  {count:7d} {name}  e.g. {examples[name]}")
        del new
        return lines

    def __call__(self, *_: object) -> None:
        self.number += 1
        lines = self.figures("as it is")
        if self.number >= 3:
            lines.append(f"gc.collect(): {gc.collect()} unreachable")
            lines += self.figures("after gc.collect()")
            if self.libc is not None:
                lines.append(f"malloc_trim(0): {self.libc.malloc_trim(0)}")
                lines += self.figures("after malloc_trim(0)")
        lines += self.census()  # last: its lists take memory while it runs
        path = self.out / f"probe-{self.number:02d}.txt"
        path.write_text("\n".join(lines) + "\n\n" + debugmallocstats())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], allow_abbrev=False)
    parser.add_argument("--out", type=Path, required=True, help="directory for the probes")
    ours, serve_args = parser.parse_known_args()
    ours.out.mkdir(parents=True, exist_ok=True)
    signal.signal(signal.SIGUSR1, Probe(ours.out))
    # Run as a script, this directory comes first on the path, and loadtest/turn.py
    # would shadow the turn package: the repository instead.
    here = Path(__file__).resolve().parent
    sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != here]
    sys.path.insert(0, str(here.parent))
    sys.argv = ["callswitch", *serve_args]
    from callswitch.cli import main as callswitch

    sys.exit(callswitch())


if __name__ == "__main__":
    main()
