"""The webhook HTTP client against small asyncio servers that answer in various ways."""

from __future__ import annotations

import asyncio

import pytest
from twilio.request_validator import RequestValidator

from control_api.http_client import ConnectionPool, HttpError, request
from control_api.webhooks import WebhookClient, WebhookError, sign


async def serve(answer: bytes | None, seen: list[bytes] | None = None, delay: float = 0.0):
    async def handle(reader, writer):
        data = await reader.readuntil(b"\r\n\r\n")
        length = next(
            (
                int(line.split(b":")[1])
                for line in data.split(b"\r\n")
                if line.lower().startswith(b"content-length:")
            ),
            0,
        )
        if length:
            data += await reader.readexactly(length)
        if seen is not None:
            seen.append(data)
        await asyncio.sleep(delay)
        if answer is not None:
            writer.write(answer)
            await writer.drain()
        writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    return server, f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}"


async def test_content_length_response():
    server, base = await serve(b"HTTP/1.1 200 OK\r\nContent-Length: 11\r\n\r\n<Response/>")
    async with server:
        response = await request("GET", base + "/voice?a=1")
    assert response.status == 200 and response.text == "<Response/>"


async def test_chunked_response_and_posted_body():
    seen: list[bytes] = []
    answer = (
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
        b"5\r\n<Resp\r\n6\r\nonse/>\r\n0\r\n\r\n"
    )
    server, base = await serve(answer, seen)
    async with server:
        response = await request(
            "POST",
            base + "/x",
            body=b"a=1&b=2",
            headers=[("Content-Type", "application/x-www-form-urlencoded")],
        )
    assert response.text == "<Response/>"
    assert seen[0].startswith(b"POST /x HTTP/1.1\r\n") and seen[0].endswith(b"\r\n\r\na=1&b=2")


async def test_body_until_close():
    server, base = await serve(b"HTTP/1.0 200 OK\r\n\r\n<Response/>")
    async with server:
        assert (await request("GET", base)).text == "<Response/>"


@pytest.mark.parametrize(
    "answer", [None, b"garbage\r\n\r\n", b"HTTP/1.1 200 OK\r\nContent-Length: 50\r\n\r\nshort"]
)
async def test_bad_answers_are_http_errors(answer):
    server, base = await serve(answer)
    async with server:
        with pytest.raises(HttpError):
            await request("GET", base)


async def test_timeout_and_refused_and_bad_urls():
    server, base = await serve(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n", delay=2.0)
    async with server:
        with pytest.raises(HttpError, match="within"):
            await request("GET", base, timeout=0.2)
    with pytest.raises(HttpError):
        await request("GET", "http://127.0.0.1:9/")
    for url in ("ftp://example.com/", "/relative", "http://127.0.0.1:99999/"):
        with pytest.raises(HttpError):
            await request("GET", url)


async def test_oversized_body_is_refused():
    server, base = await serve(b"HTTP/1.1 200 OK\r\nContent-Length: 2000\r\n\r\n" + b"x" * 2000)
    async with server:
        with pytest.raises(HttpError, match="over"):
            await request("GET", base, max_body=1000)


async def test_webhooks_are_signed_as_the_library_validates():
    seen: list[bytes] = []
    server, base = await serve(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n", seen)
    params = [("CallSid", "CA" + "1" * 32), ("To", "+15551234567"), ("Digits", "1#")]
    async with server:
        await WebhookClient().request(base + "/voice?x=y", "POST", params, "secret")
        await WebhookClient().request(base + "/get", "GET", params, "secret")
    post, get = seen
    signature = next(
        line.split(b": ", 1)[1].decode()
        for line in post.split(b"\r\n")
        if line.startswith(b"X-Twilio-Signature")
    )
    validator = RequestValidator("secret")
    assert validator.validate(base + "/voice?x=y", dict(params), signature)
    target = get.split(b" ")[1].decode()
    get_signature = next(
        line.split(b": ", 1)[1].decode()
        for line in get.split(b"\r\n")
        if line.startswith(b"X-Twilio-Signature")
    )
    assert validator.validate(base + target, {}, get_signature)
    assert sign(base + target, None, "secret") == get_signature


async def test_non_2xx_is_a_webhook_error():
    server, base = await serve(b"HTTP/1.1 503 Busy\r\nContent-Length: 0\r\n\r\n")
    async with server:
        with pytest.raises(WebhookError) as error:
            await WebhookClient().fetch_twiml(base, "POST", [], "t")
    assert error.value.status == 503


async def keep_alive_server(answers_per_connection: int, close_header: bool = False):
    """Answers up to ``answers_per_connection`` requests on a connection, then closes
    it without a word (as a server whose idle timeout ran out does)."""
    connections: list[int] = []

    async def handle(reader, writer):
        connections.append(0)
        try:
            for _ in range(answers_per_connection):
                head = await reader.readuntil(b"\r\n\r\n")
                length = next(
                    (
                        int(line.split(b":")[1])
                        for line in head.split(b"\r\n")
                        if line.lower().startswith(b"content-length:")
                    ),
                    0,
                )
                await reader.readexactly(length)
                connections[-1] += 1
                extra = b"Connection: close\r\n" if close_header else b""
                writer.write(b"HTTP/1.1 200 OK\r\n" + extra + b"Content-Length: 2\r\n\r\nok")
                await writer.drain()
            await reader.read(1)  # the next request: closed unanswered
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    return server, f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}", connections


async def test_pool_reuses_connections_and_retries_one_closed_under_it():
    server, base, connections = await keep_alive_server(3)
    pool = ConnectionPool()
    async with server:
        for n in range(7):
            response = await pool.request("POST", base + f"/status/{n}", body=b"a=1")
            assert (response.status, response.text) == (200, "ok")
        pool.close()
    # 3 answers per connection; the 4th and 7th requests met a closed connection and
    # went again on a fresh one.
    assert connections == [3, 3, 1]
    assert pool.opened == 3


async def test_pool_honours_connection_close():
    server, base, connections = await keep_alive_server(5, close_header=True)
    pool = ConnectionPool()
    async with server:
        for _ in range(3):
            assert (await pool.request("GET", base + "/")).text == "ok"
        pool.close()
    assert connections == [1, 1, 1]


async def test_pool_does_not_retry_a_fresh_connection():
    server, base = await serve(None)  # reads the request, closes without an answer
    pool = ConnectionPool()
    async with server:
        with pytest.raises(HttpError):
            await pool.request("GET", base + "/")
    assert pool.opened == 1
