"""A lean HTTP/1.1 client for webhooks: h11's protocol core on asyncio streams.

Every inbound call waits on one webhook before it can answer, so this request
is on the path to the caller's first audio. httpx costs several milliseconds of
CPU per request here (its transport layers and anyio); h11 (the sans-I/O engine
underneath it) on a plain asyncio stream does the same exchange for a fraction
of that. ``request`` makes one request per connection (``Connection: close``),
as most application servers expect from webhook senders; a ``ConnectionPool``
keeps connections open between requests to one origin (RFC 9112 §9.3), for
senders of many requests such as the outbox's status callbacks.

A ``guard`` (control_api/fetch_policy.py, ``--fetch-deny``) is asked for the
address of the URL's host before each connection is made, and the connection
goes to that checked address; a denied host raises ``PermissionError``, which
is an :class:`HttpError` here as any unreachable host is. No redirect is ever
followed.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import ssl
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from urllib.parse import urlsplit

import h11

__all__ = ["ConnectionPool", "Guard", "HttpError", "HttpResponse", "request"]

MAX_BODY = 1024 * 1024  # a TwiML document is a few kilobytes; refuse the absurd
# Shorter than the idle timeouts of common servers (uvicorn 5 s, nginx 75 s), so that
# we rarely send on a connection the other end is closing.
IDLE_TIMEOUT_S = 4.0
MAX_IDLE_PER_ORIGIN = 64  # as many as the outbox sends at once
_SSL = ssl.create_default_context()

Guard = Callable[[str, int], Awaitable[str]]  # (host, port) -> the checked address


class HttpError(Exception):
    """The request could not be made or its answer could not be read."""


@dataclass(slots=True)
class HttpResponse:
    status: int
    headers: list[tuple[bytes, bytes]]
    body: bytes

    @property
    def text(self) -> str:
        return self.body.decode("utf-8", "replace")


@dataclass(frozen=True, slots=True)
class _Target:
    scheme: str
    host: str
    port: int
    target: str  # path and query
    host_header: str

    @property
    def secure(self) -> bool:
        return self.scheme == "https"

    @property
    def origin(self) -> tuple[str, str, int]:
        return (self.scheme, self.host, self.port)


@functools.lru_cache(maxsize=1024)  # callbacks go to a few URLs, again and again
def _parse(url: str) -> _Target:
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise HttpError(f"not an absolute http(s) URL: {url!r}")
    try:
        port = parts.port or (443 if parts.scheme == "https" else 80)
    except ValueError as exc:
        raise HttpError(f"bad port in {url!r}") from exc
    target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    return _Target(parts.scheme, parts.hostname, port, target, parts.netloc.rpartition("@")[2])


async def request(
    method: str,
    url: str,
    *,
    headers: list[tuple[str, str]] | None = None,
    body: bytes = b"",
    timeout: float = 15.0,
    max_body: int = MAX_BODY,
    guard: Guard | None = None,
) -> HttpResponse:
    """One HTTP(S) request; raises :class:`HttpError` for anything but an answer."""
    where = _parse(url)
    all_headers = _headers(where, body, headers, close=True)
    async with _answered_within(timeout):
        connection = await _Connection.open(where, guard)
        try:
            return await connection.exchange(method, where.target, all_headers, body, max_body)
        finally:
            connection.close()


def _headers(
    where: _Target, body: bytes, headers: list[tuple[str, str]] | None, *, close: bool
) -> list[tuple[str, str]]:
    """The request's headers: ours first, then the caller's."""
    head = [("Host", where.host_header)]
    if close:
        head.append(("Connection", "close"))
    head.append(("Content-Length", str(len(body))))
    head.extend(headers or ())
    return head


@contextlib.asynccontextmanager
async def _answered_within(timeout: float):
    """Bounds an exchange in time; whatever goes wrong in it becomes an HttpError."""
    try:
        async with asyncio.timeout(timeout):
            yield
    except TimeoutError as exc:
        raise HttpError(f"no answer within {timeout:g} s") from exc
    except (OSError, h11.ProtocolError, ssl.SSLError) as exc:
        raise HttpError(f"{type(exc).__name__}: {exc}") from exc


class _Stale(HttpError):
    """A kept-alive connection was closed before any byte of the answer came."""


@dataclass(slots=True)
class _Connection:
    reader: asyncio.StreamReader
    writer: asyncio.StreamWriter
    protocol: h11.Connection = field(default_factory=lambda: h11.Connection(h11.CLIENT))
    idle_since: float = 0.0

    @classmethod
    async def open(cls, where: _Target, guard: Guard | None = None) -> _Connection:
        host = where.host if guard is None else await guard(where.host, where.port)
        reader, writer = await asyncio.open_connection(
            host,
            where.port,
            ssl=_SSL if where.secure else None,
            server_hostname=where.host if where.secure else None,
        )
        return cls(reader, writer)

    @property
    def reusable(self) -> bool:
        """Both sides finished the exchange and neither asked to close (h11 knows)."""
        return self.protocol.our_state is h11.DONE and self.protocol.their_state is h11.DONE

    def close(self) -> None:
        self.writer.close()

    async def exchange(
        self,
        method: str,
        target: str,
        headers: list[tuple[str, str]],
        body: bytes,
        max_body: int,
    ) -> HttpResponse:
        connection = self.protocol
        # One write (one send on the socket) for the head, the body and its end.
        data = connection.send(h11.Request(method=method, target=target, headers=headers))
        if body:
            data += connection.send(h11.Data(data=body))
        data += connection.send(h11.EndOfMessage())
        self.writer.write(data)
        received = False
        try:
            await self.writer.drain()
            response: h11.Response | None = None
            chunks: list[bytes] = []
            size = 0
            while True:
                event = connection.next_event()
                if event is h11.NEED_DATA:
                    data = await self.reader.read(65536)
                    received = received or bool(data)
                    connection.receive_data(data)
                elif isinstance(event, h11.Response):
                    response = event
                elif isinstance(event, h11.Data):
                    size += len(event.data)
                    if size > max_body:
                        raise HttpError(f"response body over {max_body} bytes")
                    chunks.append(bytes(event.data))
                elif isinstance(event, (h11.EndOfMessage, h11.ConnectionClosed)):
                    break
                # h11.InformationalResponse (100 Continue): keep reading
        except (ConnectionError, h11.RemoteProtocolError) as exc:
            if not received:
                raise _Stale(f"{type(exc).__name__}: {exc}") from exc
            raise
        if response is None:
            raise _Stale("connection closed before a response")
        return HttpResponse(response.status_code, list(response.headers), b"".join(chunks))


class ConnectionPool:
    """HTTP/1.1 requests over persistent connections, kept per origin (RFC 9112 §9.3).

    A connection goes back to the pool when both sides finished the exchange and
    neither said ``Connection: close``; one idle for ``idle_timeout`` seconds is
    dropped. A reused connection that the server closed before answering (a race
    every keep-alive client has) is replaced by a fresh one and the request sent
    once more.
    """

    def __init__(
        self,
        *,
        idle_timeout: float = IDLE_TIMEOUT_S,
        max_idle_per_origin: int = MAX_IDLE_PER_ORIGIN,
        guard: Guard | None = None,
    ) -> None:
        self.guard = guard  # asked before each new connection (--fetch-deny)
        self.idle_timeout = idle_timeout
        self.max_idle_per_origin = max_idle_per_origin
        self._idle: dict[tuple[str, str, int], list[_Connection]] = {}
        self.opened = 0  # connections made, for tests and the curious

    async def request(
        self,
        method: str,
        url: str,
        *,
        headers: list[tuple[str, str]] | None = None,
        body: bytes = b"",
        timeout: float = 15.0,
        max_body: int = MAX_BODY,
    ) -> HttpResponse:
        """One HTTP(S) request; raises :class:`HttpError` for anything but an answer."""
        where = _parse(url)
        all_headers = _headers(where, body, headers, close=False)
        async with _answered_within(timeout):
            while True:
                connection = self._take(where.origin)
                reused = connection is not None
                if connection is None:
                    connection = await _Connection.open(where, self.guard)
                    self.opened += 1
                try:
                    response = await connection.exchange(
                        method, where.target, all_headers, body, max_body
                    )
                except _Stale:
                    connection.close()
                    if reused:
                        continue
                    raise
                except BaseException:
                    connection.close()
                    raise
                self._give_back(where.origin, connection)
                return response

    def _take(self, origin: tuple[str, str, int]) -> _Connection | None:
        idle = self._idle.get(origin)
        horizon = time.monotonic() - self.idle_timeout
        while idle:
            connection = idle.pop()
            if connection.idle_since >= horizon and not connection.reader.at_eof():
                return connection
            connection.close()
        return None

    def _give_back(self, origin: tuple[str, str, int], connection: _Connection) -> None:
        if not connection.reusable:
            connection.close()
            return
        connection.protocol.start_next_cycle()
        connection.idle_since = time.monotonic()
        idle = self._idle.setdefault(origin, [])
        if len(idle) >= self.max_idle_per_origin:
            idle.pop(0).close()
        idle.append(connection)

    def close(self) -> None:
        """Close every idle connection."""
        for idle in self._idle.values():
            for connection in idle:
                connection.close()
        self._idle.clear()
