import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from media.dtmf import (
    DIGITS,
    DtmfEvent,
    DtmfParseError,
    DtmfReceiver,
    DtmfSender,
    GoertzelDetector,
    dtmf_packets,
)
from media.tones import sine

# --- RFC 4733 payload ---


def test_parse_end_packet():
    event = DtmfEvent.parse(b"\x05\x8a\x03\x20")
    assert event == DtmfEvent(event=5, end=True, volume=10, duration=800)
    assert event.digit == "5"
    assert event.serialize() == b"\x05\x8a\x03\x20"


def test_reserved_bit_is_ignored_and_extra_octets_tolerated():
    assert DtmfEvent.parse(b"\x0b\x4f\xff\xff\x00") == DtmfEvent(11, False, 15, 65535)
    assert DtmfEvent(11, False, 15, 65535).digit == "#"
    assert DtmfEvent(16, False, 0, 0).digit is None  # hook flash


@pytest.mark.parametrize("data", [b"", b"\x01", b"\x01\x02\x03"])
def test_short_payload_raises(data):
    with pytest.raises(DtmfParseError):
        DtmfEvent.parse(data)


def test_serialize_rejects_bad_volume():
    with pytest.raises(ValueError):
        DtmfEvent(1, False, 64, 0).serialize()


@given(
    st.builds(
        DtmfEvent, st.integers(0, 255), st.booleans(), st.integers(0, 63), st.integers(0, 65535)
    )
)
def test_round_trip(event):
    data = event.serialize()
    assert len(data) == 4
    assert DtmfEvent.parse(data) == event


def test_digit_table():
    assert DIGITS == "0123456789*#ABCD"
    assert [DtmfEvent(code).digit for code in (0, 9, 10, 11, 12, 15)] == list("09*#AD")


# --- sender ---


def test_packets_for_100ms_digit():
    assert dtmf_packets("5") == [
        (True, 0, bytes.fromhex("050a00a0")),
        (False, 0, bytes.fromhex("050a0140")),
        (False, 0, bytes.fromhex("050a01e0")),
        (False, 0, bytes.fromhex("050a0280")),
        (False, 0, bytes.fromhex("058a0320")),
        (False, 0, bytes.fromhex("058a0320")),
        (False, 0, bytes.fromhex("058a0320")),
    ]


def test_packets_for_short_odd_duration_and_letters():
    assert dtmf_packets("d", duration_ms=50, volume=0) == [
        (True, 0, bytes.fromhex("0f0000a0")),
        (False, 0, bytes.fromhex("0f000140")),
        (False, 0, bytes.fromhex("0f800190")),
        (False, 0, bytes.fromhex("0f800190")),
        (False, 0, bytes.fromhex("0f800190")),
    ]
    # An event shorter than one packet is a single (marked) end packet, sent three times.
    packets = dtmf_packets("#", duration_ms=10)
    assert packets[0] == (True, 0, bytes.fromhex("0b8a0050"))
    assert packets[1:] == [(False, 0, bytes.fromhex("0b8a0050"))] * 2


def test_wideband_clock_rate():
    packets = dtmf_packets("1", duration_ms=40, clock_rate=16000)
    assert [DtmfEvent.parse(p).duration for _, _, p in packets] == [320, 640, 640, 640]


def test_long_event_is_split_into_segments():
    packets = dtmf_packets("1", duration_ms=17000)
    offsets = sorted({offset for _, offset, _ in packets})
    assert offsets == [0, 65535, 131070]
    events = [(marker, offset, DtmfEvent.parse(payload)) for marker, offset, payload in packets]
    assert [marker for marker, _, _ in events].count(True) == 1
    first_segment_end = [e for _, offset, e in events if offset == 0][-1]
    assert first_segment_end == DtmfEvent(1, False, 10, 65535)
    assert all(e.duration <= 65535 for _, _, e in events)
    assert [e.end for _, _, e in events].count(True) == 3
    assert events[-1] == (False, 131070, DtmfEvent(1, True, 10, 17000 * 8 - 131070))


@pytest.mark.parametrize(
    ("digit", "kwargs"),
    [
        ("E", {}),
        ("", {}),
        ("12", {}),
        ("1", {"duration_ms": 0}),
        ("1", {"packet_ms": 0}),
        ("1", {"volume": 64}),
        ("1", {"duration_ms": 1, "clock_rate": 100}),
    ],
)
def test_bad_sender_arguments(digit, kwargs):
    with pytest.raises(ValueError):
        dtmf_packets(digit, **kwargs)


