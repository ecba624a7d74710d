"""A lean HTTP/1.1 client for webhooks: h11's protocol core on asyncio streams.

Every inbound call waits on one webhook before it can answer, so this request
is on the path to the caller's first audio. httpx costs several milliseconds of
CPU per request here (its transport layers and anyio); h11 (the sans-I/O engine
underneath it) on a plain asyncio stream does the same exchange for a fraction
of that. One request per connection (``Connection: close``), as most
application servers expect from webhook senders.
"""

from __future__ import annotations

import asyncio
import ssl
from dataclasses import dataclass
from urllib.parse import urlsplit

import h11

__all__ = ["HttpError", "HttpResponse", "request"]

MAX_BODY = 1024 * 1024  # a TwiML document is a few kilobytes; refuse the absurd
_SSL = ssl.create_default_context()


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


async def request(
    method: str,
    url: str,
    *,
    headers: list[tuple[str, str]] | None = None,
    body: bytes = b"",
    timeout: float = 15.0,
    max_body: int = MAX_BODY,
) -> HttpResponse:
    """One HTTP(S) request; raises :class:`HttpError` for anything but an answer."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise HttpError(f"not an absolute http(s) URL: {url!r}")
    secure = parts.scheme == "https"
    try:
        port = parts.port or (443 if secure else 80)
    except ValueError as exc:
        raise HttpError(f"bad port in {url!r}") from exc
    target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    host_header = parts.netloc.rpartition("@")[2]
    all_headers = [
        ("Host", host_header),
        ("Connection", "close"),
        ("Content-Length", str(len(body))),
        *(headers or ()),
    ]
    try:
        async with asyncio.timeout(timeout):
            return await _exchange(
                parts.hostname, port, secure, method, target, all_headers, body, max_body
            )
    except TimeoutError as exc:
        raise HttpError(f"no answer within {timeout:g} s") from exc
    except (OSError, h11.ProtocolError, ssl.SSLError) as exc:
        raise HttpError(f"{type(exc).__name__}: {exc}") from exc


async def _exchange(
    host: str,
    port: int,
    secure: bool,
    method: str,
    target: str,
    headers: list[tuple[str, str]],
    body: bytes,
    max_body: int,
) -> HttpResponse:
    reader, writer = await asyncio.open_connection(
        host, port, ssl=_SSL if secure else None, server_hostname=host if secure else None
    )
    try:
        connection = h11.Connection(h11.CLIENT)
        writer.write(connection.send(h11.Request(method=method, target=target, headers=headers)))
        if body:
            writer.write(connection.send(h11.Data(data=body)))
        writer.write(connection.send(h11.EndOfMessage()))
        await writer.drain()
        response: h11.Response | None = None
        chunks: list[bytes] = []
        size = 0
        while True:
            event = connection.next_event()
            if event is h11.NEED_DATA:
                connection.receive_data(await reader.read(65536))
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
        if response is None:
            raise HttpError("connection closed before a response")
        return HttpResponse(response.status_code, list(response.headers), b"".join(chunks))
    finally:
        writer.close()
