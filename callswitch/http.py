"""The HTTP listener: uvicorn embedded in our event loop, behind a guard.

uvicorn holds a connection as long as its peer keeps it open: one that sends
half a request line and stops is held for ever, and a host may open as many
as the process has descriptors. The guard (a subclass of uvicorn's httptools
protocol, and of its WebSocket protocol so that upgraded connections are still
counted) closes a connection whose request headers have not all arrived
within ``HEADER_TIMEOUT`` of its first byte (or of opening), or whose body has
not within ``BODY_TIMEOUT`` of its headers, and admits connections through a
:class:`sip.connections.ConnectionTable`: at most ``max_per_source`` per source
address (trusted peers exempt) and ``max_total`` in all, so that a flood leaves
descriptors for SIP, RTP and ``/health``. Every refusal goes through the
node's ``refused`` callable: ``http.connections``, ``http.connections_total``,
``http.timeout``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable

import uvicorn
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol
from uvicorn.protocols.websockets.auto import AutoWebSocketsProtocol

from sip.connections import PER_SOURCE, ConnectionTable

__all__ = ["BODY_TIMEOUT", "HEADER_TIMEOUT", "HttpServer", "guarded_protocols"]

log = logging.getLogger("callswitch")

HEADER_TIMEOUT = 10.0  # seconds from a request's first byte (or opening) to its last header
BODY_TIMEOUT = 30.0  # seconds from a request's headers to the end of its body

Refused = Callable[..., None]


def _no_refusals(reason: str, source_ip: str, **fields: object) -> None:
    pass


def guarded_protocols(
    table: ConnectionTable,
    refused: Refused = _no_refusals,
    *,
    header_timeout: float = HEADER_TIMEOUT,
    body_timeout: float = BODY_TIMEOUT,
) -> tuple[type[asyncio.Protocol], type[asyncio.Protocol]]:
    """uvicorn's HTTP and WebSocket protocols, admitted and timed by ``table``."""

    def admit(transport: asyncio.Transport) -> bool:
        source = (transport.get_extra_info("peername") or ("",))[0]
        refusal = table.open(transport, source)
        if refusal is None:
            return True
        reason = "http.connections" if refusal == PER_SOURCE else "http.connections_total"
        refused(reason, source)
        transport.abort()
        return False

    class GuardedWebSocket(AutoWebSocketsProtocol):  # type: ignore[misc, valid-type]
        """Counted until it closes, like the HTTP connection it was upgraded from."""

        def connection_made(self, transport) -> None:
            self._guard_key = transport
            super().connection_made(transport)

        def connection_lost(self, exc: Exception | None) -> None:
            try:
                super().connection_lost(exc)
            finally:
                table.close(self._guard_key)

    class GuardedHttp(HttpToolsProtocol):
        _timer: asyncio.TimerHandle | None = None
        _admitted = False
        _upgraded = False

        def connection_made(self, transport) -> None:
            if not admit(transport):
                return
            self._admitted = True
            super().connection_made(transport)
            self._arm(header_timeout)

        def connection_lost(self, exc: Exception | None) -> None:
            if not self._admitted:
                return
            self._disarm()
            if not self._upgraded:
                table.close(self.transport)
            super().connection_lost(exc)

        def on_message_begin(self) -> None:
            super().on_message_begin()
            if self._timer is None:
                self._arm(header_timeout)

        def on_headers_complete(self) -> None:
            super().on_headers_complete()
            self._arm(body_timeout)

        def on_message_complete(self) -> None:
            super().on_message_complete()
            self._disarm()

        def shutdown(self) -> None:
            # An idle keep-alive connection is let go at once: over TLS, close() would
            # wait (up to 30 s) for a close_notify that the idle peer never sends.
            if self.cycle is None or self.cycle.response_complete:
                self.transport.abort()
            else:
                super().shutdown()

        def handle_websocket_upgrade(self) -> None:
            self._disarm()
            self._upgraded = True  # the WebSocket protocol releases it from now on
            super().handle_websocket_upgrade()

        def _arm(self, seconds: float) -> None:
            self._disarm()
            self._timer = self.loop.call_later(seconds, self._too_slow)

        def _disarm(self) -> None:
            if self._timer is not None:
                self._timer.cancel()
                self._timer = None

        def _too_slow(self) -> None:
            self._timer = None
            if not self.transport.is_closing():
                source = self.client[0] if self.client else ""
                refused("http.timeout", source)
                self.transport.abort()

    return GuardedHttp, GuardedWebSocket


class _Embedded(uvicorn.Server):
    @contextlib.contextmanager
    def capture_signals(self):
        # The process's signals belong to callswitch.server, which stops us itself.
        yield


class HttpServer:
    """Serves an ASGI app on ``host:port`` inside the running loop.

    With a ``table``, connections are admitted and timed by the guard
    (:func:`guarded_protocols`); without one uvicorn's own protocols serve.
    """

    def __init__(
        self,
        app,
        host: str,
        port: int,
        *,
        table: ConnectionTable | None = None,
        refused: Refused = _no_refusals,
        header_timeout: float = HEADER_TIMEOUT,
        body_timeout: float = BODY_TIMEOUT,
        tls_cert: str | None = None,
        tls_key: str | None = None,
    ) -> None:
        # uvicorn's own protocols ("auto") unless the guard admits and times connections
        http: type[asyncio.Protocol] | str = "auto"
        ws: type[asyncio.Protocol] | str = "auto"
        if table is not None:
            http, ws = guarded_protocols(
                table, refused, header_timeout=header_timeout, body_timeout=body_timeout
            )
        config = uvicorn.Config(
            app,
            host=host,
            port=port,
            lifespan="off",
            access_log=False,
            log_config=None,
            log_level="warning",
            server_header=False,
            http=http,
            ws=ws,
            ssl_certfile=tls_cert,  # HTTPS/WSS (the key may be in the certificate file)
            ssl_keyfile=tls_key,
        )
        self._server = _Embedded(config)
        self._task: asyncio.Task | None = None
        self.address = f"{host}:{port}"

    async def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._server.serve())
        while not self._server.started:
            if self._task.done():  # failed to bind: surface the error
                await self._task
                raise OSError(f"HTTP server on {self.address} did not start")
            await asyncio.sleep(0.01)
        sockets = [s for server in self._server.servers for s in server.sockets]
        if sockets:
            host, port = sockets[0].getsockname()[:2]
            self.address = f"{host}:{port}"

    async def stop(self) -> None:
        if self._task is not None:
            self._server.should_exit = True
            await self._task
            self._task = None