def test_sender_paces_digits_with_gaps():
    sender = DtmfSender(duration_ms=40, gap_ms=40)
    assert sender.next_packet() is None
    sender.queue("12")
    out = []
    while sender.busy:
        out.append(sender.next_packet())
    assert out == [*dtmf_packets("1", 40), None, None, *dtmf_packets("2", 40)]
    assert sender.next_packet() is None


# --- receiver ---


def feed_all(receiver, packets, timestamp):
    return [
        receiver.feed(marker, timestamp + offset, payload) for marker, offset, payload in packets
    ]


def test_receiver_reports_each_event_once():
    receiver = DtmfReceiver()
    assert feed_all(receiver, dtmf_packets("5"), 1000) == ["5"] + [None] * 6


def test_receiver_without_start_packet():
    receiver = DtmfReceiver()
    packets = dtmf_packets("7")[1:]
    assert feed_all(receiver, packets, 1000) == ["7"] + [None] * 5


def test_receiver_only_end_packets():
    receiver = DtmfReceiver()
    assert feed_all(receiver, dtmf_packets("#")[-3:], 500) == ["#", None, None]


def test_same_digit_twice_is_two_events():
    receiver = DtmfReceiver()
    first = feed_all(receiver, dtmf_packets("1"), 1000)
    second = feed_all(receiver, dtmf_packets("1"), 2600)
    assert first.count("1") == 1
    assert second.count("1") == 1


def test_late_retransmission_of_previous_event_is_ignored():
    receiver = DtmfReceiver()
    end_of_first = dtmf_packets("4")[-1]
    assert feed_all(receiver, dtmf_packets("4")[:5], 1000).count("4") == 1
    assert feed_all(receiver, dtmf_packets("6")[:2], 2600) == ["6", None]
    assert receiver.feed(False, 1000, end_of_first[2]) is None


def test_long_event_segments_are_one_digit():
    receiver = DtmfReceiver()
    results = feed_all(receiver, dtmf_packets("9", duration_ms=17000), 123)
    assert results.count("9") == 1
    assert results[0] == "9"


def test_timestamp_wrap_is_a_new_event():
    receiver = DtmfReceiver()
    assert feed_all(receiver, dtmf_packets("2"), 0xFFFFFF00).count("2") == 1
    assert feed_all(receiver, dtmf_packets("3"), 0x000002A0).count("3") == 1


def test_receiver_ignores_garbage_and_non_digit_events():
    receiver = DtmfReceiver()
    assert receiver.feed(True, 10, b"\x05") is None
    assert receiver.feed(True, 20, DtmfEvent(16, False, 10, 160).serialize()) is None
    assert receiver.feed(True, 30, DtmfEvent(3, False, 10, 160).serialize()) == "3"


@given(
    st.lists(st.sampled_from(DIGITS), min_size=1, max_size=8),
    st.integers(0, 0xFFFFFFFF),
    st.randoms(use_true_random=False),
)
def test_receiver_with_loss_reorder_and_duplicates(digits, start, rng):
    receiver = DtmfReceiver()
    heard = []
    timestamp = start
    for digit in digits:
        packets = dtmf_packets(digit, duration_ms=rng.choice([40, 60, 100, 200]))
        # Lose a random subset but keep at least one packet of the event.
        kept = [p for p in packets if rng.random() < 0.6] or [rng.choice(packets)]
        kept += [rng.choice(kept) for _ in range(rng.randrange(3))]  # duplicates
        rng.shuffle(kept)
        for marker, offset, payload in kept:
            digit_heard = receiver.feed(marker, (timestamp + offset) & 0xFFFFFFFF, payload)
            if digit_heard:
                heard.append(digit_heard)
        timestamp += 8000
    assert heard == digits


# --- in-band detection ---

ROWS = (697, 770, 852, 941)
COLUMNS = (1209, 1336, 1477, 1633)
KEYPAD = ("123A", "456B", "789C", "*0#D")


def tone_pair(digit, duration=0.1, amplitude=0.25, twist_db=0.0, deviation=0.0):
    row = next(i for i, keys in enumerate(KEYPAD) if digit in keys)
    column = KEYPAD[row].index(digit)
    low = sine(ROWS[row] * (1 + deviation), duration, amplitude=amplitude)
    high = sine(
        COLUMNS[column] * (1 + deviation), duration, amplitude=amplitude * 10 ** (twist_db / 20)
    )
    return low.astype(np.float64) + high


