"""SDES keys in mid-call offers (RFC 4568 §7.1.4): taken up both ways, ours kept or renewed
consistently, no downgrade, and the audio goes on across a key change."""

from __future__ import annotations

import asyncio
import socket

import pytest

from control_api.calls.call import SUPPORTED_CODECS
from control_api.calls.media_update import attach_media_updates
from media.clock import MediaClock
from media.g711 import ulaw_decode, ulaw_encode
from media.ports import PortPool
from media.rtp import RtpPacket
from media.sdp import PCMU, SessionDescription, build_offer, negotiate_answer
from media.session import RtpSession
from media.srtp import CryptoAttribute, SdesAnswerer, SdesOffer, SrtpContext
from media.tones import ToneGenerator, dominant_frequency
from tests.media.conftest import free_range

SHA80, SHA32 = "AES_CM_128_HMAC_SHA1_80", "AES_CM_128_HMAC_SHA1_32"


class FakeSession:
    def __init__(self, local_sdp: bytes) -> None:
        self.local_sdp = local_sdp
        self.on_offer = self.on_answer = None


def description(
    crypto: list[CryptoAttribute],
    protocol: str = "RTP/SAVP",
    port: int = 6000,
    direction: str = "sendrecv",
    version: int = 1,
) -> bytes:
    lines = [
        "v=0",
        f"o=- 1 {version} IN IP4 127.0.0.1",
        "s=-",
        "c=IN IP4 127.0.0.1",
        "t=0 0",
        f"m=audio {port} {protocol} 0 101",
        "a=rtpmap:101 telephone-event/8000",
        *[f"a=crypto:{c.serialize()}" for c in crypto],
        f"a={direction}",
        "",
    ]
    return "\r\n".join(lines).encode()


def inbound_srtp_call(leg: RtpSession, peer_key: CryptoAttribute) -> FakeSession:
    """An inbound call answered with SRTP, as Call._answer_offer does, with updates on."""
    first = SessionDescription.parse(description([peer_key]))
    sdes = SdesAnswerer()
    answer, codec, dtmf = negotiate_answer(
        first, SUPPORTED_CODECS, "127.0.0.1", leg.port, leg.ssrc, crypto_answer=sdes
    )
    leg.use_srtp(sdes.context())
    leg.configure(codec, ("127.0.0.1", 6000), dtmf=dtmf)
    session = FakeSession(answer.serialize())
    attach_media_updates(session, leg, "127.0.0.1", SUPPORTED_CODECS)
    return session


def crypto_of(body: bytes) -> list[CryptoAttribute]:
    sdp = SessionDescription.parse(body)
    return [CryptoAttribute.parse(line) for line in sdp.media[0].crypto]


def packet(sequence: int) -> bytes:
    return RtpPacket(0, sequence, sequence * 160, 0xABCD, b"\xd5" * 160).serialize()


def test_a_re_offer_with_a_new_peer_key_is_taken_up_and_our_key_kept():
    leg = RtpSession(clock=None, pool=None, port=20000)
    old = CryptoAttribute.generate(1, SHA80)
    session = inbound_srtp_call(leg, old)
    [ours] = crypto_of(session.local_sdp)
    context = leg.srtp
    new = CryptoAttribute.generate(3, SHA80)
    answer = session.on_offer(description([new], version=2))
    [answered] = crypto_of(answer)
    assert (answered.tag, answered.suite, answered.key) == (3, SHA80, ours.key)
    assert leg.srtp is context and context.theirs == new
    assert context.unprotect(SrtpContext(new, ours).protect(packet(5))) == packet(5)
    # Our direction goes on under the same key: the peer needs no change.
    assert SrtpContext(old, ours).unprotect(context.protect(packet(6))) == packet(6)


