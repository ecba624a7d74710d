"""--fetch-deny (control_api/fetch_policy.py) as every fetcher applies it: checked
before connecting, connected to the checked address, redirects checked too."""

from __future__ import annotations

import asyncio
import re

import numpy as np
import pytest

from control_api.address_policy import DenyList
from control_api.fetch_policy import FetchDenied, FetchPolicy, pinned_url, read_capped
from control_api.http_client import ConnectionPool, HttpError, request
from control_api.voice.audio import AudioLoader, AudioLoadError
from control_api.webhooks import WebhookClient, WebhookError
from media.websocket import WebSocketOpenError, open_websocket


async def serve(answer: bytes):
    """A one-answer HTTP server on 127.0.0.1; the list of requests it saw."""
    seen: list[bytes] = []

    async def handle(reader, writer):
        seen.append(await reader.readuntil(b"\r\n\r\n"))
        writer.write(answer)
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    return server, server.sockets[0].getsockname()[1], seen


def policy(*deny: str):
    refusals: list = []
    return FetchPolicy(
        deny, lambda reason, source_ip, **f: refusals.append((reason, source_ip, f))
    ), refusals


@pytest.mark.parametrize(
    ("address", "denied"),
    [
        ("169.254.169.254", "169.254.0.0/16"),
        ("fe80::1", "fe80::/10"),
        ("::ffff:169.254.169.254", "169.254.0.0/16"),  # v4-mapped is the v4 address
        ("fe80::1%eth0", "fe80::/10"),
        ("127.0.0.1", None),
        ("10.0.0.1", None),
    ],
)
def test_deny_list_matches_every_spelling(address, denied):
    network = DenyList(["169.254.0.0/16", "fe80::/10"]).denied(address)
    assert (str(network) if network else None) == denied


async def test_a_name_is_denied_when_any_of_its_addresses_is(monkeypatch):
    async def addresses(host, kind=0):
        return {"meta.example": ["192.0.2.1", "169.254.169.254"]}.get(host, ["192.0.2.9"])

    monkeypatch.setattr("control_api.fetch_policy.resolve_all", addresses)
    check, refusals = policy("169.254.0.0/16")
    with pytest.raises(
        FetchDenied, match=re.escape("169.254.169.254, in --fetch-deny 169.254.0.0/16")
    ):
        await check("meta.example", 80)
    assert refusals == [("fetch.denied", "169.254.169.254", {"host": "meta.example", "port": 80})]
    assert await check("app.example", 443) == "192.0.2.9"


def test_pinned_url_keeps_the_host_header():
    assert pinned_url("http://u:p@app.example:8080/a?b=1", "192.0.2.1") == (
        "http://192.0.2.1:8080/a?b=1",
        "app.example:8080",
    )
    assert pinned_url("https://app.example/x", "2001:db8::1") == (
        "https://[2001:db8::1]/x",
        "app.example",
    )


async def test_a_denied_webhook_never_connects_and_fails_as_an_unreachable_one():
    server, port, seen = await serve(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n")
    check, refusals = policy("127.0.0.0/8")
    client = WebhookClient(guard=check)
    outcomes = []
    client.on_result = lambda seconds, outcome: outcomes.append(outcome)
    async with server:
        for keep_alive in (False, True):
            with pytest.raises(WebhookError, match="fetch denied"):
                await client.request(
                    f"http://127.0.0.1:{port}/voice", "POST", [], "token", keep_alive=keep_alive
                )
    await client.close()
    assert seen == [] and outcomes == ["unreachable", "unreachable"]
    assert [r[0] for r in refusals] == ["fetch.denied"] * 2


async def test_the_connection_goes_to_the_checked_address_not_a_new_lookup():
    """DNS rebinding: the name is looked up once, by the check; we connect there."""
    server, port, seen = await serve(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
    asked = []

    async def checked(host, port):
        asked.append((host, port))
        return "127.0.0.1"

    async with server:
        response = await request("GET", f"http://rebind.invalid:{port}/x", guard=checked)
        pool = ConnectionPool(guard=checked)
        pooled = await pool.request("GET", f"http://rebind.invalid:{port}/y")
        pool.close()
    assert response.text == pooled.text == "ok"
    assert asked == [("rebind.invalid", port)] * 2
    assert f"Host: rebind.invalid:{port}".encode() in seen[0]


async def test_without_a_guard_nothing_changes():
    server, port, _ = await serve(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
    async with server:
        assert (await request("GET", f"http://127.0.0.1:{port}/")).text == "ok"
    with pytest.raises(HttpError):
        await request("GET", "http://127.0.0.1:1/")


async def test_play_audio_checks_every_redirect_hop():
    target, target_port, target_seen = await serve(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n")
    hop = f"HTTP/1.1 302 Found\r\nLocation: http://127.0.0.2:{target_port}/a.wav\r\n"
    redirect, redirect_port, redirect_seen = await serve(f"{hop}Content-Length: 0\r\n\r\n".encode())
    check, refusals = policy("127.0.0.2/32")
    loader = AudioLoader(guard=check)
    async with target, redirect:
        with pytest.raises(AudioLoadError, match="fetch denied"):
            await loader.load(f"http://127.0.0.1:{redirect_port}/a.wav")
    await loader.close()
    assert len(redirect_seen) == 1 and target_seen == []
    assert refusals[0][:2] == ("fetch.denied", "127.0.0.2")


async def test_play_audio_follows_allowed_redirects_to_the_checked_address(monkeypatch):
    monkeypatch.setattr(
        "control_api.voice.audio.decode_audio", lambda data, *args, **kwargs: np.zeros(8)
    )
    target, target_port, target_seen = await serve(
        b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nRIF"
    )
    hop = f"HTTP/1.1 302 Found\r\nLocation: http://localhost:{target_port}/b.wav\r\n"
    redirect, redirect_port, _ = await serve(f"{hop}Content-Length: 0\r\n\r\n".encode())
    check, refusals = policy("169.254.0.0/16")
    loader = AudioLoader(guard=check)
    async with target, redirect:
        samples = await loader.load(f"http://127.0.0.1:{redirect_port}/a.wav")
    await loader.close()
    assert len(samples) == 8 and refusals == []
    assert f"host: localhost:{target_port}".encode() in target_seen[0].lower()


async def test_a_denied_stream_url_fails_to_open():
    server, port, seen = await serve(b"")
    check, refusals = policy("127.0.0.0/8")
    async with server:
        with pytest.raises(WebSocketOpenError, match="fetch denied"):
            await open_websocket(f"ws://127.0.0.1:{port}/s", timeout=5, resolve=check)
    assert seen == [] and refusals[0][0] == "fetch.denied"


async def _chunks(*parts: bytes):
    for part in parts:
        yield part


async def test_read_capped_reads_up_to_the_limit_and_stops_past_it():
    assert await read_capped(_chunks(b"ab", b"cd"), 4) == b"abcd"
    assert await read_capped(_chunks(b"ab", b"cd", b"e"), 4) is None
    assert await read_capped(_chunks(), 0) == b""
