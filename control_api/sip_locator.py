"""Where a SIP host is: RFC 3263 (sip/rfc3263.py) over dnspython's async resolver.

:class:`SipLocator` answers the lookups of :func:`sip.rfc3263.locate` and keeps
every answer for its TTL (a name without records for ``NEGATIVE_TTL_S``), so a
trunk's NAPTR, SRV and A records are asked once per TTL, not once per call.
``--dns-server HOST[:PORT]`` sends every lookup to that server; without it NAPTR
and SRV go to the system's resolvers (``/etc/resolv.conf``) and A/AAAA through the
system's own lookup (``getaddrinfo``: ``/etc/hosts`` and the rest of NSS).
A lookup that fails or times out counts as no records.
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import random
import socket
import time
from collections.abc import Callable, Sequence

import dns.asyncresolver
import dns.exception
import dns.resolver

from sip.rfc3263 import Lookup, Naptr, Records, Srv, Target, is_numeric, locate

__all__ = ["SipLocator", "parse_dns_server"]

log = logging.getLogger("callswitch.dns")

NEGATIVE_TTL_S = 30.0  # a name without records is asked again after this long
MAX_TTL_S = 3600.0
MAX_CACHED = 4096
QUERY_TIMEOUT_S = 1.5  # per server try
LIFETIME_S = 3.0  # per lookup, retries included
QUIET_S = 10.0  # after a lookup timed out, the server is not asked for this long


def parse_dns_server(value: str) -> tuple[str, int]:
    """``HOST[:PORT]`` (an IPv6 address in brackets when it has a port) → (ip, port)."""
    text = str(value).strip()
    host, port = text, 53
    if text.startswith("["):
        host, _, rest = text[1:].partition("]")
        if rest:
            if not rest.startswith(":"):
                raise ValueError("expected HOST[:PORT]")
            port = int(rest[1:])
    elif text.count(":") == 1:
        host, _, port_text = text.partition(":")
        port = int(port_text)
    try:
        ipaddress.ip_address(host)
    except ValueError:
        raise ValueError("the DNS server must be an IP address") from None
    if not 0 < port < 65536:
        raise ValueError("not a port number")
    return host, port


class SipLocator:
    """Resolves SIP URIs' hosts to ordered targets (RFC 3263), caching by TTL."""

    def __init__(
        self,
        server: tuple[str, int] | None = None,
        *,
        pick: Callable[[int], int] | None = None,
        clock: Callable[[], float] = time.monotonic,
        lifetime: float = LIFETIME_S,
    ) -> None:
        self.server = server
        self.lifetime = lifetime
        self._quiet_until = 0.0  # the DNS server timed out: no records until then
        rng = random.SystemRandom()
        self.pick = pick or (lambda n: rng.randint(0, n))
        self.clock = clock
        self._cache: dict[tuple[str, str], tuple[float, Records]] = {}
        self._resolver: dns.asyncresolver.Resolver | None = None
        self.lookups = 0  # queries sent (cache misses), for tests and /metrics

    async def locate(
        self, host: str, port: int | None, transport: str | None, *, secure: bool = False
    ) -> list[Target]:
        """The targets of a URI's host, port and ``transport=``, in the order to try."""
        procedure = locate(host, port, transport, secure=secure, pick=self.pick)
        try:
            lookup = next(procedure)
            while True:
                lookup = procedure.send(await self.lookup(lookup))
        except StopIteration as done:
            return list(done.value)

    async def addresses(self, host: str) -> list[str]:
        """Every A and AAAA address of ``host`` (an address is its own)."""
        host = host.strip("[]").rstrip(".")
        if is_numeric(host):
            return [host]
        found: list[str] = []
        for kind in ("A", "AAAA"):
            found += [str(a) for a in await self.lookup(Lookup(host.lower(), kind))]
        return list(dict.fromkeys(found))

    async def lookup(self, lookup: Lookup) -> Records:
        key = (lookup.name, lookup.kind)
        cached = self._cache.get(key)
        now = self.clock()
        if cached is not None and cached[0] > now:
            return cached[1]
        self.lookups += 1
        records, ttl = await self._ask(lookup)
        if len(self._cache) >= MAX_CACHED:
            self._cache = {k: v for k, v in self._cache.items() if v[0] > now}
            if len(self._cache) >= MAX_CACHED:
                self._cache.clear()
        if ttl > 0:
            self._cache[key] = (now + min(ttl, MAX_TTL_S), records)
        return records

    async def _ask(self, lookup: Lookup) -> tuple[Records, float]:
        if self.server is None and lookup.kind in ("A", "AAAA"):
            return await _system_addresses(lookup), 0.0
        resolver = self._dns()
        if resolver is None or self.clock() < self._quiet_until:
            return (), 0.0
        try:
            answer = await resolver.resolve(lookup.name + ".", lookup.kind, search=False)
        except (dns.resolver.NXDOMAIN, dns.resolver.NoAnswer):
            return (), NEGATIVE_TTL_S
        except (dns.exception.DNSException, OSError, ValueError) as exc:
            if isinstance(exc, (dns.exception.Timeout, dns.resolver.NoNameservers)):
                self._quiet_until = self.clock() + QUIET_S  # one wait, not one per lookup
            fields = {"lookup": lookup.name, "kind": lookup.kind, "error": str(exc)}
            log.info("dns.lookup_failed", extra=fields)
            return (), 0.0
        ttl = float(answer.rrset.ttl) if answer.rrset is not None else NEGATIVE_TTL_S
        return _records(lookup.kind, answer), ttl

    def _dns(self) -> dns.asyncresolver.Resolver | None:
        if self._resolver is None:
            try:
                if self.server is None:
                    resolver = dns.asyncresolver.Resolver()
                else:
                    resolver = dns.asyncresolver.Resolver(configure=False)
                    resolver.nameservers = [self.server[0]]
                    resolver.port = self.server[1]
            except (dns.resolver.NoResolverConfiguration, OSError):
                return None
            resolver.cache = None  # ours keeps answers by TTL
            resolver.timeout = min(QUERY_TIMEOUT_S, self.lifetime)
            resolver.lifetime = self.lifetime
            self._resolver = resolver
        return self._resolver


def _records(kind: str, answer: dns.resolver.Answer) -> Records:
    if kind == "NAPTR":
        return [
            Naptr(
                r.order,
                r.preference,
                r.flags.decode("ascii", "replace"),
                r.service.decode("ascii", "replace"),
                r.replacement.to_text(),
            )
            for r in answer
        ]
    if kind == "SRV":
        return [Srv(r.priority, r.weight, r.port, r.target.to_text()) for r in answer]
    return [r.address for r in answer]


async def _system_addresses(lookup: Lookup) -> Sequence[str]:
    family = socket.AF_INET if lookup.kind == "A" else socket.AF_INET6
    loop = asyncio.get_running_loop()
    try:
        infos = await asyncio.wait_for(
            loop.getaddrinfo(lookup.name, None, family=family, type=socket.SOCK_DGRAM),
            timeout=LIFETIME_S,
        )
    except (OSError, TimeoutError):
        return ()
    return list(dict.fromkeys(str(info[4][0]) for info in infos))
