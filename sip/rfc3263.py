"""Locating SIP servers (RFC 3263 §4): from a URI's host to the ordered hops to try.

A SIP URI's host becomes a list of (transport, address, port) targets:

- a numeric host, or a host with an explicit port: its A/AAAA addresses only
  (the transport from ``transport=``, else UDP for ``sip:`` and TLS for ``sips:``);
- a transport given without a port: the SRV records of that transport, else A/AAAA
  at the transport's default port;
- neither: the NAPTR records (``SIP+D2U``, ``SIP+D2T``, ``SIPS+D2T``, in order and
  preference; ``SIP+D2S`` and other services we do not speak are dropped, and a
  ``sips:`` URI keeps only ``SIPS+``), each to its SRV records; without NAPTR, the SRV
  records of each transport we speak; without SRV, A/AAAA over UDP (TLS for ``sips:``).

SRV records are tried by priority, and within one priority in the weighted random
order of RFC 2782 §"Usage rules". Every target after the first is a failover.

The procedure is sans-I/O: :func:`locate` is a generator that yields each
:class:`Lookup` it needs and is sent the records found (an empty sequence when the
name has none), then returns the targets. The random choice is injected. The number
of lookups and targets is bounded, so no DNS answer makes the work grow.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable, Generator, Sequence
from dataclasses import dataclass

__all__ = [
    "DEFAULT_PORTS",
    "MAX_LOOKUPS",
    "MAX_TARGETS",
    "Lookup",
    "Naptr",
    "Srv",
    "Target",
    "is_numeric",
    "locate",
    "order_naptr",
    "order_srv",
]

DEFAULT_PORTS = {"UDP": 5060, "TCP": 5060, "TLS": 5061}
MAX_LOOKUPS = 24  # DNS queries one location may make
MAX_TARGETS = 16  # hops one location may return
MAX_RECORDS = 16  # records of one answer considered

# The NAPTR services of RFC 3263 §4.1 we can use, and the transport of each.
SERVICES = {"SIP+D2U": "UDP", "SIP+D2T": "TCP", "SIPS+D2T": "TLS"}
# The SRV name prefix of each transport (RFC 3263 §4.1).
SRV_PREFIX = {"UDP": "_sip._udp.", "TCP": "_sip._tcp.", "TLS": "_sips._tcp."}

Pick = Callable[[int], int]  # pick(n): a uniformly random whole number from 0 to n


@dataclass(frozen=True, slots=True)
class Naptr:
    order: int
    preference: int
    flags: str
    service: str
    replacement: str


@dataclass(frozen=True, slots=True)
class Srv:
    priority: int
    weight: int
    port: int
    target: str


@dataclass(frozen=True, slots=True)
class Lookup:
    """One DNS query the procedure needs: ``kind`` is NAPTR, SRV, A or AAAA."""

    name: str
    kind: str


@dataclass(frozen=True, slots=True)
class Target:
    """One hop to try: ``address`` is an IP address, ``name`` the host it came from."""

    transport: str  # UDP, TCP or TLS
    address: str
    port: int
    name: str


Records = Sequence[Naptr] | Sequence[Srv] | Sequence[str]
Location = Generator[Lookup, Records, list[Target]]


def is_numeric(host: str) -> bool:
    try:
        ipaddress.ip_address(host.strip("[]").split("%", 1)[0])
    except ValueError:
        return False
    return True


def order_naptr(records: Sequence[Naptr], secure: bool) -> list[tuple[str, str]]:
    """The (transport, SRV name) pairs of the usable records, best first (§4.1)."""
    usable = []
    for record in records[:MAX_RECORDS]:
        service = record.service.upper()
        transport = SERVICES.get(service)
        if transport is None or record.flags.lower() != "s":
            continue
        if secure and not service.startswith("SIPS+"):
            continue
        name = _name(record.replacement)
        if name:
            usable.append((record.order, record.preference, transport, name))
    usable.sort(key=lambda item: (item[0], item[1]))
    return list(dict.fromkeys((transport, name) for _, _, transport, name in usable))


def order_srv(records: Sequence[Srv], pick: Pick) -> list[Srv]:
    """``records`` in the order to try them: by priority, and within a priority by
    RFC 2782's weighted random selection. A lone ``.`` target (the service is not
    offered) yields nothing."""
    records = [r for r in records[:MAX_RECORDS] if _name(r.target) and 0 < r.port < 65536]
    ordered: list[Srv] = []
    for priority in sorted({r.priority for r in records}):
        # Zero weights first, so they get a small chance when others have weight.
        group = sorted((r for r in records if r.priority == priority), key=lambda r: r.weight > 0)
        while group:
            total = sum(max(r.weight, 0) for r in group)
            chosen = min(max(pick(total), 0), total)
            running = 0
            for index, record in enumerate(group):
                running += max(record.weight, 0)
                if running >= chosen:
                    ordered.append(group.pop(index))
                    break
    return ordered


def locate(
    host: str,
    port: int | None = None,
    transport: str | None = None,
    *,
    secure: bool = False,
    pick: Pick,
) -> Location:
    """The targets of a URI with ``host``, ``port`` and ``transport`` (its parameter),
    ``secure`` for ``sips:``; yields :class:`Lookup` values, is sent their records."""
    host = host.strip("[]").lower().rstrip(".")
    chosen = _transport(transport, secure)
    if is_numeric(host):
        transport = chosen or ("TLS" if secure else "UDP")
        return [Target(transport, host, port or DEFAULT_PORTS[transport], host)]
    budget = [MAX_LOOKUPS]
    if port is not None:  # §4.2: an explicit port means no NAPTR or SRV
        transport = chosen or ("TLS" if secure else "UDP")
        return (yield from _addresses(host, port, transport, budget))
    if chosen is not None:  # §4.2: the transport is known, its SRV records
        targets = yield from _via_srv([(chosen, SRV_PREFIX[chosen] + host)], pick, budget)
        if not targets:
            targets = yield from _addresses(host, DEFAULT_PORTS[chosen], chosen, budget)
        return targets
    naptr = yield from _query(Lookup(host, "NAPTR"), budget)
    services = order_naptr([r for r in naptr if isinstance(r, Naptr)], secure)
    targets = yield from _via_srv(services, pick, budget)
    if targets:
        return targets
    # §4.1: no NAPTR, the SRV records of each transport we speak, in our preference.
    wanted = ["TLS"] if secure else ["UDP", "TCP"]
    targets = yield from _via_srv([(t, SRV_PREFIX[t] + host) for t in wanted], pick, budget)
    if targets:
        return targets
    transport = "TLS" if secure else "UDP"
    return (yield from _addresses(host, DEFAULT_PORTS[transport], transport, budget))


def _transport(value: str | None, secure: bool) -> str | None:
    if not value:
        return None
    value = value.upper()
    if secure or value == "TLS":
        return "TLS"  # sips: is TLS whatever transport= says (RFC 3261 §26.2.2)
    return value if value in DEFAULT_PORTS else None


def _via_srv(services: list[tuple[str, str]], pick: Pick, budget: list[int]) -> Location:
    """The targets of each SRV name in ``services``, in turn."""
    targets: list[Target] = []
    for transport, name in services:
        records = yield from _query(Lookup(name, "SRV"), budget)
        for record in order_srv([r for r in records if isinstance(r, Srv)], pick):
            found = yield from _addresses(_name(record.target), record.port, transport, budget)
            _extend(targets, found)
            if len(targets) >= MAX_TARGETS:
                return targets
    return targets


def _addresses(name: str, port: int, transport: str, budget: list[int]) -> Location:
    """``name``'s A then AAAA addresses as targets (an address is its own)."""
    if is_numeric(name):
        return [Target(transport, name.strip("[]"), port, name)]
    targets: list[Target] = []
    for kind in ("A", "AAAA"):
        records = yield from _query(Lookup(name, kind), budget)
        found = [str(r) for r in records if isinstance(r, str) and is_numeric(str(r))]
        _extend(targets, [Target(transport, a, port, name) for a in found[:MAX_RECORDS]])
    return targets


def _query(lookup: Lookup, budget: list[int]) -> Generator[Lookup, Records, Records]:
    if budget[0] <= 0:
        return ()
    budget[0] -= 1
    records = yield lookup
    return records or ()


def _extend(targets: list[Target], more: list[Target]) -> None:
    for target in more:
        if target not in targets and len(targets) < MAX_TARGETS:
            targets.append(target)


def _name(text: str) -> str:
    """A domain name without its final dot; empty for the root (``.``)."""
    return text.strip().lower().rstrip(".")
