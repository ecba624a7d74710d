"""Trunk health: OPTIONS pings (``ping=S``) mark a trunk's hosts down and up again.

For a trunk with ``ping=S`` the server runs one :class:`TrunkPinger` task: every S
seconds it resolves each entry point (RFC 3263, as calls do) and sends OPTIONS to
every target. A target that gets no answer (within ``PING_TIMEOUT_S``) or answers
503 twice running is marked down; its next answer marks it up. Any other answer,
401 or 404 included, shows the host is there. :class:`TrunkHealth` holds the state:
calls skip hops on hosts that are down (control_api/calls/failover.py), ``/metrics``
shows a gauge per trunk host, and each change is logged once.

A trunk with an ``outbound_proxy`` is pinged as its calls are placed
(sip/outbound_proxy.py): each OPTIONS goes to one of the proxy's targets with a
pre-loaded ``Route`` naming it and the entry point as Request-URI, so a carrier
reached only through the proxy is seen. The state is then kept per entry point
and proxy target (a call's hop is the same pair): no answer at all (the proxy is
silent) or 503 or 408 twice running (the proxy could not reach the entry point,
the answers on which a call moves on) marks that pair down; any other answer,
the proxy's own 403 or 404 included, shows that the path answers.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass

from control_api.calls.failover import Hop
from control_api.calls.trunks import Trunk
from sip.errors import SipParseError
from sip.headers import SipUri
from sip.message import Headers, Request, Response, generate_call_id, generate_tag
from sip.outbound_proxy import loose_route
from sip.rfc3263 import Target
from sip.ua import UserAgent

__all__ = ["FAILURES_TO_DOWN", "HostState", "TrunkHealth", "TrunkPinger", "entry_point"]

log = logging.getLogger("callswitch.trunks")

FAILURES_TO_DOWN = 2
PING_TIMEOUT_S = 5.0  # an OPTIONS unanswered this long failed (never past the interval)

# An answer that marks a host down (twice running); through an outbound proxy also
# the proxy's 408, its transaction to the entry point timing out.
DOWN_STATUSES = frozenset({503})
PROXIED_DOWN_STATUSES = frozenset({408, 503})

# trunk name, transport, address, port, and the entry point pinged through the
# proxy at that address ("" when the address is the entry point's own)
HostKey = tuple[str, str, str, int, str]


def entry_point(host: str, port: int | None) -> str:
    """An entry point's ``host[:port]`` as health keys name it (no brackets, lower case)."""
    host = host.strip("[]").lower()
    if port is None:
        return host
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def _entry_of(hop: Hop) -> str:
    """The entry point a proxied hop's Request-URI names."""
    try:
        uri = SipUri.parse(hop.target)
    except SipParseError:
        return ""
    return entry_point(uri.host, uri.port)


@dataclass(slots=True)
class HostState:
    trunk: str
    transport: str
    address: str
    port: int
    name: str  # the host name the address is of
    entry: str = ""  # the entry point pinged through the outbound proxy at the address
    up: bool = True
    failures: int = 0

    @property
    def host(self) -> str:
        host = f"[{self.address}]" if ":" in self.address else self.address
        return f"{host}:{self.port}"


class TrunkHealth:
    """Which trunk hosts answer their OPTIONS. A host never pinged counts as up."""

    def __init__(self) -> None:
        self.hosts: dict[HostKey, HostState] = {}

    def answered(self, trunk: str, target: Target, status: int, *, entry: str = "") -> None:
        """``target`` answered ``status`` (``entry``: to a ping for that entry point
        sent through the outbound proxy at ``target``)."""
        if status in (PROXIED_DOWN_STATUSES if entry else DOWN_STATUSES):
            self.failed(trunk, target, entry=entry)
            return
        state = self._state(trunk, target, entry)
        state.failures = 0
        if not state.up:
            state.up = True
            log.info("trunk.host_up", extra=_fields(state, status=status))

    def failed(self, trunk: str, target: Target, *, entry: str = "") -> None:
        state = self._state(trunk, target, entry)
        state.failures += 1
        if state.up and state.failures >= FAILURES_TO_DOWN:
            state.up = False
            log.warning("trunk.host_down", extra=_fields(state, failures=state.failures))

    def is_down(self, hop: Hop) -> bool:
        if hop.trunk is None:
            return False
        entry = _entry_of(hop) if hop.proxy else ""
        key = (hop.trunk.name, hop.transport, hop.address, hop.port, entry)
        state = self.hosts.get(key)
        return state is not None and not state.up

    def _state(self, trunk: str, target: Target, entry: str = "") -> HostState:
        key = (trunk, target.transport, target.address, target.port, entry)
        state = self.hosts.get(key)
        if state is None:
            state = HostState(
                trunk, target.transport, target.address, target.port, target.name, entry
            )
            self.hosts[key] = state
        return state


