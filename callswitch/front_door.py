"""The front door: ``GET /`` on the HTTP port answers a person's browser with a page.

A newcomer who opens the node's address sees what to dial (the demo number and the
built-in apps, as SIP URIs on every transport this node listens on), where the
browser phone, the console and the docs are, and how to point each browser client
at this node: callswitch.js, Twilio's official Voice JS SDK, JsSIP and SIP.js.

Only a client that asks for HTML (a browser's ``Accept: text/html``) gets the page;
any other (the REST clients ask for JSON, curl for ``*/*``) gets Twilio's 404 body as
before. The page is one self-contained document: no script, no external resource.
It names no account, token or secret: it is served to anyone.
"""

from __future__ import annotations

import html
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from fastapi import FastAPI, HTTPException, Request
from fastapi.responses import HTMLResponse, PlainTextResponse

__all__ = ["DOCS_DIR", "Entrance", "docs_pages", "mount_front_door", "render_page", "wants_html"]

# The docs of a source checkout (an installed wheel has none: the page then says so).
DOCS_DIR = Path(__file__).resolve().parent.parent / "docs"
_DOC_NAME = re.compile(r"^[a-z0-9_-]+\.md$")
_SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'none'; style-src 'unsafe-inline'; base-uri 'none'; "
        "form-action 'none'; frame-ancestors 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
}
_APPS = {
    "echo": "the echo test: you hear yourself",
    "tone": "a 1 kHz tone; any key (RFC 4733 or SIP INFO) hangs up",
    "ringing": "rings and never answers",
}


@dataclass(frozen=True, slots=True)
class Entrance:
    """What the page tells: the node's public address and what listens on it.

    ``listeners`` is the server's own table (``name -> "address:port"``: ``sip_udp``,
    ``sip_tcp``, ``sip_tls``, ``sip_ws``, ``sip_wss``, ...), read when the page is asked
    for, so it shows what actually started.
    """

    host: str
    listeners: Mapping[str, str]
    demo_number: str | None = None
    apps: tuple[str, ...] = ("echo", "tone", "ringing")
    docs: tuple[str, ...] = field(default_factory=tuple)


def wants_html(accept: str) -> bool:
    """Whether an Accept header prefers HTML to JSON (RFC 9110 §12.5.1 quality values):
    only a client that names ``text/html`` gets the page."""
    weights: dict[str, float] = {}
    for part in accept.split(","):
        kind, *params = (p.strip() for p in part.split(";"))
        quality = 1.0
        for param in params:
            name, _, value = param.partition("=")
            if name.strip().lower() == "q":
                try:
                    quality = float(value)
                except ValueError:
                    quality = 0.0
        kind = kind.lower()
        weights[kind] = max(weights.get(kind, 0.0), quality)
    page = weights.get("text/html", 0.0)
    json = max(weights.get("application/json", 0.0), weights.get("application/*", 0.0))
    return page > 0 and page >= json


def _port(listener: str) -> str:
    return listener.rsplit(":", 1)[-1]


def _bracketed(host: str) -> str:
    return f"[{host}]" if ":" in host and not host.startswith("[") else host


def _transports(entrance: Entrance, user: str) -> list[tuple[str, str]]:
    """(transport, how to reach ``user``) for each SIP listener that is up."""
    host, found = _bracketed(entrance.host), entrance.listeners
    rows = []
    if "sip_udp" in found:
        rows.append(("UDP", f"sip:{user}@{host}:{_port(found['sip_udp'])}"))
    if "sip_tcp" in found:
        rows.append(("TCP", f"sip:{user}@{host}:{_port(found['sip_tcp'])};transport=tcp"))
    if "sip_tls" in found:
        rows.append(("TLS", f"sips:{user}@{host}:{_port(found['sip_tls'])}"))
    if "sip_ws" in found:
        rows.append(("WebSocket", f"ws://{host}:{_port(found['sip_ws'])}"))
    if "sip_wss" in found:
        rows.append(("secure WebSocket", f"wss://{host}:{_port(found['sip_wss'])}"))
    return rows


def _code(text: str) -> str:
    return f"<code>{html.escape(text)}</code>"


