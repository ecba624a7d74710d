"""Registrations of ``;register`` trunks: each one kept with its carrier from start.

Every trunk with ``register`` gets a :class:`TrunkRegistration`, the asyncio shell
of :class:`sip.registration.Registration` on the node's user agent: it resolves
the registrar's address (the trunk's ``outbound_proxy`` when it has one, else its
entry points, the next one after each failure), opens the flow, sends the
REGISTERs through client transactions (``UserAgent.start_client``), keeps one loop
timer at the core's next deadline, and tells the core when the flow closes or a
keep-alive pong arrives. :class:`TrunkRegistrations` holds them all: started with
the server, stopped (``Expires: 0``) on a clean shutdown, and read by ``/metrics``,
the console and ``callswitch trunks`` (:func:`trunk_views`).

The Contact we register is ``sip:<user>@<our address>`` where the user is the
trunk's ``register_user`` (else its username, else its name): a call the carrier
sends to that contact is the trunk's (control_api/calls/inbound_trunk.py).
"""

from __future__ import annotations

import asyncio
import logging
import random
import uuid
from collections.abc import Awaitable, Callable, Iterable, Iterator
from dataclasses import dataclass

from control_api.address_policy import ResolveError, resolve_all
from control_api.calls.trunks import Trunk
from sip.errors import SipParseError
from sip.headers import SipUri
from sip.message import Response, generate_call_id, generate_tag
from sip.registration import (
    CloseFlow,
    NewFlow,
    Output,
    Registration,
    RegistrationSettings,
    RegistrationState,
    RegistrationStatus,
    SendPing,
    SendRegister,
)
from sip.transport import Flow, TcpConnection
from sip.ua import UserAgent

__all__ = ["TrunkRegistration", "TrunkRegistrations", "TrunkView", "trunk_views"]

log = logging.getLogger("callswitch.calls")

Resolver = Callable[[str], Awaitable[list[str]]]
DEFAULT_PORTS = {"udp": 5060, "tcp": 5060, "tls": 5061}


