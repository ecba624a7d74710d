import contextlib

import pytest
from hypothesis import given
from hypothesis import strategies as st

from media.rtcp import (
    _HISTORY,
    _HISTORY_MASK,
    _MAX_DROPOUT,
    _MAX_MISORDER,
    _SEQ_MOD,
    SDES_CNAME,
    Bye,
    ReceiverReport,
    ReceptionStatistics,
    ReportBlock,
    RtcpParseError,
    SdesChunk,
    SenderReport,
    SourceDescription,
    ntp_middle32,
    ntp_timestamp,
    parse_compound,
    serialize_compound,
)

SR = bytes.fromhex(
    "81c8000c"  # V=2 RC=1 SR, length 12 words
    "1a2b3c4d"  # sender SSRC
    "e9a1b2c380000000"  # NTP timestamp
    "0001f400"  # RTP timestamp
    "000000fa"  # packet count 250
    "00009c40"  # octet count 40000
    "5e6f7081"  # report block: source SSRC
    "0a000003"  # fraction lost 10/256, cumulative lost 3
    "00010064"  # extended highest sequence (1 cycle, 100)
    "00000011"  # jitter 17
    "b2c38000"  # LSR
    "00008000"  # DLSR 0.5 s
)
SDES = (
    bytes.fromhex(
        "81ca0006"  # V=2 SC=1 SDES, length 6 words
        "1a2b3c4d"  # chunk SSRC
        "010e"  # CNAME, 14 octets
    )
    + b"bob@192.0.2.10"
    + bytes(4)  # null item and padding to the 32-bit boundary
)
SR_COMPOUND = SR + SDES

RR = bytes.fromhex("80c900015e6f7081")
APP = bytes.fromhex("80cc00035e6f7081") + b"TEST" + b"\x00\x01\x02\x03"
NACK = bytes.fromhex("81cd00035e6f70811a2b3c4d00050000")
BYE = bytes.fromhex("81cb00035e6f708106") + b"Hangup" + b"\x00"


def test_parse_sender_report_compound():
    sr, sdes = parse_compound(SR_COMPOUND)
    assert sr == SenderReport(
        ssrc=0x1A2B3C4D,
        ntp_timestamp=0xE9A1B2C380000000,
        rtp_timestamp=128000,
        packet_count=250,
        octet_count=40000,
        reports=[
            ReportBlock(
                ssrc=0x5E6F7081,
                fraction_lost=10,
                packets_lost=3,
                highest_sequence=0x10064,
                jitter=17,
                lsr=0xB2C38000,
                dlsr=0x8000,
            )
        ],
    )
    assert sdes == SourceDescription([SdesChunk(0x1A2B3C4D, [(SDES_CNAME, b"bob@192.0.2.10")])])
    assert sdes.chunks[0].cname == b"bob@192.0.2.10"
    assert ntp_middle32(sr.ntp_timestamp) == sr.reports[0].lsr


def test_serialize_sender_report_compound_exactly():
    packets = parse_compound(SR_COMPOUND)
    assert serialize_compound(packets) == SR_COMPOUND
    assert packets[0].serialize() == SR
    assert packets[1].serialize() == SDES


def test_unknown_packet_types_are_skipped():
    packets = parse_compound(RR + APP + NACK + SDES + BYE)
    assert packets == [
        ReceiverReport(ssrc=0x5E6F7081, reports=[]),
        SourceDescription([SdesChunk(0x1A2B3C4D, [(SDES_CNAME, b"bob@192.0.2.10")])]),
        Bye(sources=[0x5E6F7081], reason="Hangup"),
    ]
    assert Bye([0x5E6F7081], "Hangup").serialize() == BYE
    assert ReceiverReport(0x5E6F7081).serialize() == RR


def test_negative_cumulative_loss_is_sign_extended():
    data = SR[:32] + bytes.fromhex("0affffff") + SR[36:]
    (sr,) = parse_compound(data)
    assert sr.reports[0].packets_lost == -1
    assert sr.serialize() == data


