"""A browser stand-in for interop tests: the signaling protocol over the plain
``websockets`` client and an aiortc peer (tests/signaling/peer.py) for media."""

from __future__ import annotations

import asyncio
import json
import time

from twilio.jwt.access_token import AccessToken
from twilio.jwt.access_token.grants import VoiceGrant
from websockets.asyncio.client import ClientConnection, connect

from tests.signaling.peer import Peer

from .test_voice_webhooks import rest_client


def access_token(server, identity: str, *, ttl: int = 600, application_sid=None, key=None):
    """A token made by the official library, signed with a key made through the REST API."""
    client = rest_client(server)
    key = key or client.new_keys.create(friendly_name="interop")
    token = AccessToken(client.account_sid, key.sid, key.secret, identity=identity, ttl=ttl)
    token.add_grant(VoiceGrant(incoming_allow=True, outgoing_application_sid=application_sid))
    return token.to_jwt()


class SignalingClient:
    """One tab: a WebSocket to /signaling and the messages it received."""

    def __init__(self, ws: ClientConnection) -> None:
        self.ws = ws
        self.messages: list[dict] = []

    @classmethod
    async def open(cls, server) -> SignalingClient:
        ws = await connect(f"ws://127.0.0.1:{server.http_port}/signaling", open_timeout=5)
        return cls(ws)

    async def send(self, **message) -> None:
        await self.ws.send(json.dumps(message))

    async def next(self, kind: str | None = None, timeout: float = 10.0) -> dict:
        """The next message (of ``kind``, skipping others), waiting at most ``timeout``."""
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError(f"no {kind or 'message'} within {timeout} s: {self.messages}")
            message = json.loads(await asyncio.wait_for(self.ws.recv(), left))
            self.messages.append(message)
            if kind is None or message.get("type") == kind:
                return message

    async def register(self, token: str) -> dict:
        await self.send(type="register", token=token)
        return await self.next()

    async def answer_incoming(
        self, frequency: float = 440.0, timeout: float = 15.0, codecs: tuple[str, ...] = ()
    ):
        """Wait for a call, answer it with an aiortc peer playing ``frequency`` (and
        answering with ``codecs`` only, when given)."""
        incoming = await self.next("incoming", timeout)
        peer = Peer(frequency, codecs=codecs or None)
        sdp = await peer.answer(incoming["sdp"])
        await self.send(type="accept", call=incoming["call"], sdp=sdp)
        return incoming, peer

    async def close(self) -> None:
        await self.ws.close()
