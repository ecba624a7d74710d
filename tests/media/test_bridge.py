"""The bridge between two RTP sessions: relay, frames with a tap, and transcoding.

Two plain UDP sockets play the phones: what one sends into its session must
come out of the other session towards the other socket.
"""

from __future__ import annotations

import asyncio
import socket

import numpy as np
import pytest

from media.bridge import Bridge
from media.clock import MediaClock
from media.g711 import alaw_decode, ulaw_encode
from media.ports import PortPool
from media.rtp import RtpPacket
from media.sdp import PCMA, PCMU, TELEPHONE_EVENT
from media.session import RtpSession
from media.taps import add_tap, remove_tap
from media.tones import dominant_frequency, sine

from .conftest import free_range


class Phone:
    """A UDP socket standing in for one side's phone."""

    def __init__(self) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.setblocking(False)
        self.address = self.sock.getsockname()

    def send(self, session: RtpSession, packet: RtpPacket) -> None:
        self.sock.sendto(packet.serialize(), ("127.0.0.1", session.port))

    def received(self) -> list[RtpPacket]:
        packets = []
        while True:
            try:
                packets.append(RtpPacket.parse(self.sock.recv(2048)))
            except BlockingIOError:
                return packets


@pytest.fixture
async def legs():
    clock = MediaClock()
    pool = PortPool(*free_range())
    phones = Phone(), Phone()
    a = await RtpSession.bind("127.0.0.1", pool, clock)
    b = await RtpSession.bind("127.0.0.1", pool, clock)
    yield a, b, phones, clock
    a.close()
    b.close()
    clock.close()
    for phone in phones:
        phone.sock.close()


def wire(a, b, phones, codec_a=PCMU, codec_b=PCMU):
    a.configure(codec_a, phones[0].address, dtmf=TELEPHONE_EVENT)
    b.configure(codec_b, phones[1].address, dtmf=TELEPHONE_EVENT)
    a.start()
    b.start()


async def test_relay_forwards_payloads_untouched_with_our_own_stream_identity(legs):
    a, b, phones, _ = legs
    wire(a, b, phones)
    bridge = Bridge(a, b)
    bridge.start()
    assert bridge.mode == "relay"
    assert a._tick_token is None and b._tick_token is None  # relaying needs no clock ticks
    payloads = [bytes([n]) * 160 for n in range(10)]
    for n, payload in enumerate(payloads):
        if n == 5:
            continue  # lost on the way in: the gap must show on the way out
        packet = RtpPacket(0, 1000 + n, 50_000 + 160 * n, 0xABCDEF, payload, csrc=[7])
        phones[0].send(a, packet)
    await asyncio.sleep(0.2)
    out = phones[1].received()
    assert [p.payload for p in out] == payloads[:5] + payloads[6:]
    assert {p.ssrc for p in out} == {b.ssrc} and all(p.csrc == [7] for p in out)
    assert out[0].marker and not any(p.marker for p in out[1:])
    sequences = [p.sequence for p in out]
    assert [(s - sequences[0]) & 0xFFFF for s in sequences] == [0, 1, 2, 3, 4, 6, 7, 8, 9]
    assert [(p.timestamp - out[0].timestamp) & 0xFFFFFFFF for p in out][5] == 6 * 160
    # DTMF events go across too, in the other side's payload type.
    event = RtpPacket(101, 2000, 90_000, 0x1234, bytes([5, 0x0A, 0, 160]), marker=True)
    digits = []
    bridge.on_dtmf = lambda side, digit: digits.append((side, digit))
    phones[1].send(b, event)
    phones[1].send(b, RtpPacket(101, 2001, 90_000, 0x1234, bytes([5, 0x8A, 1, 64])))
    await asyncio.sleep(0.2)
    back = phones[0].received()
    assert [p.payload_type for p in back] == [101, 101] and back[0].ssrc == a.ssrc
    assert digits == [(1, "5")]
    bridge.stop()
    assert "datagram_received" not in a.__dict__  # the short receive path is gone again
    assert a._tick_token is not None and b._tick_token is not None


async def test_a_tap_takes_the_frames_path_and_hears_both_sides(legs):
    a, b, phones, _ = legs
    wire(a, b, phones)
    heard: list[tuple[int, bytes]] = []
    bridge = Bridge(a, b, tap=lambda side, frame: heard.append((side, frame.payload)))
    bridge.start()
    assert bridge.mode == "frames"
    for n in range(8):
        phones[0].send(a, RtpPacket(0, n, 160 * n, 1, bytes([n + 1]) * 160))
        phones[1].send(b, RtpPacket(0, n, 160 * n, 2, bytes([n + 100]) * 160))
        await asyncio.sleep(0.02)
    await asyncio.sleep(0.2)
    assert {bytes([n + 1]) * 160 for n in range(4)} <= {p for s, p in heard if s == 0}
    assert {bytes([n + 100]) * 160 for n in range(4)} <= {p for s, p in heard if s == 1}
    got = [p.payload for p in phones[1].received()]
    assert got[:4] == [bytes([n + 1]) * 160 for n in range(4)]
    bridge.stop()