def test_multiple_sdes_chunks_and_items():
    chunks = [
        SdesChunk(1, [(SDES_CNAME, b"a"), (6, b"callswitch")]),
        SdesChunk(2, [(SDES_CNAME, b"abc")]),
        SdesChunk(3, []),
    ]
    data = SourceDescription(chunks).serialize()
    assert data == bytes.fromhex(
        "83ca000a"  # SC=3, length 10 words
        "00000001"  # chunk 1
        "010161"  # CNAME "a"
        "060a63616c6c737769746368"  # TOOL "callswitch"
        "00"  # null item; 20 octets, already aligned
        "00000002"  # chunk 2
        "0103616263"  # CNAME "abc"
        "000000"  # null item and padding
        "00000003"  # chunk 3, no items
        "00000000"
    )
    assert parse_compound(data) == [SourceDescription(chunks)]
    assert chunks[2].cname is None


def test_bye_without_reason_and_with_padding_bit():
    assert Bye([1, 2]).serialize() == bytes.fromhex("82cb00020000000100000002")
    padded = bytes.fromhex("a1cb00020000000100000004")
    assert parse_compound(padded) == [Bye([1], None)]


def test_padding_on_last_packet():
    padded_rr = bytes.fromhex("a0c900025e6f708100000004")
    assert parse_compound(SR + padded_rr)[1] == ReceiverReport(0x5E6F7081)


def test_sender_report_profile_extension_is_ignored():
    data = bytes.fromhex("80c8000700000001") + bytes(20) + bytes.fromhex("cafebabe")
    assert parse_compound(data) == [SenderReport(1, 0, 0, 0, 0, [])]


@pytest.mark.parametrize(
    "data",
    [
        b"",
        b"\x80\xc9\x00",
        bytes([0x40]) + RR[1:],  # version 1
        RR + b"\x80\xc9",  # trailing partial header
        bytes.fromhex("80c900025e6f7081"),  # length runs past the end
        bytes.fromhex("81c900015e6f7081"),  # RC=1 but no report block
        bytes.fromhex("80c90000"),  # RR without SSRC
        bytes.fromhex("81c80006") + bytes(24),  # SR with RC=1 but no block
        bytes.fromhex("80c80001") + bytes(4),  # SR without sender info
        bytes.fromhex("a0c9000100000000"),  # padding count zero
        bytes.fromhex("a0c9000100000009"),  # padding longer than packet
        bytes.fromhex("81ca00020000000101050000"),  # SDES item runs past end
        bytes.fromhex("81ca0002000000010101ab01"),  # SDES without terminator
        bytes.fromhex("82ca00020000000100000000"),  # SC=2, one chunk
        bytes.fromhex("82cb000100000001"),  # BYE SC=2, one source
        bytes.fromhex("81cb00020000000105616200"),  # BYE reason runs past end
        bytes.fromhex("8000000100000000"),  # packet type 0 is RTP, not RTCP
        bytes.fromhex("80e0000100000000"),  # packet type 224 outside RTCP range
    ],
)
def test_malformed_compounds_raise(data):
    with pytest.raises(RtcpParseError):
        parse_compound(data)


@pytest.mark.parametrize(
    "packet",
    [
        ReceiverReport(1, [ReportBlock(2, fraction_lost=256)]),
        ReceiverReport(1, [ReportBlock(2, packets_lost=0x800000)]),
        ReceiverReport(1, [ReportBlock(2, packets_lost=-0x800001)]),
        ReceiverReport(1, [ReportBlock(2)] * 32),
        SourceDescription([SdesChunk(1, [(SDES_CNAME, b"x" * 256)])]),
        SourceDescription([SdesChunk(1, [(0, b"x")])]),
        Bye([1], "x" * 256),
        Bye(list(range(32))),
    ],
)
def test_serialize_rejects_unrepresentable_values(packet):
    with pytest.raises(ValueError):
        packet.serialize()


