"""SDES-SRTP on the calls we place (control_api/calls/outbound_call.py): the offer's shape per
trunk mode, the answer matched against it, and a mandatory trunk's refusal as a failure."""

from __future__ import annotations

import asyncio
from types import SimpleNamespace

import pytest

from control_api.calls.call import MediaSettings
from control_api.calls.outbound_call import Destination, OutboundCall
from control_api.calls.trunks import parse_trunk
from control_api.voice.twiml_call import report_problem
from media.clock import MediaClock
from media.ports import PortPool
from media.sdp import SessionDescription
from media.srtp import CryptoAttribute, SrtpContext
from sip.message import Request
from sip.ua import UserAgent
from tests.media.conftest import free_range
from tests.sip.test_ua import Clock, FakeFlow
from tests.sip.test_uac import respond


@pytest.fixture
async def media():
    clock = MediaClock()
    yield MediaSettings("127.0.0.1", "127.0.0.1", PortPool(*free_range()), clock)
    clock.close()


def trunk_destination(flow: FakeFlow, spec: str) -> Destination:
    trunk = parse_trunk(f"carrier=sip:10.0.0.1:5062{spec}")
    return Destination("sip:+15550001111@10.0.0.1:5062", flow, kind="trunk", trunk=trunk)


def answer_sdp(protocol: str, crypto: list[str]) -> bytes:
    lines = [
        "v=0",
        "o=- 1 1 IN IP4 127.0.0.1",
        "s=-",
        "c=IN IP4 127.0.0.1",
        "t=0 0",
        f"m=audio 7000 {protocol} 0",
        *[f"a=crypto:{line}" for line in crypto],
        "",
    ]
    return "\r\n".join(lines).encode()


async def place(media, destination: Destination):
    """The call, its INVITE's SDP, and a way to answer it (status, body)."""
    flow = destination.flow
    ua = UserAgent(host="127.0.0.1", port=5060, clock=Clock(), flow_for=lambda *a: flow)
    call = OutboundCall(ua, media, destination, from_user="+15005550006", timeout=5)
    connecting = asyncio.ensure_future(call.connect())
    for _ in range(200):
        invites = [m for m in flow.messages() if isinstance(m, Request) and m.method == "INVITE"]
        if invites:
            break
        await asyncio.sleep(0.005)
    [invite] = invites
    offer = SessionDescription.parse(invite.body)

    async def answer(status: int, body: bytes = b"") -> bool:
        respond(ua, flow, invite, status, body=body)
        return await asyncio.wait_for(connecting, 5)

    return call, offer, answer


def methods(flow: FakeFlow) -> list[str]:
    return [m.method for m in flow.messages() if isinstance(m, Request)]


@pytest.mark.parametrize(
    ("spec", "protocol"),
    [(";srtp=mandatory", "RTP/SAVP"), (";srtp=optional", "RTP/AVP"), (";transport=tls", "RTP/AVP")],
)
async def test_a_secure_trunk_offers_both_suites_with_fresh_keys(media, spec, protocol):
    _, offer, answer = await place(media, trunk_destination(FakeFlow(), spec))
    _, again, answer_again = await place(media, trunk_destination(FakeFlow(), spec))
    [audio] = offer.media
    assert audio.protocol == protocol
    offered = [CryptoAttribute.parse(line) for line in audio.crypto]
    assert [(c.tag, c.suite) for c in offered] == [
        (1, "AES_CM_128_HMAC_SHA1_80"),
        (2, "AES_CM_128_HMAC_SHA1_32"),
    ]
    assert {c.key for c in offered}.isdisjoint(
        CryptoAttribute.parse(line).key for line in again.media[0].crypto
    )
    assert not await answer(486) and not await answer_again(486)


async def test_a_plain_trunk_offers_no_keys(media):
    call, offer, answer = await place(media, trunk_destination(FakeFlow(), ""))
    assert (offer.media[0].protocol, offer.media[0].crypto) == ("RTP/AVP", [])
    assert await answer(200, answer_sdp("RTP/AVP", []))
    assert call.leg.srtp is None
    call.hangup()


