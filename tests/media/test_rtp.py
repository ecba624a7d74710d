import struct

import pytest
from hypothesis import given
from hypothesis import strategies as st

from media.rtp import (
    RTP_HEADER,
    RtpPacket,
    RtpParseError,
    is_rtcp,
    payload_span,
    write_header,
)

# PCMU, seq 0x1b39, ts 0x0000a000, SSRC 0x12345678, 160 octets of mu-law silence.
PCMU_PACKET = bytes.fromhex("80001b390000a00012345678") + b"\xff" * 160
# telephone-event (PT 101) start packet: marker set, digit 5, volume 10, duration 160.
DTMF_PACKET = bytes.fromhex("80e51b3a0000a00012345678050a00a0")
# Two CSRCs, a one-byte-header extension (RFC 8285, profile 0xBEDE) and 3 octets of padding.
FULL_PACKET = bytes.fromhex(
    "b2"  # V=2 P=1 X=1 CC=2
    "08"  # M=0 PT=8
    "0001"  # sequence
    "00000140"  # timestamp
    "deadbeef"  # SSRC
    "00000001"
    "00000002"  # CSRCs
    "bede0001"  # extension profile, length 1 word
    "10ff0000"  # id 1 len 1 value 0xff, then padding
    "d5d5d5d5"  # payload
    "000003"  # padding, count includes itself
)


def test_parse_pcmu_packet():
    packet = RtpPacket.parse(PCMU_PACKET)
    assert packet == RtpPacket(
        payload_type=0, sequence=0x1B39, timestamp=0xA000, ssrc=0x12345678, payload=b"\xff" * 160
    )
    assert packet.serialize() == PCMU_PACKET


def test_parse_dtmf_packet_with_marker():
    packet = RtpPacket.parse(DTMF_PACKET)
    assert packet.marker is True
    assert packet.payload_type == 101
    assert packet.sequence == 0x1B3A
    assert packet.payload == b"\x05\x0a\x00\xa0"
    assert packet.serialize() == DTMF_PACKET


def test_parse_csrc_extension_and_padding():
    packet = RtpPacket.parse(FULL_PACKET)
    assert packet == RtpPacket(
        payload_type=8,
        sequence=1,
        timestamp=320,
        ssrc=0xDEADBEEF,
        payload=b"\xd5" * 4,
        csrc=[1, 2],
        extension_profile=0xBEDE,
        extension=b"\x10\xff\x00\x00",
        padding=3,
    )
    assert packet.serialize() == FULL_PACKET


def test_serialize_builds_exact_bytes():
    packet = RtpPacket(
        payload_type=101, sequence=65535, timestamp=0xFFFFFFFF, ssrc=1, payload=b"ab", marker=True
    )
    assert packet.serialize() == bytes.fromhex("80e5ffffffffffff000000016162")


def test_empty_extension_is_kept():
    data = bytes.fromhex("900000010000000200000003") + bytes.fromhex("12340000") + b"x"
    packet = RtpPacket.parse(data)
    assert packet.extension_profile == 0x1234
    assert packet.extension == b""
    assert packet.payload == b"x"
    assert packet.serialize() == data


@pytest.mark.parametrize(
    "data",
    [
        b"",
        PCMU_PACKET[:11],
        bytes([0x40]) + PCMU_PACKET[1:],  # version 1
        bytes([0xC0]) + PCMU_PACKET[1:],  # version 3
        bytes([0x83]) + PCMU_PACKET[1:12] + b"\x00" * 8,  # CC=3 but two CSRCs
        bytes([0x90]) + PCMU_PACKET[1:12] + b"\xbe\xde",  # extension header cut short
        bytes([0x90]) + PCMU_PACKET[1:12] + b"\xbe\xde\x00\x02" + b"\x00" * 7,  # body short
        bytes([0xA0]) + PCMU_PACKET[1:12] + b"\x01\x00",  # padding count zero
        bytes([0xA0]) + PCMU_PACKET[1:12] + b"\x01\x04",  # padding longer than payload
    ],
)
def test_malformed_packets_raise(data):
    with pytest.raises(RtpParseError):
        RtpPacket.parse(data)


def test_padding_may_fill_whole_payload():
    packet = RtpPacket.parse(bytes([0xA0]) + PCMU_PACKET[1:12] + b"\x00\x02")
    assert packet.payload == b""
    assert packet.padding == 2


@pytest.mark.parametrize(
    "packet",
    [
        RtpPacket(payload_type=128, sequence=0, timestamp=0, ssrc=0),
        RtpPacket(payload_type=0, sequence=0, timestamp=0, ssrc=0, csrc=list(range(16))),
        RtpPacket(
            payload_type=0, sequence=0, timestamp=0, ssrc=0, extension_profile=1, extension=b"abc"
        ),
        RtpPacket(payload_type=0, sequence=0, timestamp=0, ssrc=0, padding=256),
        RtpPacket(payload_type=0, sequence=65536, timestamp=0, ssrc=0),
    ],
)
def test_serialize_rejects_unrepresentable_values(packet):
    with pytest.raises((ValueError, struct.error)):
        packet.serialize()