def detect(signal, frame=160):
    detector = GoertzelDetector()
    samples = np.clip(np.rint(signal), -32768, 32767).astype(np.int16)
    found = []
    for start in range(0, len(samples), frame):
        digit = detector.feed(samples[start : start + frame])
        if digit:
            found.append(digit)
    return "".join(found)


SILENCE = np.zeros(800)


def test_detects_all_sixteen_digits_once_each():
    signal = np.concatenate([SILENCE] + [np.concatenate([tone_pair(d), SILENCE]) for d in DIGITS])
    assert detect(signal) == DIGITS


@pytest.mark.parametrize("frame", [80, 160, 205, 320, 1000])
def test_frame_size_does_not_matter(frame):
    signal = np.concatenate([SILENCE, tone_pair("8"), SILENCE, tone_pair("0"), SILENCE])
    assert detect(signal, frame) == "80"


def test_one_feed_with_several_digits():
    signal = np.concatenate([SILENCE, tone_pair("4"), SILENCE, tone_pair("2"), SILENCE])
    detector = GoertzelDetector()
    assert detector.feed(signal.astype(np.int16)) == "42"


def test_held_digit_reported_once_and_repeats_after_a_pause():
    assert detect(np.concatenate([SILENCE, tone_pair("3", duration=2.0), SILENCE])) == "3"
    gap = np.zeros(400)
    assert detect(np.concatenate([SILENCE, tone_pair("3"), gap, tone_pair("3"), SILENCE])) == "33"
    assert detect(np.concatenate([SILENCE, tone_pair("3"), tone_pair("4"), SILENCE])) == "34"


@pytest.mark.parametrize("twist_db", [-6.0, -3.0, 3.0, 6.0])
def test_accepts_moderate_twist(twist_db):
    assert detect(np.concatenate([SILENCE, tone_pair("5", twist_db=twist_db), SILENCE])) == "5"


@pytest.mark.parametrize("twist_db", [-14.0, 14.0])
def test_rejects_excessive_twist(twist_db):
    assert detect(np.concatenate([SILENCE, tone_pair("5", twist_db=twist_db), SILENCE])) == ""


@pytest.mark.parametrize(
    ("deviation", "expected"), [(-0.015, "9"), (0.015, "9"), (-0.035, ""), (0.035, "")]
)
def test_frequency_tolerance(deviation, expected):
    assert (
        detect(np.concatenate([SILENCE, tone_pair("9", deviation=deviation), SILENCE])) == expected
    )


@pytest.mark.parametrize(("amplitude", "expected"), [(0.45, "1"), (0.05, "1"), (0.005, "")])
def test_energy_threshold(amplitude, expected):
    assert (
        detect(np.concatenate([SILENCE, tone_pair("1", amplitude=amplitude), SILENCE])) == expected
    )


def test_detects_in_moderate_noise():
    rng = np.random.default_rng(7)
    pair = tone_pair("7", duration=0.2)
    noise = rng.normal(0, np.sqrt(np.mean(pair**2)) / 10 ** (15 / 20), len(pair))
    assert detect(np.concatenate([SILENCE, pair + noise, SILENCE])) == "7"


def test_rejects_too_short_tones():
    assert detect(np.concatenate([SILENCE, tone_pair("2", duration=0.02), SILENCE])) == ""


def test_no_false_triggers():
    rng = np.random.default_rng(11)
    t = np.arange(3 * 8000) / 8000
    # A voiced-speech stand-in: a gliding 90-180 Hz fundamental with 30 harmonics.
    pitch = 135 + 45 * np.sin(2 * np.pi * 0.7 * t)
    phase = 2 * np.pi * np.cumsum(pitch) / 8000
    speech = sum(np.sin(k * phase) / k for k in range(1, 31)) * 4000
    assert detect(speech) == ""
    assert detect(np.zeros(8000)) == ""
    assert detect(rng.normal(0, 6000, 8000)) == ""
    assert detect(sine(1000, 1.0, amplitude=0.8).astype(np.float64)) == ""
    assert detect(sine(697, 1.0, amplitude=0.5).astype(np.float64)) == ""
    assert detect(sine(1336, 1.0, amplitude=0.5).astype(np.float64)) == ""
    # A DTMF pair buried under a louder third tone (music) does not count either.
    assert detect(tone_pair("1", duration=1.0) + sine(440, 1.0, amplitude=0.4)) == ""
