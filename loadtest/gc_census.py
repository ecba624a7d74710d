"""Run `callswitch` with a census of its objects and of the cycles calls leave behind.

A debugging aid for the soak, never part of the server: `loadtest/soak.py
--census DIR` starts the server through this module instead of the plain
command (the harness's CALLSWITCH_INTEROP_SERVER override), and it can be used
by hand the same way:

    CALLSWITCH_INTEROP_SERVER="python loadtest/gc_census.py --out /tmp/census" \\
        python loadtest/soak.py --streams 50 --seconds 120

Every --every seconds a thread of the server process writes DIR/census-NN.json:

  - RSS, the collector's statistics and counts, and pymalloc's arenas;
  - how many instances of each class of the project's packages are alive
    (an ended call's objects should be gone: compare with the live calls);
  - the cyclic garbage made since the previous census: a full collection with
    gc.DEBUG_SAVEALL, its objects counted by type, and for a few project
    types one reference cycle each, edge by edge (``Call -.session->
    InviteSession -.on_terminated-> method(Call._terminated) -.__self__-> Call``).

The server runs with rare full collections (callswitch/server.py), so an
ended call must be freed by reference counting; anything of the project in the
garbage counts is a cycle to break. Each census pauses the server (a full
collection and a walk of every object), so figures taken with it are no soak.
"""

from __future__ import annotations

import argparse
import collections
import gc
import itertools
import json
import os
import sys
import threading
import time
import types
from pathlib import Path

PROJECT = ("callswitch", "control_api", "sip", "media", "signaling", "turn")
CYCLE_TYPES = 6  # project types whose cycles are traced at each census
CYCLE_DEPTH = 40
CYCLE_TRIES = 3  # objects of a type tried: one may hang off a cycle without being in one
# Beside the project's types: a task a call started holds its coroutine, whose frame
# holds the call; a cycle through the call often runs through one.
CYCLE_ALSO = ("_asyncio.Task",)


def type_name(obj: object) -> str:
    kind = type(obj)
    return f"{kind.__module__}.{kind.__qualname__}"


def rss_kb() -> int | None:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return None


def pymalloc() -> dict[str, int]:
    """The arena lines of sys._debugmallocstats (it writes to file descriptor 2)."""
    import tempfile

    with tempfile.TemporaryFile("w+") as out:
        saved = os.dup(2)
        os.dup2(out.fileno(), 2)
        try:
            sys._debugmallocstats()
        finally:
            os.dup2(saved, 2)
            os.close(saved)
        out.seek(0)
        text = out.read()
    figures = {}
    for line in text.splitlines():
        if line.startswith("# arenas allocated current") or line.startswith(
            "# bytes in allocated blocks"
        ):
            name, _, value = line[2:].partition("=")
            figures[name.strip()] = int(value.strip().replace(",", ""))
    return figures


def edge(source: object, target: object) -> str:
    if isinstance(source, dict):
        for key, value in source.items():
            if value is target:
                return f"[{str(key)[:30]}]"
    for key, value in getattr(source, "__dict__", {}).items():
        if value is target:
            return "." + key
    for kind in type(source).__mro__:
        slots = kind.__dict__.get("__slots__", ())
        for key in (slots,) if isinstance(slots, str) else slots:
            if getattr(source, key, None) is target:
                return "." + key
    frame = getattr(source, "cr_frame", None)
    if frame is not None:
        for key, value in frame.f_locals.items():
            if value is target:
                return f" local {key}"
    for attr in ("__self__", "__func__", "cell_contents", "cr_frame", "f_locals"):
        if getattr(source, attr, None) is target:
            return "." + attr
    return ""


def label(obj: object) -> str:
    name = type(obj).__qualname__
    if isinstance(obj, types.MethodType):
        return f"{name}({obj.__func__.__qualname__})"
    if isinstance(obj, types.FunctionType | types.CoroutineType):
        return f"{name}({obj.__qualname__})"
    return name


def cycle_through(start: object, garbage: dict[int, object]) -> str | None:
    """One reference cycle from ``start`` back to it, within the garbage."""
    previous: dict[int, object | None] = {id(start): None}
    frontier = [start]
    for _ in range(CYCLE_DEPTH):
        following = []
        for obj in frontier:
            for referent in gc.get_referents(obj):
                if referent is start:
                    path = [obj]
                    while path[-1] is not start:
                        path.append(previous[id(path[-1])])
                    path.reverse()
                    path.append(start)
                    text = label(start)
                    for source, target in itertools.pairwise(path):
                        text += f" -{edge(source, target)}-> {label(target)}"
                    return text
                if id(referent) in garbage and id(referent) not in previous:
                    previous[id(referent)] = obj
                    following.append(referent)
        frontier = following
        if not frontier:
            return None
    return None