def test_write_header_packs_into_preallocated_buffer():
    buf = bytearray(b"\xaa" * 20)
    write_header(buf, 0, True, 0x1B39, 0xA000, 0x12345678)
    assert bytes(buf) == bytes.fromhex("80801b390000a00012345678") + b"\xaa" * 8
    write_header(buf, 8, False, 0x11B39, 0x1_0000_A000, 0x12345678)
    # Sequence and timestamp are reduced modulo their field sizes.
    assert bytes(buf[:12]) == bytes.fromhex("80081b390000a00012345678")
    assert RTP_HEADER.size == 12


def test_write_header_output_parses_back():
    buf = bytearray(12 + 160)
    buf[12:] = b"\xd5" * 160
    write_header(buf, 8, False, 7, 1120, 99)
    packet = RtpPacket.parse(bytes(buf))
    assert (packet.payload_type, packet.sequence, packet.timestamp, packet.ssrc) == (8, 7, 1120, 99)
    assert packet.payload == b"\xd5" * 160


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        (bytes.fromhex("80c8000c"), True),  # SR
        (bytes.fromhex("81c90007"), True),  # RR
        (bytes.fromhex("81cd0003"), True),  # RTPFB
        (bytes([0x80, 192]), True),
        (bytes([0x80, 223]), True),
        (bytes([0x80, 191]), False),
        (bytes([0x80, 224]), False),
        (PCMU_PACKET, False),
        (DTMF_PACKET, False),  # marker + PT 101 = 229
        (bytes.fromhex("80e0"), False),  # marker + PT 96 (opus)
        (b"\x80", False),
        (b"", False),
    ],
)
def test_is_rtcp(data, expected):
    assert is_rtcp(data) is expected


packets = st.builds(
    RtpPacket,
    payload_type=st.integers(0, 127),
    sequence=st.integers(0, 0xFFFF),
    timestamp=st.integers(0, 0xFFFFFFFF),
    ssrc=st.integers(0, 0xFFFFFFFF),
    payload=st.binary(max_size=200),
    marker=st.booleans(),
    csrc=st.lists(st.integers(0, 0xFFFFFFFF), max_size=15),
    extension_profile=st.none() | st.integers(0, 0xFFFF),
    extension=st.integers(0, 8).flatmap(lambda n: st.binary(min_size=4 * n, max_size=4 * n)),
    padding=st.integers(0, 255),
)


@given(packets)
def test_round_trip(packet):
    if packet.extension_profile is None:
        packet.extension = b""
    assert RtpPacket.parse(packet.serialize()) == packet


@given(st.binary(max_size=80))
def test_random_bytes_raise_only_parse_error(data):
    try:
        packet = RtpPacket.parse(data)
    except RtpParseError:
        return
    # Whatever parses must come back byte for byte, apart from the padding's filler octets.
    out = packet.serialize()
    assert len(out) == len(data)
    assert out[: len(data) - packet.padding] == data[: len(data) - packet.padding]
    if packet.padding:
        assert out[-1] == data[-1]


@given(st.binary(min_size=12, max_size=40))
def test_version_two_header_with_no_flags_always_parses(tail):
    data = bytes([0x80]) + tail[1:]
    packet = RtpPacket.parse(data)
    assert packet.payload == data[12:]


def test_payload_span_skips_csrcs_extension_and_padding():
    assert payload_span(PCMU_PACKET) == (12, len(PCMU_PACKET))
    start, end = payload_span(FULL_PACKET)
    assert FULL_PACKET[start:end] == bytes.fromhex("d5d5d5d5")
    assert payload_span(PCMU_PACKET[:11]) is None
    assert payload_span(FULL_PACKET[:20]) is None  # the extension runs past the end


@given(packets)
def test_payload_span_finds_what_parse_finds(packet):
    if packet.extension_profile is None:
        packet.extension = b""
    data = packet.serialize()
    start, end = payload_span(data)
    assert data[start:end] == packet.payload


@given(st.binary(max_size=80))
def test_payload_span_agrees_with_parse_on_any_bytes(data):
    data = bytes([0x80 | (data[0] & 0x3F)]) + data[1:] if data else data
    try:
        packet = RtpPacket.parse(data)
    except RtpParseError:
        return  # (payload_span checks less: the version is the receiver's business)
    span = payload_span(data)
    assert span is not None and data[span[0] : span[1]] == packet.payload
