"""RFC 4733 on a WebRtcLeg against an independent aiortc peer standing in for a browser.

aiortc itself knows no telephone-event, so the peer's side is done by hand here: its
SDP gains the lines a browser writes, the packets it receives are read with struct
before aiortc drops them, and the events it sends are packets built in this module.
"""

from __future__ import annotations

import asyncio
import itertools
import re
import struct
from dataclasses import dataclass

import pytest
from aiortc.rtp import RtpPacket

from media.player import send_digits
from signaling.webrtc_leg import EVENT_LEAD_IN, WebRtcLeg
from tests.signaling.peer import Peer  # also keeps ICE on loopback
from tests.signaling.test_webrtc_leg import _looping, _until

KEYS = "0123456789*#ABCD"


def _browser_events(sdp: str, formats: dict[int, int]) -> str:
    """``sdp`` (aiortc's) as a browser writes it: telephone-event formats on its m-line."""
    lines = sdp.split("\r\n")
    at = next(i for i, line in enumerate(lines) if line.startswith("m=audio"))
    lines[at] += "".join(f" {pt}" for pt in formats)
    lines[at + 1 : at + 1] = [f"a=rtpmap:{pt} telephone-event/{r}" for pt, r in formats.items()]
    return "\r\n".join(lines)


@dataclass
class Received:
    payload_type: int
    marker: bool
    sequence: int
    timestamp: int
    ssrc: int
    payload: bytes
    arrival: float


def _capture(peer: Peer) -> list[Received]:
    """Every RTP packet the peer's DTLS transport decrypts, before aiortc routes it
    (its router drops payload types it did not negotiate, telephone-event among them)."""
    got: list[Received] = []
    loop = asyncio.get_running_loop()

    def install() -> None:
        transport = peer.transceiver.receiver.transport
        handle = transport._handle_rtp_data

        async def capture(data: bytes, arrival_time_ms: int) -> None:
            packet = RtpPacket.parse(data)
            got.append(
                Received(
                    packet.payload_type,
                    bool(packet.marker),
                    packet.sequence_number,
                    packet.timestamp,
                    packet.ssrc,
                    bytes(packet.payload),
                    loop.time(),
                )
            )
            await handle(data, arrival_time_ms)

        transport._handle_rtp_data = capture

    peer.install_capture = install
    return got


def _events(got: list[Received], payload_type: int) -> list[list[Received]]:
    """The telephone-event packets, one list per event (its RTP timestamp)."""
    events: dict[int, list[Received]] = {}
    for packet in got:
        if packet.payload_type == payload_type:
            events.setdefault(packet.timestamp, []).append(packet)
    return list(events.values())


@pytest.mark.parametrize(
    "prefer_pcmu, direct, event_type, clock",
    [(True, True, 126, 8000), (True, False, 126, 8000), (False, True, 110, 48000)],
)
async def test_digits_reach_the_browser_as_telephone_events(prefer_pcmu, direct, event_type, clock):
    leg = WebRtcLeg(direct_pcmu=direct, direct_opus=direct)
    peer = Peer(440.0)
    got = _capture(peer)
    try:
        offer = await leg.create_offer(prefer_pcmu=prefer_pcmu)
        offered = dict(re.findall(r"a=rtpmap:(\d+) telephone-event/(\d+)", offer))
        assert offered == {"126": "8000", "110": "48000"}
        answer = _browser_events(await peer.answer(offer), {126: 8000, 110: 48000})
        await leg.accept_answer(answer)
        peer.install_capture()
        leg.source = _looping(1000.0, leg.codec)
        audio_type = int(re.search(r"m=audio \d+ \S+ (\d+)", answer).group(1))
        await _until(lambda: sum(p.payload_type == audio_type for p in got) >= 25)
        await send_digits(leg, "1#")
        await _until(
            lambda: len(_events(got, event_type)) == 2 and got[-1].payload_type == audio_type,
            3,
        )
        await asyncio.sleep(0.2)  # audio again after the last event
        transport = leg._transceiver.sender.transport
        assert "_send_rtp" not in vars(transport)  # the transport is aiortc's own again
        frequency, level = peer.heard(0.15)
    finally:
        leg.close()
        await peer.close()
    ours = [p for p in got if p.payload_type in (audio_type, event_type)]
    assert len({p.ssrc for p in ours}) == 1  # one stream
    assert all((b.sequence - a.sequence) & 0xFFFF == 1 for a, b in itertools.pairwise(ours)), (
        "the events do not continue the audio's sequence numbers"
    )
    first, second = _events(got, event_type)
    step, total = clock // 50, clock // 10  # 20 ms packets of a 100 ms key press
    for event, key in ((first, "1"), (second, "#")):
        fields = [struct.unpack("!BBH", p.payload) for p in event]
        assert {f[0] for f in fields} == {KEYS.index(key)}
        assert [p.marker for p in event] == [True] + [False] * (len(event) - 1)
        assert [f[2] for f in fields] == [*range(step, total + 1, step), total, total]
        assert [bool(f[1] & 0x80) for f in fields] == [False] * 4 + [True] * 3
        assert {f[1] & 0x3F for f in fields} == {10}  # -10 dBm0
        span = event[-1].arrival - event[0].arrival
        assert 0.03 < span < 1.0, span  # paced by ticks (a late sender catches up at once)
        # The event's timestamp is the stream's: between the audio packets around it.
        index = ours.index(event[0])
        before = ours[index - 1]
        after = next(p for p in ours[index:] if p.payload_type == audio_type)
        assert before.payload_type == audio_type
        assert before.timestamp < event[0].timestamp < after.timestamp
    # The key presses are apart on the stream's clock, as send_digits spaces them
    # (100 ms each, 100 ms between: 200 ms from start to start).
    apart = ((second[0].timestamp - first[0].timestamp) & 0xFFFFFFFF) / clock
    assert 0.15 < apart < 1.0, apart
    assert abs(frequency - 1000) < 30 and level > -30, (frequency, level)


