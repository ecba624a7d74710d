"""The console cannot be framed and runs only its own code; ``/metrics`` wants
the bearer token when the node has one; ``/health`` and ``/ready`` stay open."""

from __future__ import annotations

import urllib.error
import urllib.request
from email.message import Message

import pytest

TOKEN = "s3cret-metrics-token"


def get(server, path: str, **headers: str) -> tuple[int, Message, bytes]:
    request = urllib.request.Request(f"http://127.0.0.1:{server.http_port}{path}", headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=5) as response:
            return response.status, response.headers, response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.headers, error.read()


@pytest.mark.callswitch_shared
def test_the_console_forbids_framing_and_foreign_code(server):
    for path in ("/console", "/console/console.js"):
        status, headers, _ = get(server, path)
        assert status == 200
        assert headers["X-Frame-Options"] == "DENY"
        policy = {
            d.strip().split(" ", 1)[0]: d.strip()
            for d in headers["Content-Security-Policy"].split(";")
        }
        assert policy["frame-ancestors"] == "frame-ancestors 'none'"
        assert policy["default-src"] == "default-src 'none'"
        assert policy["script-src"] == "script-src 'self'"
        assert "unsafe-inline" not in headers["Content-Security-Policy"]


@pytest.mark.callswitch_shared
def test_metrics_are_open_without_a_token(server):
    status, _, body = get(server, "/metrics")
    assert status == 200 and b"callswitch_" in body


@pytest.mark.callswitch(extra_args=("--metrics-token", TOKEN))
def test_metrics_want_the_bearer_token_and_health_does_not(server):
    assert get(server, "/metrics")[0] == 401
    status, headers, _ = get(server, "/metrics", Authorization=f"Bearer {TOKEN}x")
    assert status == 401 and headers["WWW-Authenticate"].startswith("Bearer")
    assert get(server, "/metrics", Authorization=f"Basic {TOKEN}")[0] == 401
    status, _, body = get(server, "/metrics", Authorization=f"Bearer {TOKEN}")
    assert status == 200 and b"callswitch_refusals_total" in body
    assert b'reason="metrics.unauthorized"} 3' in body
    assert get(server, "/health")[0] == 200
    assert get(server, "/ready")[0] == 200
    assert TOKEN not in "\n".join(server.lines()), "the token was logged"
