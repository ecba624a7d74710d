"""What the interop tests expect of the server's RTP, as reusable checks.

Each check returns a list of problems (empty = pass) and a summary dict, so a
test can assert on the list and print the summary in the failure message.
"""

from __future__ import annotations

from dataclasses import dataclass
from itertools import pairwise
from pathlib import Path

import numpy as np

from .audio import RATE, dominant_frequency, level_dbfs, sine, ulaw_decode, ulaw_encode
from .pcap import write_pcap
from .rtp import RtpPacket

PCMU = 0
TELEPHONE_EVENT = 101
FRAME = 160  # samples in 20 ms at 8 kHz


def rtp_stream_problems(packets: list[RtpPacket], *, payload_type: int = PCMU) -> list[str]:
    """RTP sanity of one sender's stream: one SSRC, the payload type we
    negotiated, sequence numbers +1 and timestamps +160 per 20 ms packet, and
    about 50 packets per second of arrival time."""
    problems: list[str] = []
    if len(packets) < 10:
        return [f"only {len(packets)} RTP packets arrived"]
    ssrcs = {p.ssrc for p in packets}
    if len(ssrcs) != 1:
        problems.append(f"{len(ssrcs)} SSRCs in one call's stream: {sorted(ssrcs)}")
    pts = {p.payload_type for p in packets}
    if pts != {payload_type}:
        problems.append(f"payload types {sorted(pts)}, expected only {payload_type}")
    bad_seq = bad_ts = 0
    for prev, cur in pairwise(packets):
        if (cur.sequence - prev.sequence) & 0xFFFF != 1:
            bad_seq += 1
        step = (cur.timestamp - prev.timestamp) & 0xFFFFFFFF
        if step != len(prev.payload):
            bad_ts += 1
    # A reordered or lost packet on loopback is rare; a broken counter is not.
    if bad_seq > len(packets) // 50:
        problems.append(f"{bad_seq} of {len(packets) - 1} sequence steps are not +1")
    if bad_ts > len(packets) // 50:
        problems.append(
            f"{bad_ts} of {len(packets) - 1} timestamp steps differ from the samples sent"
        )
    sizes = {len(p.payload) for p in packets}
    if sizes != {FRAME}:
        problems.append(f"payload sizes {sorted(sizes)}, expected {FRAME} bytes (20 ms of G.711)")
    span = packets[-1].arrival - packets[0].arrival
    if span > 0.5:
        rate = (len(packets) - 1) / span
        if not 45 <= rate <= 55:
            problems.append(f"{rate:.1f} packets/s over {span:.2f} s, expected about 50")
    return problems


@dataclass
class ToneReport:
    packets: int
    seconds: float
    frequency: float
    level_dbfs: float

    def __str__(self) -> str:
        return (
            f"{self.packets} packets ({self.seconds:.2f} s of audio): peak at "
            f"{self.frequency:.1f} Hz, level {self.level_dbfs:.1f} dBFS"
        )


def tone_report(packets: list[RtpPacket], *, skip: int = 5, take: int = 50) -> ToneReport:
    """Measure ~1 s of PCMU: skip the first packets (start-up), decode `take`."""
    audio = [p for p in packets if p.payload_type == PCMU]
    chosen = audio[skip : skip + take] if len(audio) >= skip + 10 else audio
    samples = ulaw_decode(b"".join(p.payload for p in chosen))
    return ToneReport(
        packets=len(chosen),
        seconds=len(samples) / RATE,
        frequency=dominant_frequency(samples) if len(samples) else 0.0,
        level_dbfs=level_dbfs(samples),
    )


# --- the echo test signal ---------------------------------------------------

ECHO_FREQS = (730.0, 1330.0)  # not multiples of 50 Hz, so 20 ms frames differ
ECHO_SECONDS_EACH = 1.0


def echo_signal() -> list[bytes]:
    """20 ms PCMU payloads: 1 s of 730 Hz then 1 s of 1330 Hz, with a slow
    amplitude ramp so that every payload is unique (their order can be read
    back from the bytes alone)."""
    parts = [sine(f, ECHO_SECONDS_EACH, amplitude=1.0) for f in ECHO_FREQS]
    signal = np.concatenate(parts).astype(np.float64)
    ramp = np.linspace(0.2, 0.5, len(signal))
    pcm = np.round(signal * ramp).astype(np.int16)
    payload = ulaw_encode(pcm)
    frames = [payload[i : i + FRAME] for i in range(0, len(payload), FRAME)]
    assert len(set(frames)) == len(frames), "echo test frames must be unique"
    return frames


def write_echo_pcap(path: Path, frames: list[bytes], *, ssrc: int = 0x1E40C0DE) -> int:
    packets = []
    for i, frame in enumerate(frames):
        rtp = RtpPacket(PCMU, 1000 + i, 8000 + i * FRAME, ssrc, frame, marker=i == 0)
        packets.append((i * 0.020, rtp.serialize()))
    return write_pcap(path, packets)


@dataclass
class EchoReport:
    sent: int
    received: int
    matched: int
    in_order: bool
    segment_freqs: list[float]

    def __str__(self) -> str:
        freqs = ", ".join(f"{f:.0f}" for f in self.segment_freqs)
        return (
            f"sent {self.sent} frames, received {self.received} RTP packets, "
            f"{self.matched} byte-identical to a sent frame, in order: {self.in_order}; "
            f"dominant Hz per 100 ms of what came back: [{freqs}]"
        )


def echo_report(sent: list[bytes], packets: list[RtpPacket]) -> EchoReport:
    index = {frame: i for i, frame in enumerate(sent)}
    audio = [p for p in packets if p.payload_type == PCMU]
    hits = [(index[p.payload], p) for p in audio if p.payload in index]
    order = [i for i, _ in hits]
    in_order = all(b > a for a, b in pairwise(order))
    # Frequency over time of the decoded return, in 100 ms (5-frame) steps,
    # leaving out silence (comfort noise or jitter-buffer fill).
    freqs = []
    for k in range(0, len(audio) - 4, 5):
        chunk = ulaw_decode(b"".join(p.payload for p in audio[k : k + 5]))
        if level_dbfs(chunk) > -40:
            freqs.append(dominant_frequency(chunk))
    return EchoReport(len(sent), len(audio), len(hits), in_order, freqs)


def echo_problems(report: EchoReport, *, min_matched: float = 0.9) -> list[str]:
    problems = []
    if report.matched < min_matched * report.sent:
        problems.append(
            f"only {report.matched} of {report.sent} frames came back unchanged "
            f"(expected at least {min_matched:.0%}: PCMU to PCMU must not be transcoded)"
        )
    if not report.in_order:
        problems.append("frames came back out of order")
    low, high = ECHO_FREQS
    tol = 10.0
    labels = []
    for f in report.segment_freqs:
        if abs(f - low) <= tol:
            labels.append("L")
        elif abs(f - high) <= tol:
            labels.append("H")
        else:
            labels.append("?")
    text = "".join(labels)
    # 1 s of each tone is 10 windows; a window straddling the change may be "?".
    if text.count("L") < 8 or text.count("H") < 8:
        problems.append(
            f"expected ~10 windows of {low:.0f} Hz then ~10 of {high:.0f} Hz, got {text!r}"
        )
    elif text.rfind("L") > text.find("H"):
        problems.append(
            f"{low:.0f} Hz and {high:.0f} Hz came back interleaved or swapped: {text!r}"
        )
    if text.count("?") > 3:
        problems.append(f"{text.count('?')} windows of other frequencies: {text!r}")
    return problems