def _event_packets(
    key: str, payload_type: int, ssrc: int, sequence: int, timestamp: int, step: int
) -> list[bytes]:
    """A key press of 5 packets as a browser sends it (RFC 4733 §2.5.1), the end thrice."""
    packets = []
    for n in range(7):
        duration = min(n + 1, 5) * step
        end = 0x80 if n >= 4 else 0
        header = struct.pack(
            "!BBHII", 0x80, (0x80 if n == 0 else 0) | payload_type, sequence + n, timestamp, ssrc
        )
        packets.append(header + struct.pack("!BBH", KEYS.index(key), end | 10, duration))
    return packets


@pytest.mark.parametrize(
    "prefer_pcmu, direct, event_type, step",
    [(True, True, 126, 160), (True, False, 126, 160), (False, True, 110, 960)],
)
async def test_the_browsers_telephone_events_become_the_legs_digits(
    prefer_pcmu, direct, event_type, step
):
    leg = WebRtcLeg(direct_pcmu=direct, direct_opus=direct)
    peer = Peer(440.0, codecs=None if prefer_pcmu else ("audio/opus",))
    digits: list[str] = []
    frames: list[bytes] = []
    leg.on_dtmf = digits.append
    leg.on_frame = lambda frame: frames.append(frame.payload)
    try:
        offer = _browser_events(await peer.offer(), {110: 48000, 126: 8000})
        answer = await leg.answer_offer(offer, prefer_pcmu=prefer_pcmu)
        # Our answer names the offer's formats, so a browser's RTCDTMFSender may send.
        assert "a=rtpmap:126 telephone-event/8000" in answer
        assert "a=rtpmap:110 telephone-event/48000" in answer
        await peer.accept(answer)
        await _until(lambda: len(frames) >= 25)
        # A stream of its own (SRTP refuses to reuse the audio's sequence numbers here);
        # the end packets repeat, so each digit must be reported once only.
        transport = peer.transceiver.sender.transport
        for n, key in enumerate("7*7"):
            packets = _event_packets(
                key, event_type, 0x5EED, 1000 + 10 * n, 50_000 + n * 10 * step, step
            )
            for packet in packets:
                await transport._send_rtp(packet)
                await asyncio.sleep(0.02)
        await _until(lambda: len(digits) >= 3)
        await asyncio.sleep(0.2)
        received = len(frames)
        await _until(lambda: len(frames) > received + 10)  # audio goes on
    finally:
        leg.close()
        await peer.close()
    assert digits == ["7", "*", "7"]


async def test_without_telephone_event_in_the_answer_send_dtmf_refuses():
    leg = WebRtcLeg()
    peer = Peer(440.0)
    try:
        await leg.accept_answer(await peer.answer(await leg.create_offer()))
        assert leg.event_formats == []
        with pytest.raises(ValueError, match="telephone-event"):
            leg.send_dtmf("1")
    finally:
        leg.close()
        await peer.close()


async def test_a_digit_sent_at_once_waits_for_the_streams_first_audio():
    # A browser times its playout from the first audio; an event before it is dropped.
    leg = WebRtcLeg()
    peer = Peer(440.0)
    got = _capture(peer)
    try:
        offer = await leg.create_offer()
        await leg.accept_answer(_browser_events(await peer.answer(offer), {126: 8000}))
        peer.install_capture()
        leg.send_dtmf("3")  # before ICE and DTLS are even done
        await _until(lambda: any(p.payload_type == 126 and p.payload[1] & 0x80 for p in got))
    finally:
        leg.close()
        await peer.close()
    ours = [p for p in got if p.payload_type in (0, 126)]
    first_event = next(i for i, p in enumerate(ours) if p.payload_type == 126)
    assert first_event >= 15 == EVENT_LEAD_IN, first_event  # 300 ms of audio first
    assert ours[first_event].payload[0] == 3
