"""DTMF as RTP telephone-events (RFC 4733) and in-band DTMF detection (ITU-T Q.23/Q.24)."""

from __future__ import annotations

import math
import struct
from collections import deque
from dataclasses import dataclass

import numpy as np

__all__ = [
    "DIGITS",
    "DtmfEvent",
    "DtmfParseError",
    "DtmfReceiver",
    "DtmfSender",
    "GoertzelDetector",
    "dtmf_packets",
]

DIGITS = "0123456789*#ABCD"
_EVENT = struct.Struct("!BBH")
_MAX_DURATION = 0xFFFF
_END_REPEATS = 3


class DtmfParseError(ValueError):
    """A telephone-event payload is shorter than the 4 octets of RFC 4733 §2.3."""


@dataclass(slots=True)
class DtmfEvent:
    """The telephone-event payload format (RFC 4733 §2.3): event, E bit, volume, duration."""

    event: int
    end: bool = False
    volume: int = 10
    duration: int = 0

    @classmethod
    def parse(cls, data: bytes) -> DtmfEvent:
        # RFC 2198 redundancy aside, the first 4 octets are the event; extra octets are ignored.
        if len(data) < 4:
            raise DtmfParseError(f"telephone-event payload too short ({len(data)} bytes)")
        event, flags, duration = _EVENT.unpack_from(data, 0)
        return cls(event, bool(flags & 0x80), flags & 0x3F, duration)

    def serialize(self) -> bytes:
        if not 0 <= self.volume <= 63:
            raise ValueError("volume must be 0..63 (-dBm0)")
        return _EVENT.pack(self.event, (0x80 if self.end else 0) | self.volume, self.duration)

    @property
    def digit(self) -> str | None:
        return DIGITS[self.event] if self.event < len(DIGITS) else None


class DtmfReceiver:
    """Turns received telephone-event packets into digits, once per event (RFC 4733 §2.5.2).

    An event is identified by its RTP timestamp, so the digit is reported by whichever packet of
    the event arrives first (start, update or end) and never again for retransmitted end packets
    or late packets of recent events. A new segment of a long event (§2.5.1.3: same event,
    no marker, timestamp advanced by the previous segment's duration) is not a new digit.
    """

    def __init__(self, history: int = 16) -> None:
        self._recent: deque[int] = deque(maxlen=history)
        self._last_timestamp: int | None = None
        self._last_event = -1
        self._last_duration = 0

    def feed(self, marker: bool, timestamp: int, payload: bytes) -> str | None:
        try:
            event = DtmfEvent.parse(payload)
        except DtmfParseError:
            return None
        if timestamp == self._last_timestamp:
            self._last_duration = max(self._last_duration, event.duration)
            return None
        if timestamp in self._recent:
            return None
        continuation = (
            not marker
            and event.event == self._last_event
            and self._last_timestamp is not None
            and timestamp == (self._last_timestamp + self._last_duration) & 0xFFFFFFFF
            and self._last_duration >= _MAX_DURATION
        )
        self._recent.append(timestamp)
        self._last_timestamp = timestamp
        self._last_event = event.event
        self._last_duration = event.duration
        if continuation:
            return None
        return event.digit


def dtmf_packets(
    digit: str,
    duration_ms: int = 100,
    volume: int = 10,
    packet_ms: int = 20,
    clock_rate: int = 8000,
) -> list[tuple[bool, int, bytes]]:
    """The telephone-event packets for one key press (RFC 4733 §2.5.1), one per `packet_ms`.

    Each item is (marker, timestamp_offset, payload). All packets of an event share the RTP
    timestamp of its start, so timestamp_offset is 0 unless the event is longer than 0xFFFF
    timestamp units and is cut into segments (§2.5.1.3), whose offsets are the units elapsed at
    their start. The first packet carries the marker, updates carry the growing duration, and
    the end packet (E bit) is sent three times (§2.5.1.4).
    """
    event = DIGITS.find(digit.upper()) if len(digit) == 1 else -1
    if event < 0:
        raise ValueError(f"not a DTMF digit: {digit!r}")
    if duration_ms <= 0 or packet_ms <= 0:
        raise ValueError("duration and packet interval must be positive")
    if not 0 <= volume <= 63:
        raise ValueError("volume must be 0..63 (-dBm0)")
    total = duration_ms * clock_rate // 1000
    step = packet_ms * clock_rate // 1000
    if total <= 0 or step <= 0:
        raise ValueError("duration and packet interval must be at least one sample")
    packets: list[tuple[bool, int, bytes]] = []
    offset = 0
    while True:
        length = min(total - offset, _MAX_DURATION)
        last_segment = offset + length == total
        duration = 0
        while duration < length:
            duration = min(duration + step, length)
            end = last_segment and duration == length
            payload = DtmfEvent(event, end, volume, duration).serialize()
            packets.append((not packets, offset, payload))
        if last_segment:
            # Retransmitting the end packet lets the event survive the loss of one or two.
            packets.extend([(False, offset, payload)] * (_END_REPEATS - 1))
            return packets
        offset += _MAX_DURATION


