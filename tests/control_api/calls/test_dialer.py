"""Where dialled addresses go (control_api/calls/dialer.py), without sockets."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from control_api.calls.dialer import Dialer, DialError, DialRefused
from control_api.calls.trunk_health import TrunkHealth, entry_point
from control_api.calls.trunks import parse_trunk
from control_api.sip_locator import SipLocator
from sip.rfc3263 import Naptr, Srv, Target


@dataclass
class FakeFlow:
    transport: str
    remote: tuple[str, int]
    is_open: bool = True
    reliable: bool = False


class FakeUa:
    port = 5060

    def __init__(self) -> None:
        self.opened: list[tuple[str, str, int]] = []

    def flow_for(self, transport, host, port):
        self.opened.append((transport, host, port))
        return FakeFlow(transport, (host, port))

    def host_port(self, flow=None) -> str:
        return "203.0.113.1:5060"


@dataclass
class FakeBinding:
    contact: str
    owner: str
    source: tuple[str, int]
    flow: FakeFlow | None = None

    def target(self):
        return ("UDP", *self.source, self.flow)


class FakeRegistrar:
    def __init__(self, bindings: dict[str, list[FakeBinding]]) -> None:
        self.bindings = bindings

    def contacts(self, aor: str, owner: str):
        return [b for b in self.bindings.get(aor, []) if b.owner == owner]


async def ours(number: str) -> bool:
    return number == "+15005550006"


def dialer(ua, registrar=None, **policy) -> Dialer:  # policy: deny, refused, locator...
    return Dialer(
        ua,
        media=None,
        trunks=[
            parse_trunk("us=sip:u:p@192.0.2.10:5070;prefix=+1;caller_id=+15550100"),
            parse_trunk("uk=sip:192.0.2.20;prefix=+44;strip_plus"),
        ],
        local_addresses=frozenset({"203.0.113.1", "127.0.0.1"}),
        self_address=("127.0.0.1", 5060),
        is_our_number=ours,
        registrar=registrar,
        **policy,
    )


async def test_numbers_go_to_the_longest_matching_trunk_with_its_login():
    ua = FakeUa()
    [destination] = await dialer(ua).resolve("AC1", "+14155550100")
    assert destination.target == "sip:+14155550100@192.0.2.10:5070"
    assert destination.kind == "trunk" and destination.credentials.username == "u"
    assert ua.opened == [("UDP", "192.0.2.10", 5070)]
    [uk] = await dialer(ua).resolve("AC1", "442071234567")
    assert uk.target == "sip:442071234567@192.0.2.20" and uk.credentials is None


async def test_our_own_number_loops_back_in():
    ua = FakeUa()
    [destination] = await dialer(ua).resolve("AC1", "+15005550006")
    assert destination.target == "sip:+15005550006@203.0.113.1:5060"
    assert destination.flow.remote == ("127.0.0.1", 5060)


async def test_clients_ring_every_phone_of_the_account_only():
    nat = FakeFlow("UDP", ("198.51.100.7", 40000))
    registrar = FakeRegistrar(
        {
            "alice": [
                FakeBinding("sip:alice@192.168.1.5:5060", "AC1", ("198.51.100.7", 40000), nat),
                FakeBinding("sip:alice@10.1.1.1:5062", "AC1", ("10.1.1.1", 5062)),
                FakeBinding("sip:alice@10.9.9.9", "AC2", ("10.9.9.9", 5060)),
            ]
        }
    )
    ua = FakeUa()
    found = await dialer(ua, registrar).resolve("AC1", "client:alice")
    assert [d.target for d in found] == ["sip:alice@192.168.1.5:5060", "sip:alice@10.1.1.1:5062"]
    assert found[0].flow is nat and found[0].kind == "client"
    # sip:alice@<our address> means the registered user too
    local = await dialer(ua, registrar).resolve("AC1", "sip:alice@203.0.113.1")
    assert [d.target for d in local] == [d.target for d in found]
    assert await dialer(ua, registrar).resolve("AC1", "client:bob") == []


async def test_sip_uris_are_called_directly_with_given_credentials():
    ua = FakeUa()
    [destination] = await dialer(ua).resolve(
        "AC1", "sip:bob@192.0.2.30:5080;transport=tcp", username="me", password="pw"
    )
    assert destination.target == "sip:bob@192.0.2.30:5080;transport=tcp"
    assert destination.credentials.password == "pw" and ua.opened[-1] == ("TCP", "192.0.2.30", 5080)


@pytest.mark.parametrize("address", ["+33123456789", "not a number", "sip:@@"])
async def test_unroutable_addresses_are_dial_errors(address):
    with pytest.raises(DialError):
        await dialer(FakeUa()).resolve("AC1", address)


def guarded(ua, refusals, deny=("198.18.0.0/15", "2001:db8:dead::/48"), **more) -> Dialer:
    """A dialer with a --dial-deny list, its refusals told to ``refusals``."""
    return dialer(
        ua,
        deny=deny,
        **more,
        refused=lambda reason, source_ip, **fields: refusals.append((reason, source_ip, fields)),
    )


@pytest.mark.parametrize(
    "address",
    ["sip:+15559990000@198.18.0.9", "sip:x@[2001:db8:dead::1]:5080", "sips:a@198.19.255.1"],
)
async def test_sip_targets_in_dial_deny_are_refused_before_any_flow(address):
    ua, refusals = FakeUa(), []
    with pytest.raises(DialRefused, match="--dial-deny") as refused:
        await guarded(ua, refusals).resolve("AC1", address, source_ip="198.51.100.9")
    assert refused.value.reason == "dial.denied" and ua.opened == []
    [(reason, source, fields)] = refusals
    assert (reason, source, fields["account_sid"]) == ("dial.denied", "198.51.100.9", "AC1")


class ZoneLocator(SipLocator):
    """The RFC 3263 locator answering from a dict of (name, kind) → records."""

    def __init__(self, zone) -> None:
        super().__init__(pick=lambda n: 0)
        self.zone = zone

    async def lookup(self, lookup):
        return self.zone.get((lookup.name, lookup.kind), [])


async def test_a_name_is_refused_when_any_of_its_addresses_is_denied():
    zone = {("mixed.example", "A"): ["192.0.2.40", "198.18.7.7"]}
    ua, refusals = FakeUa(), []
    with pytest.raises(DialRefused):
        await guarded(ua, refusals, locator=ZoneLocator(zone)).resolve(
            "AC1", "sip:bob@mixed.example"
        )
    assert ua.opened == [] and refusals[0][2]["address"] == "198.18.7.7"


async def test_a_name_is_refused_when_an_srv_target_is_denied():
    zone = {
        ("_sip._udp.pbx.example", "SRV"): [Srv(1, 0, 5060, "a.example"), Srv(2, 0, 5060, "b")],
        ("a.example", "A"): ["192.0.2.41"],
        ("b", "A"): ["198.18.0.1"],
    }
    ua, refusals = FakeUa(), []
    with pytest.raises(DialRefused):
        await guarded(ua, refusals, locator=ZoneLocator(zone)).resolve("AC1", "sip:x@pbx.example")
    assert refusals[0][2]["address"] == "198.18.0.1"


CARRIER_ZONE = {
    ("carrier.example", "NAPTR"): [Naptr(10, 10, "S", "SIP+D2U", "_sip._udp.carrier.example")],
    ("_sip._udp.carrier.example", "SRV"): [
        Srv(10, 0, 5070, "one.carrier.example"),
        Srv(20, 0, 5080, "two.carrier.example"),
    ],
    ("one.carrier.example", "A"): ["192.0.2.51"],
    ("two.carrier.example", "A"): ["192.0.2.52"],
    ("carrier.example", "A"): ["192.0.2.50"],
}


def carrier_dialer(ua, **more) -> Dialer:
    return Dialer(
        ua,
        media=None,
        trunks=[
            parse_trunk("spare=sip:192.0.2.60;prefix=+1;order=5"),
            parse_trunk("main=sip:u:p@carrier.example;host=192.0.2.70:5099;prefix=+1"),
        ],
        local_addresses=frozenset({"203.0.113.1"}),
        self_address=("127.0.0.1", 5060),
        is_our_number=ours,
        locator=ZoneLocator(CARRIER_ZONE),
        **more,
    )


async def test_a_number_tries_every_trunk_entry_point_and_dns_target_in_order():
    ua = FakeUa()
    [destination] = await carrier_dialer(ua).resolve("AC1", "+14155550100")
    assert [(h.target, h.where, h.name) for h in destination.hops] == [
        ("sip:+14155550100@carrier.example", "udp:192.0.2.51:5070", "one.carrier.example"),
        ("sip:+14155550100@carrier.example", "udp:192.0.2.52:5080", "two.carrier.example"),
        ("sip:+14155550100@192.0.2.70:5099", "udp:192.0.2.70:5099", "192.0.2.70"),
        ("sip:+14155550100@192.0.2.60", "udp:192.0.2.60:5060", "192.0.2.60"),
    ]
    assert [h.trunk.name for h in destination.hops] == ["main", "main", "main", "spare"]
    assert (
        destination.hops[0].credentials.username == "u" and destination.hops[3].credentials is None
    )
    assert ua.opened == [("UDP", "192.0.2.51", 5070)]  # the others' flows when tried
    assert destination.account_sid == "AC1" and destination.trunk.name == "main"


async def test_hosts_marked_down_are_skipped_unless_all_are():
    health = TrunkHealth()
    for _ in range(2):
        health.failed("main", Target("UDP", "192.0.2.51", 5070, "one.carrier.example"))
    [destination] = await carrier_dialer(FakeUa(), health=health).resolve("AC1", "+14155550100")
    assert [h.address for h in destination.hops] == ["192.0.2.52", "192.0.2.70", "192.0.2.60"]
    for trunk, address, port in [
        ("main", "192.0.2.52", 5080),
        ("main", "192.0.2.70", 5099),
        ("spare", "192.0.2.60", 5060),
    ]:
        for _ in range(2):
            health.failed(trunk, Target("UDP", address, port, ""))
    [destination] = await carrier_dialer(FakeUa(), health=health).resolve("AC1", "+14155550100")
    assert len(destination.hops) == 4  # all down: all tried
    health.answered("main", Target("UDP", "192.0.2.70", 5099, ""), 200)
    [destination] = await carrier_dialer(FakeUa(), health=health).resolve("AC1", "+14155550100")
    assert [h.address for h in destination.hops] == ["192.0.2.70"]


async def test_a_sip_uri_at_any_address_of_a_trunk_entry_point_is_the_trunk():
    d = carrier_dialer(FakeUa(), deny=("198.18.0.0/15",))
    for host in ("192.0.2.52:5080", "192.0.2.50", "one.carrier.example:5070"):
        [destination] = await d.resolve("AC1", f"sip:+14155550100@{host}")
        assert destination.kind == "trunk" and destination.trunk.name == "main"
    with pytest.raises(DialRefused, match="through its rules"):
        await d.resolve("AC1", "sip:alice@192.0.2.51")


async def test_numbers_and_clients_are_not_subject_to_dial_deny():
    ua, refusals = FakeUa(), []
    d = guarded(ua, refusals, deny=("192.0.2.0/24",))  # the trunks' own network
    [destination] = await d.resolve("AC1", "+14155550100")
    assert destination.kind == "trunk" and refusals == []


async def test_a_sip_uri_at_a_trunk_host_goes_through_the_trunk_rules():
    ua, refusals = FakeUa(), []
    d = guarded(ua, refusals)
    [destination] = await d.resolve("AC1", "sip:+14155550100@192.0.2.10")
    # The trunk's port, login and caller ID, not the bare URI.
    assert destination.target == "sip:+14155550100@192.0.2.10:5070"
    assert destination.kind == "trunk" and destination.trunk.name == "us"
    assert destination.credentials.username == "u"
    assert destination.trunk.caller_id == "+15550100"
    assert destination.label == "sip:+14155550100@192.0.2.10"
    # strip_plus of the uk trunk applies too; any port of the host is the trunk.
    [uk] = await d.resolve("AC1", "sip:+442071234567@192.0.2.20:5999", username="x", password="y")
    assert uk.target == "sip:442071234567@192.0.2.20" and uk.credentials is None


@pytest.mark.parametrize(
    "address", ["sip:+442071234567@192.0.2.10", "sip:bob@192.0.2.10", "sip:192.0.2.20"]
)
async def test_a_trunk_host_is_refused_what_its_trunk_does_not_serve(address):
    ua, refusals = FakeUa(), []
    with pytest.raises(DialRefused, match="through its rules") as refused:
        await guarded(ua, refusals).resolve("AC1", address, source_ip="198.51.100.9")
    assert refused.value.reason == "dial.trunk" and ua.opened == []
    assert refusals[0][0] == "dial.trunk"


@pytest.mark.parametrize(
    ("target", "address"),
    [
        ("sip:+15559990000@203.0.113.1", "+15559990000"),
        ("sip:15559990000@127.0.0.1:5060", "+15559990000"),
        ("sip:alice@203.0.113.1", "client:alice"),
        ("tel:+442071234567;phone-context=x", "+442071234567"),
        ("sip:+14155550100@192.0.2.10", "+14155550100"),
        ("sip:+15559990000@127.0.0.9", None),  # an arbitrary host
        ("sip:+15559990000@203.0.113.1:5070", None),  # our address, another port
        ("sip:alice@192.0.2.10", None),  # a trunk host, not a number
        ("sip:203.0.113.1", None),
        ("http://example.com/", None),
        ("sip:@@", None),
    ],
)
def test_refer_address_routes_like_dial_and_never_to_an_arbitrary_host(target, address):
    assert dialer(FakeUa()).refer_address(target) == address


async def test_a_trunk_with_a_country_dials_its_numbers_nationally():
    ua = FakeUa()
    trunk = parse_trunk("uk=sip:192.0.2.20;prefix=+44;prefix=+33;country_code=44;national_prefix=0")
    dial = Dialer(
        ua,
        media=None,
        trunks=[trunk],
        local_addresses=frozenset({"203.0.113.1"}),
        self_address=("127.0.0.1", 5060),
        is_our_number=ours,
    )
    [national] = await dial.resolve("AC1", "+442071234567")
    assert national.target == "sip:02071234567@192.0.2.20"
    [abroad] = await dial.resolve("AC1", "+33123456789")
    assert abroad.target == "sip:+33123456789@192.0.2.20"


async def test_calls_through_a_pai_trunk_assert_the_caller():
    ua = FakeUa()
    trunk = parse_trunk("uk=sip:192.0.2.20;country_code=44;national_prefix=0;pai")
    dial = Dialer(
        ua,
        media=None,
        trunks=[trunk],
        local_addresses=frozenset({"203.0.113.1"}),
        self_address=("127.0.0.1", 5060),
        is_our_number=ours,
    )
    [destination] = await dial.resolve("AC1", "+442079460000")
    call = dial.call(destination, from_user="+442071234567", headers=[("X-Tag", "1")])
    [hop] = destination.hops
    shown = call.presentation(hop, destination.flow)
    assert shown.from_user == "02071234567"
    assert shown.headers == (("P-Asserted-Identity", "<sip:+442071234567@203.0.113.1:5060>"),)
    assert call.headers == [("X-Tag", "1")]  # added after the hop's own
    withheld = dial.call(destination, from_user="+266696687").presentation(hop, destination.flow)
    assert (withheld.from_user, withheld.from_display) == ("anonymous", "Anonymous")
    assert withheld.headers == (("Privacy", "id"),)


PROXY_ZONE = {
    **CARRIER_ZONE,
    ("edge.carrier.example", "NAPTR"): [
        Naptr(10, 10, "S", "SIP+D2T", "_sip._tcp.edge.carrier.example")
    ],
    ("_sip._tcp.edge.carrier.example", "SRV"): [
        Srv(10, 0, 5090, "e1.carrier.example"),
        Srv(20, 0, 5091, "e2.carrier.example"),
    ],
    ("e1.carrier.example", "A"): ["192.0.2.91"],
    ("e2.carrier.example", "A"): ["192.0.2.92"],
}


def proxy_dialer(ua, *trunks: str, **more) -> Dialer:
    return Dialer(
        ua,
        media=None,
        trunks=[parse_trunk(t) for t in trunks],
        local_addresses=frozenset({"203.0.113.1"}),
        self_address=("127.0.0.1", 5060),
        is_our_number=ours,
        locator=ZoneLocator(PROXY_ZONE),
        **more,
    )


async def test_a_trunks_outbound_proxy_gets_its_invites_with_the_carriers_uri():
    ua = FakeUa()
    d = proxy_dialer(
        ua,
        "main=sip:u:p@carrier.example;host=192.0.2.70:5099;prefix=+1;"
        "outbound_proxy=sip:edge.carrier.example",
        "spare=sip:192.0.2.60;prefix=+1;order=5",
    )
    [destination] = await d.resolve("AC1", "+14155550100")
    assert [(h.target, h.where, h.name, h.proxy) for h in destination.hops] == [
        # Each entry point's Request-URI, every one sent to the proxy's NAPTR/SRV targets.
        *[
            (uri, where, name, "sip:edge.carrier.example")
            for uri in ("sip:+14155550100@carrier.example", "sip:+14155550100@192.0.2.70:5099")
            for where, name in (
                ("tcp:192.0.2.91:5090", "e1.carrier.example"),
                ("tcp:192.0.2.92:5091", "e2.carrier.example"),
            )
        ],
        # A trunk without a proxy is reached directly, as before.
        ("sip:+14155550100@192.0.2.60", "udp:192.0.2.60:5060", "192.0.2.60", None),
    ]
    assert ua.opened == [("TCP", "192.0.2.91", 5090)]


async def test_an_entry_point_its_pings_through_the_proxy_marked_down_is_skipped():
    """The health check's state of an entry point behind the proxy (one per proxy
    target, control_api/calls/trunk_health.py) is what a call's hops are checked
    against: that entry point's hops are skipped, the other's are kept."""
    health = TrunkHealth()
    d = proxy_dialer(
        FakeUa(),
        "main=sip:carrier.example;host=192.0.2.70:5099;prefix=+1;"
        "outbound_proxy=sip:edge.carrier.example;ping=5",
        health=health,
    )
    for target in await d.locate_proxy(d.trunks[0]):
        for _ in range(2):
            health.answered("main", target, 408, entry=entry_point("192.0.2.70", 5099))
    [destination] = await d.resolve("AC1", "+14155550100")
    assert [(h.target, h.where) for h in destination.hops] == [
        ("sip:+14155550100@carrier.example", "tcp:192.0.2.91:5090"),
        ("sip:+14155550100@carrier.example", "tcp:192.0.2.92:5091"),
    ]


@pytest.mark.parametrize(
    ("trunk", "where"),
    [
        # An address with a port: that address, over the trunk's transport.
        ("t=sip:carrier.example;outbound_proxy=sip:192.0.2.80:5070", "udp:192.0.2.80:5070"),
        (
            "t=sip:carrier.example;transport=tcp;outbound_proxy=sip:192.0.2.80",
            "tcp:192.0.2.80:5060",
        ),
        ("t=sips:carrier.example;outbound_proxy=sips:192.0.2.80", "tls:192.0.2.80:5061"),
    ],
)
async def test_the_proxy_is_located_with_its_own_transport_else_the_trunks(trunk, where):
    [destination] = await proxy_dialer(FakeUa(), trunk).resolve("AC1", "+14155550100")
    assert [h.where for h in destination.hops] == [where]


async def test_a_proxy_in_the_toml_form_keeps_its_transport_which_wins():
    trunk = parse_trunk(
        {
            "name": "t",
            "uri": "sip:carrier.example",
            "outbound_proxy": "<sip:192.0.2.80;transport=tcp>",
        }
    )
    assert trunk.outbound_proxy == "sip:192.0.2.80;transport=tcp"
    d = Dialer(
        FakeUa(),
        media=None,
        trunks=[trunk],
        local_addresses=frozenset({"203.0.113.1"}),
        self_address=("127.0.0.1", 5060),
        is_our_number=ours,
        locator=ZoneLocator(PROXY_ZONE),
    )
    [destination] = await d.resolve("AC1", "+14155550100")
    assert [h.where for h in destination.hops] == ["tcp:192.0.2.80:5060"]


async def test_a_sip_uri_at_the_proxy_goes_through_the_trunk_rules():
    d = proxy_dialer(
        FakeUa(), "main=sip:carrier.example;prefix=+1;outbound_proxy=sip:edge.carrier.example"
    )
    [destination] = await d.resolve("AC1", "sip:+14155550100@e2.carrier.example:5091")
    assert destination.kind == "trunk" and destination.trunk.name == "main"
    assert destination.target == "sip:+14155550100@carrier.example"
    with pytest.raises(DialRefused, match="through its rules"):
        await d.resolve("AC1", "sip:alice@192.0.2.91")


async def test_a_sip_uri_with_several_dns_targets_fails_over_across_them():
    zone = {
        ("pbx.example", "NAPTR"): [Naptr(1, 1, "S", "SIP+D2T", "_sip._tcp.pbx.example")],
        ("_sip._tcp.pbx.example", "SRV"): [Srv(1, 0, 5062, "a.example"), Srv(2, 0, 5063, "b")],
        ("a.example", "A"): ["192.0.2.41"],
        ("b", "A"): ["192.0.2.42"],
    }
    ua = FakeUa()
    [destination] = await dialer(ua, locator=ZoneLocator(zone)).resolve(
        "AC1", "sip:bob@pbx.example", username="me", password="pw"
    )
    assert destination.kind == "sip" and destination.target == "sip:bob@pbx.example"
    assert [(h.where, h.credentials.username) for h in destination.hops] == [
        ("tcp:192.0.2.41:5062", "me"),
        ("tcp:192.0.2.42:5063", "me"),
    ]
    assert ua.opened == [("TCP", "192.0.2.41", 5062)]
