"""SIP MESSAGE (RFC 3428) through a trunk as a carrier, and inbound MESSAGE to our numbers.

Every ``--trunk`` also carries SMS: a message to a number the trunk serves (its
prefixes, as for calls) is one MESSAGE to ``trunk.request_uri(to)``, From our
number, with the trunk's digest login. A 200 means the far end took it for the
handset (RFC 3428 §7): the message is ``delivered``; a 202 means a relay accepted
it: ``sent``, with no receipt to come. 408, 480, 503 and the like leave the message
queued for another attempt; other failures fail it.

An MMS is one MESSAGE with a ``multipart/mixed`` body: its text and each medium
(``carries_media``), both ways; an inbound body that cannot be read gets 400. Large
media want a TCP or TLS trunk: over UDP a MESSAGE is one datagram.
"""

from __future__ import annotations

import asyncio
import logging

from control_api.calls.trunks import Trunk
from control_api.sms.carriers import (
    CarrierEvents,
    CarrierRejected,
    CarrierUnavailable,
    OutboundSms,
)
from control_api.sms.mms import MULTIPART_TYPES, MmsError, MmsPart, build_multipart, parse_multipart
from control_api.store import normalize_e164
from sip.pager import TEXT_PLAIN, IncomingMessage, OutgoingMessage, serve_messages
from sip.uac import SipCredentials

__all__ = ["SipMessageCarrier", "serve_inbound_messages"]

log = logging.getLogger("callswitch.sms")

RESULT_TIMEOUT_S = 40.0  # beyond Timer F (64 * T1 = 32 s)
_RETRY = frozenset({408, 480, 500, 503, 504})
UNKNOWN_DESTINATION = 30005
DELIVERY_UNKNOWN = 30008


class SipMessageCarrier:
    """One trunk, carrying messages as SIP MESSAGE."""

    carries_media = True

    def __init__(self, trunk: Trunk, ua, events: CarrierEvents) -> None:
        self.trunk = trunk
        self.name = f"sip:{trunk.name}"
        self.ua = ua
        self.events = events
        self._tasks: set[asyncio.Task] = set()

    def serves(self, number: str) -> int:
        return self.trunk.serves(number) if normalize_e164(number) else -1

    async def submit(self, sms: OutboundSms) -> str:
        trunk = self.trunk
        port = trunk.port or (5061 if trunk.transport == "tls" else 5060)
        flow = self.ua.flow_for(trunk.transport.upper(), trunk.host, port)
        if flow is None:
            raise CarrierUnavailable(f"cannot reach trunk {trunk.name}")
        from_user = trunk.caller_id or sms.from_
        if trunk.strip_plus:
            from_user = from_user.lstrip("+")
        login = SipCredentials(trunk.username, trunk.password or "") if trunk.username else None
        content_type, body = TEXT_PLAIN, sms.body.encode("utf-8")
        if sms.media:
            content_type, body = build_multipart(sms.body, sms.media)
        outgoing = OutgoingMessage(
            self.ua,
            target=trunk.request_uri(sms.to),
            flow=flow,
            from_user=from_user,
            body=body,
            content_type=content_type,
            credentials=login,
        )
        result: asyncio.Future = asyncio.get_running_loop().create_future()

        def done(status: int, reason: str) -> None:
            if not result.done():
                result.set_result((status, reason))

        outgoing.on_result = done
        outgoing.start()
        try:
            status, reason = await asyncio.wait_for(result, RESULT_TIMEOUT_S)
        except TimeoutError:
            raise CarrierUnavailable("no answer to MESSAGE") from None
        if 200 <= status < 300:
            if status == 200:
                task = asyncio.create_task(
                    self.events.receipt(self.name, outgoing.call_id, True, None)
                )
                self._tasks.add(task)
                task.add_done_callback(self._tasks.discard)
            return outgoing.call_id
        if status in _RETRY:
            raise CarrierUnavailable(f"trunk answered {status} {reason}")
        code = UNKNOWN_DESTINATION if status in (404, 604) else DELIVERY_UNKNOWN
        raise CarrierRejected(f"trunk answered {status} {reason}", code)


def serve_inbound_messages(ua, events: CarrierEvents) -> None:
    """MESSAGE requests to our numbers become inbound messages; others get 404."""
    tasks: set[asyncio.Task] = set()

    def on_message(message: IncomingMessage, respond) -> None:
        to = normalize_e164(message.to_user)
        if to is None:
            respond(404)
            return
        sender = normalize_e164(message.from_user) or message.from_user or "anonymous"
        text: str = message.body
        media: tuple[MmsPart, ...] = ()
        if message.content_type.split(";", 1)[0].strip().lower() in MULTIPART_TYPES:
            try:
                text, media = _mms(message)
            except MmsError:
                respond(400)
                return

        async def deliver() -> None:
            try:
                ours = await events.inbound(sender, to, text, media)
            except Exception:
                log.exception("sms.sip_inbound_failed")
                respond(500)
                return
            respond(200 if ours else 404)

        task = asyncio.get_running_loop().create_task(deliver())
        tasks.add(task)
        task.add_done_callback(tasks.discard)

    serve_messages(ua, on_message)


def _mms(message: IncomingMessage) -> tuple[str, tuple[MmsPart, ...]]:
    parsed = parse_multipart(message.content_type, message.payload)
    return parsed.text, parsed.media
