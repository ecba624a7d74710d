"""No media before consent: a session awaiting it sends nothing, RTP or RTCP, to the
address it was given until :meth:`consent` or the peer's own RTP from that address."""

from __future__ import annotations

import asyncio
import socket

import pytest

from media.clock import MediaClock
from media.ports import PortPool
from media.rtp import RtpPacket
from media.sdp import PCMU
from media.session import RtpSession
from tests.media.conftest import free_range


@pytest.fixture
async def session_and_sink():
    """A session configured toward a plain UDP socket (the 'victim' or the peer)."""
    clock = MediaClock()
    pool = PortPool(*free_range())
    session = await RtpSession.bind("127.0.0.1", pool, clock)
    sink = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sink.bind(("127.0.0.1", 0))
    sink.setblocking(False)
    yield session, sink
    session.close()
    sink.close()
    clock.close()
    assert pool.in_use == 0


def drain(sock: socket.socket) -> list[bytes]:
    packets = []
    while True:
        try:
            packets.append(sock.recv(2048))
        except BlockingIOError:
            return packets


async def test_a_session_awaiting_consent_sends_nothing(session_and_sink):
    session, sink = session_and_sink
    session.await_consent()
    session.configure(PCMU, sink.getsockname())
    session.source = lambda: b"\xff" * 160
    session.start()
    session._send_rtcp()  # an RTCP report is due: it too waits
    await asyncio.sleep(0.3)
    assert drain(sink) == []
    assert session.remote is None and session.destination == sink.getsockname()
    assert session.packets_sent == 0


async def test_consent_starts_the_audio_where_it_waited(session_and_sink):
    session, sink = session_and_sink
    session.await_consent()
    session.configure(PCMU, sink.getsockname())
    for i in range(3):
        session.send_payload(bytes([i]) * 160)
    session.start()
    await asyncio.sleep(0.1)
    assert drain(sink) == []
    session.consent()
    await asyncio.sleep(0.2)
    payloads = [packet[12:] for packet in drain(sink)]
    assert payloads[:3] == [bytes([i]) * 160 for i in range(3)]  # nothing was skipped
    assert not session.awaiting_consent


def rtp(sequence: int) -> bytes:
    return RtpPacket(0, sequence, sequence * 160, 99, b"\x00" * 160).serialize()


async def test_rtp_from_the_peers_address_is_consent_while_the_peer_keeps_talking(
    session_and_sink,
):
    session, sink = session_and_sink
    session.await_consent()
    session.configure(PCMU, sink.getsockname())
    session.source = lambda: b"\xff" * 160
    session.start()
    target = ("127.0.0.1", session.port)
    for sequence in range(40):  # 0.8 s of a real peer's RTP
        sink.sendto(rtp(sequence), target)
        await asyncio.sleep(0.02)
    assert len(drain(sink)) >= 25
    assert session.remote == sink.getsockname()
    assert session.stats.received >= 38  # the packet that proved the address is kept
    session.consent()  # then its ACK: consent for good
    await asyncio.sleep(0.5)
    assert session.remote is not None and len(drain(sink)) >= 15


async def test_one_spoofed_packet_buys_a_fifth_of_a_second_then_only_the_ack_will_do(
    session_and_sink,
):
    session, sink = session_and_sink
    session.await_consent()
    session.configure(PCMU, sink.getsockname())
    session.source = lambda: b"\xff" * 160
    session.start()
    sink.sendto(rtp(1), ("127.0.0.1", session.port))
    await asyncio.sleep(0.6)
    burst = drain(sink)
    assert 1 <= len(burst) <= 15  # about CONSENT_CHECK_S worth of packets, then nothing
    assert session.awaiting_consent and session.remote is None
    sink.sendto(rtp(2), ("127.0.0.1", session.port))  # RTP no longer grants it
    await asyncio.sleep(0.3)
    assert drain(sink) == []
    session.consent()
    await asyncio.sleep(0.2)
    assert drain(sink)


async def test_rtp_from_another_address_is_not_consent(session_and_sink):
    session, sink = session_and_sink
    session.await_consent()
    session.configure(PCMU, sink.getsockname())
    session.source = lambda: b"\xff" * 160
    session.start()
    stranger = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    stranger.bind(("127.0.0.2", 0))
    try:
        stranger.sendto(
            RtpPacket(0, 1, 160, 99, b"\x00" * 160).serialize(), ("127.0.0.1", session.port)
        )
        await asyncio.sleep(0.3)
    finally:
        stranger.close()
    assert drain(sink) == []
    assert session.awaiting_consent and session.stats.received == 0


async def test_a_reconfiguration_before_consent_still_waits(session_and_sink):
    session, sink = session_and_sink
    session.await_consent()
    session.configure(PCMU, ("127.0.0.1", 9))
    session.configure(PCMU, sink.getsockname())  # a second 183, or a re-INVITE
    session.source = lambda: b"\xff" * 160
    session.start()
    await asyncio.sleep(0.1)
    assert drain(sink) == []
    session.consent()
    await asyncio.sleep(0.2)
    assert drain(sink)


async def test_activity_changes_with_rtp_and_rtcp_from_the_peer_only(session_and_sink):
    session, sink = session_and_sink
    session.configure(PCMU, sink.getsockname())
    before = session.activity()
    stranger = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    stranger.bind(("127.0.0.2", 0))
    try:
        stranger.sendto(
            RtpPacket(0, 1, 160, 99, b"\x00" * 160).serialize(), ("127.0.0.1", session.port)
        )
        await asyncio.sleep(0.1)
        assert session.activity() == before
        sink.sendto(
            RtpPacket(0, 1, 160, 99, b"\x00" * 160).serialize(), ("127.0.0.1", session.port)
        )
        await asyncio.sleep(0.1)
        after_rtp = session.activity()
        assert after_rtp != before
        peer_rtcp = session._rtcp_packet()  # any well-formed compound will do
        stranger.sendto(peer_rtcp, ("127.0.0.1", session.port + 1))
        await asyncio.sleep(0.1)
        assert session.activity() == after_rtp
        sink.sendto(peer_rtcp, ("127.0.0.1", session.port + 1))
        await asyncio.sleep(0.1)
        assert session.activity() != after_rtp
    finally:
        stranger.close()
