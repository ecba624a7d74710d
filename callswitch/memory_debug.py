"""Where the process's memory goes: tracemalloc snapshots on a signal, off by default.

A debugging aid for soaks (docs/loadtest.md), not a setting: with the environment
variable ``CALLSWITCH_TRACEMALLOC=N`` (1..64, the frames kept per allocation; 1 is
cheapest) `callswitch serve` answers ``SIGUSR2``. The first one starts
:mod:`tracemalloc`, so that only what is allocated from then on is traced (send it
once the server is warm: what start-up and warm-up built is not a leak); each
later one writes ``DATA_DIR/tracemalloc/snapshot-NN.txt``:

  - the traced total, the process's RSS, the blocks Python has allocated, and what
    glibc's malloc holds (``mallinfo2``: in use, free but kept, mmapped): what
    the process holds beyond its objects' needs;
  - what was allocated since tracing started and is still alive, by line, and
    the largest of it with tracebacks: a server whose load is steady holds about
    the same there from one snapshot to the next, and what keeps growing is
    what calls leave behind;
  - the differences against the snapshot before;
  - live objects counted by type (``gc.get_objects``; what `gc.freeze()` moved
    out at start-up is not counted), and the types whose count changed most
    since the snapshot before.

Taking a snapshot pauses the event loop (media included) for as long as it takes
to copy every trace; tracemalloc makes every allocation slower while it runs.
Without the variable nothing is started and SIGUSR2 keeps its default meaning. An
invalid value is logged and ignored.
"""

from __future__ import annotations

import asyncio
import collections
import ctypes
import gc
import linecache
import logging
import os
import signal
import sys
import time
import tracemalloc
from pathlib import Path

__all__ = ["ENV", "MemoryDebug", "frames_from_env", "mallinfo2"]

ENV = "CALLSWITCH_TRACEMALLOC"
MAX_FRAMES = 64
TOP_LINES = 40
TOP_TRACEBACKS = 8
TOP_TYPES = 40
# What tracemalloc itself allocates is not the server's, nor the source lines that
# formatting its tracebacks reads into linecache.
IGNORED = (
    tracemalloc.Filter(False, tracemalloc.__file__),
    tracemalloc.Filter(False, linecache.__file__),
    tracemalloc.Filter(False, "<frozen importlib._bootstrap>"),
    tracemalloc.Filter(False, "<frozen importlib._bootstrap_external>"),
    tracemalloc.Filter(False, "<unknown>"),
)

log = logging.getLogger("callswitch.memory")


def frames_from_env(environ: dict[str, str] | None = None) -> int | None:
    """The frames to keep per allocation, or None when tracing is off (unset, empty,
    "0" or not a number in 1..MAX_FRAMES: the last is logged)."""
    value = (os.environ if environ is None else environ).get(ENV, "").strip()
    if value in ("", "0"):
        return None
    if not value.isdigit() or not 1 <= int(value) <= MAX_FRAMES:
        log.warning("%s=%r ignored: frames 1-%d expected", ENV, value, MAX_FRAMES)
        return None
    return int(value)


def _rss_kb() -> int | None:
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    except OSError:
        pass
    return None


def _allocator_text() -> str:
    """Python's allocated blocks; glibc malloc's heap in use and free. (pymalloc's own
    arena figures are not to be had while tracemalloc hooks the allocator.)"""
    parts = [f"{sys.getallocatedblocks()} blocks allocated by Python"]
    info = mallinfo2()
    if info is not None:
        parts.append(
            f"malloc: heap {_mb(info.arena)} MB (in use {_mb(info.uordblks)}, free "
            f"{_mb(info.fordblks)}, trimmable at the top {_mb(info.keepcost)}), mmapped "
            f"{_mb(info.hblkhd)} MB"
        )
    return "; ".join(parts)


class _MallInfo2(ctypes.Structure):
    _fields_ = [
        (name, ctypes.c_size_t)
        for name in (
            "arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks", "fsmblks",
            "uordblks", "fordblks", "keepcost",
        )
    ]  # fmt: skip


def mallinfo2() -> _MallInfo2 | None:
    """glibc's malloc statistics (2.33 and later; None elsewhere)."""
    try:
        function = ctypes.CDLL(None).mallinfo2
    except (AttributeError, OSError):
        return None
    function.restype = _MallInfo2
    result: _MallInfo2 = function()
    return result


def _type_counts() -> collections.Counter[str]:
    return collections.Counter(
        f"{type(o).__module__}.{type(o).__qualname__}" for o in gc.get_objects()
    )


