"""RFC 3263 server location (sip/rfc3263.py): records in, ordered targets out."""

from __future__ import annotations

import random
from collections import Counter

from hypothesis import given
from hypothesis import strategies as st

from sip.rfc3263 import (
    MAX_LOOKUPS,
    MAX_TARGETS,
    Lookup,
    Naptr,
    Srv,
    Target,
    locate,
    order_naptr,
    order_srv,
)


def first(n: int) -> int:
    """A pick that always takes the lowest number: the first record in running order."""
    return 0


def run(generator, zone: dict[tuple[str, str], list]):
    """Drive a location against ``zone`` ((name, kind) → records); the targets and every
    lookup made."""
    asked: list[Lookup] = []
    try:
        lookup = next(generator)
        while True:
            asked.append(lookup)
            lookup = generator.send(zone.get((lookup.name, lookup.kind), []))
    except StopIteration as done:
        return done.value, asked


CARRIER = {
    ("carrier.example", "NAPTR"): [
        Naptr(20, 10, "S", "SIP+D2U", "_sip._udp.carrier.example."),
        Naptr(10, 10, "S", "SIP+D2T", "_sip._tcp.carrier.example."),
        Naptr(10, 5, "S", "SIP+D2S", "_sip._sctp.carrier.example."),  # SCTP: not ours
        Naptr(5, 10, "S", "SIPS+D2T", "_sips._tcp.carrier.example."),
    ],
    ("_sips._tcp.carrier.example", "SRV"): [Srv(0, 0, 5061, "tls.carrier.example.")],
    ("_sip._tcp.carrier.example", "SRV"): [Srv(0, 0, 5060, "tcp.carrier.example.")],
    ("_sip._udp.carrier.example", "SRV"): [
        Srv(20, 0, 5080, "backup.carrier.example."),
        Srv(10, 0, 5070, "primary.carrier.example."),
    ],
    ("tls.carrier.example", "A"): ["192.0.2.5"],
    ("tcp.carrier.example", "A"): ["192.0.2.6"],
    ("primary.carrier.example", "A"): ["192.0.2.1", "192.0.2.2"],
    ("primary.carrier.example", "AAAA"): ["2001:db8::1"],
    ("backup.carrier.example", "A"): ["192.0.2.3"],
}


def test_a_numeric_host_is_its_own_target_without_lookups():
    targets, asked = run(locate("192.0.2.9", pick=first), {})
    assert targets == [Target("UDP", "192.0.2.9", 5060, "192.0.2.9")] and asked == []
    targets, _ = run(locate("[2001:db8::5]", 5999, "tcp", pick=first), {})
    assert targets == [Target("TCP", "2001:db8::5", 5999, "2001:db8::5")]
    targets, _ = run(locate("192.0.2.9", secure=True, pick=first), {})
    assert targets == [Target("TLS", "192.0.2.9", 5061, "192.0.2.9")]


def test_an_explicit_port_means_a_and_aaaa_only():
    targets, asked = run(locate("primary.carrier.example", 5099, pick=first), CARRIER)
    assert [k.kind for k in asked] == ["A", "AAAA"]
    assert [(t.transport, t.address, t.port) for t in targets] == [
        ("UDP", "192.0.2.1", 5099),
        ("UDP", "192.0.2.2", 5099),
        ("UDP", "2001:db8::1", 5099),
    ]


def test_naptr_order_and_preference_pick_the_transport_and_the_rest_fail_over():
    targets, asked = run(locate("carrier.example", pick=first), CARRIER)
    assert asked[0] == Lookup("carrier.example", "NAPTR")
    assert [(t.transport, t.address, t.port) for t in targets] == [
        ("TLS", "192.0.2.5", 5061),  # SIPS+D2T, order 5
        ("TCP", "192.0.2.6", 5060),  # SIP+D2T, order 10 (the SCTP one is dropped)
        ("UDP", "192.0.2.1", 5070),  # SIP+D2U, order 20: priority 10 first
        ("UDP", "192.0.2.2", 5070),
        ("UDP", "2001:db8::1", 5070),
        ("UDP", "192.0.2.3", 5080),
    ]
    assert "_sip._sctp.carrier.example" not in {k.name for k in asked}


def test_a_sips_uri_keeps_only_sips_services():
    targets, _ = run(locate("carrier.example", secure=True, pick=first), CARRIER)
    assert [t.transport for t in targets] == ["TLS"]
    assert order_naptr(CARRIER[("carrier.example", "NAPTR")], secure=True) == [
        ("TLS", "_sips._tcp.carrier.example")
    ]


def test_a_given_transport_skips_naptr_and_asks_its_srv():
    targets, asked = run(locate("carrier.example", transport="udp", pick=first), CARRIER)
    assert asked[0] == Lookup("_sip._udp.carrier.example", "SRV")
    assert targets[0] == Target("UDP", "192.0.2.1", 5070, "primary.carrier.example")
    # sip: with transport=tls asks _sips._tcp
    targets, asked = run(locate("carrier.example", transport="tls", pick=first), CARRIER)
    assert asked[0].name == "_sips._tcp.carrier.example" and targets[0].transport == "TLS"


