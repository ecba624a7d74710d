"""--http-tls-cert/--http-tls-key: the HTTP listener speaks HTTPS and WSS (the official
Voice JS SDK's /signal, its sounds with CORS, /signaling), and lets idle keep-alive
connections go at once when it stops."""

from __future__ import annotations

import asyncio
import json
import socket
import ssl
import time

import httpx
import pytest
from fastapi import FastAPI
from websockets.asyncio.client import connect

from callswitch.config import ConfigError, add_arguments, load_settings
from callswitch.http import HttpServer
from callswitch.webrtc import mount_webrtc
from signaling.server import SignalingServer
from sip.connections import ConnectionTable
from tests.interop.harness import make_tls_cert


@pytest.fixture(scope="module")
def cert(tmp_path_factory):
    return make_tls_cert(tmp_path_factory.mktemp("https"))


async def no_keys(sid: str):
    return None


@pytest.fixture
async def https(cert):
    app = FastAPI()
    server = SignalingServer(no_keys)
    endpoint = mount_webrtc(app, server)
    http = HttpServer(
        app,
        "127.0.0.1",
        0,
        table=ConnectionTable(time.monotonic, max_per_source=10, max_total=10),
        tls_cert=str(cert[0]),
        tls_key=str(cert[1]),
    )
    await http.start()
    yield http
    await endpoint.close()
    server.close()
    await http.stop()


def client_context(cert) -> ssl.SSLContext:
    return ssl.create_default_context(cafile=str(cert[0]))


async def test_the_sdks_sounds_and_signal_over_https_and_wss(https, cert):
    base = f"https://{https.address}"
    async with httpx.AsyncClient(verify=client_context(cert)) as client:
        sound = await client.get(f"{base}/signal/sounds/incoming.wav")
        missing = await client.get(f"{base}/signal/sounds/cowbell.wav")
        phone = await client.get(f"{base}/phone")
    assert sound.status_code == 200 and sound.content[:4] == b"RIFF"
    assert sound.headers["content-type"] == "audio/wav"
    assert sound.headers["access-control-allow-origin"] == "*"
    assert missing.status_code == 404 and phone.status_code == 200
    async with connect(f"wss://{https.address}/signal", ssl=client_context(cert)) as ws:
        await ws.send(json.dumps({"type": "listen", "version": "1.6", "payload": {"token": "x"}}))
        error, close = json.loads(await ws.recv()), json.loads(await ws.recv())
    assert error["type"] == "error" and error["payload"]["error"]["code"] == 31204
    assert close["type"] == "close"
    async with connect(f"wss://{https.address}/signaling", ssl=client_context(cert)) as ws:
        await ws.send(json.dumps({"type": "register", "token": "x"}))
        assert json.loads(await ws.recv())["code"] == 20101


async def test_plain_http_is_not_served_on_a_tls_port(https):
    async with httpx.AsyncClient() as client:
        with pytest.raises(httpx.HTTPError):
            await client.get(f"http://{https.address}/phone")


async def test_stopping_lets_an_idle_tls_keep_alive_go_at_once(cert):
    http = HttpServer(
        FastAPI(),
        "127.0.0.1",
        0,
        table=ConnectionTable(time.monotonic, max_per_source=10, max_total=10),
        tls_cert=str(cert[0]),
        tls_key=str(cert[1]),
    )
    await http.start()
    host, port = http.address.split(":")

    def request() -> ssl.SSLSocket:
        # A blocking client, as requests' pool is: it reads nothing once it has its
        # response, so it never answers the server's close_notify.
        raw = socket.create_connection((host, int(port)), timeout=5)
        tls = client_context(cert).wrap_socket(raw, server_hostname=host)
        tls.sendall(b"GET /nothing HTTP/1.1\r\nHost: x\r\n\r\n")
        assert tls.recv(4096).startswith(b"HTTP/1.1 404")
        return tls

    idle = await asyncio.to_thread(request)
    started = time.monotonic()
    await http.stop()
    assert time.monotonic() - started < 3.0
    idle.close()


def test_the_settings_from_flags_environment_and_file(tmp_path, monkeypatch):
    import argparse

    monkeypatch.chdir(tmp_path)
    for name in ("cert.pem", "key.pem", "other.pem"):
        (tmp_path / name).write_text("PEM\n")
    parser = argparse.ArgumentParser()
    add_arguments(parser)
    s = load_settings(parser.parse_args([]), environ={})
    assert (s.http_tls_cert, s.http_tls_key) == (None, None)
    (tmp_path / "callswitch.toml").write_text('http_tls_cert = "cert.pem"\n')
    s = load_settings(parser.parse_args([]), environ={"CALLSWITCH_HTTP_TLS_KEY": "key.pem"})
    assert (s.http_tls_cert, s.http_tls_key) == ("cert.pem", "key.pem")
    s = load_settings(parser.parse_args(["--http-tls-cert", "other.pem"]), environ={})
    assert s.http_tls_cert == "other.pem"
    (tmp_path / "callswitch.toml").unlink()
    with pytest.raises(ConfigError, match="needs --http-tls-cert"):
        load_settings(parser.parse_args(["--http-tls-key", "key.pem"]), environ={})
    with pytest.raises(ConfigError, match="no such file"):
        load_settings(parser.parse_args(["--http-tls-cert", "missing.pem"]), environ={})
