"""WebRtcLeg against an independent aiortc peer: ICE, DTLS-SRTP and audio both ways."""

from __future__ import annotations

import asyncio
import itertools
import re

import numpy as np
import pytest

from media import codecs
from media.clock import MediaClock
from media.g711 import ulaw_decode, ulaw_encode
from media.tones import dominant_frequency, sine
from signaling.webrtc_leg import SdpRejected, WebRtcLeg, negotiated_codec
from tests.signaling.peer import Peer  # also keeps ICE on loopback


def _looping(frequency: float, codec: str = "PCMU"):
    """A leg's ``source``: a looped tone in the leg's codec."""
    if codec == "PCMU":
        samples = sine(frequency, 1.0, 8000, 0.3)
        frames = [ulaw_encode(samples[i : i + 160]) for i in range(0, 8000, 160)]
    else:
        encode = codecs.encoder(codec)
        samples = sine(frequency, 1.0, encode.sample_rate, 0.3)
        size = encode.frame_samples
        frames = [encode.encode(samples[i : i + size]) for i in range(0, len(samples), size)]
    index = 0

    def source() -> bytes:
        nonlocal index
        index = (index + 1) % len(frames)
        return frames[index]

    return source


async def _until(condition, timeout: float = 60.0) -> None:
    """Wait for ``condition``; the bound is for a hung test, not a timing claim (ICE
    and DTLS take seconds when the machine is loaded)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not condition():
        assert loop.time() < deadline, "timed out"
        await asyncio.sleep(0.05)


def _decoded(payloads: list[bytes], codec: str) -> tuple[np.ndarray, int]:
    if codec == "PCMU":
        return ulaw_decode(b"".join(payloads)), 8000
    decoder = codecs.decoder(codec)
    return np.concatenate([decoder.decode(p) for p in payloads]), decoder.sample_rate


@pytest.mark.parametrize(
    "prefer_pcmu, direct, codec",
    [(True, True, "PCMU"), (True, False, "PCMU"), (False, True, "OPUS"), (False, False, "OPUS")],
)
async def test_our_offer_carries_audio_both_ways(prefer_pcmu, direct, codec):
    leg = WebRtcLeg(direct_pcmu=direct, direct_opus=direct)
    peer = Peer(440.0)
    heard: list[bytes] = []
    leg.on_frame = lambda frame: heard.append(frame.payload)
    try:
        offer = await leg.create_offer(prefer_pcmu=prefer_pcmu)
        assert "a=fingerprint:" in offer and "a=ice-ufrag:" in offer  # DTLS-SRTP and ICE
        candidates = re.findall(r"a=candidate:\S+ \d+ \S+ \d+ (\S+) ", offer)
        assert candidates and set(candidates) == {"127.0.0.1"}, candidates
        await leg.accept_answer(await peer.answer(offer))
        assert leg.browser_codec == codec
        # Untouched, the leg speaks the browser's codec; decoded, PCMU.
        assert leg.codec == (codec if direct else "PCMU")
        leg.source = _looping(1000.0, leg.codec)
        await _until(lambda: len(heard) >= 75 and len(peer.received) >= 75)
        # Payloads pass untouched: aiortc's decoder thread is gone, its sender gets packets.
        assert leg._track.direct is direct
        decoder = leg._transceiver.receiver._RTCRtpReceiver__decoder_thread
        assert (decoder is None) is direct
        await asyncio.sleep(0.5)
        frequency, level = peer.heard(0.5)
        assert abs(frequency - 1000) < 20 and level > -30, (frequency, level)
        ours, rate = _decoded(heard[-25:], leg.codec)
        assert abs(dominant_frequency(ours, rate) - 440) < 20
    finally:
        leg.close()
        await peer.close()


@pytest.mark.parametrize("paced_by_clock", [False, True])
async def test_the_browsers_offer_is_answered_with_pcmu_when_preferred(paced_by_clock):
    clock = MediaClock() if paced_by_clock else None
    leg = WebRtcLeg(clock=clock)
    peer = Peer(440.0)
    heard: list[bytes] = []
    leg.on_frame = lambda frame: heard.append(frame.payload)
    leg.source = _looping(1000.0)
    try:
        answer = await leg.answer_offer(await peer.offer(), prefer_pcmu=True)
        assert negotiated_codec(answer) == "PCMU"
        await peer.accept(answer)
        await _until(lambda: len(heard) >= 50 and len(peer.received) >= 50)
        sent, started = leg.frames_sent, asyncio.get_running_loop().time()
        await asyncio.sleep(2.0)
        rate = (leg.frames_sent - sent) / (asyncio.get_running_loop().time() - started)
        assert 42 <= rate <= 58, rate  # 50 frames a second, by the clock or by sleeping
        # Our receiver reports still describe what arrived, payloads untouched or not.
        reports = []
        for _ in range(40):
            stats = await peer.pc.getStats()
            reports = [r for r in stats.values() if r.type == "remote-inbound-rtp"]
            if reports and reports[0].packetsLost is not None:
                break
            await asyncio.sleep(0.1)
        assert reports and reports[0].packetsLost == 0, reports
        frequency, _ = peer.heard(0.5)
        assert abs(frequency - 1000) < 20
        assert abs(dominant_frequency(ulaw_decode(b"".join(heard[-25:])), 8000) - 440) < 20
    finally:
        leg.close()
        await peer.close()
        if clock is not None:
            clock.close()


async def test_a_leg_made_after_another_on_the_clock_closed_still_sends():
    """Closing a leg cancels its track's wait for the clock's next tick; the next leg on
    the same clock must not be handed that cancelled wait (it sent one frame, then none)."""
    clock = MediaClock()
    try:
        for _ in range(2):
            leg = WebRtcLeg(clock=clock)
            peer = Peer(440.0)
            leg.source = _looping(1000.0)
            try:
                await peer.accept(await leg.answer_offer(await peer.offer()))
                await _until(lambda: leg.frames_sent >= 25)  # noqa: B023
            finally:
                leg.close()
                await peer.close()
            await asyncio.sleep(0.1)  # the closed leg's track is cancelled meanwhile
    finally:
        clock.close()


async def test_sdp_without_a_common_codec_is_rejected():
    leg = WebRtcLeg()
    peer = Peer(440.0, codecs=("audio/PCMA",))
    try:
        with pytest.raises(SdpRejected):
            await leg.answer_offer(await peer.offer())
        with pytest.raises(SdpRejected):
            await WebRtcLeg().answer_offer("v=0\r\nnonsense")
    finally:
        leg.close()
        await peer.close()


async def test_closing_the_peer_closes_the_leg():
    leg = WebRtcLeg()
    peer = Peer(440.0)
    closed = asyncio.Event()
    leg.on_close = closed.set
    leg.on_frame = lambda frame: None
    await leg.accept_answer(await peer.answer(await leg.create_offer()))
    await _until(lambda: leg.pc.connectionState == "connected")
    await peer.close()
    # aiortc notices through the DTLS close_notify, or ICE consent (30 s) if that is
    # lost; the bound is for a hung test, and a loaded machine stretches consent's timers.
    await asyncio.wait_for(closed.wait(), 90)
    assert leg.closed and np is not None


async def test_with_a_clock_what_arrives_in_a_burst_goes_on_one_frame_per_tick():
    clock = MediaClock()
    leg = WebRtcLeg(clock=clock)
    ticks = [0]  # the clock's ticks so far: a busy machine may run two back to back
    clock.subscribe(lambda: ticks.__setitem__(0, ticks[0] + 1))
    got: list[tuple[int, bytes]] = []
    leg.on_frame = lambda frame: got.append((ticks[0], frame.payload))
    try:
        for n in range(10):  # a stall's worth of frames at once
            leg._deliver(bytes([n]) * 160)
        await _until(lambda: len(got) >= 8 and ticks[0] > got[-1][0] + 2)
        # Only the newest INBOUND_MAX are kept, so a stall adds at most 160 ms.
        assert [payload[0] for _, payload in got] == [2, 3, 4, 5, 6, 7, 8, 9]
        assert leg.frames_dropped == 2 and leg.frames_received == 10
        steps = [b - a for (a, _), (b, _) in itertools.pairwise(got)]
        assert steps == [1] * 7, steps  # one frame per tick
    finally:
        leg.close()
        clock.close()


async def test_a_standing_backlog_is_given_back_a_frame_a_second():
    clock = MediaClock()
    leg = WebRtcLeg(clock=clock)
    leg.on_frame = lambda frame: None
    try:
        # Run by hand (no await, so the clock cannot tick meanwhile): 5 frames of
        # backlog, then one in and one out per tick for three seconds.
        for n in range(5):
            leg._deliver(bytes([n]) * 160)
        for _ in range(150):
            leg._deliver(b"\xff" * 160)
            leg._inbound_tick()
        assert len(leg._inbound) == 2 and leg.frames_dropped == 3
    finally:
        leg.close()
        clock.close()