class MemoryDebug:
    """tracemalloc started with ``frames`` per allocation; :meth:`dump` writes one
    snapshot's report under ``out``."""

    def __init__(self, frames: int, out: Path) -> None:
        self.frames = frames
        self.out = out
        self.number = 0
        self._previous: Path | None = None  # on disk: held, its traces count as objects
        self._previous_types: collections.Counter[str] | None = None

    def install(self, loop: asyncio.AbstractEventLoop) -> None:
        """The first SIGUSR2 starts tracing, each later one dumps."""
        loop.add_signal_handler(signal.SIGUSR2, self.signalled)

    def uninstall(self, loop: asyncio.AbstractEventLoop) -> None:
        loop.remove_signal_handler(signal.SIGUSR2)
        tracemalloc.stop()

    def signalled(self) -> None:
        if not tracemalloc.is_tracing():
            self._previous_types = _type_counts()
            tracemalloc.start(self.frames)
            log.warning("tracemalloc started (%d frames)", self.frames)
            return
        try:
            path = self.dump()
        except Exception:  # a debugging aid must not stop the server
            log.exception("tracemalloc snapshot failed")
            return
        log.warning("tracemalloc snapshot written to %s", path)

    def dump(self) -> Path:
        started = time.monotonic()
        types = _type_counts()  # first: a snapshot's traces are a million tuples
        snapshot = tracemalloc.take_snapshot().filter_traces(IGNORED)
        self.number += 1
        lines = [
            f"snapshot {self.number}: traced {_mb(tracemalloc.get_traced_memory()[0])} MB, "
            f"peak {_mb(tracemalloc.get_traced_memory()[1])} MB, RSS {_rss_text()}, "
            f"{sum(types.values())} objects the collector tracks",
            _allocator_text(),
        ]
        lines += _alive("allocated since tracing started, still alive", snapshot)
        if self._previous is not None:
            before = tracemalloc.Snapshot.load(str(self._previous))
            lines += _differences("since the snapshot before", snapshot, before)
            del before
            self._previous.unlink()
        lines += _type_lines(types, self._previous_types)
        self.out.mkdir(parents=True, exist_ok=True)
        self._previous = self.out / f".snapshot-{self.number:02d}.pickle"
        snapshot.dump(str(self._previous))
        self._previous_types = types
        lines.append(f"(taken in {time.monotonic() - started:.1f} s)")
        path = self.out / f"snapshot-{self.number:02d}.txt"
        path.write_text("\n".join(lines) + "\n")
        return path


def _mb(size: int) -> str:
    return f"{size / 1e6:.2f}"


def _rss_text() -> str:
    rss = _rss_kb()
    return "?" if rss is None else f"{rss / 1024:.1f} MB"


def _alive(title: str, snapshot: tracemalloc.Snapshot) -> list[str]:
    by_line = snapshot.statistics("lineno")
    total = sum(s.size for s in by_line)
    lines = ["", f"== {title}: {total / 1e6:.3f} MB, by line"]
    lines += [f"  {s}" for s in by_line[:TOP_LINES]]
    lines.append(f"-- {title}: the largest with their tracebacks")
    for stat in snapshot.statistics("traceback")[:TOP_TRACEBACKS]:
        lines.append(f"  {stat.size / 1e3:.1f} KB in {stat.count} blocks")
        lines += [f"    {frame}" for frame in stat.traceback.format()]
    return lines


def _differences(
    title: str, snapshot: tracemalloc.Snapshot, before: tracemalloc.Snapshot
) -> list[str]:
    by_line = snapshot.compare_to(before, "lineno")
    grew = sum(d.size_diff for d in by_line)
    lines = ["", f"== {title}: {grew / 1e6:+.3f} MB traced, by line"]
    lines += [f"  {d}" for d in by_line[:TOP_LINES]]
    lines.append(f"-- {title}: the largest growths with their tracebacks")
    for diff in snapshot.compare_to(before, "traceback")[:TOP_TRACEBACKS]:
        lines.append(f"  {diff.size_diff / 1e3:+.1f} KB in {diff.count_diff:+d} blocks")
        lines += [f"    {frame}" for frame in diff.traceback.format()]
    return lines


def _type_lines(
    types: collections.Counter[str], previous: collections.Counter[str] | None
) -> list[str]:
    lines = ["", "== live objects by type"]
    lines += [f"  {count:9d}  {name}" for name, count in types.most_common(TOP_TYPES)]
    if previous is not None:
        changes = collections.Counter(types)
        changes.subtract(previous)
        moved = sorted(changes.items(), key=lambda kv: -abs(kv[1]))[:TOP_TYPES]
        lines.append("== types whose count changed most since the snapshot before")
        lines += [f"  {delta:+9d}  {name}" for name, delta in moved if delta]
    return lines