async def test_different_codecs_are_transcoded(legs):
    a, b, phones, _ = legs
    wire(a, b, phones, PCMU, PCMA)
    bridge = Bridge(a, b)
    bridge.start()
    assert bridge.mode == "transcode"
    tone = ulaw_encode(sine(500, 1.0, amplitude=0.4))
    for n in range(50):
        packet = RtpPacket(0, n, 160 * n, 9, tone[160 * n : 160 * (n + 1)])
        phones[0].send(a, packet)
        await asyncio.sleep(0.02)
    await asyncio.sleep(0.2)
    out = [p for p in phones[1].received() if p.payload_type == 8]
    assert len(out) >= 40
    audio = alaw_decode(b"".join(p.payload for p in out))
    assert dominant_frequency(audio) == pytest.approx(500, abs=10)
    assert np.abs(audio).max() > 8000
    bridge.stop()


async def test_a_leg_someone_listens_to_is_passed_as_frames_and_heard(legs):
    """A tap added to a relayed leg (a live recording) re-plans the bridge to frames,
    so the listener hears both ways; when it leaves, the bridge relays again."""
    a, b, phones, _ = legs
    wire(a, b, phones)
    bridge = Bridge(a, b)
    bridge.start()
    assert bridge.mode == "relay"
    heard: list[tuple[int, bytes]] = []

    def listener(side, frame):
        heard.append((side, frame.payload))

    add_tap(a, listener)
    assert bridge.mode == "frames"
    tone = ulaw_encode(sine(1000.0, 0.02, amplitude=0.3))
    for n in range(10):
        phones[0].send(a, RtpPacket(0, 3000 + n, 160 * n, 0x5151, tone))
        phones[1].send(b, RtpPacket(0, 4000 + n, 160 * n, 0x6161, bytes([0x7F]) * 160))
        await asyncio.sleep(0.02)
    await asyncio.sleep(0.2)
    assert any(side == 0 and payload == tone for side, payload in heard)  # a's phone said
    assert any(side == 1 and payload == bytes([0x7F]) * 160 for side, payload in heard)
    assert [p.payload for p in phones[1].received()].count(tone) >= 5  # still passed on
    remove_tap(a, listener)
    assert bridge.mode == "relay"


async def test_a_fork_keeps_the_relay_and_hears_both_sides_as_they_pass(legs):
    """An unpaced listener (a ``<Start><Stream>`` fork) on a relayed leg: the bridge
    stays a relay (payloads untouched, no ticks), and the listener gets each packet
    the leg's phone sent (side 0) and each packet relayed to it (side 1)."""
    a, b, phones, _ = legs
    wire(a, b, phones)
    bridge = Bridge(a, b)
    bridge.start()
    heard: list[tuple[int, bytes]] = []

    def fork(side, frame):
        heard.append((side, frame.payload))

    add_tap(a, fork, paced=False)
    assert bridge.mode == "relay"
    assert a._tick_token is None and b._tick_token is None
    said = [bytes([n + 1]) * 160 for n in range(6)]
    answered = [bytes([n + 100]) * 160 for n in range(6)]
    for n in range(6):
        phones[0].send(a, RtpPacket(0, 3000 + n, 160 * n, 0x5151, said[n]))
        # The far side's packets carry a CSRC: the listener gets the payload alone.
        phones[1].send(b, RtpPacket(0, 4000 + n, 160 * n, 0x6161, answered[n], csrc=[9]))
        await asyncio.sleep(0.005)
    await asyncio.sleep(0.2)
    assert [p for side, p in heard if side == 0] == said
    assert [p for side, p in heard if side == 1] == answered
    assert [p.payload for p in phones[1].received()] == said  # relayed untouched
    assert [p.payload for p in phones[0].received()] == answered
    # A recording joining the fork needs the tick: the bridge passes frames, both hear.
    recorded: list[int] = []
    recording = lambda side, frame: recorded.append(side)  # noqa: E731
    add_tap(a, recording)
    assert bridge.mode == "frames"
    remove_tap(a, recording)
    assert bridge.mode == "relay"
    remove_tap(a, fork)
    assert bridge.mode == "relay" and "datagram_received" in a.__dict__
    heard.clear()
    phones[0].send(a, RtpPacket(0, 3100, 160 * 100, 0x5151, said[0]))
    await asyncio.sleep(0.1)
    assert heard == [] and [p.payload for p in phones[1].received()] == [said[0]]
    bridge.stop()


async def test_nothing_is_heard_of_relayed_dtmf_or_while_the_leg_is_on_hold(legs):
    a, b, phones, _ = legs
    wire(a, b, phones)
    bridge = Bridge(a, b)
    bridge.start()
    heard: list[int] = []
    add_tap(a, lambda side, frame: heard.append(side), paced=False)
    phones[1].send(b, RtpPacket(101, 1, 0, 0x77, bytes([5, 0x0A, 0, 160]), marker=True))
    a.hold = True  # the caller put us on hold: nothing is sent to it, so nothing heard
    phones[1].send(b, RtpPacket(0, 2, 160, 0x77, b"\x01" * 160))
    await asyncio.sleep(0.1)
    assert heard == []
    bridge.stop()
