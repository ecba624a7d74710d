"""The process's open-file limit, and the share of it stream connections may hold.

Every TCP, TLS or WebSocket connection costs a descriptor, and so does every RTP
port of a call, every TURN relay, the database and outgoing webhooks. A flood of
connections that takes the last descriptor takes the node down with it: RTP
ports cannot be opened, and ``accept()`` fails for the health check too. So the
node raises its soft limit to the hard one at start, keeps a reserve for what
is not a connection (the RTP and relay port ranges, and ``BASE_RESERVE`` more),
and lets inbound connections hold only the rest, shared half and half between
SIP (TCP and TLS) and HTTP (the API, WebSockets, ``/health``): past its share a
listener closes a new connection at once instead of accepting it for good.
"""

from __future__ import annotations

import resource
from dataclasses import dataclass

__all__ = ["BASE_RESERVE", "ConnectionBudget", "connection_budget", "raise_open_files_limit"]

BASE_RESERVE = 512  # listeners, the store, webhooks, outbound SIP, TURN over TCP, logs
MIN_SHARE = 4  # connections get at least 1/4 of the limit, whatever the port ranges


def raise_open_files_limit() -> int:
    """Raise RLIMIT_NOFILE's soft limit to its hard limit; return the new soft limit."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard == resource.RLIM_INFINITY:
        hard = max(soft, 1 << 20) if soft != resource.RLIM_INFINITY else 1 << 20
    if soft == resource.RLIM_INFINITY or soft >= hard:
        return hard if soft == resource.RLIM_INFINITY else soft
    try:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    except (ValueError, OSError):
        return soft
    return hard


@dataclass(frozen=True, slots=True)
class ConnectionBudget:
    """How many inbound connections each listener may hold, and what is kept back."""

    limit: int
    reserve: int
    sip: int
    http: int


def connection_budget(limit: int, reserved_ports: int) -> ConnectionBudget:
    """Split ``limit`` descriptors: ``reserved_ports`` (RTP and relay ranges) plus
    ``BASE_RESERVE`` are kept back; SIP and HTTP share the rest, and get at least
    a quarter of the limit between them."""
    reserve = BASE_RESERVE + reserved_ports
    connections = max(limit - reserve, limit // MIN_SHARE)
    sip = connections // 2
    return ConnectionBudget(limit, limit - connections, sip, connections - sip)
