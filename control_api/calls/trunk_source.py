"""Which trunk an INVITE came from, by its source address alone.

A stand-in until inbound trunk recognition (registrations, DID routing) lands:
an INVITE is a trunk's when its source address is one of the addresses of the
trunk's hosts (the URI's host and every ``host=``; names are looked up at most
once a minute). Its numbers are then read with that trunk's rules
(control_api/calls/numbers.py).
"""

from __future__ import annotations

import ipaddress
import time
from collections.abc import Iterable

from control_api.address_policy import ResolveError, resolve_all
from control_api.calls.trunks import Trunk

__all__ = ["CACHE_S", "trunk_at_source"]

CACHE_S = 60.0  # how long a trunk host's addresses are kept
_CACHE_SIZE = 256
_CACHE: dict[str, tuple[float, frozenset[str]]] = {}


async def trunk_at_source(trunks: Iterable[Trunk], source_ip: str) -> Trunk | None:
    """The first of ``trunks`` one of whose hosts resolves to ``source_ip``."""
    source = _canonical(source_ip)
    for trunk in trunks:
        for host, _port in trunk.entry_points():
            if source in await _addresses(host):
                return trunk
    return None


async def _addresses(host: str) -> frozenset[str]:
    """The addresses of ``host``, looked up at most once a minute (a name that does not
    resolve too: a dead trunk name must not hold up every inbound call)."""
    now = time.monotonic()
    cached = _CACHE.get(host)
    if cached is not None and cached[0] > now:
        return cached[1]
    try:
        found = frozenset(_canonical(a) for a in await resolve_all(host))
    except ResolveError:
        found = frozenset()
    if len(_CACHE) >= _CACHE_SIZE:
        _CACHE.clear()
    _CACHE[host] = (now + CACHE_S, found)
    return found


def _canonical(address: str) -> str:
    try:
        ip = ipaddress.ip_address(address.strip("[]").split("%", 1)[0])
    except ValueError:
        return address.lower()
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        return str(ip.ipv4_mapped)
    return str(ip)