def test_without_naptr_srv_of_each_transport_then_a_records():
    zone = {
        ("_sip._tcp.pbx.example", "SRV"): [Srv(0, 0, 5062, "pbx.example.")],
        ("pbx.example", "A"): ["198.51.100.4"],
    }
    targets, asked = run(locate("pbx.example", pick=first), zone)
    assert [k.name for k in asked[:3]] == [
        "pbx.example",
        "_sip._udp.pbx.example",
        "_sip._tcp.pbx.example",
    ]
    assert targets == [Target("TCP", "198.51.100.4", 5062, "pbx.example")]
    plain = {("pbx.example", "A"): ["198.51.100.4"]}
    targets, _ = run(locate("pbx.example", pick=first), plain)
    assert targets == [Target("UDP", "198.51.100.4", 5060, "pbx.example")]
    targets, _ = run(locate("pbx.example", secure=True, pick=first), plain)
    assert targets == [Target("TLS", "198.51.100.4", 5061, "pbx.example")]


def test_a_naptr_to_nowhere_falls_back_to_srv_and_a():
    zone = {
        ("pbx.example", "NAPTR"): [Naptr(10, 10, "S", "SIP+D2U", "_sip._udp.gone.example")],
        ("pbx.example", "A"): ["198.51.100.4"],
    }
    targets, _ = run(locate("pbx.example", pick=first), zone)
    assert targets == [Target("UDP", "198.51.100.4", 5060, "pbx.example")]


def test_a_dot_target_and_unusable_records_are_skipped():
    records = [Srv(0, 0, 5060, "."), Srv(0, 0, 0, "x.example"), Srv(1, 0, 5060, "y.example")]
    assert order_srv(records, first) == [Srv(1, 0, 5060, "y.example")]
    naptr = [Naptr(1, 1, "A", "SIP+D2U", "x.example"), Naptr(1, 1, "S", "SIP+D2W", "y")]
    assert order_naptr(naptr, secure=False) == []


def test_weights_share_the_first_place_as_rfc_2782_says():
    records = [Srv(0, 10, 5060, "light.example"), Srv(0, 90, 5060, "heavy.example")]
    rng = random.Random(7)
    firsts = Counter(order_srv(records, lambda n: rng.randint(0, n))[0].target for _ in range(4000))
    assert 0.85 < firsts["heavy.example"] / 4000 < 0.95


def test_zero_weights_go_first_in_the_running_sum():
    records = [Srv(0, 5, 5060, "weighted.example"), Srv(0, 0, 5060, "zero.example")]
    assert order_srv(records, first)[0].target == "zero.example"
    assert order_srv(records, lambda n: n)[0].target == "weighted.example"


srv_records = st.lists(
    st.builds(
        Srv,
        priority=st.integers(0, 5),
        weight=st.integers(0, 100),
        port=st.integers(1, 65535),
        target=st.sampled_from(["a.example", "b.example", "c.example", "d.example", "."]),
    ),
    max_size=12,
)


@given(srv_records, st.randoms())
def test_srv_order_is_a_permutation_by_priority(records, rng):
    ordered = order_srv(records, lambda n: rng.randint(0, n))
    usable = [r for r in records if r.target != "."]
    assert Counter(ordered) == Counter(usable)
    priorities = [r.priority for r in ordered]
    assert priorities == sorted(priorities)


names = st.sampled_from(["h.example", "_sip._udp.h.example", "x.example", "."])
zones = st.dictionaries(
    st.tuples(names, st.sampled_from(["NAPTR", "SRV", "A", "AAAA"])),
    st.one_of(
        st.lists(
            st.builds(
                Naptr,
                st.integers(0, 3),
                st.integers(0, 3),
                st.sampled_from(["S", "s", "A", ""]),
                st.sampled_from(["SIP+D2U", "SIPS+D2T", "SIP+D2T", "E2U+sip"]),
                names,
            ),
            max_size=6,
        ),
        st.lists(
            st.builds(Srv, st.integers(0, 3), st.integers(0, 9), st.integers(0, 70000), names),
            max_size=6,
        ),
        st.lists(
            st.sampled_from(["192.0.2.1", "2001:db8::2", "not-an-ip", "10.0.0.1"]), max_size=4
        ),
    ),
)


@given(zones, st.sampled_from([None, "udp", "tcp", "tls", "bogus"]), st.booleans(), st.randoms())
def test_any_zone_yields_bounded_valid_targets(zone, transport, secure, rng):
    targets, asked = run(
        locate("h.example", transport=transport, secure=secure, pick=lambda n: rng.randint(0, n)),
        zone,
    )
    assert len(asked) <= MAX_LOOKUPS and len(targets) <= MAX_TARGETS
    assert len(set(targets)) == len(targets)
    for target in targets:
        assert target.transport in ("UDP", "TCP", "TLS") and 0 < target.port < 65536
        assert target.address != "not-an-ip"
        if secure:
            assert target.transport == "TLS"
