"""Which trunk a call came from and the number it dialled (control_api/calls/inbound_trunk.py)."""

from __future__ import annotations

import asyncio

from hypothesis import given
from hypothesis import strategies as st

from control_api.address_policy import ResolveError
from control_api.calls.inbound_trunk import InboundTrunks, dialled_number, number_in
from control_api.calls.trunk_registrations import TrunkRegistrations, trunk_views
from control_api.calls.trunks import parse_trunk
from sip.message import Request
from sip.parser import parse_message


class FakeFlow:
    def __init__(self, remote: tuple[str, int], reliable: bool = False) -> None:
        self.remote = remote
        self.reliable = reliable
        self.transport = "TCP" if reliable else "UDP"


class FakeUa:
    host = "192.0.2.10"
    name = "callswitch"


def invite(ruri: str, to: str = "sip:+15550100@carrier", headers: str = "") -> Request:
    text = (
        f"INVITE {ruri} SIP/2.0\r\n"
        "Via: SIP/2.0/UDP 198.51.100.7:5060;branch=z9hG4bK1\r\n"
        "From: <sip:+15557770000@carrier>;tag=1\r\n"
        f"To: <{to}>\r\nCall-ID: c1\r\nCSeq: 1 INVITE\r\n{headers}Content-Length: 0\r\n\r\n"
    )
    request = parse_message(text.encode())
    assert isinstance(request, Request)
    return request


CARRIER = parse_trunk("carrier=sip:acct:pw@198.51.100.7;host=198.51.100.8:5070;register")
OTHER = parse_trunk("other=sip:203.0.113.9;did=X-DID")
NAMED = parse_trunk("named=sip:sip.carrier.example;outbound_proxy=sip:198.51.100.99")


def inbound(*trunks, resolve=None) -> InboundTrunks:
    registrations = TrunkRegistrations(FakeUa(), trunks)  # type: ignore[arg-type]
    if resolve is None:
        return InboundTrunks(trunks, registrations)
    return InboundTrunks(trunks, registrations, resolve=resolve)


def test_a_call_to_the_registered_contact_is_the_trunks_from_anywhere():
    trunks = inbound(CARRIER, OTHER)
    request = invite("sip:acct@192.0.2.10:5060")
    assert trunks.trunk_of(request, FakeFlow(("192.0.2.200", 5060))) is CARRIER


def test_a_call_from_an_entry_point_is_the_trunks_whatever_its_port():
    trunks = inbound(CARRIER, OTHER)
    request = invite("sip:+15550100@192.0.2.10")
    assert trunks.trunk_of(request, FakeFlow(("198.51.100.8", 41000))) is CARRIER
    assert trunks.trunk_of(request, FakeFlow(("203.0.113.9", 5060))) is OTHER
    assert trunks.trunk_of(request, FakeFlow(("192.0.2.99", 5060))) is None
    assert trunks.trunk_of(request, FakeFlow(("::ffff:198.51.100.7", 5060))) is CARRIER


def test_a_call_on_the_registrations_connection_is_the_trunks():
    trunks = inbound(CARRIER)
    flow = FakeFlow(("192.0.2.50", 5061), reliable=True)
    [registration] = trunks.registrations
    registration.flow = flow  # type: ignore[assignment]
    assert trunks.trunk_of(invite("sip:someone@192.0.2.10"), flow) is CARRIER


def test_names_are_resolved_and_cached():
    asked = []

    async def resolve(host: str) -> list[str]:
        asked.append(host)
        if host == "sip.carrier.example":
            return ["198.51.100.60", "2001:db8::60"]
        raise ResolveError(f"cannot resolve {host}")

    trunks = inbound(NAMED, resolve=resolve)
    request = invite("sip:+15550100@192.0.2.10")
    # The outbound proxy's address is known at once; the name once resolved.
    assert trunks.trunk_of(request, FakeFlow(("198.51.100.99", 5060))) is NAMED
    assert trunks.trunk_of(request, FakeFlow(("198.51.100.60", 5060))) is None
    asyncio.run(trunks.refresh())
    assert trunks.trunk_of(request, FakeFlow(("198.51.100.60", 5060))) is NAMED
    assert trunks.trunk_of(request, FakeFlow(("2001:db8:0::60", 5060))) is NAMED
    assert asked == ["sip.carrier.example"]  # the literal proxy address is not looked up


def test_did_auto_prefers_the_request_uri_when_it_is_ours():
    request = invite("sip:15550199@192.0.2.10", to="sip:+15550100@carrier")
    assert dialled_number(CARRIER, request, {"15550199"}.__contains__) == "15550199"
    assert dialled_number(CARRIER, request, lambda n: False) == "+15550100"
    registered = invite("sip:acct@192.0.2.10", to="sip:+1-(555)-0100@carrier")
    assert dialled_number(CARRIER, registered, lambda n: True) == "+15550100"


def test_did_ruri_and_to_take_only_that_place():
    request = invite("sip:+15550199@192.0.2.10", to="tel:+15550100")
    ruri = parse_trunk("t=sip:198.51.100.7;did=ruri")
    to = parse_trunk("t=sip:198.51.100.7;did=to")
    assert dialled_number(ruri, request, lambda n: False) == "+15550199"
    assert dialled_number(to, request, lambda n: True) == "+15550100"
    assert dialled_number(ruri, invite("sip:acct@192.0.2.10"), lambda n: True) is None


def test_did_from_a_header():
    with_header = invite("sip:acct@192.0.2.10", headers="X-DID: <sip:+15550123@carrier>\r\n")
    assert dialled_number(OTHER, with_header, lambda n: True) == "+15550123"
    assert dialled_number(OTHER, invite("sip:acct@192.0.2.10"), lambda n: True) is None


def test_number_in_reads_bare_numbers_and_uris():
    assert number_in("+1 555-0100") == "+15550100"
    assert number_in("tel:+15550100;phone-context=example.com") == "+15550100"
    assert number_in('"Sales" <sip:15550100@carrier;user=phone>;tag=x') == "15550100"
    assert number_in("sips:+44201234567@carrier") == "+44201234567"
    assert number_in("sip:alice@carrier") is None
    assert number_in("<http://example.com>") is None
    assert number_in("twelve") is None


@given(st.text(max_size=120))
def test_number_in_never_raises(value):
    number = number_in(value)
    assert number is None or number.lstrip("+").isdigit()


def test_trunk_views_show_no_secrets():
    [view] = trunk_views([CARRIER], None)
    shown = view.to_json()
    assert shown["entry_points"] == ["198.51.100.7", "198.51.100.8:5070"]
    assert shown["register"] is True and shown["registration"] is None
    assert "pw" not in repr(shown)
