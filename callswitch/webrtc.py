"""Wiring browser clients into the process: the signaling WebSocket, /phone, the SDK.

The signaling plane imports only ``media/``; this composition module hands it
the store's API keys (to check tokens) and the ICE servers from the settings;
the server wraps it in the voice plane's
:class:`~control_api.calls.browser.BrowserClients`, and its routes are mounted
on the HTTP app. Browser tabs are also told of this node's
TURN relay, with TURN REST credentials for their account.
"""

from __future__ import annotations

import time
from pathlib import Path
from urllib.parse import unquote

from fastapi import FastAPI, HTTPException, WebSocket
from fastapi.responses import FileResponse, Response

from control_api.api.tokens import IceServers
from control_api.calls.call import MediaSettings
from control_api.calls.webrtc_sip import WebRtcLegs
from media.clock import MediaClock
from signaling import sdk_sounds
from signaling.pstream_endpoint import PStreamEndpoint
from signaling.server import SignalingServer
from signaling.webrtc_leg import IceServer, WebRtcLeg, use_host_addresses
from turn.auth import rest_credentials

__all__ = [
    "STATIC_DIR",
    "ice_servers",
    "mount_webrtc",
    "signaling_server",
    "turn_ice_servers",
    "webrtc_legs",
]

TURN_CREDENTIAL_TTL = 86400  # a tab re-registers (a fresh token) well within a day

STATIC_DIR = Path(__file__).resolve().parent.parent / "signaling" / "static"


def ice_servers(urls: list[str]) -> list[IceServer]:
    """``--ice-server`` values as RTCIceServer entries: credentials come out of the URL."""
    servers = []
    for url in urls:
        scheme, _, rest = url.partition(":")
        if "@" in rest and scheme.startswith("turn"):
            login, _, host = rest.rpartition("@")
            username, _, password = login.partition(":")
            servers.append(IceServer(f"{scheme}:{host}", unquote(username), unquote(password)))
        else:
            servers.append(IceServer(url))
    return servers


def turn_ice_servers(relay: IceServers | None, ttl: int = TURN_CREDENTIAL_TTL):
    """What a browser tab is told besides ``--ice-server``: our TURN relay, with TURN REST
    credentials for its account that the relay accepts for ``ttl`` seconds (the same
    credentials the Tokens resource hands out)."""
    if relay is None:
        return None

    def for_account(account_sid: str) -> list[IceServer]:
        username, password = rest_credentials(relay.secret, account_sid, int(time.time()) + ttl)
        stun, turn = relay.urls()
        return [IceServer(url) for url in stun] + [
            IceServer(url, username, password) for url in turn
        ]

    return for_account


def signaling_server(
    store, media: MediaSettings, settings, relay: IceServers | None = None
) -> SignalingServer:
    """The signaling server browser tabs talk to: tokens checked against the store's
    API keys, ICE servers from the settings (and our TURN relay)."""

    async def lookup_key(sid: str) -> tuple[str, str] | None:
        key = await store.api_keys.find(sid)
        if key is None:
            return None
        account = await store.accounts.get(key.account_sid)
        if account is None or account.status != "active":
            return None
        return key.account_sid, key.secret

    _use_bound_address(settings)
    return SignalingServer(
        lookup_key,
        ice_servers=ice_servers(settings.ice_server),
        browser_ice_servers=turn_ice_servers(relay),
        media_clock=media.clock,
    )


def webrtc_legs(settings, clock: MediaClock) -> WebRtcLegs:
    """The WebRTC legs of SIP dialogs with browser phones (SIP over WebSocket): ICE
    servers from the settings, host candidates on the bound address."""
    _use_bound_address(settings)
    servers = ice_servers(settings.ice_server)
    return lambda: WebRtcLeg(servers, clock=clock)


def _use_bound_address(settings) -> None:
    # Bound to one address, ICE offers that one (aioice alone would skip loopback and
    # offer every other interface); bound to all, aioice picks the interfaces.
    specific = settings.bind not in ("0.0.0.0", "::", "")
    use_host_addresses([settings.bind] if specific else None)


def mount_webrtc(app: FastAPI, server: SignalingServer) -> PStreamEndpoint:
    """The signaling WebSockets (ours at /signaling, the official Twilio Voice JS SDK's
    at /signal, with its sounds under /signal/sounds/), /phone and callswitch.js."""

    async def signaling(websocket: WebSocket) -> None:
        await server.handle(_Socket(websocket))

    app.add_api_websocket_route("/signaling", signaling)
    endpoint = PStreamEndpoint(server)

    async def signal(websocket: WebSocket) -> None:
        await endpoint.handle(_Socket(websocket))

    app.add_api_websocket_route("/signal", signal)

    async def sound(name: str) -> Response:
        try:
            wav = sdk_sounds.sound(name)
        except KeyError:
            raise HTTPException(404, "no such sound") from None
        # A Device on another origin fetches them with XHR: CORS is needed.
        headers = {"Access-Control-Allow-Origin": "*", "Cache-Control": "public, max-age=86400"}
        return Response(wav, media_type="audio/wav", headers=headers)

    app.add_api_route("/signal/sounds/{name}.wav", sound, methods=["GET"], include_in_schema=False)

    async def phone() -> FileResponse:
        return FileResponse(STATIC_DIR / "phone.html", media_type="text/html")

    async def sdk() -> FileResponse:
        return FileResponse(STATIC_DIR / "callswitch.js", media_type="text/javascript")

    app.add_api_route("/phone", phone, methods=["GET"], include_in_schema=False)
    app.add_api_route("/phone/callswitch.js", sdk, methods=["GET"], include_in_schema=False)
    return endpoint


class _Socket:
    """Starlette's WebSocket as the signaling server reads it: a binary frame comes back
    as bytes (which the protocol refuses with an error), a close as ConnectionError."""

    def __init__(self, websocket: WebSocket) -> None:
        self._ws = websocket

    async def accept(self) -> None:
        await self._ws.accept()

    async def receive_text(self) -> str | bytes:
        message = await self._ws.receive()
        if message["type"] == "websocket.disconnect":
            raise ConnectionError("closed")
        text = message.get("text")
        return text if text is not None else (message.get("bytes") or b"")

    async def send_text(self, text: str) -> None:
        await self._ws.send_text(text)

    async def close(self) -> None:
        await self._ws.close()
