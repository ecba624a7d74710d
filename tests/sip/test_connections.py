"""sip/connections.py: per-source caps, the node's total, and the deadlines."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sip.connections import PER_SOURCE, TOTAL, ConnectionTable, Expired
from sip.source_limits import TrustedNetworks


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


def table(clock: Clock, **options) -> ConnectionTable:
    return ConnectionTable(clock, **options)


def test_a_source_past_its_cap_is_refused_and_admitted_again_once_one_closes(clock):
    t = table(clock, max_per_source=2)
    assert t.open("a", "10.0.0.1") is None
    assert t.open("b", "10.0.0.1") is None
    assert t.open("c", "10.0.0.1") == PER_SOURCE
    assert t.open("d", "10.0.0.2") is None  # another source has its own count
    assert t.held_by("10.0.0.1") == 2 and "c" not in t
    t.close("a")
    t.close("c")  # a refused key is unknown: ignored
    assert t.held_by("10.0.0.1") == 1
    assert t.open("e", "10.0.0.1") is None
    t.close("b")
    t.close("e")
    assert t.held_by("10.0.0.1") == 0 and len(t) == 1


def test_the_node_total_refuses_every_source_even_trusted_ones(clock):
    t = table(clock, max_per_source=10, max_total=3, trusted=TrustedNetworks(["10.9.0.0/16"]))
    for i in range(3):
        assert t.open(i, f"10.0.0.{i}") is None
    assert t.open("x", "10.0.0.9") == TOTAL
    assert t.open("y", "10.9.1.1") == TOTAL
    assert t.open("ours", "192.0.2.1", inbound=False) is None  # our own are never refused


def test_trusted_sources_and_connections_we_open_do_not_count_against_a_source(clock):
    t = table(clock, max_per_source=1, trusted=TrustedNetworks(["127.0.0.0/30"]))
    for i in range(5):
        assert t.open(("trusted", i), "127.0.0.2") is None
        assert t.open(("ours", i), "10.0.0.1", inbound=False) is None
    assert t.held_by("127.0.0.2") == 0 and t.held_by("10.0.0.1") == 0
    assert t.open("in", "10.0.0.1") is None
    assert t.open("in2", "10.0.0.1") == PER_SOURCE


def test_zero_means_no_cap(clock):
    t = table(clock, max_per_source=0, max_total=0)
    assert all(t.open(i, "10.0.0.1") is None for i in range(500))


def test_a_connection_that_never_completes_a_message_expires_after_the_message_timeout(clock):
    t = table(clock, message_timeout=30, idle_timeout=600)
    t.open("silent", "10.0.0.1")
    clock.now += 10
    t.open("pinger", "10.0.0.2")
    t.received("silent", pending=True)  # a few bytes of a message
    assert t.next_deadline() == 1030.0
    clock.now = 1029.9
    assert t.expired() == []
    clock.now = 1030.0
    assert t.expired() == [Expired("silent", "10.0.0.1", incomplete=True)]
    clock.now = 1035
    t.received("pinger", keepalive=True)  # keepalives do not make it a SIP peer
    clock.now = 1040
    assert t.expired() == [Expired("pinger", "10.0.0.2", incomplete=True)]
    assert t.expired() == []  # each reported once
    t.close("silent")
    t.close("pinger")
    assert t.next_deadline() is None and len(t) == 0


def test_after_a_message_the_idle_timeout_applies_refreshed_by_messages_and_keepalives(clock):
    t = table(clock, message_timeout=30, idle_timeout=600)
    t.open("phone", "10.0.0.1")
    clock.now += 5
    t.received("phone", messages=1)
    assert t.deadline_of("phone") == 1605.0
    clock.now = 1200
    t.received("phone", keepalive=True)
    clock.now = 1605
    assert t.expired() == []  # the heap item was stale: re-queued at the new deadline
    assert t.next_deadline() == 1800.0
    clock.now = 1800
    assert t.expired() == [Expired("phone", "10.0.0.1", incomplete=False)]


def test_a_message_left_incomplete_for_the_message_timeout_expires_even_when_idle_is_long(
    clock,
):
    t = table(clock, message_timeout=30, idle_timeout=600)
    t.open("c", "10.0.0.1")
    t.received("c", messages=1)
    clock.now += 100
    t.received("c", pending=True)  # the first bytes of the next message
    clock.now += 20
    t.received("c", pending=True)  # more of it: the clock still runs from its first byte
    assert t.deadline_of("c") == 1130.0
    clock.now = 1129
    assert t.expired() == []
    clock.now = 1130
    assert t.expired() == [Expired("c", "10.0.0.1", incomplete=True)]


def test_a_completed_message_stops_the_partial_clock(clock):
    t = table(clock, message_timeout=30, idle_timeout=600)
    t.open("c", "10.0.0.1")
    t.received("c", messages=1)
    clock.now += 10
    t.received("c", pending=True)
    clock.now += 10
    t.received("c", messages=1, pending=False)
    assert t.deadline_of("c") == 1620.0
    clock.now = 1100
    assert t.expired() == []


def test_connections_we_open_get_the_idle_timeout_from_opening(clock):
    t = table(clock, message_timeout=30, idle_timeout=600)
    t.open("out", "192.0.2.1", inbound=False)
    assert t.deadline_of("out") == 1600.0


def test_the_heap_stays_bounded_under_many_messages(clock):
    t = table(clock, message_timeout=30, idle_timeout=600)
    t.open("busy", "10.0.0.1")
    for _ in range(10_000):
        clock.now += 0.01
        t.received("busy", pending=True)
        t.received("busy", messages=1)
    assert len(t._heap) <= 2 * len(t) + 65


@settings(max_examples=200, deadline=None)
@given(
    st.lists(
        st.tuples(st.sampled_from(["open", "close", "msg", "part", "tick"]), st.integers(0, 7)),
        max_size=80,
    )
)
def test_counts_match_the_open_connections_whatever_the_order(ops):
    clock = Clock()
    t = ConnectionTable(clock, max_per_source=3, max_total=6)
    live: dict[int, str] = {}
    for op, n in ops:
        source = f"10.0.0.{n % 3}"
        if op == "open" and n not in live:
            if t.open(n, source) is None:
                live[n] = source
        elif op == "close":
            t.close(n)
            live.pop(n, None)
        elif op == "msg":
            t.received(n, messages=1)
        elif op == "part":
            t.received(n, pending=True)
        else:
            clock.now += n * 7
            for gone in t.expired():
                assert gone.key in live
                t.close(gone.key)
                live.pop(gone.key)
        assert len(t) == len(live) <= 6
        for s in {f"10.0.0.{i}" for i in range(3)}:
            held = sum(1 for v in live.values() if v == s)
            assert t.held_by(s) == held <= 3
        deadline = t.next_deadline()
        if live:
            assert deadline is not None
            assert deadline <= min(t.deadline_of(k) for k in live)


def test_under_pressure_idle_connections_get_the_short_timeout_until_the_table_drains(clock):
    t = table(clock, max_total=10, message_timeout=30, idle_timeout=600, pressure_idle_timeout=60)
    for i in range(6):
        t.open(i, f"10.0.0.{i}")
        t.received(i, messages=1)  # each sent one message, then waits
    t.open("ours", "192.0.2.1", inbound=False)
    assert not t.under_pressure and t.deadline_of(0) == 1600.0
    t.open(6, "10.0.0.6")  # 8 of 10: three quarters reached
    assert t.under_pressure
    assert t.deadline_of(0) == 1060.0 and t.deadline_of("ours") == 1600.0
    assert t.deadline_of(6) == 1030.0  # no message yet: the message timeout still applies
    clock.now = 1060
    gone = t.expired()
    assert {g.key for g in gone} == set(range(7))
    assert [g.key for g in gone if g.incomplete] == [6]
    for g in gone[:2]:
        t.close(g.key)
    assert t.under_pressure  # 6 of 10 left: not yet down to half
    for g in gone[2:]:
        t.close(g.key)
    assert not t.under_pressure and len(t) == 1
    assert t.expired() == []


def test_an_expired_connection_is_not_reported_again_when_pressure_starts(clock):
    t = table(clock, max_total=4, message_timeout=30, idle_timeout=600, pressure_idle_timeout=60)
    t.open("a", "10.0.0.1")
    clock.now += 30
    assert [g.key for g in t.expired()] == ["a"]
    t.received("a", pending=True)
    t.open("b", "10.0.0.2")
    t.open("c", "10.0.0.3")  # pressure: every deadline is looked at again
    clock.now += 100
    assert sorted(g.key for g in t.expired()) == ["b", "c"]


def test_an_ipv6_host_is_capped_as_its_slash_64(clock):
    t = table(clock, max_per_source=2)
    assert t.open("a", "2001:db8::1") is None and t.open("b", "2001:db8::2") is None
    assert t.open("c", "2001:db8::3") == PER_SOURCE
    assert t.open("d", "2001:db8:0:1::1") is None
    t.close("a")
    assert t.open("c", "2001:db8::3") is None
