"""The on-arrival receive path (a Media Stream's caller audio) against the full one."""

from __future__ import annotations

import struct

from hypothesis import given, settings
from hypothesis import strategies as st

from media.clock import MediaClock
from media.ports import PortPool
from media.rtcp import ReceptionStatistics
from media.sdp import PCMU, TELEPHONE_EVENT
from media.session import RtpSession, _RelayPath

PEER = ("127.0.0.1", 5000)


def session() -> tuple[RtpSession, list[tuple]]:
    """A configured session without sockets (packets are handed to it directly),
    delivering on arrival; and what reached its ``on_frame`` and tap."""
    s = RtpSession(MediaClock(), PortPool(20000, 20010), 20000)
    s.configure(PCMU, PEER, dtmf=TELEPHONE_EVENT)
    s.deliver_on_arrival(True)
    seen: list[tuple] = []
    s.on_frame = lambda f: seen.append(("frame", f.codec, f.payload, f.timestamp, f.samples))
    s.on_dtmf = lambda digit: seen.append(("dtmf", digit))
    s.tap = lambda side, f: seen.append(("tap", side, f.payload, f.timestamp))
    return s, seen


_first_octets = st.sampled_from([0x80, 0x80, 0x80, 0x81, 0x90, 0xA0, 0xB1, 0x40, 0x00])
_second_octets = st.sampled_from([0, 0x80, 0, 8, 101, 0x80 | 101, 200, 201, 72, 0xC8])


@st.composite
def packets(draw):
    first, second = draw(_first_octets), draw(_second_octets)
    header = struct.pack(
        "!BBHII",
        first,
        second,
        draw(st.integers(0, 0xFFFF)),
        draw(st.integers(0, 0xFFFFFFFF)),
        draw(st.sampled_from([1234, 5678])),
    )
    body = draw(st.binary(max_size=200))
    if draw(st.booleans()):  # mostly a plain 160-byte frame following on
        body = bytes([len(body) % 256]) * 160
    packet = (header + body)[: draw(st.integers(0, 400))]
    source = draw(st.sampled_from([PEER, PEER, ("127.0.0.2", 5000), ("127.0.0.1", 6000)]))
    return packet, source


@settings(max_examples=300, deadline=None)
@given(st.lists(packets(), max_size=40), st.integers(0, 0xFFFF))
def test_the_short_path_does_what_the_full_path_does(plan, start):
    """Any packets, from the peer or not, of any shape: what reaches on_frame, the
    tap and on_dtmf, and every counter, is what the full path makes of them."""
    short, short_seen = session()
    full, full_seen = session()
    # A stream in order around `start` first, so the short path is taken.
    steady = [
        (struct.pack("!BBHII", 0x80, 0, (start + n) & 0xFFFF, 160 * n, 1234) + b"\x7f" * 160, PEER)
        for n in range(3)
    ]
    for data, addr in steady + plan:
        short.datagram_received(data, addr)
        RtpSession.datagram_received(full, data, addr)
    assert short_seen == full_seen
    for name in ("late_packets", "bad_packets", "remote_ssrc", "rtcp_received", "events_received"):
        assert getattr(short, name) == getattr(full, name), name
    fields = set(ReceptionStatistics.__slots__) - {"jitter", "transit"}  # (arrival times differ)
    short_stats = {f: getattr(short.stats, f) for f in fields}
    assert short_stats == {f: getattr(full.stats, f) for f in fields}


def test_the_short_path_is_installed_only_while_nothing_else_receives():
    s, _ = session()
    assert s.datagram_received == s._arrival_datagram_received
    s.deliver_on_arrival(False)
    assert "datagram_received" not in vars(s)  # the class's full path
    s.deliver_on_arrival(True)
    other = RtpSession(MediaClock(), PortPool(20020, 20030), 20020)
    s.relay_to(other)
    assert isinstance(s.datagram_received.__self__, _RelayPath)
    s.relay_to(None)
    assert s.datagram_received == s._arrival_datagram_received
    s.close()
    other.close()
    assert "_arrival" not in repr(s.datagram_received)  # a closed session holds no cycle
