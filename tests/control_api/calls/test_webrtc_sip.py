"""Dialogs of browser phones (SIP over WebSocket): a WebRTC offer in an INVITE is
answered by an aiortc leg, with audio both ways against an independent aiortc peer;
an RTP offer still gets an RTP session."""

from __future__ import annotations

import asyncio
import re

from control_api.calls.call import Call, MediaSettings
from control_api.calls.webrtc_sip import MidCallOffers, is_webrtc_offer
from media.g711 import ulaw_encode
from media.sdp import SessionDescription
from media.session import RtpSession
from media.tones import sine
from signaling.webrtc_leg import WebRtcLeg
from tests.control_api.calls.test_call import FakeInviteSession, media
from tests.control_api.calls.test_media_update import offer
from tests.signaling.peer import Peer  # also keeps ICE on loopback


def webrtc_media() -> MediaSettings:
    settings = media()
    settings.webrtc = lambda: WebRtcLeg(clock=settings.clock)
    return settings


async def _until(condition, timeout: float = 30.0) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not condition():
        assert loop.time() < deadline, "timed out"
        await asyncio.sleep(0.05)


async def test_a_webrtc_offer_is_told_from_an_rtp_one():
    peer = Peer(440.0)
    try:
        browser = (await peer.offer()).encode()
    finally:
        await peer.close()
    assert is_webrtc_offer(SessionDescription.parse(browser), browser)
    rtp = offer(port=6000, address="198.51.100.9")
    assert not is_webrtc_offer(SessionDescription.parse(rtp), rtp)


async def test_a_browser_phones_invite_is_answered_by_a_webrtc_leg_with_audio_both_ways():
    peer = Peer(440.0)
    settings = webrtc_media()
    session = FakeInviteSession((await peer.offer()).encode())
    call = Call(session, settings)
    answered = []
    call.on_answered.append(answered.append)
    heard: list[bytes] = []
    try:
        assert await call.answer()
        leg = call.leg
        assert isinstance(leg, WebRtcLeg) and answered == [call]
        answer = session.local_sdp.decode()
        assert "a=fingerprint:" in answer and "a=candidate:" in answer  # no trickle
        leg.on_frame = lambda frame: heard.append(frame.payload)
        tone = ulaw_encode(sine(1000.0, 0.02, 8000, 0.3))
        leg.source = lambda: tone
        await peer.accept(answer)
        await _until(lambda: len(heard) >= 50 and len(peer.received) >= 50)
        frequency, _ = peer.heard(0.5)
        assert abs(frequency - 1000) < 20
    finally:
        call.leg.close()
        await peer.close()
        settings.clock.close()


async def test_an_rtp_offer_still_gets_an_rtp_session():
    settings = webrtc_media()
    session = FakeInviteSession(offer(port=6000, address="198.51.100.9"))
    call = Call(session, settings)
    assert await call.answer()
    assert isinstance(call.leg, RtpSession)
    call.leg.close()
    settings.clock.close()


async def _exchange() -> tuple[bytes, bytes, bytes]:
    """A browser's offer, our leg's answer, and our leg's own offer (aiortc both sides)."""
    peer = Peer(440.0)
    ours, offering = WebRtcLeg(), WebRtcLeg()
    try:
        browser = (await peer.offer()).encode()
        answer = (await ours.answer_offer(browser.decode())).encode()
        offer = (await offering.create_offer()).encode()
    finally:
        ours.close()
        offering.close()
        await peer.close()
    return browser, answer, offer


async def test_a_hold_offer_is_answered_with_the_mirrored_direction_and_a_new_version():
    browser, answer, _ = await _exchange()
    offers = MidCallOffers(answer, browser)
    version = SessionDescription.parse(answer).session_version
    held = offers.answer(browser.replace(b"a=sendrecv", b"a=sendonly"))
    assert held is not None and b"a=recvonly" in held and b"a=sendrecv" not in held
    assert SessionDescription.parse(held).session_version == version + 1
    # The transport is the one set up: same credentials, fingerprint and candidates.
    for line in answer.splitlines():
        if line.startswith((b"a=ice-ufrag", b"a=fingerprint", b"a=candidate", b"a=setup")):
            assert line in held.splitlines()
    resumed = offers.answer(browser)
    assert b"a=sendrecv" in resumed
    assert SessionDescription.parse(resumed).session_version == version + 2
    assert offers.answer(browser) == resumed  # the same offer again: the same answer


async def test_an_ice_restart_is_refused_and_our_offer_answers_with_the_role_we_took():
    browser, answer, offer = await _exchange()
    restart = re.sub(rb"a=ice-ufrag:\S+", b"a=ice-ufrag:n3wUfrag", browser)
    assert MidCallOffers(answer, browser).answer(restart) is None  # 488
    # We offered (actpass) and the phone answered active: our answers say passive.
    phone_answer = re.sub(rb"a=setup:\w+", b"a=setup:active", browser)
    reoffer = re.sub(rb"a=setup:\w+", b"a=setup:actpass", browser)
    ours = MidCallOffers(offer, phone_answer).answer(reoffer)
    assert ours is not None and b"a=setup:passive" in ours and b"a=setup:actpass" not in ours