def test_ntp_timestamp():
    assert ntp_timestamp(0.0) == 2_208_988_800 << 32
    assert ntp_timestamp(1.5) == ((2_208_988_800 + 1) << 32) | 0x80000000
    assert ntp_timestamp(1_700_000_000.25) == ((1_700_000_000 + 2_208_988_800) << 32) | 0x40000000
    assert ntp_middle32(0x0123456789ABCDEF) == 0x456789AB


u32 = st.integers(0, 0xFFFFFFFF)
blocks = st.builds(
    ReportBlock,
    ssrc=u32,
    fraction_lost=st.integers(0, 255),
    packets_lost=st.integers(-0x800000, 0x7FFFFF),
    highest_sequence=u32,
    jitter=u32,
    lsr=u32,
    dlsr=u32,
)
rtcp_packets = st.one_of(
    st.builds(
        SenderReport,
        ssrc=u32,
        ntp_timestamp=st.integers(0, 2**64 - 1),
        rtp_timestamp=u32,
        packet_count=u32,
        octet_count=u32,
        reports=st.lists(blocks, max_size=31),
    ),
    st.builds(ReceiverReport, ssrc=u32, reports=st.lists(blocks, max_size=31)),
    st.builds(
        SourceDescription,
        chunks=st.lists(
            st.builds(
                SdesChunk,
                ssrc=u32,
                items=st.lists(st.tuples(st.integers(1, 255), st.binary(max_size=255)), max_size=4),
            ),
            max_size=31,
        ),
    ),
    st.builds(
        Bye,
        sources=st.lists(u32, max_size=31),
        reason=st.none() | st.text(max_size=60),
    ),
)


@given(st.lists(rtcp_packets, min_size=1, max_size=4))
def test_round_trip(packets):
    data = serialize_compound(packets)
    assert len(data) % 4 == 0
    assert parse_compound(data) == packets


@given(st.binary(max_size=120))
def test_random_bytes_raise_only_parse_error(data):
    with contextlib.suppress(RtcpParseError):
        parse_compound(data)


@given(st.lists(rtcp_packets, min_size=1, max_size=3), st.data())
def test_corrupted_compounds_raise_only_parse_error(packets, data):
    raw = bytearray(serialize_compound(packets))
    index = data.draw(st.integers(0, len(raw) - 1))
    raw[index] = data.draw(st.integers(0, 255))
    cut = data.draw(st.integers(0, len(raw)))
    with contextlib.suppress(RtcpParseError):
        parse_compound(bytes(raw[:cut]))


# --- reception statistics (RFC 3550 Appendix A) ---


def feed(stats, sequences, start_ts=0, transit=1000):
    for seq in sequences:
        ts = (start_ts + 160 * seq) & 0xFFFFFFFF
        stats.update(seq & 0xFFFF, ts, ts + transit)


def test_no_loss():
    stats = ReceptionStatistics()
    feed(stats, range(100))
    assert (stats.received, stats.expected, stats.lost, stats.fraction_lost) == (100, 100, 0, 0)
    assert stats.jitter == 0.0
    assert stats.extended_highest_sequence == 99


def test_loss_and_fraction_lost_interval():
    stats = ReceptionStatistics()
    feed(stats, [seq for seq in range(100) if seq % 10 != 5])
    assert stats.expected == 100
    assert stats.lost == 10
    block = stats.report_block(0xABC, lsr=0x1234, dlsr=0x5678)
    assert block == ReportBlock(0xABC, 25, 10, 99, 0, 0x1234, 0x5678)  # 10*256 // 100 = 25
    # The next interval has no loss: fraction resets, the cumulative count stays.
    feed(stats, range(100, 200))
    block = stats.report_block(0xABC)
    assert (block.fraction_lost, block.packets_lost, block.highest_sequence) == (0, 10, 199)


def test_sequence_wraparound():
    stats = ReceptionStatistics()
    feed(stats, range(65530, 65550))
    assert stats.extended_highest_sequence == 65536 + 13
    assert stats.expected == 20
    assert stats.lost == 0


def test_reordered_packet_is_not_lost():
    stats = ReceptionStatistics()
    feed(stats, [0, 1, 3, 4, 2, 5])
    assert stats.lost == 0
    assert stats.received == 6


