"""Which trunk an INVITE came from, by source address (control_api/calls/trunk_source.py)."""

from __future__ import annotations

from control_api.calls.trunk_source import trunk_at_source
from control_api.calls.trunks import parse_trunk

TRUNKS = [
    parse_trunk("a=sip:192.0.2.10:5070;host=192.0.2.11"),
    parse_trunk("b=sip:[2001:db8::1]"),
    parse_trunk("c=sip:name.invalid"),
]


async def test_the_trunk_whose_host_is_the_source():
    assert (await trunk_at_source(TRUNKS, "192.0.2.10")).name == "a"
    assert (await trunk_at_source(TRUNKS, "192.0.2.11")).name == "a"  # another of its hosts
    assert (await trunk_at_source(TRUNKS, "::ffff:192.0.2.10")).name == "a"
    assert (await trunk_at_source(TRUNKS, "2001:db8:0::1")).name == "b"


async def test_no_trunk_for_another_source_or_an_unresolvable_host():
    assert await trunk_at_source(TRUNKS, "198.51.100.7") is None
    assert await trunk_at_source([], "192.0.2.10") is None


async def test_a_host_name_is_looked_up_once_a_minute_even_when_it_fails(monkeypatch):
    import control_api.calls.trunk_source as module

    looked_up = []

    async def resolve(host):
        looked_up.append(host)
        raise module.ResolveError(f"cannot resolve {host}")

    monkeypatch.setattr(module, "resolve_all", resolve)
    monkeypatch.setattr(module, "_CACHE", {})
    trunks = [parse_trunk("dead=sip:dead.example")]
    for _ in range(3):
        assert await trunk_at_source(trunks, "192.0.2.10") is None
    assert looked_up == ["dead.example"]
