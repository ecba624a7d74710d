"""What the relay may do: which peers it reaches, how many allocations, how fast.

A TURN server on the internet is an open door into whatever network it sits
in, so by default it refuses peers in loopback, private, shared (CGNAT),
link-local, multicast and reserved ranges, and the server's own addresses
(RFC 8656 §21.3 asks servers to consider exactly this). An operator opens a
range explicitly with ``--turn-allow-peer CIDR``; an explicit deny list wins over
both. Refusals map to 403 Forbidden; quotas to 486 (per user) and 508 (total).
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field

__all__ = ["DEFAULT_DENIED", "PeerPolicy", "Quotas"]

Network = ipaddress.IPv4Network | ipaddress.IPv6Network

DEFAULT_DENIED: tuple[str, ...] = (
    "0.0.0.0/8",  # "this network"
    "10.0.0.0/8",
    "100.64.0.0/10",  # shared address space (CGNAT)
    "127.0.0.0/8",
    "169.254.0.0/16",
    "172.16.0.0/12",
    "192.0.0.0/24",
    "192.168.0.0/16",
    "198.18.0.0/15",  # benchmarking
    "224.0.0.0/4",  # multicast
    "240.0.0.0/4",  # reserved, broadcast
    "::/128",
    "::1/128",
    "64:ff9b:1::/48",  # local-use NAT64
    "fc00::/7",  # unique local
    "fe80::/10",  # link-local
    "ff00::/8",  # multicast
)


def _networks(items: list[str] | tuple[str, ...]) -> tuple[Network, ...]:
    return tuple(ipaddress.ip_network(item, strict=False) for item in items)


@dataclass(slots=True)
class PeerPolicy:
    """Decides whether a peer IP may be given a permission (RFC 8656 §9, §21.3)."""

    allow: list[str] = field(default_factory=list)
    deny: list[str] = field(default_factory=list)
    own_addresses: set[str] = field(default_factory=set)
    _allow: tuple[Network, ...] = ()
    _deny: tuple[Network, ...] = ()
    _default: tuple[Network, ...] = ()
    _cache: dict[str, bool] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self._allow = _networks(self.allow)
        self._deny = _networks(self.deny)
        self._default = _networks(DEFAULT_DENIED)

    def permits(self, host: str) -> bool:
        answer = self._cache.get(host)
        if answer is None:
            if len(self._cache) > 4096:
                self._cache.clear()
            answer = self._cache[host] = self._permits(host)
        return answer

    def _permits(self, host: str) -> bool:
        try:
            ip = ipaddress.ip_address(host.partition("%")[0])
        except ValueError:
            return False
        if ip.version == 6 and ip.ipv4_mapped is not None:
            ip = ip.ipv4_mapped
        if any(ip in net for net in self._deny):
            return False
        if any(ip in net for net in self._allow):
            return True
        if str(ip) in self.own_addresses or ip.is_unspecified:
            return False
        return not any(ip in net for net in self._default if net.version == ip.version)


@dataclass(frozen=True, slots=True)
class Quotas:
    """Limits on allocations (RFC 8656 §7.2: 486 per user, 508 for the server).

    ``bytes_per_second`` caps what one allocation relays in each direction,
    counted per one-second tick (0: no cap); excess datagrams are dropped, as a
    congested path would. ``per_user`` counts per owner: a static user, or the
    user part of REST usernames (the account), across all of its tokens.
    """

    per_user: int = 100
    total: int = 10_000
    bytes_per_second: int = 0
