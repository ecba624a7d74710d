"""Call quality from reception statistics: an E-model estimate of MOS, and the
per-codec RTP totals of sessions that have ended.

The estimate follows ITU-T G.107's E-model with the defaults for everything a
media server cannot see (room noise, echo, the handset): R = 93.2 - Id - Ie,eff,
with Id from the one-way delay and Ie,eff from the codec's impairment and
packet loss (G.107 §3.5, values of G.113 Appendix I). The network delay is not
known without RTCP round trips, so the caller passes what it knows (jitter
buffering plus a fixed allowance); it is an estimate for dashboards, not a
measurement of what a listener hears.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from media.leg import Leg

__all__ = ["CODEC_IMPAIRMENT", "LegQuality", "RtpTotals", "estimate_mos", "leg_quality"]

JITTER_BUFFER_MS = 60.0  # three 20 ms packets (media.session's default depth)

# Ie (equipment impairment) and Bpl (packet-loss robustness) per codec, G.113
# Appendix I; G.711 with packet loss concealment. G.722 and Opus are wideband
# codecs scored on the narrowband scale as G.711 is (their wideband advantage is
# outside this model).
CODEC_IMPAIRMENT: dict[str, tuple[float, float]] = {
    "PCMU": (0.0, 25.1),
    "PCMA": (0.0, 25.1),
    "G722": (0.0, 25.1),
    "OPUS": (0.0, 25.1),
}
_DEFAULT_IMPAIRMENT = (10.0, 20.0)


def _delay_impairment(delay_ms: float) -> float:
    """Id from the absolute one-way delay: G.107's Idd (echo-free, so Idte = Idle = 0)."""
    if delay_ms <= 100:
        return 0.0
    x = math.log2(delay_ms / 100.0)
    result: float = 25.0 * ((1 + x**6) ** (1 / 6) - 3 * (1 + (x / 3) ** 6) ** (1 / 6) + 2)
    return result


def estimate_mos(codec: str, loss: float, delay_ms: float) -> float:
    """MOS-CQE (1 to 4.5) for ``loss`` (0..1 of packets) at ``delay_ms`` one way."""
    ie, bpl = CODEC_IMPAIRMENT.get(codec.upper(), _DEFAULT_IMPAIRMENT)
    ppl = 100.0 * min(max(loss, 0.0), 1.0)
    ie_eff = ie + (95.0 - ie) * ppl / (ppl + bpl)  # random loss: BurstR = 1
    r = 93.2 - _delay_impairment(max(delay_ms, 0.0)) - ie_eff
    if r <= 0:
        return 1.0
    if r >= 100:
        return 4.5
    # The G.107 polynomial dips just below 1 for small R (about 0 < R < 6.5): the scale
    # starts at 1.
    return max(1.0, 1 + 0.035 * r + 7e-6 * r * (r - 60) * (100 - r))


@dataclass(slots=True)
class RtpTotals:
    """Packets of one codec, summed over sessions that have ended."""

    received: int = 0
    lost: int = 0
    sent: int = 0


@dataclass(frozen=True, slots=True)
class LegQuality:
    """What a leg has received so far: RFC 3550 counts and the estimate from them.

    ``mos`` takes the delay we add (the jitter buffer) plus twice the measured
    jitter as the one-way delay; the network's own delay is not known here.
    """

    codec: str
    received: int
    lost: int
    jitter_ms: float
    mos: float | None  # None until a packet has arrived

    @property
    def loss(self) -> float:
        expected = self.received + self.lost
        return self.lost / expected if expected else 0.0


def leg_quality(leg: Leg) -> LegQuality | None:
    """The quality of a leg that keeps RFC 3550 reception statistics (``leg.stats``),
    or None for one that does not."""
    stats = leg.stats
    if stats is None:
        return None
    received, lost = stats.received, max(stats.lost, 0)
    jitter_ms = 1000.0 * stats.jitter / leg.sample_rate
    mos = None
    if received:
        loss = lost / (received + lost)
        mos = estimate_mos(leg.codec, loss, JITTER_BUFFER_MS + 2 * jitter_ms)
    return LegQuality(leg.codec, received, lost, jitter_ms, mos)