def test_reorder_across_wrap():
    stats = ReceptionStatistics()
    feed(stats, [65534, 0, 65535, 1])
    assert stats.extended_highest_sequence == 65537
    assert (stats.expected, stats.lost) == (4, 0)


def test_duplicates_do_not_hide_loss():
    stats = ReceptionStatistics()
    feed(stats, [0, 1, 1, 2, 4, 2, 5, 5])
    assert stats.duplicates == 3
    assert stats.received == 5
    assert stats.lost == 1


def test_stray_jump_is_ignored_but_restart_is_followed():
    stats = ReceptionStatistics()
    feed(stats, range(10))
    assert stats.update(30000, 0, 0) is False
    feed(stats, range(10, 20))
    assert (stats.expected, stats.lost) == (20, 0)
    # Two in a row from a new place: the sender restarted.
    assert stats.update(40000, 0, 0) is False
    assert stats.update(40001, 160, 160) is True
    feed(stats, range(40002, 40010))
    assert stats.extended_highest_sequence == 40009
    assert (stats.expected, stats.received, stats.lost) == (9, 9, 0)


def test_probation():
    stats = ReceptionStatistics(min_sequential=2)
    assert stats.update(500, 0, 0) is False
    assert stats.expected == 0
    assert stats.update(700, 0, 0) is False  # not in sequence: probation starts over
    assert stats.update(701, 160, 160) is True
    feed(stats, range(702, 710))
    assert (stats.expected, stats.received) == (9, 9)


def test_lost_is_clamped_to_24_bits():
    stats = ReceptionStatistics()
    stats.update(0, 0, 0)
    stats._cycles = 1 << 24  # as if ~2**24 packets went missing
    assert stats.lost == 0x7FFFFF
    assert stats.report_block(1).packets_lost == 0x7FFFFF


def test_jitter_follows_a8():
    stats = ReceptionStatistics()
    arrivals = [0, 170, 310, 500, 640, 815, 960, 1135]
    expected = 0.0
    previous = None
    for seq, arrival in enumerate(arrivals):
        ts = 160 * seq
        stats.update(seq, ts, arrival)
        transit = arrival - ts
        if previous is not None:
            expected += (abs(transit - previous) - expected) / 16
        previous = transit
    assert stats.jitter == pytest.approx(expected)
    assert expected > 1
    assert stats.report_block(1).jitter == int(expected)


def test_jitter_across_timestamp_wrap():
    stats = ReceptionStatistics()
    start = 0xFFFFFFFF - 400
    for seq in range(6):
        ts = (start + 160 * seq) & 0xFFFFFFFF
        stats.update(seq, ts, (ts + 5000 + (16 if seq % 2 else 0)) & 0xFFFFFFFF)
    # |D| is 16 for each of the 5 pairs.
    expected = 0.0
    for _ in range(5):
        expected += (16 - expected) / 16
    assert stats.jitter == pytest.approx(expected)


def test_empty_statistics():
    stats = ReceptionStatistics()
    assert (stats.expected, stats.lost, stats.fraction_lost) == (0, 0, 0)
    assert stats.report_block(7) == ReportBlock(7)


@given(
    st.integers(0, 0xFFFF),
    st.lists(st.booleans(), min_size=1, max_size=300),
)
def test_statistics_match_a_simple_model(start, keep):
    stats = ReceptionStatistics()
    sequences = [start + i for i, kept in enumerate(keep) if kept]
    if not sequences:
        return
    feed(stats, sequences)
    expected = sequences[-1] - sequences[0] + 1
    assert stats.expected == expected
    assert stats.lost == expected - len(sequences)
    assert stats.fraction_lost == (
        ((expected - len(sequences)) << 8) // expected if expected > len(sequences) else 0
    )


# --- the in-order fast path of update() against the update of before it


