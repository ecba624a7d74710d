"""media/rtpengine/selection.py: weighted sets, remembered calls, disable and re-ping."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from media.rtpengine.selection import EngineAddress, EngineSet, parse_engine


@pytest.mark.parametrize(
    ("spec", "address"),
    [
        ("127.0.0.1:2223", EngineAddress("127.0.0.1", 2223, 1)),
        ("rtp1.example.net:2223=3", EngineAddress("rtp1.example.net", 2223, 3)),
        ("[::1]:2223=2", EngineAddress("::1", 2223, 2)),
        ("udp:127.0.0.1:2223", EngineAddress("127.0.0.1", 2223, 1)),  # Kamailio's form
        ("udp6:[::1]:2223=4", EngineAddress("::1", 2223, 4)),
    ],
)
def test_specs(spec, address):
    assert parse_engine(spec) == address
    assert str(address).endswith(":2223")


@pytest.mark.parametrize(
    "spec",
    [
        "host",
        "host:",
        ":22",
        "host:0",
        "host:70000",
        "h:1=0",
        "h:1=x",
        "[::1]2223",
        "tcp:h:2223",
        "::1:2223",
    ],
)
def test_bad_specs_are_refused(spec):
    with pytest.raises(ValueError, match="rtpengine"):
        parse_engine(spec)


def engines(*weights: int, disable_s: float = 60.0) -> EngineSet:
    return EngineSet(
        [EngineAddress("127.0.0.1", 2000 + i, w) for i, w in enumerate(weights)],
        disable_s=disable_s,
    )


def test_calls_spread_by_weight():
    chosen = engines(1, 3)
    counts = [0, 0]
    for n in range(4000):
        instance = chosen.pick(f"call-{n}@example")
        assert instance is not None
        counts[chosen.instances.index(instance)] += 1
    assert 0.2 < counts[0] / 4000 < 0.3


@given(st.text(max_size=40))
def test_the_same_call_id_picks_the_same_instance(call_id):
    chosen = engines(1, 2, 5)
    assert chosen.pick(call_id) is chosen.pick(call_id)


def test_a_call_remembers_its_instance_whatever_happens_to_the_set():
    chosen = engines(1, 1)
    first = chosen.pick("abc")
    assert first is not None
    chosen.remember("abc", first)
    chosen.disable(first, now=0.0)
    assert chosen.instance_for("abc") is first
    assert first.calls == 1
    chosen.forget("abc")
    assert chosen.instance_for("abc") is None and first.calls == 0


def test_a_disabled_instance_takes_no_calls_until_a_ping_brings_it_back():
    chosen = engines(1, 1, disable_s=30.0)
    a, b = chosen.instances
    chosen.disable(a, now=100.0)
    assert {chosen.pick(f"c{n}") for n in range(50)} == {b}
    assert chosen.due_for_ping(129.0) == []
    assert chosen.due_for_ping(130.0) == [a]
    chosen.enable(a)
    assert {chosen.pick(f"c{n}") for n in range(50)} == {a, b}
    assert a.failures == 1


def test_none_when_every_instance_is_down_drained_or_excluded():
    chosen = engines(1, 1)
    a, b = chosen.instances
    chosen.disable(a, now=0.0)
    assert chosen.pick("x", exclude=(b,)) is None
    chosen.drain(b.address)
    assert chosen.pick("x") is None
    chosen.drain(b.address, False)
    assert chosen.pick("x") is b


def test_a_drained_instance_takes_no_new_call_and_keeps_its_own():
    """Kamailio's ``rtpengine.enable URL 0``: named by HOST:PORT whatever its weight."""
    chosen = EngineSet([parse_engine("10.0.0.1:2223=3"), parse_engine("[::1]:2223")])
    a, b = chosen.instances
    held = next(f"c{n}" for n in range(100) if chosen.pick(f"c{n}") is a)
    chosen.remember(held, a)
    assert chosen.drain("10.0.0.1:2223") == [a]
    assert {chosen.pick(f"c{n}") for n in range(50)} == {b}
    assert chosen.instance_for(held) is a and a.calls == 1  # its call stays there
    assert chosen.drain("[::1]:2223") == [b] and chosen.pick("x") is None
    assert chosen.drain("all", False) == [a, b]
    assert {chosen.pick(f"c{n}") for n in range(50)} == {a, b}
    assert chosen.drain("10.0.0.9:2223") == []
    with pytest.raises(ValueError):
        chosen.drain("not an address")
