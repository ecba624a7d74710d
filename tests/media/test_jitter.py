import pytest
from hypothesis import given
from hypothesis import strategies as st

from media.jitter import JitterBuffer


def payload(seq):
    return seq.to_bytes(2, "big")


def push(buffer, seq):
    buffer.push(seq & 0xFFFF, (seq * 160) & 0xFFFFFFFF, payload(seq & 0xFFFF))


def pops(buffer, count):
    out = []
    for _ in range(count):
        item = buffer.pop()
        out.append(None if item is None else int.from_bytes(item[1], "big"))
    return out


def test_prefill_then_continuous_play_out():
    buffer = JitterBuffer(depth=3)
    push(buffer, 10)
    assert buffer.pop() is None
    push(buffer, 11)
    assert buffer.pop() is None
    push(buffer, 12)
    assert buffer.pop() == (1600, payload(10))
    for seq in range(13, 20):
        push(buffer, seq)
        assert buffer.pop() == (seq * 160 - 320, payload(seq - 2))
    assert buffer.stats.lost == 0
    assert len(buffer) == 2


def test_reordering_within_depth_is_repaired():
    buffer = JitterBuffer(depth=3)
    for seq in [2, 0, 1, 4, 3, 6, 5, 7]:
        push(buffer, seq)
    assert pops(buffer, 8) == list(range(8))
    assert buffer.stats.lost == 0


def test_duplicates_are_dropped():
    buffer = JitterBuffer(depth=2)
    for seq in [0, 1, 1, 2, 0]:
        push(buffer, seq)
    assert pops(buffer, 3) == [0, 1, 2]
    assert buffer.stats.duplicate == 2
    push(buffer, 2)  # already played: counts as late, not played again
    assert buffer.pop() is None
    assert buffer.stats.late == 1


def test_loss_with_steady_arrivals():
    buffer = JitterBuffer(depth=3)
    played = []
    for seq in range(20):
        if seq != 8:
            push(buffer, seq)
        played.extend(pops(buffer, 1))
    assert played == [None, None, 0, 1, 2, 3, 4, 5, 6, 7, None, *range(9, 18)]
    assert buffer.stats.lost == 1


def test_late_packet_after_its_slot_is_dropped():
    buffer = JitterBuffer(depth=2)
    for seq in [0, 1, 3, 4]:
        push(buffer, seq)
    assert pops(buffer, 3) == [0, 1, None]
    push(buffer, 2)
    assert pops(buffer, 1) == [3]
    assert (buffer.stats.late, buffer.stats.lost) == (1, 1)


def test_sequence_wraparound():
    buffer = JitterBuffer(depth=3)
    for seq in [65533, 65535, 65534, 1, 0, 2]:
        push(buffer, seq)
    assert pops(buffer, 6) == [65533, 65534, 65535, 0, 1, 2]
    assert buffer.stats.lost == 0


def test_big_gap_is_skipped_without_adding_latency():
    buffer = JitterBuffer(depth=3)
    played = []
    for seq in range(5):
        push(buffer, seq)
        played.extend(pops(buffer, 1))
    # An outage of 40 packets: the buffer drains and waits instead of counting losses.
    played.extend(pops(buffer, 40))
    for seq in range(45, 50):
        push(buffer, seq)
        played.extend(pops(buffer, 1))
    assert played[:5] == [None, None, 0, 1, 2]
    assert played[5:7] == [3, 4]
    assert set(played[7:45]) == {None}
    assert played[45:] == [None, None, 45, 46, 47]
    assert buffer.stats.lost == 40
    assert buffer.stats.underruns == 1


def test_gap_larger_than_depth_skips_at_once_when_packets_are_waiting():
    buffer = JitterBuffer(depth=2)
    for seq in [0, 1, 10, 11, 12]:
        push(buffer, seq)
    assert pops(buffer, 5) == [0, 1, 10, 11, 12]
    assert buffer.stats.lost == 8


