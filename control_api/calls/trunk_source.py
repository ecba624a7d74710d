"""Which trunk an INVITE came from, by its source address alone.

A stand-in until inbound trunk recognition (registrations, DID routing) lands:
an INVITE is a trunk's when its source address is one of the addresses of the
trunk's hosts (the URI's host and every ``host=``). Its numbers are then read
with that trunk's rules (control_api/calls/numbers.py).
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable

from control_api.address_policy import ResolveError, resolve_all
from control_api.calls.trunks import Trunk

__all__ = ["trunk_at_source"]


async def trunk_at_source(trunks: Iterable[Trunk], source_ip: str) -> Trunk | None:
    """The first of ``trunks`` one of whose hosts resolves to ``source_ip``."""
    source = _canonical(source_ip)
    for trunk in trunks:
        for host, _port in trunk.entry_points():
            try:
                addresses = await resolve_all(host)
            except ResolveError:
                continue
            if source in {_canonical(a) for a in addresses}:
                return trunk
    return None


def _canonical(address: str) -> str:
    try:
        ip = ipaddress.ip_address(address.strip("[]").split("%", 1)[0])
    except ValueError:
        return address.lower()
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        return str(ip.ipv4_mapped)
    return str(ip)
