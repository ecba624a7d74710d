"""A direct way in for the API's busiest request: ``POST Accounts/{Sid}/Messages.json``.

Sending messages in bulk is the one REST call made hundreds of times a second, and
FastAPI's routing (every router's routes matched in turn) and dependency solving cost
several times what creating the message does. This ASGI middleware recognises that one
request by method and path and calls the same code the route would: the same
authentication (``auth.path_account``) and the same endpoint
(``messages.create_message``). Anything else goes through the application untouched,
and so does a send the endpoint refuses (an ``ApiError``, raised before anything is
stored): the body read here is replayed to the application, whose handlers answer
exactly as they always do.
"""

from __future__ import annotations

import re

from starlette.requests import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from control_api.api.auth import path_account
from control_api.api.messages import create_message
from control_api.api.params import MAX_BODY_BYTES
from control_api.errors import ApiError

__all__ = ["MessagesFastPath"]

_PATH = re.compile(r"/2010-04-01/Accounts/([^/]+)/Messages\.json")


class MessagesFastPath:
    """Pure ASGI middleware: ``POST Messages.json`` straight to its endpoint."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        match = (
            _PATH.fullmatch(scope["path"])
            if scope["type"] == "http" and scope["method"] == "POST"
            else None
        )
        if match is None:
            await self.app(scope, receive, send)
            return
        body = bytearray()
        more = True
        while more and len(body) <= MAX_BODY_BYTES:
            message = await receive()
            if message["type"] != "http.request":
                return  # the client went away
            body += message.get("body", b"")
            more = message.get("more_body", False)
        if more:  # too large: the application says so
            await self.app(scope, _replay(bytes(body), receive, more=True), send)
            return
        request = Request(scope, _replay(bytes(body), receive))
        try:
            account = await path_account(request, match.group(1))
            response = await create_message(request, account)
        except ApiError:
            await self.app(scope, _replay(bytes(body), receive), send)
            return
        await response(scope, receive, send)


def _replay(body: bytes, receive: Receive, *, more: bool = False) -> Receive:
    """A ``receive`` that gives ``body`` first, then whatever the client sends next."""
    sent = False

    async def replay() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": more}
        return await receive()

    return replay