class TrunkRegistration:
    """One ``;register`` trunk's binding at its carrier, on ``ua``."""

    def __init__(
        self,
        trunk: Trunk,
        ua: UserAgent,
        *,
        node_id: str = "callswitch",
        resolve: Resolver = resolve_all,
        backoff_base: float = 5.0,
        keepalive: float = 90.0,
    ) -> None:
        self.trunk = trunk
        self.ua = ua
        self._resolve = resolve
        self.contact_user = trunk.aor_user or trunk.name
        host = _host_port(trunk.host, trunk.port)
        username = trunk.digest_user
        self.core = Registration(
            RegistrationSettings(
                registrar=f"sip:{host}",
                aor=f"sip:{self.contact_user}@{trunk.host}",
                call_id=generate_call_id(ua.host),
                tag=generate_tag(),
                username=username,
                password=trunk.password if username else None,
                expires=trunk.register_expires,
                route=trunk.outbound_proxy,
                # Stable across restarts, so the registrar replaces our binding (RFC 5626 §4.1).
                instance=f"urn:uuid:{uuid.uuid5(uuid.NAMESPACE_URL, f'{node_id}/{trunk.name}')}",
                user_agent=ua.name,
                backoff_base=backoff_base,
                keepalive=keepalive,
            ),
            jitter=random.random,
        )
        self.flow: Flow | None = None
        self._timer: asyncio.TimerHandle | None = None
        self._task: asyncio.Task[None] | None = None
        self._shown: RegistrationState | None = None

    # -- what the server does

    def start(self) -> None:
        self._apply(self.core.start(self.ua.clock()))

    def stop(self) -> None:
        """Send the un-REGISTER (Expires: 0) when bound; the UA's shutdown waits for it."""
        if self._task is not None:
            self._task.cancel()
        self._apply(self.core.stop(self.ua.clock()))
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    @property
    def stopped(self) -> bool:
        return self.core.state is RegistrationState.STOPPED

    def status(self) -> RegistrationStatus:
        return self.core.status(self.ua.clock())

    # -- the core's outputs

    def _apply(self, outputs: Iterable[Output]) -> None:
        for output in outputs:
            if isinstance(output, SendRegister):
                self._send(output)
            elif isinstance(output, SendPing):
                if self.flow is not None:
                    self.flow.send(output.data)
            elif isinstance(output, CloseFlow):
                self._drop_flow(close=True)
            elif isinstance(output, NewFlow):
                self._drop_flow(close=False)
                self._task = asyncio.get_running_loop().create_task(self._open_flow())
        self._show()
        self._rearm()

    def _send(self, output: SendRegister) -> None:
        flow = self.flow
        if flow is None:  # pragma: no cover - the core asks for a flow first
            return
        request = output.request
        request.headers.prepend("Via", self.ua.via_for(flow))
        cseq = request.cseq.seq

        def answered(response: Response | None) -> None:
            now = self.ua.clock()
            if response is None:
                self._apply(self.core.on_timeout(now, cseq))
            else:
                self._apply(self.core.on_response(now, response))

        self.ua.start_client(request, flow, answered)

    async def _open_flow(self) -> None:
        transport, host, port = self._target()
        try:
            address = self._pick(await self._resolve(host))
        except (ResolveError, IndexError, ValueError) as exc:  # ValueError: a bad IDNA label
            self._apply(self.core.no_flow(self.ua.clock(), str(exc) or f"cannot resolve {host}"))
            return
        flow = self.ua.flow_for(transport.upper(), address, port)
        if flow is None:
            reason = f"cannot open a {transport} flow to {address}:{port}"
            self._apply(self.core.no_flow(self.ua.clock(), reason))
            return
        self.flow = flow
        flow.watch(self._flow_closed, self._pong)
        suffix = "" if transport == "udp" else f";transport={transport}"
        contact = f"sip:{self.contact_user}@{self.ua.host_port(flow)}{suffix}"
        self._apply(self.core.flow_ready(self.ua.clock(), contact, reliable=flow.reliable))

    def _pick(self, addresses: list[str]) -> str:
        """One of a name's addresses, of our own address's family when it has one
        (an IPv4 node cannot send to ``::1``): the next one after each failure."""
        ipv6 = ":" in self.ua.host
        usable = [a for a in addresses if (":" in a) == ipv6] or addresses
        return usable[self.core.failures % len(usable)]

    def _target(self) -> tuple[str, str, int]:
        """Where REGISTERs go: the outbound proxy, else the trunk's entry points in
        turn (the next one after each failure)."""
        trunk = self.trunk
        if trunk.outbound_proxy:
            try:
                uri = SipUri.parse(trunk.outbound_proxy)
            except SipParseError:
                uri = None
            if uri is not None and uri.host:
                transport = (uri.params.get("transport") or "").lower()
                if transport not in DEFAULT_PORTS:
                    transport = "tls" if uri.scheme == "sips" else trunk.transport
                return transport, uri.host.strip("[]"), uri.port or DEFAULT_PORTS[transport]
        entries = trunk.entry_points()
        host, port = entries[self.core.failures % len(entries)]
        return trunk.transport, host.strip("[]"), port or DEFAULT_PORTS[trunk.transport]

    def _drop_flow(self, *, close: bool) -> None:
        flow, self.flow = self.flow, None
        if flow is None:
            return
        flow.unwatch(self._flow_closed)
        if close and isinstance(flow, TcpConnection):
            flow.close()

    def _flow_closed(self) -> None:
        self.flow = None
        self._apply(self.core.flow_closed(self.ua.clock()))

    def _pong(self) -> None:
        self.core.pong(self.ua.clock())

    # -- time

    def _rearm(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        deadline = self.core.next_deadline()
        if deadline is not None:
            self._timer = asyncio.get_running_loop().call_at(deadline, self._on_timer)

    def _on_timer(self) -> None:
        self._timer = None
        deadline = self.core.next_deadline()
        now = max(self.ua.clock(), deadline or 0.0)  # call_at may fire a tick early
        self._apply(self.core.on_timer(now))

    def _show(self) -> None:
        """One log line per change of state (not per refresh)."""
        state = self.core.state
        if state is self._shown:
            return
        self._shown = state
        status = self.status()
        log.info(
            "trunk.registration",
            extra={
                "trunk": self.trunk.name,
                "state": state.value,
                "status": status.last_status,
                "reason": status.last_reason,
                "contact": status.contact,
                "retry_in": None if status.retry_in is None else round(status.retry_in, 1),
            },
        )


class TrunkRegistrations:
    """Every ``;register`` trunk's registration, by trunk name."""

    def __init__(
        self,
        ua: UserAgent,
        trunks: Iterable[Trunk],
        *,
        node_id: str = "callswitch",
        resolve: Resolver = resolve_all,
        backoff_base: float = 5.0,
        keepalive: float = 90.0,
    ) -> None:
        self.by_name = {
            trunk.name: TrunkRegistration(
                trunk,
                ua,
                node_id=node_id,
                resolve=resolve,
                backoff_base=backoff_base,
                keepalive=keepalive,
            )
            for trunk in trunks
            if trunk.register
        }

    def __iter__(self) -> Iterator[TrunkRegistration]:
        return iter(self.by_name.values())

    def __len__(self) -> int:
        return len(self.by_name)

    def start(self) -> None:
        for registration in self.by_name.values():
            registration.start()

    def stop(self) -> None:
        for registration in self.by_name.values():
            registration.stop()

    def status_of(self, name: str) -> RegistrationStatus | None:
        registration = self.by_name.get(name)
        return registration.status() if registration is not None else None


@dataclass(frozen=True, slots=True)
class TrunkView:
    """A configured trunk as the console and ``callswitch trunks`` show it (no secrets)."""

    name: str
    transport: str
    entry_points: tuple[str, ...]
    prefixes: tuple[str, ...]
    register: bool
    outbound_proxy: str | None
    registration: RegistrationStatus | None

    def to_json(self) -> dict[str, object]:
        reg = self.registration
        return {
            "name": self.name,
            "transport": self.transport,
            "entry_points": list(self.entry_points),
            "prefixes": list(self.prefixes),
            "register": self.register,
            "outbound_proxy": self.outbound_proxy,
            "registration": None
            if reg is None
            else {
                "state": reg.state.value,
                "contact": reg.contact,
                "expires_in": None if reg.expires_in is None else round(reg.expires_in),
                "last_status": reg.last_status,
                "last_reason": reg.last_reason,
                "failures": reg.failures,
                "retry_in": None if reg.retry_in is None else round(reg.retry_in),
            },
        }


def trunk_views(
    trunks: Iterable[Trunk], registrations: TrunkRegistrations | None
) -> list[TrunkView]:
    """Each configured trunk with its entry points and, for ``;register`` ones, the
    registration's state."""
    return [
        TrunkView(
            name=trunk.name,
            transport=trunk.transport,
            entry_points=tuple(_host_port(host, port) for host, port in trunk.entry_points()),
            prefixes=trunk.prefixes,
            register=trunk.register,
            outbound_proxy=trunk.outbound_proxy,
            registration=registrations.status_of(trunk.name) if registrations else None,
        )
        for trunk in trunks
    ]


def _host_port(host: str, port: int | None) -> str:
    return f"{host}:{port}" if port else host
