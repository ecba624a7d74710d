"""Trunk health: OPTIONS pings (``ping=S``) mark a trunk's hosts down and up again.

For a trunk with ``ping=S`` the server runs one :class:`TrunkPinger` task: every S
seconds it resolves each entry point (RFC 3263, as calls do) and sends OPTIONS to
every target. A target that gets no answer (within ``PING_TIMEOUT_S``) or answers
503 twice running is marked down; its next answer marks it up. Any other answer,
401 or 404 included, shows the host is there. :class:`TrunkHealth` holds the state:
calls skip hops on hosts that are down (control_api/calls/failover.py), ``/metrics``
shows a gauge per trunk host, and each change is logged once.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass

from control_api.calls.failover import Hop
from control_api.calls.trunks import Trunk
from sip.message import Headers, Request, Response, generate_call_id, generate_tag
from sip.rfc3263 import Target
from sip.ua import UserAgent

__all__ = ["FAILURES_TO_DOWN", "HostState", "TrunkHealth", "TrunkPinger"]

log = logging.getLogger("callswitch.trunks")

FAILURES_TO_DOWN = 2
PING_TIMEOUT_S = 5.0  # an OPTIONS unanswered this long failed (never past the interval)

HostKey = tuple[str, str, str, int]  # trunk name, transport, address, port


@dataclass(slots=True)
class HostState:
    trunk: str
    transport: str
    address: str
    port: int
    name: str  # the host name the address is of
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

    def answered(self, trunk: str, target: Target, status: int) -> None:
        if status == 503:
            self.failed(trunk, target)
            return
        state = self._state(trunk, target)
        state.failures = 0
        if not state.up:
            state.up = True
            log.info("trunk.host_up", extra=_fields(state, status=status))

    def failed(self, trunk: str, target: Target) -> None:
        state = self._state(trunk, target)
        state.failures += 1
        if state.up and state.failures >= FAILURES_TO_DOWN:
            state.up = False
            log.warning("trunk.host_down", extra=_fields(state, failures=state.failures))

    def is_down(self, hop: Hop) -> bool:
        if hop.trunk is None:
            return False
        key = (hop.trunk.name, hop.transport, hop.address, hop.port)
        state = self.hosts.get(key)
        return state is not None and not state.up

    def _state(self, trunk: str, target: Target) -> HostState:
        key = (trunk, target.transport, target.address, target.port)
        state = self.hosts.get(key)
        if state is None:
            state = HostState(trunk, target.transport, target.address, target.port, target.name)
            self.hosts[key] = state
        return state


def _fields(state: HostState, **more: object) -> dict[str, object]:
    return {
        "trunk": state.trunk,
        "host": state.host,
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
    ) -> None:
        self.ua = ua
        self.trunks = [t for t in trunks if t.ping > 0]
        self.health = health
        self.locate = locate  # locate(trunk, host, port) -> awaitable list[Target]
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
        """One round: OPTIONS to every target of every entry point, at once."""
        pings = []
        for host, port in trunk.entry_points():
            targets = await self.locate(trunk, host, port)
            pings += [self._ping(trunk, host, target) for target in targets]
        await asyncio.gather(*pings)

    async def _ping(self, trunk: Trunk, host: str, target: Target) -> None:
        status = await self.options(host, target, min(float(trunk.ping), PING_TIMEOUT_S))
        if status is None:
            self.health.failed(trunk.name, target)
        else:
            self.health.answered(trunk.name, target, status)

    async def options(self, host: str, target: Target, timeout: float) -> int | None:
        """Send OPTIONS to ``target``; its final status, None when none came in time."""
        flow = self.ua.flow_for(target.transport, target.address, target.port)
        if flow is None:
            return None
        done: asyncio.Future[int | None] = asyncio.get_running_loop().create_future()

        def answered(response: Response | None) -> None:
            if not done.done():
                done.set_result(None if response is None else response.status)

        uri = f"sip:{host}" if target.port == 5060 else f"sip:{host}:{target.port}"
        h = Headers()
        h.add("Via", self.ua.via_for(flow))
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
