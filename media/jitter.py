"""A fixed-depth RTP reorder (jitter) buffer, sans I/O: packets in, one frame out per tick."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["JitterBuffer", "JitterStats"]

# RFC 3550 Appendix A.1 limits: beyond these a sequence jump means the sender restarted.
_MAX_DROPOUT = 3000
_MAX_MISORDER = 100


@dataclass(slots=True)
class JitterStats:
    """Counters kept by JitterBuffer, in packets (RFC 3550 §6.4.1 loss terms where they apply)."""

    received: int = 0
    lost: int = 0
    late: int = 0
    duplicate: int = 0
    overflow: int = 0
    underruns: int = 0
    resyncs: int = 0


class JitterBuffer:
    """Reorders RTP packets by sequence number (RFC 3550 §5.1, 16-bit with wraparound).

    `push` is called per received packet and `pop` once per packetisation interval. Play-out
    starts once `depth` packets are held and then advances one sequence number per `pop`,
    returning None for a packet that never came (the caller conceals it). When the buffer runs
    dry it waits for `depth` packets again rather than declaring packets lost, since a sender
    that pauses (DTX, hold) resumes with the next sequence number. A gap wider than `depth` is
    skipped in one step, so a long outage does not add its length to the latency.

    A jump beyond A.1's dropout/misorder limits is believed only when the following packet
    continues from it; then the buffer restarts on the new numbering. `capacity` bounds memory:
    beyond it the oldest packet is dropped.
    """

    def __init__(self, depth: int = 3, capacity: int = 50) -> None:
        if depth < 1 or capacity < depth:
            raise ValueError("need 1 <= depth <= capacity")
        self.depth = depth
        self.capacity = capacity
        self.stats = JitterStats()
        self._packets: dict[int, tuple[int, bytes]] = {}
        # Sequence numbers are unwrapped to unbounded ints relative to the highest seen.
        self._highest: int | None = None
        self._next: int | None = None
        self._playing = False
        self._jump: tuple[int, int, bytes] | None = None

    def __len__(self) -> int:
        return len(self._packets)

    def _unwrap(self, sequence: int) -> int:
        highest = self._highest
        assert highest is not None
        return highest + ((sequence - highest + 0x8000) & 0xFFFF) - 0x8000

    def push(self, sequence: int, timestamp: int, payload: bytes) -> None:
        self.stats.received += 1
        sequence &= 0xFFFF
        if self._highest is None:
            self._highest = sequence
        ext = self._unwrap(sequence)
        delta = ext - self._highest
        if delta > _MAX_DROPOUT or delta < -_MAX_MISORDER:
            jump = self._jump
            if jump is None or sequence != (jump[0] + 1) & 0xFFFF:
                self._jump = (sequence, timestamp, payload)
                return
            self._resync(jump)
            ext = self._unwrap(sequence)
        self._jump = None
        if self._next is not None and ext < self._next:
            self.stats.late += 1
            return
        if ext in self._packets:
            self.stats.duplicate += 1
            return
        if ext > self._highest:
            self._highest = ext
        self._packets[ext] = (timestamp, payload)
        if len(self._packets) > self.capacity:
            self._drop_oldest()

    def _resync(self, jump: tuple[int, int, bytes]) -> None:
        self.stats.resyncs += 1
        self._packets.clear()
        self._highest = jump[0]
        self._next = None
        self._playing = False
        self._packets[jump[0]] = (jump[1], jump[2])

    def _drop_oldest(self) -> None:
        oldest = min(self._packets)
        del self._packets[oldest]
        self.stats.overflow += 1
        if self._next is not None and self._next <= oldest:
            self.stats.lost += oldest - self._next
            self._next = oldest + 1

    def pop(self) -> tuple[int, bytes] | None:
        """The next (timestamp, payload) in sequence order, or None (loss or still filling)."""
        packets = self._packets
        if not self._playing:
            if len(packets) < self.depth:
                return None
            self._playing = True
            self._skip_to(min(packets))
        expected = self._next
        assert expected is not None
        packet = packets.pop(expected, None)
        if packet is not None:
            self._next = expected + 1
            return packet
        if not packets:
            self._playing = False
            self.stats.underruns += 1
            return None
        oldest = min(packets)
        if oldest - expected > self.depth:
            self._skip_to(oldest)
            self._next = oldest + 1
            return packets.pop(oldest)
        self.stats.lost += 1
        self._next = expected + 1
        return None

    def _skip_to(self, sequence: int) -> None:
        if self._next is not None and sequence > self._next:
            self.stats.lost += sequence - self._next
        self._next = sequence