async def test_the_answered_tag_sets_the_keys_both_ways(media):
    call, offer, answer = await place(media, trunk_destination(FakeFlow(), ";srtp=mandatory"))
    theirs = CryptoAttribute.generate(2, "AES_CM_128_HMAC_SHA1_32")
    assert await answer(200, answer_sdp("RTP/SAVP", [theirs.serialize()]))
    ours = CryptoAttribute.parse(offer.media[0].crypto[1])
    context = call.leg.srtp
    assert context is not None and (context.ours, context.theirs) == (ours, theirs)
    plain = bytes([0x80, 0]) + bytes(10) + b"\xd5" * 160
    assert SrtpContext(theirs, ours).unprotect(context.protect(plain)) == plain
    assert call.problem is None
    call.hangup()


async def test_an_optional_trunk_takes_a_plain_answer(media):
    call, _, answer = await place(media, trunk_destination(FakeFlow(), ";transport=tls"))
    assert await answer(200, answer_sdp("RTP/AVP", []))
    assert call.leg.srtp is None and call.status == "in-progress"
    call.hangup()


@pytest.mark.parametrize(
    ("spec", "body", "code"),
    [
        (";srtp=mandatory", answer_sdp("RTP/AVP", []), 32208),
        (";srtp=mandatory", answer_sdp("RTP/SAVP", []), 32208),
        (";srtp=optional", answer_sdp("RTP/SAVP", []), 32011),
        (
            ";srtp=optional",
            answer_sdp(
                "RTP/AVP", [CryptoAttribute.generate(7, "AES_CM_128_HMAC_SHA1_80").serialize()]
            ),
            32011,
        ),
    ],
    ids=["mandatory-avp", "mandatory-savp-no-key", "optional-savp-no-key", "optional-bad-tag"],
)
async def test_an_answer_refusing_the_srtp_required_fails_the_call(media, spec, body, code):
    flow = FakeFlow()
    call, _, answer = await place(media, trunk_destination(flow, spec))
    assert not await answer(200, body)
    assert call.status == "failed" and not call.answered
    assert methods(flow)[-2:] == ["ACK", "BYE"]  # the dialog the 200 made is ended at once
    problem_code, text = call.problem
    assert problem_code == code and ("crypto" in text or "SRTP" in text), text
    # ...and it is the call's notification.
    told = []
    log = SimpleNamespace(problem=lambda **fields: told.append(fields))
    report_problem(SimpleNamespace(call_log=log), "AC1", call)
    assert told == [
        {"account_sid": "AC1", "call_sid": call.sid, "code": code, "text": call.problem[1]}
    ]


def test_which_destinations_are_offered_srtp():
    tls, udp = FakeFlow(), FakeFlow()
    tls.transport = "TLS"
    assert Destination("sips:bob@example.com", tls, kind="sip").srtp == "optional"
    assert Destination("sip:bob@example.com;transport=tls", tls, kind="sip").srtp == "optional"
    assert Destination("sip:bob@example.com", udp, kind="sip").srtp == "off"
    assert Destination("sip:alice@10.0.0.9", tls, kind="client").srtp == "off"
    # Twilio's <Sip>sip:...;secure=true</Sip>: SRTP required, whatever the transport.
    assert Destination("sip:bob@example.com;secure=true", udp, kind="sip").srtp == "mandatory"
    assert Destination("sips:bob@example.com;secure=TRUE;x=1", tls, kind="sip").srtp == (
        "mandatory"
    )
    assert Destination("sip:bob@example.com;secure=false", udp, kind="sip").srtp == "off"
    assert trunk_destination(udp, ";srtp=mandatory").srtp == "mandatory"
    assert trunk_destination(tls, ";transport=tls;srtp=off").srtp == "off"
