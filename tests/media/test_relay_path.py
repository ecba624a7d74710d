"""The relay's fast path (media/session.py ``_RelayPath``) does what the full path does.

Two identical session pairs take the same packets, one through the fast path the
bridge installs, one through ``RtpSession.datagram_received`` (which relays with
``relay_packet``): what they send, what their taps hear and what they count
(RFC 3550 reception statistics, packets and octets sent) must agree after every
packet, whatever the packets are.
"""

from __future__ import annotations

import struct

from hypothesis import given, settings
from hypothesis import strategies as st

import media.session
from media.clock import MediaClock
from media.leg import Frame
from media.ports import PortPool
from media.rtcp import ReceptionStatistics
from media.sdp import PCMU, TELEPHONE_EVENT
from media.session import RtpSession

PHONE_A = ("127.0.0.1", 5000)
PHONE_B = ("127.0.0.1", 6000)


class Transport:
    def __init__(self) -> None:
        self.sent: list[tuple[bytes, tuple[str, int] | None]] = []
        self.protocol: object = None

    def sendto(self, data: bytes | bytearray, address: tuple[str, int] | None = None) -> None:
        self.sent.append((bytes(data), address))

    def set_protocol(self, protocol: object) -> None:
        self.protocol = protocol

    def close(self) -> None:
        pass


class World:
    """Session ``a`` relaying to ``b``, taps recording what both hear."""

    def __init__(self, fast: bool) -> None:
        pool = PortPool(50000, 50100)
        clock = MediaClock()
        self.a = RtpSession(clock, pool, 50000)
        self.b = RtpSession(clock, pool, 50002)
        self.heard: list[tuple[str, int, str, bytes, int | None, int]] = []
        for name, session, phone in (("a", self.a, PHONE_A), ("b", self.b, PHONE_B)):
            session.connection_made(Transport())
            session.configure(PCMU, phone, dtmf=TELEPHONE_EVENT)
            session.ssrc = 0x1234 if name == "a" else 0xABCD
            session._sequence, session._timestamp = 65530, 0xFFFFFF00
            session.tap = self._recorder(name)
        self.a.relay_to(self.b)
        assert "datagram_received" in self.a.__dict__
        if not fast:  # the full path: what every packet took before the fast path
            del self.a.__dict__["datagram_received"]
        self.received = self.a.datagram_received

    def _recorder(self, name: str):
        def tap(side: int, frame: Frame) -> None:
            self.heard.append(
                (name, side, frame.codec, frame.payload, frame.timestamp, frame.samples)
            )

        return tap

    def state(self) -> tuple:
        stats = self.a.stats
        return (
            self.b._rtp.sent,  # type: ignore[union-attr]
            self.heard,
            stats.received,
            stats.expected,
            stats.lost,
            stats.duplicates,
            stats.extended_highest_sequence,
            stats.jitter,
            stats.fraction_lost,
            self.a.remote_ssrc,
            self.a.bad_packets,
            self.a.events_received,
            self.b.packets_sent,
            self.b.octets_sent,
            self.b._sequence,
            self.b._timestamp,
        )


FIRST_OCTETS = [0x80, 0x80, 0x80, 0x80, 0x81, 0x90, 0xA0, 0x40]  # plain mostly
PAYLOAD_TYPES = [0, 0, 0, 0, 101, 8, 72, 200]  # ours mostly; DTMF, another, RTCP's


@st.composite
def packet(draw) -> tuple[bytes, tuple[str, int], float]:
    first = draw(st.sampled_from(FIRST_OCTETS))
    second = draw(st.sampled_from(PAYLOAD_TYPES)) | draw(st.sampled_from([0, 0, 0x80]))
    sequence = draw(st.integers(0, 0xFFFF))
    timestamp = draw(st.integers(0, 0xFFFFFFFF))
    ssrc = draw(st.sampled_from([0x11111111, 0x11111111, 0x22222222]))
    body = bytes(4 * (first & 0x0F))
    if first & 0x10:
        body += b"\xbe\xde\x00\x01\x10\xff\x00\x00"
    payload = draw(st.binary(min_size=0, max_size=200))
    if first & 0x20:
        payload += b"\x00\x02"
    data = struct.pack(">BBHII", first, second, sequence, timestamp, ssrc) + body + payload
    if draw(st.integers(0, 30)) == 0:
        data = data[: draw(st.integers(0, 12))]  # runt
    source = PHONE_A if draw(st.integers(0, 15)) else ("127.0.0.9", 5000)
    return data, source, draw(st.floats(0.0, 0.2))


