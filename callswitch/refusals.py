"""Refusals: what the node turned away, told once per source and window.

Every guard of the node (SIP rate limits, the registrar's lockout, the dial and
fetch policies, TURN quotas, connection caps…) reports a refusal through one
callable, ``refused(reason, source_ip, **fields)``. The lower planes never
import this module: they take the callable as a constructor argument (typed as
``Callable[..., None]``) and the composition root hands them a :class:`Refusals`.

Each refusal is counted in ``/metrics`` (``callswitch_refusals_total{reason}``)
and logged as one logfmt line ``event=security.refused reason=… source_ip=…``
per (reason, source) and window (an IPv6 source is its /64, whose addresses a
host picks at will), with the number of refusals folded into it, so that an
attacker cannot fill the log, yet fail2ban and similar tools still see every
offending address (or prefix) once per window.
"""

from __future__ import annotations

import logging
import time
from collections import OrderedDict, defaultdict
from collections.abc import Callable

from sip.source_limits import source_group

__all__ = ["LOG_WINDOW_S", "Refusals", "Refused"]

log = logging.getLogger("callswitch.security")

LOG_WINDOW_S = 60.0
MAX_SOURCES = 10_000  # (reason, source) pairs remembered; the oldest are forgotten first

Refused = Callable[..., None]  # refused(reason, source_ip, **fields)


class Refusals:
    """Counts refusals by reason and logs each (reason, source) once per window."""

    def __init__(
        self,
        window_s: float = LOG_WINDOW_S,
        *,
        clock: Callable[[], float] = time.monotonic,
        max_sources: int = MAX_SOURCES,
    ) -> None:
        self.window_s = window_s
        self.counts: dict[str, int] = defaultdict(int)
        self._clock = clock
        self._max = max_sources
        # (reason, source) -> [window start, refusals since the last line]
        self._seen: OrderedDict[tuple[str, str], list[float]] = OrderedDict()

    def __call__(self, reason: str, source_ip: str, **fields: object) -> None:
        self.counts[reason] += 1
        now = self._clock()
        key = (reason, source_group(source_ip))  # an IPv6 host's /64 is one source
        seen = self._seen.get(key)
        if seen is not None and now - seen[0] < self.window_s:
            seen[1] += 1
            return
        suppressed = int(seen[1]) if seen is not None else 0
        self._seen[key] = [now, 0]
        self._seen.move_to_end(key)
        while len(self._seen) > self._max:
            self._seen.popitem(last=False)
        extra: dict[str, object] = {"reason": reason, "source_ip": source_ip, **fields}
        if suppressed:
            extra["repeated"] = suppressed
        log.warning("security.refused", extra=extra)