class _ReferenceStatistics(ReceptionStatistics):
    def update(self, sequence: int, rtp_timestamp: int, arrival_rtp_units: int) -> bool:
        """The update of before its in-order fast path (2026-12-06), kept as the oracle."""
        seq = sequence & 0xFFFF
        if not self._valid:
            if self._probation is None:
                self._max_seq = (seq - 1) & 0xFFFF
                self._probation = self._min_sequential
            if seq != (self._max_seq + 1) & 0xFFFF:
                self._probation = self._min_sequential - 1
                self._max_seq = seq
                return False
            self._probation -= 1
            self._max_seq = seq
            if self._probation > 0:
                return False
            self._valid = True
            self._init_seq(seq)
        else:
            udelta = (seq - self._max_seq) & 0xFFFF
            if udelta == 0:
                self._duplicates += 1
                return False
            if udelta < _MAX_DROPOUT:
                if seq < self._max_seq:
                    self._cycles += _SEQ_MOD
                self._max_seq = seq
                self.next_sequence = (seq + 1) & 0xFFFF
                self._seen = ((self._seen << udelta) | 1) & _HISTORY_MASK
            elif udelta <= _SEQ_MOD - _MAX_MISORDER:
                # A big jump is believed only when the next packet continues from it:
                # that is a restarted sender, not a stray packet.
                if seq != self._bad_seq:
                    self._bad_seq = (seq + 1) & 0xFFFF
                    return False
                self._init_seq(seq)
            else:
                behind = _SEQ_MOD - udelta
                if behind < _HISTORY:
                    bit = 1 << behind
                    if self._seen & bit:
                        self._duplicates += 1
                        return False
                    self._seen |= bit
        self._received += 1
        transit = (arrival_rtp_units - rtp_timestamp) & 0xFFFFFFFF
        if self.transit is not None:
            d = (transit - self.transit) & 0xFFFFFFFF
            if d & 0x80000000:
                d = 0x100000000 - d
            self.jitter += (d - self.jitter) / 16.0
        self.transit = transit
        return True


def _state(stats: ReceptionStatistics) -> dict[str, object]:
    """Every field of the statistics (they live in slots)."""
    return {name: getattr(stats, name) for name in ReceptionStatistics.__slots__}


_STEPS = st.one_of(
    st.just(("by", 1)),  # the next in order: the fast path
    st.tuples(st.just("by"), st.integers(-120, 3500)),  # reordered, duplicated, a gap
    st.tuples(st.just("at"), st.integers(0, 0xFFFF)),  # anywhere: a jump or a restart
)


@given(
    st.integers(0, 0xFFFF) | st.integers(0xFFF0, 0xFFFF),  # (the wrap, in order or not)
    st.lists(_STEPS, max_size=80),
    st.integers(1, 3),
)
def test_update_counts_as_the_general_algorithm_does(start, steps, min_sequential):
    """Mostly in order (the fast path), with reordering, duplicates, jumps, wraps and
    restarts between: every figure and answer is the reference's."""
    fast, reference = ReceptionStatistics(min_sequential), _ReferenceStatistics(min_sequential)
    seq = start
    for n, (kind, value) in enumerate(steps):
        seq = (seq + value) & 0xFFFF if kind == "by" else value
        ts, arrival = (160 * seq) & 0xFFFFFFFF, (160 * seq + 37 * n) & 0xFFFFFFFF
        assert fast.update(seq, ts, arrival) == reference.update(seq, ts, arrival)
        assert _state(fast) == _state(reference)
    assert (fast.lost, fast.extended_highest_sequence) == (
        reference.lost,
        reference.extended_highest_sequence,
    )


@pytest.mark.parametrize("min_sequential", [1, 2])
def test_update_in_order_across_the_wrap_counts_as_the_general_algorithm_does(min_sequential):
    fast, reference = ReceptionStatistics(min_sequential), _ReferenceStatistics(min_sequential)
    for n in range(40):
        seq = (65520 + n) & 0xFFFF
        assert fast.update(seq, 160 * n, 160 * n + n) == reference.update(seq, 160 * n, 160 * n + n)
        assert _state(fast) == _state(reference)