@st.composite
def stream(draw) -> list[tuple[bytes, tuple[str, int], float]]:
    """Mostly a talking phone (in order, 20 ms apart), with gaps, repeats, reordering,
    a new SSRC and arbitrary packets mixed in."""
    out = []
    sequence = draw(st.integers(0, 0xFFFF))
    timestamp = draw(st.integers(0, 0xFFFFFFFF))
    ssrc = 0x11111111
    for _ in range(draw(st.integers(1, 80))):
        kind = draw(st.integers(0, 9))
        if kind == 9:
            out.append(draw(packet()))
            continue
        if kind == 8:
            ssrc ^= 0x33333333
        step = {6: 0, 7: -2}.get(kind, draw(st.sampled_from([1, 1, 1, 1, 2, 50, 4000])))
        sequence = (sequence + step) & 0xFFFF
        timestamp = (timestamp + 160 * step) & 0xFFFFFFFF
        marker = 0x80 if draw(st.integers(0, 20)) == 0 else 0
        header = struct.pack(">BBHII", 0x80, marker, sequence, timestamp, ssrc)
        out.append((header + bytes([kind]) * 160, PHONE_A, draw(st.floats(0.015, 0.025))))
    return out


@settings(deadline=None, max_examples=300)
@given(stream())
def test_the_fast_path_sends_hears_and_counts_as_the_full_path(packets) -> None:
    worlds = World(fast=True), World(fast=False)
    now = [1000.0]
    original = media.session._monotonic
    media.session._monotonic = lambda: now[0]
    try:
        for data, source, delay in packets:
            now[0] += delay
            for world in worlds:
                world.received(data, source)
            assert worlds[0].state() == worlds[1].state()
        ours = [
            d for d, source, _ in packets if d[:2] in (b"\x80\x00", b"\x80\x80") and len(d) > 12
        ]
        if ours and all(source == PHONE_A for _, source, _ in packets):
            assert worlds[0].b._rtp.sent  # type: ignore[union-attr]  # not a vacuous test
        # Reports start a new fraction-lost interval alike, and counting goes on alike.
        blocks = [w.a.stats.report_block(0x11111111) for w in worlds]
        assert blocks[0] == blocks[1]
    finally:
        media.session._monotonic = original


def test_the_bridge_installs_the_path_as_the_transports_protocol_and_takes_it_back() -> None:
    world = World(fast=True)
    transport = world.a._rtp
    assert isinstance(transport, Transport)
    assert transport.protocol is not None and transport.protocol is not world.a
    world.a.relay_to(None)
    assert transport.protocol is world.a and "datagram_received" not in world.a.__dict__


def test_the_path_sends_nothing_while_the_other_leg_is_held_or_unproven() -> None:
    world = World(fast=True)
    header = struct.pack(">BBHII", 0x80, 0, 7, 160, 0x11111111)
    world.b.hold = True
    world.received(header + bytes(160), PHONE_A)
    world.b.hold = False
    world.b.await_consent()
    world.received(header[:2] + b"\x00\x08" + header[4:] + bytes(160), PHONE_A)
    assert world.b._rtp.sent == []  # type: ignore[union-attr]
    assert world.a.stats.received == 2  # counted all the same
    world.b.consent()
    world.received(header[:2] + b"\x00\x09" + header[4:] + bytes(160), PHONE_A)
    assert len(world.b._rtp.sent) == 1  # type: ignore[union-attr]


@settings(deadline=None, max_examples=300)
@given(
    st.lists(
        st.tuples(
            st.sampled_from([1, 1, 1, 1, 1, 0, -1, -3, 2, 7, 3000, 40000, 65535]),
            st.booleans(),
        ),
        max_size=300,
    ),
    st.integers(0, 0xFFFF),
)
def test_counting_in_order_packets_lazily_is_counting_them_one_by_one(steps, start) -> None:
    """``next_sequence``/``in_order`` (the fast path's way) against ``update`` for every
    packet, read at random moments: the same figures, across wraps, jumps and duplicates."""
    lazy, eager = ReceptionStatistics(), ReceptionStatistics()
    sequence = start
    for n, (step, read) in enumerate(steps):
        sequence = (sequence + step) & 0xFFFF
        if sequence == lazy.next_sequence:
            lazy.next_sequence = (sequence + 1) & 0xFFFF
            lazy.in_order += 1
        else:
            lazy.update(sequence, 0, n)
        eager.update(sequence, 0, n)
        if read:
            for stats in (lazy, eager):
                stats.transit = None  # jitter is not what this test is about
            figures = [
                (s.received, s.expected, s.lost, s.extended_highest_sequence, s.duplicates)
                for s in (lazy, eager)
            ]
            assert figures[0] == figures[1]
    assert lazy.report_block(1) == eager.report_block(1)