def _fields(state: HostState, **more: object) -> dict[str, object]:
    via = {"host": state.entry, "via": state.host} if state.entry else {"host": state.host}
    return {
        "trunk": state.trunk,
        **via,
        "transport": state.transport,
        "host_name": state.name,
        **more,
    }


class TrunkPinger:
    """The OPTIONS tasks of every trunk with ``ping=S``; ``start()`` and ``stop()``."""

    def __init__(
        self,
        ua: UserAgent,
        trunks: Sequence[Trunk],
        health: TrunkHealth,
        locate: Callable[[Trunk, str, int | None], Awaitable[list[Target]]],
        locate_proxy: Callable[[Trunk], Awaitable[list[Target]]] | None = None,
    ) -> None:
        self.ua = ua
        self.trunks = [t for t in trunks if t.ping > 0]
        self.health = health
        self.locate = locate  # locate(trunk, host, port) -> awaitable list[Target]
        self.locate_proxy = locate_proxy  # locate_proxy(trunk): its outbound proxy's targets
        self._tasks: list[asyncio.Task[None]] = []

    def start(self) -> None:
        loop = asyncio.get_running_loop()
        self._tasks = [loop.create_task(self._run(trunk)) for trunk in self.trunks]

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks = []

    async def _run(self, trunk: Trunk) -> None:
        while True:
            try:
                await self.ping_once(trunk)
            except Exception:  # a ping must never stop the pinging
                log.exception("trunk.ping_failed", extra={"trunk": trunk.name})
            await asyncio.sleep(trunk.ping)

    async def ping_once(self, trunk: Trunk) -> None:
        """One round: OPTIONS to every target of every entry point, at once (with an
        outbound proxy: for every entry point, to every target of the proxy)."""
        pings = []
        proxied = trunk.outbound_proxy is not None and self.locate_proxy is not None
        proxies = await self.locate_proxy(trunk) if proxied and self.locate_proxy else []
        for host, port in trunk.entry_points():
            if proxied:
                uri = _entry_uri(trunk, host, port)
                entry = entry_point(host, port)
                pings += [self._ping(trunk, uri, target, entry) for target in proxies]
                continue
            for target in await self.locate(trunk, host, port):
                uri = f"sip:{host}" if target.port == 5060 else f"sip:{host}:{target.port}"
                pings.append(self._ping(trunk, uri, target))
        await asyncio.gather(*pings)

    async def _ping(self, trunk: Trunk, uri: str, target: Target, entry: str = "") -> None:
        timeout = min(float(trunk.ping), PING_TIMEOUT_S)
        route = trunk.outbound_proxy if entry else None
        status = await self.options(uri, target, timeout, route=route)
        if status is None:
            self.health.failed(trunk.name, target, entry=entry)
        else:
            self.health.answered(trunk.name, target, status, entry=entry)

    async def options(
        self, uri: str, target: Target, timeout: float, *, route: str | None = None
    ) -> int | None:
        """Send OPTIONS for ``uri`` to ``target`` (with ``route``, an outbound proxy's
        URI, as a pre-loaded Route: ``target`` is then the proxy's); its final status,
        None when none came in time."""
        flow = self.ua.flow_for(target.transport, target.address, target.port)
        if flow is None:
            return None
        done: asyncio.Future[int | None] = asyncio.get_running_loop().create_future()

        def answered(response: Response | None) -> None:
            if not done.done():
                done.set_result(None if response is None else response.status)

        h = Headers()
        h.add("Via", self.ua.via_for(flow))
        if route is not None:
            h.add("Route", loose_route(route))
        h.add("Max-Forwards", "70")
        h.add("From", f"<sip:ping@{self.ua.host_port(flow)}>;tag={generate_tag()}")
        h.add("To", f"<{uri}>")
        h.add("Call-ID", generate_call_id(self.ua.host))
        h.add("CSeq", "1 OPTIONS")
        h.add("Accept", "application/sdp")
        h.add("User-Agent", self.ua.name)
        try:
            self.ua.start_client(Request("OPTIONS", uri, h, b""), flow, answered)
        except (OSError, ValueError):  # an address our socket cannot send to
            return None
        try:
            return await asyncio.wait_for(done, timeout)
        except TimeoutError:
            return None


def _entry_uri(trunk: Trunk, host: str, port: int | None) -> str:
    """The Request-URI of a proxied ping: the entry point as a call's names it."""
    suffix = "" if trunk.transport == "udp" else f";transport={trunk.transport}"
    return f"sip:{host}{f':{port}' if port else ''}{suffix}"
