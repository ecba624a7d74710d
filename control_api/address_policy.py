"""Which network addresses the node may dial or fetch from: CIDR deny-lists.

``--dial-deny`` keeps ``sip:`` targets (``<Dial><Sip>``, REST ``To=sip:``,
REFER) away from the listed networks; ``--fetch-deny`` does the same for URL
fetches (webhooks, ``<Play>``, callbacks, Media Streams). Both resolve a name
to every address it has and refuse when any one is denied: a name with one
good and one bad address is refused, since the connection could go to either.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from collections.abc import Iterable

__all__ = ["DenyList", "ResolveError", "not_told", "resolve_all"]

RESOLVE_TIMEOUT_S = 5.0

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


def not_told(reason: str, source_ip: str, **fields: object) -> None:
    """The default ``refused(reason, source_ip, **fields)`` callable: refusals go untold."""


class ResolveError(OSError):
    """The name has no address (or the lookup failed)."""


class DenyList:
    """A set of networks; ``denied(address)`` is the network holding it, or None."""

    def __init__(self, cidrs: Iterable[str] = ()) -> None:
        self.networks: tuple[Network, ...] = tuple(
            ipaddress.ip_network(cidr, strict=False) for cidr in cidrs
        )

    def __bool__(self) -> bool:
        return bool(self.networks)

    def denied(self, address: str) -> Network | None:
        try:
            ip = ipaddress.ip_address(address.split("%", 1)[0])
        except ValueError:
            return None
        if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
            ip = ip.ipv4_mapped  # ::ffff:169.254.169.254 is 169.254.169.254
        for network in self.networks:
            if ip.version == network.version and ip in network:
                return network
        return None

    def first_denied(self, addresses: Iterable[str]) -> tuple[str, Network] | None:
        """The first of ``addresses`` that is denied, with its network."""
        for address in addresses:
            network = self.denied(address)
            if network is not None:
                return address, network
        return None


async def resolve_all(host: str, kind: int = socket.SOCK_STREAM) -> list[str]:
    """Every address of ``host`` (an IP literal is its own), in the resolver's order."""
    host = host.strip("[]")
    try:
        ipaddress.ip_address(host.split("%", 1)[0])
        return [host]
    except ValueError:
        pass
    loop = asyncio.get_running_loop()
    try:
        infos = await asyncio.wait_for(
            loop.getaddrinfo(host, None, type=kind), timeout=RESOLVE_TIMEOUT_S
        )
    except (OSError, TimeoutError) as exc:
        raise ResolveError(f"cannot resolve {host}: {exc}") from None
    # An IPv4 or IPv6 sockaddr starts with the address as a string.
    addresses = list(dict.fromkeys(str(info[4][0]) for info in infos))
    if not addresses:
        raise ResolveError(f"cannot resolve {host}")
    return addresses