def cycle_roots(garbage: list[object], examples: int = 6) -> list[dict[str, object]]:
    """The reference cycles in the garbage (strongly connected components of more than
    one object, or one that refers to itself), grouped by the types in them, most
    frequent first, each with one cycle written edge by edge. The rest of the garbage
    only hangs off them: breaking these frees it."""
    index = {id(obj): n for n, obj in enumerate(garbage)}
    edges = [[index[id(r)] for r in gc.get_referents(obj) if id(r) in index] for obj in garbage]
    components = _strongly_connected(edges)
    groups: dict[tuple[str, ...], list[list[int]]] = collections.defaultdict(list)
    for members in components:
        if len(members) > 1 or members[0] in edges[members[0]]:
            kinds = tuple(sorted({type_name(garbage[m]) for m in members}))
            groups[kinds].append(members)
    found = []
    for kinds, members_list in sorted(groups.items(), key=lambda kv: -len(kv[1]))[:examples]:
        members = members_list[0]
        inside = {id(garbage[m]): garbage[m] for m in members}
        start = next(
            (garbage[m] for m in members if type_name(garbage[m]).split(".")[0] in PROJECT),
            garbage[members[0]],
        )
        found.append(
            {
                "cycles": len(members_list),
                "objects_each": len(members),
                "types": list(kinds),
                "cycle": cycle_through(start, inside),
            }
        )
    return found


def _strongly_connected(edges: list[list[int]]) -> list[list[int]]:
    """Tarjan's algorithm, without recursion."""
    counter = 0
    number: list[int | None] = [None] * len(edges)
    low = [0] * len(edges)
    on_stack = [False] * len(edges)
    stack: list[int] = []
    components = []
    for root in range(len(edges)):
        if number[root] is not None:
            continue
        work = [(root, 0)]
        while work:
            node, next_edge = work.pop()
            if next_edge == 0:
                number[node] = low[node] = counter
                counter += 1
                stack.append(node)
                on_stack[node] = True
            for i in range(next_edge, len(edges[node])):
                target = edges[node][i]
                if number[target] is None:
                    work.append((node, i + 1))
                    work.append((target, 0))
                    break
                if on_stack[target]:
                    low[node] = min(low[node], number[target])  # type: ignore[type-var]
            else:
                if low[node] == number[node]:
                    members = []
                    while True:
                        member = stack.pop()
                        on_stack[member] = False
                        members.append(member)
                        if member == node:
                            break
                    components.append(members)
                if work:
                    parent = work[-1][0]
                    low[parent] = min(low[parent], low[node])
    return components


def census(number: int, started: float, out: Path) -> None:
    figures: dict[str, object] = {"t": round(time.monotonic() - started, 1), "rss_kb": rss_kb()}
    figures["gc_counts"] = gc.get_count()
    figures["gc_collections"] = [s["collections"] for s in gc.get_stats()]
    gc.set_debug(gc.DEBUG_SAVEALL)
    try:
        figures["cyclic_garbage_objects"] = gc.collect()
        garbage = list(gc.garbage)
        gc.garbage.clear()
    finally:
        gc.set_debug(0)
    kinds = collections.Counter(type_name(obj) for obj in garbage)
    figures["cyclic_garbage"] = dict(kinds.most_common(60))
    by_id = {id(obj): obj for obj in garbage}
    cycles = {}
    names = [k for k in kinds if k.split(".")[0] in PROJECT][:CYCLE_TYPES]
    for name in names + [k for k in CYCLE_ALSO if k in kinds]:
        tried = 0
        for obj in garbage:
            if type_name(obj) == name:
                cycles[name] = cycle_through(obj, by_id)
                tried += 1
                if cycles[name] or tried >= CYCLE_TRIES:
                    break
    figures["cycles"] = cycles
    figures["cycle_roots"] = cycle_roots(garbage)
    del garbage, by_id
    alive = collections.Counter(type_name(obj) for obj in gc.get_objects())
    figures["project_objects"] = {
        k: v for k, v in sorted(alive.items()) if k.split(".")[0] in PROJECT
    }
    figures["pymalloc"] = pymalloc()
    path = out / f"census-{number:02d}.json"
    path.write_text(json.dumps(figures, indent=1))


def summary(out: Path) -> list[str]:
    """Lines for the soak's report: per census, RSS and what the collector found."""
    lines = [f"census ({out}): the project's objects in cyclic garbage since the one before"]
    for path in sorted(out.glob("census-*.json")):
        figures = json.loads(path.read_text())
        ours = {k: v for k, v in figures["cyclic_garbage"].items() if k.split(".")[0] in PROJECT}
        calls = figures["project_objects"].get("control_api.calls.call.Call", 0)
        top = ", ".join(f"{k} {v}" for k, v in sorted(ours.items(), key=lambda kv: -kv[1])[:4])
        lines.append(
            f"  {figures['t']:6.0f} s  RSS {figures['rss_kb'] / 1024:6.1f} MB  Call objects "
            f"{calls:4d}  cyclic garbage {figures['cyclic_garbage_objects']:6d} objects, "
            f"{sum(ours.values())} of ours{': ' + top if top else ''}"
        )
        for cycle in figures["cycles"].values():
            if cycle:
                lines.append(f"           cycle: {cycle}")
        for root in figures.get("cycle_roots", []):
            lines.append(
                f"           {root['cycles']} cycles of {root['objects_each']} objects "
                f"({', '.join(root['types'][:6])}): {root['cycle']}"
            )
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], allow_abbrev=False)
    parser.add_argument("--out", type=Path, required=True, help="directory for the census files")
    parser.add_argument("--every", type=float, default=30.0, help="seconds between censuses")
    ours, serve_args = parser.parse_known_args()
    ours.out.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()

    def run() -> None:
        number = 0
        while True:
            time.sleep(ours.every)
            number += 1
            try:
                census(number, started, ours.out)
            except Exception as exc:  # a debugging aid must not stop the server
                (ours.out / f"census-{number:02d}.error").write_text(repr(exc))

    threading.Thread(target=run, name="gc-census", daemon=True).start()
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
