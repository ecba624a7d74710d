"""asyncio glue for the SIP core: listeners, the user agent, one timer."""

from __future__ import annotations

import asyncio
import logging
import ssl
from collections.abc import Callable

from sip.connections import ConnectionTable
from sip.transaction import Timers
from sip.transport import Flow, Transports
from sip.ua import UserAgent
from sip.ws_transport import WsConnection, WssConnection

__all__ = ["SipEndpoint"]

log = logging.getLogger("callswitch.sip")


class SipEndpoint:
    """Runs a :class:`UserAgent` on real sockets and the event loop's clock.

    The transaction layer keeps its own deadlines; this object keeps one loop
    timer armed at the earliest of them.
    """

    def __init__(
        self,
        host: str,
        port: int,
        public_address: str,
        timers: Timers | None = None,
        *,
        tls_client: ssl.SSLContext | None = None,
        connections: ConnectionTable | None = None,
        refused: Callable[..., None] = lambda reason, source_ip, **fields: None,
    ) -> None:
        self._bind = (host, port)
        loop = asyncio.get_running_loop()
        self._loop = loop
        self.transports = Transports(self._receive, tls_client, table=connections, refused=refused)
        self.ua = UserAgent(
            host=public_address,
            port=port,
            flow_for=self.transports.flow_for,
            clock=loop.time,
            timers=timers,
        )
        self.ua.layer.wakeup = self._wakeup
        self._timer: asyncio.TimerHandle | None = None
        self._timer_at: float | None = None

    async def start(self, *, udp: bool = True, tcp: bool = True) -> None:
        await self.transports.start(*self._bind, udp=udp, tcp=tcp)
        if self.ua.port == 0 and self.transports.udp is not None:
            self.ua.port = self.transports.udp.local[1]

    async def start_tls(self, port: int, context: ssl.SSLContext) -> None:
        """Listen for SIP over TLS on the bind address; TLS flows' Via and
        Contact then name this listener's port (RFC 3261 §18.1.1, §26.2.1)."""
        await self.transports.start_tls(self._bind[0], port, context)
        self.ua.tls_port = self.transports.tls_port

    async def start_ws(self, port: int, context: ssl.SSLContext | None = None) -> int:
        """Listen for SIP over WebSocket (RFC 7118) on the bind address; over TLS
        (WSS) with ``context``. Returns the port bound."""
        transports, receive = self.transports, self._receive
        if context is None:
            return await transports.serve(
                "sip_ws", self._bind[0], port, lambda: WsConnection(receive, transports)
            )
        return await transports.serve(
            "sip_wss",
            self._bind[0],
            port,
            lambda: WssConnection(receive, transports, server_context=context),
        )

    def _receive(self, data: bytes, flow: Flow) -> None:
        try:
            self.ua.receive(data, flow)
        except Exception:  # a bug must cost one message, never the listener
            log.exception("sip.internal_error", extra={"peer": flow.remote})

    def _wakeup(self, deadline: float) -> None:
        if self._timer_at is None or deadline < self._timer_at:
            if self._timer is not None:
                self._timer.cancel()
            self._timer_at = deadline
            self._timer = self._loop.call_at(deadline, self._on_timer)

    def _on_timer(self) -> None:
        # call_at may fire a clock tick early; never run the timers before their time.
        now = max(self._loop.time(), self._timer_at or 0.0)
        self._timer = self._timer_at = None
        self.ua.handle_timer(now)
        deadline = self.ua.next_deadline()
        if deadline is not None:
            self._wakeup(deadline)

    async def close(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
        await self.transports.close()
