"""RTP sessions on loopback sockets: audio, DTMF and RTCP between two of them."""

from __future__ import annotations

import asyncio
import itertools
import socket

import numpy as np
import pytest

from media.clock import MediaClock
from media.g711 import ulaw_decode, ulaw_encode
from media.ports import PortPool, PortsExhausted
from media.rtp import RtpPacket
from media.session import RtpSession
from media.tones import ToneGenerator, dominant_frequency, level_dbfs
from tests.media.conftest import free_range


async def test_tone_sent_by_one_session_arrives_at_the_other(pair):
    a, b = pair
    tone = ToneGenerator(700, amplitude=0.4)
    a.source = lambda: ulaw_encode(tone.next_frame(160))
    frames = []
    b.on_frame = frames.append
    await asyncio.sleep(1.0)
    assert 40 <= len(frames) <= 52  # 50 per second, less the jitter buffer's fill
    assert all(f.codec == "PCMU" and f.samples == 160 for f in frames)
    samples = ulaw_decode(b"".join(f.payload for f in frames))
    assert dominant_frequency(samples) == pytest.approx(700, abs=5)
    assert level_dbfs(samples) == pytest.approx(20 * np.log10(0.4 / np.sqrt(2)), abs=1.0)
    timestamps = [f.timestamp for f in frames]
    assert all(t2 - t1 == 160 for t1, t2 in itertools.pairwise(timestamps))


async def test_dtmf_sent_as_rfc4733_arrives_once_per_digit(pair):
    a, b = pair
    digits = []
    b.on_dtmf = digits.append
    for digit in "1#":
        a.send_dtmf(digit, duration_ms=80)
    await asyncio.sleep(0.6)
    assert digits == ["1", "#"]


async def test_echo_wiring_returns_what_was_sent(pair):
    a, b = pair
    b.on_frame = b.send_frame  # b is an echo
    payloads = [bytes([i]) * 160 for i in range(1, 21)]
    for p in payloads:
        a.send_payload(p)
    back = []
    a.on_frame = lambda f: back.append(f.payload)
    await asyncio.sleep(1.0)
    assert back == payloads


async def test_sender_reports_reach_the_peer(pair):
    a, b = pair
    a.source = lambda: b"\xff" * 160
    await asyncio.sleep(0.2)
    a._send_rtcp()
    await asyncio.sleep(0.1)
    assert b._lsr != 0  # b took the SR's NTP time for its next LSR
    b._send_rtcp()
    await asyncio.sleep(0.1)
    assert a.remote_report is not None and a.remote_report.ssrc == a.ssrc
    assert a.remote_report.highest_sequence > 0


async def test_packets_from_a_stranger_are_ignored(pair):
    a, b = pair
    frames = []
    b.on_frame = frames.append
    stranger = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    stranger.bind(("127.0.0.2", 0))
    try:
        for seq in range(10):
            packet = RtpPacket(0, seq, seq * 160, 1234, b"\x00" * 160).serialize()
            stranger.sendto(packet, ("127.0.0.1", b.port))
        await asyncio.sleep(0.3)
    finally:
        stranger.close()
    assert frames == [] and b.remote == ("127.0.0.1", a.port)


async def test_garbage_is_counted_not_fatal(pair):
    a, b = pair
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        for junk in (b"", b"\x80", b"\x00" * 20, b"\x9f\x00" + b"\x00" * 10, b"\x80\xc8\x00\x09"):
            sock.sendto(junk, ("127.0.0.1", b.port))
            sock.sendto(junk, ("127.0.0.1", b.port + 1))
        await asyncio.sleep(0.1)
    finally:
        sock.close()
    assert b.bad_packets >= 3
    a.source = lambda: b"\xff" * 160
    got = []
    b.on_frame = got.append
    await asyncio.sleep(0.2)
    assert got  # still receiving


async def test_on_arrival_frames_come_as_packets_arrive_and_late_ones_are_dropped(pair):
    _, b = pair
    b.deliver_on_arrival(True)
    frames, tapped = [], []
    b.on_frame = frames.append
    b.tap = lambda side, frame: tapped.append((side, frame.timestamp))
    sender = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sender.bind(("127.0.0.1", 0))
    b.remote = ("127.0.0.1", sender.getsockname()[1])
    try:
        # 1, 2, 4, then 3 (late: after 4), 4 again (a duplicate), 5; then a sender that
        # restarted its clock 3 s back (a new timeline, not a late packet)
        order = [1, 2, 4, 3, 4, 5, 9000]
        restart = (800 - 3 * 8000) & 0xFFFFFFFF
        stamps = {n: (n * 160 if n < 9000 else restart) for n in order}
        for seq in order:
            packet = RtpPacket(0, seq, stamps[seq], 1234, bytes([seq % 256]) * 160)
            sender.sendto(packet.serialize(), ("127.0.0.1", b.port))
        for _ in range(50):
            if len(frames) >= 5:
                break
            await asyncio.sleep(0.01)
    finally:
        sender.close()
    assert [f.timestamp for f in frames] == [160, 320, 640, 800, restart]
    assert b.late_packets == 2
    assert [t for side, t in tapped if side == 0] == [160, 320, 640, 800, restart]
    b.deliver_on_arrival(False)  # back to the jitter buffer on the tick
    assert len(b._jitter) == 0


def test_port_pool_hands_out_even_ports_least_recently_used_first():
    pool = PortPool(10001, 10008)
    assert [pool.acquire() for _ in range(3)] == [10002, 10004, 10006]
    with pytest.raises(PortsExhausted):
        pool.acquire()
    pool.release(10002)
    assert pool.acquire() == 10002 and pool.in_use == 3


async def test_media_clock_ticks_every_20_ms_without_drift():
    """Each tick is due at start + n x 20 ms (a late tick does not push the next ones
    back) and none runs before it is due; how late they run is the machine's business."""
    clock = MediaClock()
    loop = asyncio.get_running_loop()
    ran: list[tuple[float, float]] = []  # (when it ran, when it was due)
    enough = asyncio.Event()

    def tick() -> None:
        ran.append((loop.time(), clock._next))
        if len(ran) >= 25:
            enough.set()

    clock.subscribe(tick)
    try:
        await asyncio.wait_for(enough.wait(), 60)
    finally:
        clock.close()
    due = [d for _, d in ran]
    periods = [(d - due[0]) / 0.020 for d in due]
    assert all(abs(p - round(p)) < 1e-6 for p in periods)  # on the grid, never shifted
    assert round(periods[-1]) == len(due) - 1 + clock.skipped
    assert all(when >= at - 0.001 for when, at in ran)


async def test_bind_skips_a_pair_another_program_holds():
    clock = MediaClock()
    start, end = free_range()
    pool = PortPool(start, end)
    first = start + (start & 1)
    squatter = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    squatter.bind(("127.0.0.1", first + 1))  # the first pair's RTCP port is taken
    try:
        session = await RtpSession.bind("127.0.0.1", pool, clock)
        try:
            assert session.port == first + 2
            assert first not in pool._used  # the failed pair went back to the pool
        finally:
            session.close()
        assert pool.in_use == 0
    finally:
        squatter.close()
        clock.close()