class DtmfSender:
    """Paces queued digits as RFC 4733 packets, one call to `next_packet` per packet interval.

    `next_packet` returns (marker, timestamp_offset, payload) or None when there is nothing to
    send in this interval (idle, or the gap between digits). The caller stamps the packet with
    the stream's RTP timestamp at the event start plus timestamp_offset; a marker means a new
    event has started.
    """

    def __init__(
        self,
        duration_ms: int = 100,
        gap_ms: int = 100,
        volume: int = 10,
        packet_ms: int = 20,
        clock_rate: int = 8000,
    ) -> None:
        self._duration_ms = duration_ms
        self._gap_packets = max(0, math.ceil(gap_ms / packet_ms))
        self._volume = volume
        self._packet_ms = packet_ms
        self._clock_rate = clock_rate
        self._queue: deque[tuple[bool, int, bytes] | None] = deque()

    def queue(self, digits: str) -> None:
        for digit in digits:
            packets = dtmf_packets(
                digit, self._duration_ms, self._volume, self._packet_ms, self._clock_rate
            )
            if self._queue:
                self._queue.extend([None] * self._gap_packets)
            self._queue.extend(packets)

    @property
    def busy(self) -> bool:
        return bool(self._queue)

    def next_packet(self) -> tuple[bool, int, bytes] | None:
        return self._queue.popleft() if self._queue else None


_ROWS = (697.0, 770.0, 852.0, 941.0)
_COLUMNS = (1209.0, 1336.0, 1477.0, 1633.0)
_KEYPAD = ("123A", "456B", "789C", "*0#D")


class GoertzelDetector:
    """In-band DTMF detection on 8 kHz int16 audio (ITU-T Q.23 frequencies, Q.24 limits).

    Audio is cut into blocks of 205 samples (about 25 ms, a resolution of 39 Hz) and the power
    at the eight DTMF frequencies is measured per block, which is the Goertzel algorithm's job;
    here the eight single-bin DFTs are one matrix product. A block holds a digit when one row
    and one column tone stand out from their groups, their levels are within the allowed twist,
    they are loud enough, and together they carry most of the block's energy (which rejects
    speech and noise). A digit is reported once, when two consecutive blocks agree, and
    again only after it has been absent for two blocks.
    """

    BLOCK = 205

    def __init__(
        self,
        rate: int = 8000,
        min_level_dbfs: float = -36.0,
        max_twist_db: float = 10.0,
        min_peak_ratio_db: float = 6.0,
        min_tone_fraction: float = 0.7,
    ) -> None:
        n = np.arange(self.BLOCK)
        window = np.hanning(self.BLOCK)
        frequencies = np.array(_ROWS + _COLUMNS)
        angles = 2.0 * np.pi * np.outer(frequencies, n) / rate
        # Rows 0-7 project onto cosines, 8-15 onto sines; window folded in.
        self._basis = np.vstack([np.cos(angles), np.sin(angles)]) * window
        # Scales a bin's power to the windowed energy of a sine at that frequency.
        self._power_scale = 2.0 * float(np.sum(window**2)) / float(np.sum(window)) ** 2
        self._window_sq = window**2
        # Minimum per-tone power: a sine at min_level_dbfs RMS over the windowed block.
        rms = 32768.0 * 10 ** (min_level_dbfs / 20)
        self._min_tone_power = rms**2 * float(np.sum(self._window_sq))
        self._twist = 10 ** (max_twist_db / 10)
        self._peak_ratio = 10 ** (min_peak_ratio_db / 10)
        self._min_fraction = min_tone_fraction
        self._pending = np.zeros(0, dtype=np.float64)
        self._candidate: str | None = None
        self._current: str | None = None
        self._absent = 0

    def _classify(self, block: np.ndarray) -> str | None:
        projections = self._basis @ block
        power = (projections[:8] ** 2 + projections[8:] ** 2) * self._power_scale
        rows, columns = power[:4], power[4:]
        row = int(np.argmax(rows))
        column = int(np.argmax(columns))
        row_power, column_power = rows[row], columns[column]
        if row_power < self._min_tone_power or column_power < self._min_tone_power:
            return None
        if row_power > column_power * self._twist or column_power > row_power * self._twist:
            return None
        for group, best, index in ((rows, row_power, row), (columns, column_power, column)):
            others = np.delete(group, index)
            if np.any(others * self._peak_ratio > best):
                return None
        energy = float(np.dot(block * block, self._window_sq))
        if row_power + column_power < self._min_fraction * energy:
            return None
        return _KEYPAD[row][column]

    def feed(self, samples: np.ndarray) -> str | None:
        """Feed audio of any length; returns digits that started in it (usually one) or None."""
        pending = np.concatenate([self._pending, np.asarray(samples, dtype=np.float64)])
        found = []
        blocks = len(pending) // self.BLOCK
        for i in range(blocks):
            digit = self._classify(pending[i * self.BLOCK : (i + 1) * self.BLOCK])
            if digit is not None and digit == self._candidate and digit != self._current:
                self._current = digit
                self._absent = 0
                found.append(digit)
            elif digit is None or digit != self._current:
                self._absent += 1
                if self._absent >= 2:
                    self._current = None
            else:
                self._absent = 0
            self._candidate = digit
        self._pending = pending[blocks * self.BLOCK :]
        return "".join(found) or None
