"""The pure queue core: order, the front, positions, waits, the size limit."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from control_api.call_queue import (
    QueueFull,
    QueueLine,
    QueueResult,
    Waiting,
    average_wait,
    wait_seconds,
)


def test_callers_wait_in_the_order_they_joined():
    line = QueueLine()
    assert line.join("CA1", 0.0) == 1
    assert line.join("CA2", 1.0) == 2
    assert line.join("CA3", 2.0) == 3
    assert [m.call_sid for m in line] == ["CA1", "CA2", "CA3"]
    assert line.front().call_sid == "CA1"
    assert line.position("CA3") == 3


def test_leaving_moves_those_behind_up():
    line = QueueLine()
    for number, sid in enumerate(["CA1", "CA2", "CA3"]):
        line.join(sid, float(number))
    assert line.leave("CA2") == Waiting("CA2", 1.0)
    assert line.position("CA3") == 2
    assert line.leave("CA2") is None
    assert line.take_front().call_sid == "CA1"
    assert line.position("CA3") == 1 and len(line) == 1


def test_a_full_line_refuses_and_a_lower_max_size_keeps_those_in():
    line = QueueLine(max_size=2)
    line.join("CA1", 0.0)
    line.join("CA2", 0.0)
    with pytest.raises(QueueFull):
        line.join("CA3", 0.0)
    line.max_size = 1  # a REST MaxSize change: both stay, nobody new gets in
    assert len(line) == 2
    line.leave("CA1")
    with pytest.raises(QueueFull):
        line.join("CA3", 0.0)
    line.leave("CA2")
    assert line.join("CA3", 0.0) == 1


def test_a_call_cannot_wait_twice():
    line = QueueLine()
    line.join("CA1", 0.0)
    with pytest.raises(ValueError, match="already"):
        line.join("CA1", 1.0)


def test_the_wait_documents_parameters():
    line = QueueLine(max_size=10)
    line.join("CA1", 100.0)
    line.join("CA2", 110.0)
    assert dict(line.wait_params("CA2", "QU1", 130.0)) == {
        "QueuePosition": "2",
        "QueueSid": "QU1",
        "QueueTime": "20",
        "AvgQueueTime": "25",  # (30 + 20) / 2
        "CurrentQueueSize": "2",
        "MaxQueueSize": "10",
    }
    with pytest.raises(KeyError):
        line.wait_params("CA9", "QU1", 130.0)


def test_waits_are_whole_seconds_and_never_negative():
    assert wait_seconds(10.0, 12.9) == 2
    assert wait_seconds(10.0, 9.0) == 0  # another node's clock a little ahead
    assert average_wait([], 5.0) == 0
    assert average_wait([0.0, 10.0], 20.0) == 15


def test_the_results_are_twilios_values():
    assert {r.value for r in QueueResult} == {
        "bridged",
        "queue-full",
        "hangup",
        "leave",
        "redirected",
        "redirected-from-bridged",
        "error",
        "system-error",
    }


operations = st.lists(
    st.one_of(
        st.tuples(st.just("join"), st.integers(0, 20)),
        st.tuples(st.just("leave"), st.integers(0, 20)),
        st.tuples(st.just("take"), st.just(0)),
    ),
    max_size=60,
)


@given(operations, st.integers(1, 8))
def test_the_line_behaves_as_a_list_model(steps, max_size):
    line = QueueLine(max_size=max_size)
    model: list[str] = []
    for clock, (operation, number) in enumerate(steps):
        sid = f"CA{number}"
        if operation == "join":
            if sid in model:
                with pytest.raises(ValueError):
                    line.join(sid, float(clock))
            elif len(model) >= max_size:
                with pytest.raises(QueueFull):
                    line.join(sid, float(clock))
            else:
                model.append(sid)
                assert line.join(sid, float(clock)) == len(model)
        elif operation == "leave":
            gone = line.leave(sid)
            assert (gone is not None) == (sid in model)
            if sid in model:
                model.remove(sid)
        else:
            taken = line.take_front()
            assert (taken.call_sid if taken else None) == (model.pop(0) if model else None)
        assert [m.call_sid for m in line] == model
        assert all(line.position(s) == i + 1 for i, s in enumerate(model))
        assert len(line) <= max_size


@given(st.lists(st.floats(0, 1e6, allow_nan=False), max_size=30), st.floats(0, 2e6))
def test_the_average_lies_between_the_shortest_and_longest_wait(times, now):
    waits = [wait_seconds(t, now) for t in times]
    mean = average_wait(times, now)
    if waits:
        assert min(waits) <= mean <= max(waits)
    else:
        assert mean == 0


def test_a_caller_put_back_is_at_the_front_with_its_wait():
    line = QueueLine(max_size=2)
    line.join("CA1", 0.0)
    line.join("CA2", 5.0)
    taken = line.take_front()
    line.join("CA3", 6.0)
    line.put_back(taken)  # its agent left before the bridge
    assert [m.call_sid for m in line] == ["CA1", "CA2", "CA3"]
    assert line.wait_time("CA1", 10.0) == 10