def test_a_re_offer_of_another_suite_gets_a_fresh_key_of_ours():
    leg = RtpSession(clock=None, pool=None, port=20000)
    session = inbound_srtp_call(leg, CryptoAttribute.generate(1, SHA80))
    [before] = crypto_of(session.local_sdp)
    new = CryptoAttribute.generate(1, SHA32)
    [answered] = crypto_of(session.on_offer(description([new], version=2)))
    assert answered.suite == SHA32 and answered.key != before.key
    assert leg.srtp.ours == answered and leg.srtp.theirs == new
    assert SrtpContext(new, answered).unprotect(leg.srtp.protect(packet(1))) == packet(1)


def test_the_same_re_offer_changes_no_key_and_no_version():
    leg = RtpSession(clock=None, pool=None, port=20000)
    key = CryptoAttribute.generate(1, SHA80)
    session = inbound_srtp_call(leg, key)
    first = session.local_sdp
    for direction in ("sendonly", "sendrecv"):  # hold and resume keep the keys
        answer = session.on_offer(description([key], direction=direction, version=2))
        assert crypto_of(answer) == crypto_of(first)
    assert leg.srtp.theirs == key and not leg.hold
    assert SessionDescription.parse(answer).session_version == (
        SessionDescription.parse(first).session_version + 2
    )


def test_a_secure_call_is_not_downgraded_by_a_plain_re_offer():
    leg = RtpSession(clock=None, pool=None, port=20000)
    key = CryptoAttribute.generate(1, SHA80)
    session = inbound_srtp_call(leg, key)
    context = leg.srtp
    assert session.on_offer(description([], protocol="RTP/AVP", version=2)) is None
    assert session.on_offer(description([], protocol="RTP/SAVP", version=2)) is None
    assert leg.srtp is context and context.theirs == key


def test_a_plain_call_turns_srtp_on_when_the_peer_offers_keys():
    leg = RtpSession(clock=None, pool=None, port=20000)
    first = SessionDescription.parse(description([], protocol="RTP/AVP"))
    answer, codec, dtmf = negotiate_answer(first, SUPPORTED_CODECS, "127.0.0.1", 20000, 1)
    leg.configure(codec, ("127.0.0.1", 6000), dtmf=dtmf)
    session = FakeSession(answer.serialize())
    attach_media_updates(session, leg, "127.0.0.1", SUPPORTED_CODECS)
    key = CryptoAttribute.generate(1, SHA80)
    [answered] = crypto_of(session.on_offer(description([key], version=2)))
    assert leg.srtp is not None and leg.srtp.theirs == key and leg.srtp.ours == answered


def placed_srtp_call(leg: RtpSession) -> tuple[FakeSession, SdesOffer, CryptoAttribute]:
    """A call we placed with two offered keys; the peer picked the second."""
    sdes = SdesOffer(mandatory=True)
    offer = build_offer(
        "127.0.0.1", leg.port, SUPPORTED_CODECS, 77, protocol=sdes.protocol, crypto=sdes.lines
    )
    theirs = CryptoAttribute.generate(2, SHA32)
    leg.use_srtp(sdes.context("RTP/SAVP", [theirs.serialize()]))
    leg.configure(PCMU, ("127.0.0.1", 6000))
    session = FakeSession(offer.serialize())
    attach_media_updates(session, leg, "127.0.0.1", SUPPORTED_CODECS)
    return session, sdes, theirs


def test_our_re_offers_repeat_only_the_key_in_use():
    leg = RtpSession(clock=None, pool=None, port=20000)
    session, sdes, _ = placed_srtp_call(leg)
    running = SessionDescription.parse(session.local_sdp)
    assert running.media[0].protocol == "RTP/SAVP"
    assert crypto_of(session.local_sdp) == [sdes.offered[1]]  # tag 2, the one answered
    assert running.session_version == 78  # it differs from the first offer (version 77)


