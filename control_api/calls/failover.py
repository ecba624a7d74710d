"""Failover of calls we place: the hops one call tries, and when it moves on.

A number reaches the trunks that serve it (``select_trunks``), each trunk its entry
points (the URI's host, then ``host=``), and each entry point the targets DNS gives
(RFC 3263, control_api/sip_locator.py). That flattened list is a call's *hops*: one
:class:`~control_api.calls.outbound_call.OutboundCall` (one Call SID) sends its
INVITE to the first, and to the next only when one answers 503 or 408 or sends no
response at all within ``NO_RESPONSE_S`` (:func:`fails_over`); any other final
answer ends the call as it always did. Hops on hosts that the OPTIONS health check
(control_api/calls/trunk_health.py) marks down are skipped, unless all of them are.

Every attempt is told to the call's listeners as an :class:`Attempt` and becomes an
event of the call (``Calls/{CA}/Events``: method ``INVITE``, the Request-URI, the
status), and every attempt a call moved on from a warning notification.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from sip.uac import SipCredentials

if TYPE_CHECKING:
    from control_api.call_log import CallLog
    from control_api.calls.trunks import Trunk

__all__ = [
    "FAILOVER_STATUSES",
    "NO_RESPONSE_S",
    "Attempt",
    "Hop",
    "fails_over",
    "report_attempt",
    "usable_hops",
]

log = logging.getLogger("callswitch.calls")

# Timer B is 32 s (RFC 3261 §17.1.1.2); carriers and proxies (Kamailio's fr_timer)
# give a hop a few seconds to send anything (a 100 Trying will do) before the next.
NO_RESPONSE_S = 4.0
FAILOVER_STATUSES = frozenset({408, 503})
FAILOVER_WARNING = 32011  # Twilio's "Error forwarding call": a hop failed, the next is tried


@dataclass(frozen=True, slots=True)
class Hop:
    """One place an INVITE can go: its Request-URI and the transport, address and port
    to send it to (an outbound proxy's, when the trunk has one), the host name they came
    from, and the login and trunk."""

    target: str
    transport: str  # UDP, TCP or TLS
    address: str
    port: int
    name: str = ""  # the host name (an SRV target, a trunk host) the address is of
    credentials: SipCredentials | None = None
    trunk: Trunk | None = None
    proxy: str | None = None  # the trunk's outbound proxy: the address is its, a Route names it

    @property
    def where(self) -> str:
        host = f"[{self.address}]" if ":" in self.address else self.address
        return f"{self.transport.lower()}:{host}:{self.port}"


@dataclass(frozen=True, slots=True)
class Attempt:
    """What one hop did: its final status (200 answered; None: no response at all)."""

    hop: Hop
    status: int | None
    seconds: float
    moved_on: bool  # the call tried the next hop after it
    error: str | None = None


def fails_over(status: int | None) -> bool:
    """Whether a hop's final answer sends the call to the next hop (None: none came)."""
    return status is None or status in FAILOVER_STATUSES


def usable_hops(hops: Sequence[Hop], is_down: Callable[[Hop], bool]) -> list[Hop]:
    """``hops`` without those on hosts marked down; all of them when every one is."""
    up = [hop for hop in hops if not is_down(hop)]
    return up or list(hops)


def report_attempt(
    call_log: CallLog | None, account_sid: str, call_sid: str, attempt: Attempt
) -> None:
    """One attempt as an event of the call, and a warning when the call moved on."""
    hop = attempt.hop
    status = "no response" if attempt.status is None else str(attempt.status)
    log.info(
        "call.attempt",
        extra={
            "call_sid": call_sid,
            "target": hop.target,
            "hop": hop.where,
            "host": hop.name,
            "trunk": hop.trunk.name if hop.trunk else "",
            "status": status,
            "moved_on": attempt.moved_on,
        },
    )
    if call_log is None or not account_sid:
        return
    params = [("Hop", hop.where), ("Host", hop.name or hop.address), ("Status", status)]
    if hop.trunk is not None:
        params.append(("Trunk", hop.trunk.name))
    if hop.proxy is not None:
        params.append(("Proxy", hop.proxy))
    call_log.sip_attempt(
        account_sid=account_sid,
        call_sid=call_sid,
        target=hop.target,
        status=attempt.status,
        seconds=attempt.seconds,
        params=params,
        error=attempt.error,
    )
    if attempt.moved_on:
        call_log.problem(
            account_sid=account_sid,
            call_sid=call_sid,
            code=FAILOVER_WARNING,
            text=f"{hop.target} via {hop.where} answered {status}; trying the next target",
            level=1,
            target=hop.target,
            hop=hop.where,
            sipResponseCode=status,
        )