def _pre(text: str) -> str:
    return f"<pre>{html.escape(text)}</pre>"


def _numbers(entrance: Entrance) -> str:
    rows = []
    if entrance.demo_number:
        rows.append((entrance.demo_number, "the demo number: greets you, reads back your digits"))
    rows += [(app, _APPS.get(app, "")) for app in entrance.apps]
    cells = "".join(f"<tr><td>{_code(u)}</td><td>{html.escape(w)}</td></tr>" for u, w in rows)
    example = entrance.demo_number or (entrance.apps[0] if entrance.apps else "echo")
    transports = _transports(entrance, example)
    reach = "".join(f"<tr><td>{html.escape(t)}</td><td>{_code(a)}</td></tr>" for t, a in transports)
    if not transports:
        reach = "<tr><td colspan=2>SIP does not run on this node (<code>--only</code>)</td></tr>"
    return (
        "<h2>Call it from a SIP phone</h2>"
        "<p>Any softphone (baresip, Linphone, Zoiper), no registration needed:</p>"
        f"<table><tr><th>user</th><th>what answers</th></tr>{cells}</table>"
        f"<p>Dialing {_code(example)} on each transport:</p>"
        f"<table><tr><th>transport</th><th>address</th></tr>{reach}</table>"
        "<p>To be called, register: "
        f"{_code('callswitch sip-credentials add --account AC… --username alice --password …')}"
        ", then TwiML <code>&lt;Dial&gt;&lt;Client&gt;alice&lt;/Client&gt;&lt;/Dial&gt;</code>"
        " rings it.</p>"
    )


def _browsers(entrance: Entrance, origin: str, authority: str, secure: bool) -> str:
    ws_scheme = "wss" if secure else "ws"
    found = entrance.listeners
    sip_ws = next(
        (
            f"{s}://{_bracketed(entrance.host)}:{_port(found[k])}"
            for k, s in (("sip_wss", "wss"), ("sip_ws", "ws"))
            if k in found
        ),
        None,
    )
    callswitch_js = (
        f'import {{ Device }} from "{origin}/phone/callswitch.js";\n'
        f"const device = new Device(token); // {ws_scheme}://{authority}/signaling\n"
        'device.addEventListener("incoming", (e) => e.detail.accept());\n'
        "await device.register();"
    )
    twilio_sdk = (
        'import { Device } from "@twilio/voice-sdk";\n'
        "const device = new Device(token, {\n"
        f'  chunderw: "{authority}",  // the SDK connects to wss://{authority}/signal\n'
        "  publishEvents: false,       // no Insights events to Twilio\n"
        f'  sounds: {{ incoming: "{origin}/signal/sounds/incoming.wav" /* and 14 more */ }},\n'
        "});\n"
        "await device.register();"
    )
    sip_js = (
        f"// JsSIP\nnew JsSIP.UA({{ sockets: [new JsSIP.WebSocketInterface("
        f'"{sip_ws or "ws://HOST:5066"}")],\n'
        f'  uri: "sip:alice@{_bracketed(entrance.host)}", password: "…" }}).start();\n'
        f"// SIP.js\nnew SIP.UserAgent({{ uri: SIP.UserAgent.makeURI("
        f'"sip:alice@{_bracketed(entrance.host)}"),\n'
        f'  transportOptions: {{ server: "{sip_ws or "ws://HOST:5066"}" }},\n'
        '  authorizationUsername: "alice", authorizationPassword: "…" });'
    )
    tls_note = (
        ""
        if secure
        else "<p>The SDK speaks <code>wss</code> only: serve HTTPS with "
        "<code>--http-tls-cert</code>/<code>--http-tls-key</code> (or a TLS proxy in front).</p>"
    )
    ws_note = (
        ""
        if sip_ws
        else "<p>SIP over WebSocket does not listen on this node "
        "(<code>--sip-ws-port</code>, <code>--sip-wss-port</code>).</p>"
    )
    phone = (
        '<li><a href="/phone">/phone</a>: the softphone. Mint a token with '
        f"{_code('callswitch token --identity alice')} and paste it.</li>"
        if "webrtc" in found
        else "<li>Browser calls do not run on this node (<code>--only</code>).</li>"
    )
    return (
        "<h2>In a browser</h2><ul>"
        f"{phone}"
        '<li><a href="/console">/console</a>: calls, numbers, messages and usage; '
        "sign in with an Account SID and auth token.</li></ul>"
        "<h2>Point a browser client at this node</h2>"
        "<h3>callswitch.js</h3>"
        f"{_pre(callswitch_js)}"
        "<h3>Twilio's Voice JS SDK (<code>@twilio/voice-sdk</code>)</h3>"
        "<p>The official SDK, configured by its options only; tokens are Twilio's "
        f"(or {_code('callswitch token')}).</p>{_pre(twilio_sdk)}{tls_note}"
        "<h3>JsSIP, SIP.js</h3>"
        "<p>SIP over WebSocket (subprotocol <code>sip</code>), digest with a SIP "
        f"credential; media is WebRTC.</p>{_pre(sip_js)}{ws_note}"
        "<h3>The REST API</h3>"
        f"<p>Twilio's, at {_code(origin + '/2010-04-01')}: point the official helper "
        "libraries there instead of <code>https://api.twilio.com</code>.</p>"
    )


