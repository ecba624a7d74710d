"""loadtest/gc_census.py: the cyclic-garbage census the soak can run the server under."""

from __future__ import annotations

import gc
import json

from loadtest import gc_census


class Session:
    def __init__(self) -> None:
        self.on_terminated = None


class Call:
    def __init__(self, session: Session) -> None:
        self.session = session
        session.on_terminated = self.terminated

    def terminated(self) -> None:
        pass


def test_a_cycle_is_found_edge_by_edge():
    gc.collect()
    gc.disable()
    gc.set_debug(gc.DEBUG_SAVEALL)
    try:
        Call(Session())  # unreachable at once, but held by its cycle
        gc.collect()
        garbage = list(gc.garbage)
        gc.garbage.clear()
    finally:
        gc.set_debug(0)
        gc.enable()
    call = next(obj for obj in garbage if type(obj) is Call)
    cycle = gc_census.cycle_through(call, {id(obj): obj for obj in garbage})
    assert cycle == (
        "Call -.session-> Session -.on_terminated-> method(Call.terminated) -.__self__-> Call"
    )
    session = next(obj for obj in garbage if type(obj) is Session)
    assert gc_census.cycle_through(session, {}) is None  # outside the garbage: no path


def test_summary_lists_our_garbage_and_cycles(tmp_path):
    figures = {
        "t": 60.0,
        "rss_kb": 153 * 1024,
        "cyclic_garbage_objects": 120,
        "cyclic_garbage": {"builtins.cell": 44, "control_api.calls.call.Call": 9},
        "cycles": {"control_api.calls.call.Call": "Call -.session-> InviteSession -.x-> Call"},
        "project_objects": {"control_api.calls.call.Call": 100},
    }
    (tmp_path / "census-01.json").write_text(json.dumps(figures))
    lines = gc_census.summary(tmp_path)
    assert "Call objects  100" in lines[1]
    assert "9 of ours: control_api.calls.call.Call 9" in lines[1]
    assert lines[2].strip() == "cycle: Call -.session-> InviteSession -.x-> Call"


class Node:
    pass


def test_cycle_roots_name_the_cycles_the_rest_hangs_off():
    gc.collect()
    gc.disable()
    gc.set_debug(gc.DEBUG_SAVEALL)
    try:
        for _ in range(3):  # three calls' worth: a cycle each, a tree off it
            head, other = Node(), Node()
            head.other, other.head = other, head
            head.tail = [Session() for _ in range(5)]
        lone = Node()
        lone.me = lone  # a cycle of one
        del head, other, lone
        gc.collect()
        garbage = list(gc.garbage)
        gc.garbage.clear()
    finally:
        gc.set_debug(0)
        gc.enable()
    roots = gc_census.cycle_roots(garbage)
    nodes = next(root for root in roots if root["types"] == [f"{__name__}.Node"])
    assert nodes["cycles"] == 4  # grouped by the types in them: the pairs and the lone one
    assert nodes["cycle"] in (
        "Node -.other-> Node -.head-> Node",
        "Node -.head-> Node -.other-> Node",
        "Node -.me-> Node",
    )
    assert not any("Session" in name for root in roots for name in root["types"])
