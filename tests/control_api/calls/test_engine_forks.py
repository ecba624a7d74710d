"""control_api/calls/engine_forks.py with a scripted rtpengine: each party's copy
subscribed (rtpengine's offer answered with our own RTP port, recvonly, every
offered codec), the copies' packets handed to the legs' taps as they come (a
party's own tap side 0, the other's side 1), unsubscribed when nobody listens,
and a refusal that leaves the forks without the copies but the call going."""

from __future__ import annotations

import asyncio
import socket

import pytest

from control_api.calls.engine_forks import EngineListeners, Party
from media.clock import MediaClock
from media.leg import Leg
from media.ports import PortPool
from media.rtp import RtpPacket
from media.rtpengine.client import EngineRefused
from media.sdp import PCMA, PCMU, SessionDescription
from media.session import RtpSession

from .test_engine_bridge import free_range


class Engine:
    """``subscribe request``/``answer``/``unsubscribe`` as rtpengine answers them:
    each copy is sent from a socket of its own (what rtpengine's port would be)."""

    def __init__(self, refuse: bool = False) -> None:
        self.refuse = refuse
        self.requests: list[str] = []  # from-tags
        self.answers: dict[str, SessionDescription] = {}  # to-tag: our SDP
        self.unsubscribed: list[str] = []
        self.sockets: dict[str, socket.socket] = {}  # from-tag: the copy's source

    async def subscribe_request(self, call_id, from_tag, **options):
        assert options["ICE"] == "remove"
        self.requests.append(from_tag)
        if self.refuse:
            raise EngineRefused("Unknown call-tag")
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        sock.bind(("127.0.0.1", 0))
        self.sockets[from_tag] = sock
        port = sock.getsockname()[1]
        sdp = (
            "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n"
            f"m=audio {port} RTP/AVP 0 8 101\r\na=rtpmap:0 PCMU/8000\r\n"
            "a=rtpmap:8 PCMA/8000\r\na=rtpmap:101 telephone-event/8000\r\na=sendonly\r\n"
        )
        return sdp, f"sub-{from_tag}"

    async def subscribe_answer(self, call_id, to_tag, sdp, **options):
        self.answers[to_tag] = SessionDescription.parse(sdp)

    async def unsubscribe(self, call_id, to_tag):
        self.unsubscribed.append(to_tag)

    def send(self, from_tag: str, packet: RtpPacket) -> None:
        """rtpengine copies a packet of ``from_tag`` to its subscriber."""
        answer = self.answers[f"sub-{from_tag}"]
        self.sockets[from_tag].sendto(packet.serialize(), ("127.0.0.1", answer.media[0].port))

    def close(self) -> None:
        for sock in self.sockets.values():
            sock.close()


@pytest.fixture
async def media():
    clock = MediaClock()
    pool = PortPool(*free_range(20))
    legs = Leg(), Leg()
    legs[0].codec, legs[1].codec = "PCMU", "PCMA"
    yield clock, pool, legs
    clock.close()


def listeners(engine, clock, pool, legs) -> EngineListeners:
    return EngineListeners(
        engine,
        "call/1",
        (Party("CA-a", legs[0], legs[1], PCMU), Party("CA-b", legs[1], legs[0], PCMA)),
        bind=lambda: RtpSession.bind("127.0.0.1", pool, clock),
        address="127.0.0.1",
    )


async def until(condition, timeout: float = 2.0) -> None:
    async with asyncio.timeout(timeout):
        while not condition():
            await asyncio.sleep(0.005)


async def test_each_partys_copy_reaches_both_legs_taps(media):
    clock, pool, legs = media
    engine = Engine()
    copies = listeners(engine, clock, pool, legs)
    assert await copies.update() is False and engine.requests == []  # nobody listens yet
    heard: list[tuple[str, int, str, bytes]] = []
    legs[0].tap = lambda side, frame: heard.append(("a", side, frame.codec, frame.payload))
    legs[1].tap = lambda side, frame: heard.append(("b", side, frame.codec, frame.payload))
    assert await copies.update() is True
    assert engine.requests == ["CA-a", "CA-b"]
    for answer in engine.answers.values():  # our port, recvonly, every codec offered
        [audio] = answer.media
        assert answer.connection_address == "127.0.0.1" and audio.direction == "recvonly"
        assert [c.payload_type for c in audio.codecs] == [0, 8, 101]
    engine.send("CA-a", RtpPacket(0, 1, 160, 0x11, b"\x01" * 160))
    engine.send("CA-b", RtpPacket(8, 1, 160, 0x22, b"\x02" * 160))
    engine.send("CA-a", RtpPacket(101, 2, 160, 0x11, bytes([5, 0x0A, 0, 160])))  # not audio
    await until(lambda: len(heard) == 4)
    await asyncio.sleep(0.05)
    assert sorted(heard) == [
        ("a", 0, "PCMU", b"\x01" * 160),  # the caller said it: its inbound track
        ("a", 1, "PCMA", b"\x02" * 160),  # the caller heard the callee: outbound
        ("b", 0, "PCMA", b"\x02" * 160),
        ("b", 1, "PCMU", b"\x01" * 160),
    ]
    # Nobody listens any more: both copies are unsubscribed and our ports closed.
    legs[0].tap = legs[1].tap = None
    sessions = [copy.session for copy in copies.copies]
    assert await copies.update() is False
    assert sorted(engine.unsubscribed) == ["sub-CA-a", "sub-CA-b"]
    assert all(session.closed for session in sessions)
    engine.close()


async def test_closing_ends_the_copies_without_unsubscribing_for_a_deleted_call(media):
    clock, pool, legs = media
    engine = Engine()
    copies = listeners(engine, clock, pool, legs)
    legs[0].tap = lambda side, frame: None
    assert await copies.update() is True
    sessions = [copy.session for copy in copies.copies]
    await copies.close(unsubscribe=False)
    assert all(session.closed for session in sessions) and engine.unsubscribed == []
    assert await copies.update() is False  # closed: nothing more is subscribed
    assert len(engine.requests) == 2
    engine.close()


async def test_a_refused_subscription_leaves_nothing_behind(media):
    clock, pool, legs = media
    engine = Engine(refuse=True)
    copies = listeners(engine, clock, pool, legs)
    legs[0].tap = lambda side, frame: None
    before = len(pool.sessions)
    assert await copies.update() is False
    assert engine.requests == ["CA-a"] and len(pool.sessions) == before