def _docs(entrance: Entrance) -> str:
    if not entrance.docs:
        return "<h2>Docs</h2><p>In the <code>docs/</code> folder of callswitch's source.</p>"
    links = "".join(
        f'<li><a href="/docs/{html.escape(name)}">{html.escape(name)}</a></li>'
        for name in entrance.docs
    )
    return f"<h2>Docs</h2><ul>{links}</ul>"


_STYLE = (
    "body{font:16px/1.5 system-ui,sans-serif;max-width:52rem;margin:2rem auto;padding:0 1rem;"
    "color:#1d2430}h1{margin-bottom:0}table{border-collapse:collapse}td,th{padding:.2rem .8rem"
    " .2rem 0;text-align:left;vertical-align:top}pre{background:#f3f5f8;padding:.8rem;"
    "overflow-x:auto}code{font-size:.92em}"
)


def render_page(entrance: Entrance, origin: str, authority: str, secure: bool) -> str:
    """The page for a browser that reached this node at ``origin`` (``scheme://authority``)."""
    return (
        '<!doctype html><html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>callswitch at {html.escape(entrance.host)}</title><style>{_STYLE}</style>"
        "</head><body><h1>callswitch</h1>"
        f"<p>A Twilio-compatible voice node at {_code(entrance.host)}.</p>"
        f"{_numbers(entrance)}{_browsers(entrance, origin, authority, secure)}{_docs(entrance)}"
        "</body></html>"
    )


def docs_pages(folder: Path = DOCS_DIR) -> tuple[str, ...]:
    """The Markdown pages in ``folder`` that ``/docs/`` serves."""
    if not folder.is_dir():
        return ()
    return tuple(sorted(p.name for p in folder.iterdir() if _DOC_NAME.match(p.name)))


def mount_front_door(app: FastAPI, entrance: Entrance, docs: Path = DOCS_DIR) -> None:
    """``GET /`` (the page, to browsers) and ``GET /docs/{page}`` (the docs, as text)."""
    pages = set(entrance.docs)

    async def front_door(request: Request) -> HTMLResponse:
        if not wants_html(request.headers.get("accept", "")):
            raise HTTPException(404)  # Twilio's 404 body, as before
        secure = request.url.scheme in ("https", "wss")
        authority = request.headers.get("host") or f"{entrance.host}"
        origin = f"{'https' if secure else 'http'}://{authority}"
        page = render_page(entrance, origin, authority, secure)
        return HTMLResponse(page, headers=_SECURITY_HEADERS)

    async def doc(name: str) -> PlainTextResponse:
        if name not in pages:
            raise HTTPException(404)
        text = (docs / name).read_text(encoding="utf-8")
        return PlainTextResponse(text, headers=_SECURITY_HEADERS)

    app.add_api_route("/", front_door, methods=["GET"], include_in_schema=False)
    app.add_api_route("/docs/{name}", doc, methods=["GET"], include_in_schema=False)