def test_the_peers_new_key_in_its_answer_to_our_re_offer_is_taken_up():
    leg = RtpSession(clock=None, pool=None, port=20000)
    session, sdes, _ = placed_srtp_call(leg)
    renewed = CryptoAttribute.generate(2, SHA32)
    session.on_answer(description([renewed]))  # e.g. the 200 to a session refresh
    assert leg.srtp.theirs == renewed and leg.srtp.ours == sdes.offered[1]
    ours = sdes.offered[1]
    assert leg.srtp.unprotect(SrtpContext(renewed, ours).protect(packet(9))) == packet(9)
    # An answer naming a tag we did not offer (now) leaves the keys as they are.
    session.on_answer(description([CryptoAttribute.generate(1, SHA80)]))
    assert leg.srtp.theirs == renewed


def test_a_plain_answer_to_a_best_effort_offer_drops_the_keys_from_our_re_offers():
    leg = RtpSession(clock=None, pool=None, port=20000)
    sdes = SdesOffer(mandatory=False)
    offer = build_offer(
        "127.0.0.1", leg.port, SUPPORTED_CODECS, 5, protocol=sdes.protocol, crypto=sdes.lines
    )
    assert sdes.context("RTP/AVP", []) is None
    leg.configure(PCMU, ("127.0.0.1", 6000))
    session = FakeSession(offer.serialize())
    attach_media_updates(session, leg, "127.0.0.1", SUPPORTED_CODECS)
    running = SessionDescription.parse(session.local_sdp)
    assert (running.media[0].protocol, running.media[0].crypto) == ("RTP/AVP", [])


@pytest.fixture
async def bound_leg():
    clock = MediaClock()
    leg = await RtpSession.bind("127.0.0.1", PortPool(*free_range()), clock)
    peer = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    peer.bind(("127.0.0.1", 0))
    peer.setblocking(False)
    yield leg, peer
    leg.close()
    peer.close()
    clock.close()


async def test_audio_goes_on_across_a_key_change(bound_leg):
    """A fake peer sends a 1 kHz tone under one key, re-offers a new key and goes on under
    it (a few packets under the old one still in flight): every packet is heard."""
    leg, peer = bound_leg
    old = CryptoAttribute.generate(1, SHA80)
    leg.deliver_on_arrival(True)
    heard: list[bytes] = []
    leg.on_frame = lambda frame: heard.append(frame.payload)
    first = SessionDescription.parse(description([old], port=peer.getsockname()[1]))
    sdes = SdesAnswerer()
    answer, codec, dtmf = negotiate_answer(
        first, SUPPORTED_CODECS, "127.0.0.1", leg.port, leg.ssrc, crypto_answer=sdes
    )
    leg.use_srtp(sdes.context())
    leg.configure(codec, peer.getsockname(), dtmf=dtmf)
    session = FakeSession(answer.serialize())
    attach_media_updates(session, leg, "127.0.0.1", SUPPORTED_CODECS)
    [ours] = crypto_of(session.local_sdp)
    tone = ToneGenerator(1000, amplitude=0.3)
    sending = SrtpContext(old, ours)
    new = CryptoAttribute.generate(1, SHA80)
    for sequence in range(150):
        if sequence == 50:
            session.on_offer(description([new], port=peer.getsockname()[1], version=2))
        if sequence == 53:  # the peer moves to its new key a little after its offer
            sending = SrtpContext(new, ours)
        payload = ulaw_encode(tone.next_frame(160))
        rtp = RtpPacket(0, sequence, sequence * 160, 0x5151, payload).serialize()
        peer.sendto(sending.protect(rtp), ("127.0.0.1", leg.port))
        if sequence % 10 == 9:
            await asyncio.sleep(0.005)
    for _ in range(200):
        if len(heard) == 150:
            break
        await asyncio.sleep(0.01)
    assert len(heard) == 150 and leg.bad_packets == 0
    after = ulaw_decode(b"".join(heard[60:]))
    assert abs(dominant_frequency(after, 8000) - 1000) < 5
