"""callswitch/front_door.py: the page a browser gets at ``/``, JSON clients' 404 kept."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from hypothesis import given
from hypothesis import strategies as st

from callswitch.front_door import Entrance, docs_pages, mount_front_door, render_page, wants_html
from control_api.errors import install_error_handlers

CHROMIUM_ACCEPT = (
    "text/html,application/xhtml+xml,application/xml;q=0.9,image/avif,image/webp,"
    "image/apng,*/*;q=0.8,application/signed-exchange;v=b3;q=0.7"
)
FIREFOX_ACCEPT = "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"
LISTENERS = {
    "sip_udp": "0.0.0.0:5070",
    "sip_tcp": "0.0.0.0:5070",
    "http": "0.0.0.0:8080",
    "webrtc": "/signaling",
}


@pytest.mark.parametrize(
    ("accept", "page"),
    [
        (CHROMIUM_ACCEPT, True),
        (FIREFOX_ACCEPT, True),
        ("text/html", True),
        ("application/json", False),  # the twilio helper library
        ("*/*", False),  # curl, httpx
        ("", False),
        ("application/json, text/html;q=0.5", False),
        ("text/html;q=0", False),
        ("text/html;q=0.9, application/*;q=0.8", True),
        ("TEXT/HTML", True),
        ("text/html;q=nonsense", False),
    ],
)
def test_only_a_client_that_prefers_html_gets_the_page(accept, page):
    assert wants_html(accept) is page


@given(st.text(max_size=200))
def test_any_accept_header_is_read_without_crashing(accept):
    assert wants_html(accept) in (True, False)


def _page(**changes) -> str:
    entrance = Entrance(
        changes.pop("host", "203.0.113.7"),
        changes.pop("listeners", LISTENERS),
        demo_number="1000",
        docs=("routing.md", "webrtc.md"),
    )
    return render_page(entrance, "http://node.example:8080", "node.example:8080", False)


def test_the_page_names_what_to_dial_on_every_listening_transport():
    page = _page()
    assert "sip:1000@203.0.113.7:5070" in page
    assert "sip:1000@203.0.113.7:5070;transport=tcp" in page
    for app in ("echo", "tone", "ringing"):
        assert f"<code>{app}</code>" in page
    # Only what listens: no TLS, no WebSocket here, and the page says how to turn WS on.
    assert "sips:" not in page and "ws://203" not in page and "wss://203" not in page
    assert "--sip-ws-port" in page
    tls = _page(
        listeners={**LISTENERS, "sip_tls": "0.0.0.0:5071", "sip_ws": "0.0.0.0:5066",
                   "sip_wss": "0.0.0.0:5067"}
    )  # fmt: skip
    assert "sips:1000@203.0.113.7:5071" in tls
    assert "ws://203.0.113.7:5066" in tls and "wss://203.0.113.7:5067" in tls
    assert "--sip-ws-port" not in tls
    assert "sip:1000@[2001:db8::1]:5070" in _page(host="2001:db8::1")


def test_the_page_tells_each_browser_client_where_to_connect():
    page = _page()
    assert 'href="/phone"' in page and 'href="/console"' in page
    assert 'href="/docs/webrtc.md"' in page and 'href="/docs/routing.md"' in page
    assert "http://node.example:8080/phone/callswitch.js" in page
    assert "ws://node.example:8080/signaling" in page
    assert "chunderw: &quot;node.example:8080&quot;" in page
    assert "wss://node.example:8080/signal" in page and "publishEvents: false" in page
    assert "--http-tls-cert" in page  # the SDK needs wss: said when the node is plain HTTP
    assert "JsSIP.WebSocketInterface" in page and "SIP.UserAgent" in page
    assert "http://node.example:8080/2010-04-01" in page
    without_webrtc = _page(listeners={k: v for k, v in LISTENERS.items() if k != "webrtc"})
    assert 'href="/phone"' not in without_webrtc and "Browser calls do not run" in without_webrtc


def test_the_page_loads_nothing_and_runs_nothing():
    page = _page()
    assert "<script" not in page.lower() and "<link" not in page.lower()
    assert not re.search(r"\bsrc\s*=", page) and "url(" not in page
    assert all(href.startswith("/") for href in re.findall(r'href="([^"]*)"', page))


def _client(tmp_path: Path, **entrance) -> TestClient:
    (tmp_path / "webrtc.md").write_text("# Browser calls\n")
    (tmp_path / "secret.txt").write_text("not a doc")
    app = FastAPI()
    install_error_handlers(app)
    pages = docs_pages(tmp_path)
    assert pages == ("webrtc.md",)
    mount_front_door(app, Entrance("203.0.113.7", LISTENERS, docs=pages, **entrance), tmp_path)
    return TestClient(app)


def test_browsers_get_the_page_json_clients_the_404_they_always_got(tmp_path):
    client = _client(tmp_path)
    page = client.get("/", headers={"Accept": CHROMIUM_ACCEPT, "Host": "node.example:8080"})
    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    assert "default-src 'none'" in page.headers["content-security-policy"]
    assert "sip:echo@203.0.113.7:5070" in page.text  # no demo number: the first app
    for accept in ("application/json", "*/*", None):
        headers = {"Accept": accept} if accept else {}
        response = client.get("/", headers=headers)
        assert response.status_code == 404
        assert response.headers["content-type"] == "application/json"
        assert response.json()["code"] == 20404


def test_a_hostile_host_header_is_shown_as_text(tmp_path):
    client = _client(tmp_path)
    page = client.get("/", headers={"Accept": "text/html", "Host": '"><script>alert(1)</script>'})
    assert page.status_code == 200
    assert "<script>" not in page.text and "&lt;script&gt;" in page.text


def test_docs_are_served_by_name_and_nothing_else(tmp_path):
    client = _client(tmp_path)
    doc = client.get("/docs/webrtc.md")
    assert doc.status_code == 200 and doc.text == "# Browser calls\n"
    assert doc.headers["content-type"].startswith("text/plain")
    for name in ("secret.txt", "..%2Fsecret.txt", "missing.md", "%2e%2e%2fREADME.md"):
        response = client.get(f"/docs/{name}")
        assert response.status_code == 404, name
        assert response.json()["code"] == 20404


def test_the_source_checkouts_docs_are_found():
    pages = docs_pages()
    assert "webrtc.md" in pages and "routing.md" in pages