def test_pause_without_loss_is_not_counted_as_loss():
    buffer = JitterBuffer(depth=2)
    played = []
    for seq in range(4):
        push(buffer, seq)
        played.extend(pops(buffer, 1))
    played.extend(pops(buffer, 10))  # sender silent (DTX or hold)
    for seq in range(4, 8):
        push(buffer, seq)
        played.extend(pops(buffer, 1))
    assert [p for p in played if p is not None] == list(range(7))
    assert buffer.stats.lost == 0


def test_sender_restart_resyncs():
    buffer = JitterBuffer(depth=2)
    for seq in range(100, 105):
        push(buffer, seq)
    assert pops(buffer, 3) == [100, 101, 102]
    for seq in range(40000, 40006):
        push(buffer, seq)
    assert pops(buffer, 6) == list(range(40000, 40006))
    assert buffer.stats.resyncs == 1


def test_single_stray_packet_does_not_resync():
    buffer = JitterBuffer(depth=2)
    for seq in range(5):
        push(buffer, seq)
    push(buffer, 30000)
    push(buffer, 5)
    assert pops(buffer, 6) == [0, 1, 2, 3, 4, 5]
    assert buffer.stats.resyncs == 0


def test_restart_to_lower_sequence():
    buffer = JitterBuffer(depth=1)
    for seq in range(5000, 5003):
        push(buffer, seq)
    assert pops(buffer, 3) == [5000, 5001, 5002]
    push(buffer, 7)
    push(buffer, 8)
    assert pops(buffer, 2) == [7, 8]


def test_capacity_bounds_memory():
    buffer = JitterBuffer(depth=3, capacity=10)
    for seq in range(100):
        push(buffer, seq)
    assert len(buffer) == 10
    assert buffer.stats.overflow == 90
    assert pops(buffer, 10) == list(range(90, 100))


def test_overflow_while_playing_moves_play_out_forward():
    buffer = JitterBuffer(depth=2, capacity=4)
    for seq in range(3):
        push(buffer, seq)
    assert pops(buffer, 1) == [0]
    for seq in range(3, 8):
        push(buffer, seq)
    assert pops(buffer, 4) == [4, 5, 6, 7]
    assert buffer.stats.overflow == 3
    assert buffer.stats.lost == 0


@pytest.mark.parametrize(("depth", "capacity"), [(0, 10), (5, 4)])
def test_bad_configuration(depth, capacity):
    with pytest.raises(ValueError):
        JitterBuffer(depth, capacity)


@given(
    st.integers(0, 0xFFFF),
    st.integers(1, 5),
    st.lists(st.integers(-4, 4), min_size=1, max_size=120),
    st.lists(st.integers(0, 99), max_size=120),
    st.lists(st.booleans(), max_size=120),
)
def test_play_out_is_ordered_and_unique(start, depth, jitter, losses, ticks):
    """Whatever the reordering, loss and timing: in order, each packet at most once."""
    buffer = JitterBuffer(depth=depth)
    arrivals = sorted(
        (i + jitter[i % len(jitter)], i)
        for i in range(len(jitter))
        if not (losses and losses[i % len(losses)] < 10)
    )
    played = []
    for index, (_, i) in enumerate(arrivals):
        push(buffer, start + i)
        if not ticks or ticks[index % len(ticks)]:
            item = buffer.pop()
            if item is not None:
                played.append(item)
    played.extend(item for item in iter(buffer.pop, None))
    unwrapped = [(int.from_bytes(p, "big") - start) & 0xFFFF for _, p in played]
    assert unwrapped == sorted(set(unwrapped))
    for ts, p in played:
        assert ts == ((start + ((int.from_bytes(p, "big") - start) & 0xFFFF)) * 160) & 0xFFFFFFFF
    stats = buffer.stats
    assert stats.received == len(arrivals)
    assert len(played) + stats.late + stats.duplicate + len(buffer) <= stats.received
