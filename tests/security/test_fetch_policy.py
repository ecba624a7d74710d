"""--fetch-deny against a real node: a VoiceUrl (and a <Play>) pointing into a denied
range is never connected to; the call gets the 11200 an unreachable webhook gets.

Link-local (169.254/16, the cloud metadata range, denied by default) cannot be
bound on loopback, so the test denies 127.0.0.77/32 and listens there."""

from __future__ import annotations

import socket
import threading

import httpx
import pytest

from tests.interop.harness import CallswitchServer
from tests.interop.test_voice_webhooks import rest_client
from tests.interop.webhook_app import WebhookApp, twiml

from .node import refusal_counts, refused_events, still_serving, wait_event
from .phone import Phone

NUMBER = "+15005550042"
DENIED = "127.0.0.77"


class TcpListener:
    """Counts the connections made to it (none, when the policy holds)."""

    def __init__(self, host: str) -> None:
        self.sock = socket.create_server((host, 0))
        self.sock.settimeout(0.2)
        self.port = self.sock.getsockname()[1]
        self.accepted = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self.sock.accept()
            except (TimeoutError, OSError):
                continue
            self.accepted += 1
            conn.close()

    def __enter__(self) -> TcpListener:
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join(2)
        self.sock.close()


@pytest.fixture
def app():
    with WebhookApp() as application:
        yield application


def test_a_voice_url_in_fetch_deny_is_not_fetched_and_the_call_gets_11200(tmp_path, app):
    with TcpListener(DENIED) as metadata, Phone("127.0.0.5", "caller") as caller:
        server = CallswitchServer.start(
            tmp_path / "server", extra_args=("--fetch-deny", f"{DENIED}/32")
        )
        try:
            denied_url = f"http://{DENIED}:{metadata.port}"
            # The fallback answers, and asks for audio from the denied address too.
            app.routes["/fallback"] = lambda r: twiml(
                f"<Play>{denied_url}/latest/meta-data.wav</Play><Hangup/>"
            )
            rest_client(server).incoming_phone_numbers.create(
                phone_number=NUMBER,
                voice_url=f"{denied_url}/latest/meta-data/",
                voice_fallback_url=app.url("/fallback"),
                status_callback=f"{denied_url}/status",
            )
            caller.call(server.sip_addr, NUMBER.lstrip("+"), timeout=10)
            [fallback] = app.wait_for("/fallback", 1, timeout=15)
            assert wait_event(server, "call.completed"), server.tail()
            counted = refusal_counts(server)
            still_serving(server)
            loopback_metrics = httpx.get(f"http://127.0.0.1:{server.http_port}/metrics")
        finally:
            problems = server.stop()
        assert metadata.accepted == 0, "the node connected to a denied address"
        assert fallback.field("ErrorCode") == "11200"
        assert fallback.field("ErrorUrl") == f"{denied_url}/latest/meta-data/"
        [failed] = server.events("twiml.fetch_failed")
        assert "fetch denied" in failed["error"] and f"{DENIED}/32" in failed["error"]
        assert counted.get("fetch.denied", 0) >= 2, counted  # the webhook and the <Play>
        [event] = [e for e in refused_events(server, "fetch.denied") if "repeated" not in e]
        assert event["source_ip"] == DENIED
        # Loopback itself is not denied by default (see docs/security.md).
        assert loopback_metrics.status_code == 200
        assert not problems, problems
