"""``callswitch_calls_active`` counts the calls this node placed (REST and ``<Dial>``)
as well as the inbound ones: the collector finds the dialer in the voice runtime's
context."""

from __future__ import annotations

from types import SimpleNamespace

from callswitch.metrics import NodeCollector


def active(server) -> dict[tuple[str, str], float]:
    [family] = list(NodeCollector(server)._calls())[:1]
    return {
        (sample.labels["direction"], sample.labels["leg"]): sample.value
        for sample in family.samples
    }


def test_placed_calls_are_counted_by_direction_and_leg():
    placed = [
        SimpleNamespace(direction="outbound-api", leg=SimpleNamespace(kind="sip")),
        SimpleNamespace(direction="outbound-dial", leg=None),
    ]
    dialer = SimpleNamespace(live_calls=lambda: placed)
    inbound = SimpleNamespace(calls={"c1": SimpleNamespace(leg=SimpleNamespace(kind="sip"))})
    server = SimpleNamespace(
        calls=inbound, voice=SimpleNamespace(context=SimpleNamespace(dialer=dialer))
    )
    assert active(server) == {
        ("inbound", "sip"): 1,
        ("outbound-api", "sip"): 1,
        ("outbound-dial", "none"): 1,
    }


def test_a_node_without_voice_counts_nothing_placed():
    assert active(SimpleNamespace(calls=None, voice=None)) == {}
