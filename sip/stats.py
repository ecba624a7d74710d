"""Counts of what the SIP layer sent and received, for metrics.

Plain counters incremented per message (a dictionary update, nothing more) and
read whenever someone asks: the composition root turns them into Prometheus
samples at scrape time, so the SIP core knows nothing of Prometheus.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

__all__ = ["SipCounters"]


@dataclass(slots=True)
class SipCounters:
    """Requests by method, responses by (method of their request, status code).

    ``retransmissions`` counts the requests and responses a transaction sent
    again (RFC 3261 §17: timers A, E and G, the 2xx retransmitted until its ACK,
    and answers to a peer's own retransmissions), by the transaction's method.
    """

    requests_received: Counter[str] = field(default_factory=Counter)
    responses_received: Counter[tuple[str, int]] = field(default_factory=Counter)
    requests_sent: Counter[str] = field(default_factory=Counter)
    responses_sent: Counter[tuple[str, int]] = field(default_factory=Counter)
    retransmissions: Counter[str] = field(default_factory=Counter)
