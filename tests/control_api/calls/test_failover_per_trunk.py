"""A call that fails over from one trunk to the next follows each trunk's own rules on
each attempt (control_api/calls/outbound_call.py): the caller as that trunk shows it
(``caller_id``, national format, ``pai``), its ``srtp`` with fresh keys, and its
``outbound_proxy``. Driven with the sans-I/O user agent and fake flows, one per hop."""

from __future__ import annotations

import asyncio

import pytest

from control_api.calls.failover import Hop
from control_api.calls.outbound_call import Destination, OutboundCall
from control_api.calls.trunks import parse_trunk
from media.sdp import SessionDescription
from media.srtp import CryptoAttribute
from sip.headers import NameAddress
from sip.ua import UserAgent
from tests.control_api.calls.test_call import media
from tests.control_api.calls.test_failover import Flows, answer
from tests.control_api.calls.test_outbound_call_srtp import answer_sdp
from tests.sip.test_ua import Clock
from tests.sip.test_uac import respond

SECURE = parse_trunk(
    "secure=sip:carrier-a.example;prefix=+44;srtp=mandatory;caller_id=+15550100;pai;"
    "outbound_proxy=sip:edge.carrier-a.example"
)
NATIONAL = parse_trunk(
    "national=sip:carrier-b.example;prefix=+44;country_code=44;national_prefix=0"
)
OPTIONAL = parse_trunk("optional=sip:carrier-c.example;prefix=+44;srtp=optional")


@pytest.fixture
def network():
    flows = Flows()
    ua = UserAgent(host="127.0.0.1", port=5060, clock=Clock(), flow_for=flows.flow_for)
    settings = media()
    yield ua, flows, settings
    settings.clock.close()


def place(ua, settings, *hops: Hop, trunk_caller_id: bool = True) -> OutboundCall:
    first = ua.flow_for("UDP", hops[0].address, hops[0].port)
    destination = Destination(hops[0].target, first, kind="trunk", trunk=hops[0].trunk, hops=hops)
    return OutboundCall(
        ua,
        settings,
        destination,
        from_user="+442071234567",
        timeout=10,
        trunk_caller_id=trunk_caller_id,
        headers=[("X-App", "1")],
    )


def hop(trunk, port: int) -> Hop:
    return Hop(
        f"sip:+442079460000@{trunk.host}",
        "UDP",
        "192.0.2.1",
        port,
        trunk.host,
        None,
        trunk,
        trunk.outbound_proxy,
    )


def from_user(invite) -> str:
    return NameAddress.parse(invite.headers.get("From")).uri.user or ""


async def test_each_attempt_shows_the_caller_and_offers_srtp_as_its_trunk_says(network):
    ua, flows, settings = network
    call = place(ua, settings, hop(SECURE, 5071), hop(NATIONAL, 5072))
    connecting = asyncio.ensure_future(call.connect())
    first = await flows.invite(5071)
    # The first trunk: its forced caller ID, asserted, SRTP required, through its proxy.
    assert from_user(first) == "+15550100"
    assert first.headers.get("P-Asserted-Identity") == "<sip:+15550100@127.0.0.1:5060>"
    assert first.headers.get_all("Route") == ["<sip:edge.carrier-a.example;lr>"]
    assert first.headers.get("X-App") == "1"
    [audio] = SessionDescription.parse(first.body).media
    assert audio.protocol == "RTP/SAVP" and len(audio.crypto) == 2
    respond(ua, flows[5071], first, 503)
    second = await flows.invite(5072)
    # The second: the call's own caller in its national form, no assertion, plain RTP,
    # straight to its host.
    assert from_user(second) == "02071234567"
    assert second.headers.get("P-Asserted-Identity") is None
    assert second.headers.get_all("Route") == []
    assert second.headers.get("X-App") == "1"
    [audio] = SessionDescription.parse(second.body).media
    assert (audio.protocol, audio.crypto) == ("RTP/AVP", [])
    respond(ua, flows[5072], second, 200, body=answer_sdp("RTP/AVP", []))
    assert await connecting is True
    assert call.leg.srtp is None and call.hop.trunk is NATIONAL
    call.hangup()


async def test_an_explicit_caller_id_is_kept_on_every_trunk(network):
    ua, flows, settings = network
    call = place(ua, settings, hop(SECURE, 5071), trunk_caller_id=False)
    connecting = asyncio.ensure_future(call.connect())
    invite = await flows.invite(5071)
    assert from_user(invite) == "+442071234567"
    await answer(ua, flows, 5071, 486)
    assert await connecting is False


async def test_the_next_trunk_gets_fresh_keys_never_the_first_ones(network):
    ua, flows, settings = network
    other = parse_trunk("other=sip:carrier-d.example;prefix=+44;srtp=optional")
    call = place(ua, settings, hop(OPTIONAL, 5071), hop(other, 5072))
    connecting = asyncio.ensure_future(call.connect())
    first = await flows.invite(5071)
    respond(ua, flows[5071], first, 503)
    second = await flows.invite(5072)
    keys = [
        {
            CryptoAttribute.parse(line).key
            for line in SessionDescription.parse(m.body).media[0].crypto
        }
        for m in (first, second)
    ]
    assert all(len(k) == 2 for k in keys) and keys[0].isdisjoint(keys[1])
    theirs = CryptoAttribute.generate(1, "AES_CM_128_HMAC_SHA1_80")
    respond(ua, flows[5072], second, 200, body=answer_sdp("RTP/AVP", [theirs.serialize()]))
    assert await connecting is True
    ours = CryptoAttribute.parse(SessionDescription.parse(second.body).media[0].crypto[0])
    assert (call.leg.srtp.ours, call.leg.srtp.theirs) == (ours, theirs)
    call.hangup()


async def test_early_media_of_a_failed_trunk_leaves_nothing_on_the_next_ones_leg(network):
    ua, flows, settings = network
    call = place(ua, settings, hop(SECURE, 5071), hop(NATIONAL, 5072))
    connecting = asyncio.ensure_future(call.connect())
    first = await flows.invite(5071)
    [offered] = SessionDescription.parse(first.body).media
    suite = CryptoAttribute.parse(offered.crypto[0])
    early = CryptoAttribute.generate(suite.tag, suite.suite)
    # An announcement over SRTP, then the carrier gives up with 503.
    respond(ua, flows[5071], first, 183, body=answer_sdp("RTP/SAVP", [early.serialize()]))
    await asyncio.wait_for(call.ringing.wait(), 5)
    first_leg = call.leg
    assert first_leg.srtp is not None and first_leg.destination is not None
    respond(ua, flows[5071], first, 503)
    second = await flows.invite(5072)
    # A new leg (port) for the next trunk: plain, as that trunk is, and the old one closed.
    [audio] = SessionDescription.parse(second.body).media
    assert audio.port != offered.port and audio.crypto == []
    assert first_leg.closed
    respond(ua, flows[5072], second, 200, body=answer_sdp("RTP/AVP", []))
    assert await connecting is True
    assert call.leg is not first_leg and call.leg.srtp is None
    assert call.leg.destination == ("127.0.0.1", 7000)
    call.hangup()
