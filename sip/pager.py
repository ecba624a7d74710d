"""Instant messages in pager mode: SIP MESSAGE (RFC 3428), both sides.

``OutgoingMessage`` sends one MESSAGE outside any dialog (§4) in a non-INVITE client
transaction and answers one digest challenge (401/407, §8 and RFC 3261 §22.2); its
``on_result`` hears the final status (408 when nobody answered). ``serve_messages``
installs the UAS side on a ``UserAgent``: each MESSAGE becomes an ``IncomingMessage``
handed to the application's callback with a ``respond(status)`` to answer it (the
application may answer later, within the transaction's lifetime). Bodies other
than text/plain and multipart/mixed or multipart/related (an MMS: text and media,
handed up as they came in ``payload``) get 415 (§7). Pure: bytes leave through the
UA's flows.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from sip.auth import answer_challenge
from sip.message import Headers, Request, Response, generate_call_id, generate_tag

if TYPE_CHECKING:
    from sip.transaction import ServerTransaction
    from sip.transport import Flow
    from sip.ua import UserAgent
    from sip.uac import SipCredentials

__all__ = ["IncomingMessage", "OutgoingMessage", "serve_messages"]

log = logging.getLogger("callswitch.sip")

TEXT_PLAIN = "text/plain;charset=UTF-8"
MAX_AUTH_ROUNDS = 2
# RFC 3428 §7: a UAS "SHOULD" accept at least 1300 bytes; beyond what a UDP datagram
# carries, senders are to use a session (MSRP) instead.
MAX_BODY = 16 * 1024
# A multipart body (media) may be as large as the framing of a stream transport takes.
MAX_MULTIPART_BODY = 1024 * 1024
ACCEPTED = ("text/plain", "multipart/mixed", "multipart/related")


class OutgoingMessage:
    """One MESSAGE we send (RFC 3428 §4): to ``target`` over ``flow``."""

    def __init__(
        self,
        ua: UserAgent,
        *,
        target: str,
        flow: Flow,
        from_user: str,
        body: bytes,
        to: str | None = None,
        content_type: str = TEXT_PLAIN,
        credentials: SipCredentials | None = None,
        headers: list[tuple[str, str]] | None = None,
    ) -> None:
        self.ua = ua
        self.target = target
        self.flow = flow
        self.body = body
        self.content_type = content_type
        self.credentials = credentials
        self.extra_headers = list(headers or ())
        self.call_id = generate_call_id(ua.host)
        self._from = f"<sip:{from_user}@{ua.host_port(flow)}>;tag={generate_tag()}"
        self._to = f"<{to or target}>"
        self._cseq = 1
        self._auth_rounds = 0
        self.final_status: int | None = None
        self.on_result: Callable[[int, str], None] = lambda status, reason: None

    def start(self) -> None:
        self._send([])

    def _send(self, auth_headers: list[tuple[str, str]]) -> None:
        h = Headers()
        h.add("Via", self.ua.via_for(self.flow))
        h.add("Max-Forwards", "70")
        h.add("From", self._from)
        h.add("To", self._to)
        h.add("Call-ID", self.call_id)
        h.add("CSeq", f"{self._cseq} MESSAGE")
        h.add("User-Agent", self.ua.name)
        for name, value in [*auth_headers, *self.extra_headers]:
            h.add(name, value)
        h.add("Content-Type", self.content_type)
        request = Request("MESSAGE", self.target, h, self.body)
        self.ua.start_client(request, self.flow, self._response)

    def _response(self, response: Response | None) -> None:
        if response is None:
            self._done(408, "Request Timeout")
            return
        if response.status in (401, 407) and self._authenticate(response):
            return
        self._done(response.status, response.reason)

    def _done(self, status: int, reason: str) -> None:
        self.final_status = status
        log.info("sip.message_result", extra={"call_id": self.call_id, "status": status})
        self.on_result(status, reason)

    def _authenticate(self, response: Response) -> bool:
        """Answer a 401/407 with credentials (RFC 3261 §22.2, RFC 8760 §2.4)."""
        if self.credentials is None or self._auth_rounds >= MAX_AUTH_ROUNDS:
            return False
        header = answer_challenge(
            response,
            method="MESSAGE",
            uri=self.target,
            username=self.credentials.username,
            password=self.credentials.password,
            body=self.body,
        )
        if header is None:
            return False
        self._auth_rounds += 1
        self._cseq += 1
        self._send([header])
        return True


@dataclass(frozen=True, slots=True)
class IncomingMessage:
    """A MESSAGE that reached us: the users of its Request-URI and From, its text."""

    to_user: str
    from_user: str
    from_uri: str
    body: str
    content_type: str
    call_id: str
    payload: bytes = b""  # the body's bytes as they came (a multipart body's media)


def serve_messages(
    ua: UserAgent,
    on_message: Callable[[IncomingMessage, Callable[[int], None]], None],
) -> None:
    """Answer MESSAGE requests on ``ua`` through ``on_message(message, respond)``."""

    def handle(request: Request, txn: ServerTransaction, flow: Flow) -> None:
        content_type = request.headers.get("Content-Type") or "text/plain"
        kind = request.content_type or "text/plain"
        if kind not in ACCEPTED:
            ua.respond(txn, request, 415, headers=[("Accept", ", ".join(ACCEPTED))])
            return
        if len(request.body) > (MAX_BODY if kind == "text/plain" else MAX_MULTIPART_BODY):
            ua.respond(txn, request, 413)
            return
        uri = request.request_uri
        from_uri = request.from_.uri
        message = IncomingMessage(
            to_user=uri.user or "",
            from_user=getattr(from_uri, "user", None) or "",
            from_uri=str(from_uri),
            body=request.body.decode("utf-8", errors="replace") if kind == "text/plain" else "",
            content_type=content_type if kind != "text/plain" else content_type.lower(),
            call_id=request.call_id,
            payload=request.body,
        )
        answered = False

        def respond(status: int) -> None:
            nonlocal answered
            if answered:
                return
            answered = True
            ua.respond(txn, request, status)

        on_message(message, respond)

    ua.handlers["MESSAGE"] = handle
