"""Call logs as Twilio's debugger shows them: every error and warning a call meets
(Notifications, NO…) and every webhook request it makes with its answer (Events).

What arises where:

- a TwiML fetch that fails (voice/runner.py): 11200 HTTP retrieval failure for an
  answer other than 2xx, 11205 HTTP connection failure for none (refused, timed out,
  denied by ``--fetch-deny``); errors;
- a document that cannot be run: 12100 document parse failure (an error), a document
  run with parts ignored: 12200 schema validation warning (a warning);
- a verb that fails (13xxx, 11100 ``<Play>``, 31920 streams, …): what the runner
  counts in ``TwimlRunner.errors``;
- a status callback that fails (the outbox): 15003 for an answer other than 2xx,
  11205 for none; warnings, the call goes on (logged at its first failure and when
  the outbox gives up, not at every retry);
- every request made about a call (its ``CallSid``) becomes one of its events, and so
  does every INVITE a call we place sends to a target (``sip_attempt``; a target it
  fails over from is also a warning, control_api/calls/failover.py).

Recording is off the call's path and never fails a call: :class:`CallLog` queues
rows in memory and writes them in batches, after the fact; a write that fails is
logged and dropped. What the application's server sent is kept only as an excerpt
(``MAX_BODY``, ``MAX_HEADERS``), a call keeps at most ``NOTIFICATIONS_PER_CALL``
notifications and ``EVENTS_PER_CALL`` events (the store drops the rest), and at most
``MAX_PENDING`` rows wait in memory, so a hostile server cannot fill the database
or the memory.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Sequence
from datetime import datetime
from urllib.parse import urlencode

from control_api.http_client import HttpResponse
from control_api.sids import new_sid, utcnow
from control_api.store import CallEvent, NotificationRecord, OutboxItem
from control_api.webhooks import MAX_ATTEMPTS, Exchange, WebhookError

__all__ = [
    "CONNECTION_FAILURE",
    "DOCUMENT_PARSE_FAILURE",
    "ERROR",
    "RETRIEVAL_FAILURE",
    "SCHEMA_WARNING",
    "WARNING",
    "CallLog",
    "excerpt",
    "fetch_failure",
    "more_info",
]

log = logging.getLogger("callswitch.call_log")

ERROR = 0
WARNING = 1
RETRIEVAL_FAILURE = 11200
CONNECTION_FAILURE = 11205
DOCUMENT_PARSE_FAILURE = 12100
SCHEMA_WARNING = 12200
CALLBACK_WARNING = 15003  # Call Progress: Warning Response to Callback URL

NOTIFICATIONS_PER_CALL = 100
EVENTS_PER_CALL = 200
MAX_BODY = 4096  # characters of a response body kept
MAX_HEADERS = 2048
MAX_VARIABLES = 4096  # our own request parameters, which carry what callers typed
MAX_URL = 2048
MAX_TEXT = 1024
MAX_PARAMETERS = 64  # of an event's request, each value cut to MAX_PARAMETER characters
MAX_PARAMETER = 256
MAX_PENDING = 5000  # rows waiting to be written; past it, new ones are dropped
BATCH = 200

Params = Sequence[tuple[str, str]]


def excerpt(text: str | None, limit: int) -> str | None:
    """``text`` cut to ``limit`` characters (a mark says how much was left out)."""
    if text is None or len(text) <= limit:
        return text
    return f"{text[:limit]}… [{len(text) - limit} more characters]"


def more_info(error_code: str | None) -> str | None:
    """The page of Twilio's error dictionary for ``error_code``."""
    return f"https://www.twilio.com/docs/errors/{error_code}" if error_code else None


def _headers(response: HttpResponse | None) -> str | None:
    if response is None:
        return None
    lines = "\n".join(
        f"{name.decode('latin-1')}: {value.decode('latin-1')}" for name, value in response.headers
    )
    return excerpt(lines, MAX_HEADERS)


def _body(response: HttpResponse | None) -> str | None:
    if response is None:
        return None
    return excerpt(response.body[: MAX_BODY * 4].decode("utf-8", "replace"), MAX_BODY)


def _content_type(response: HttpResponse) -> str | None:
    for name, value in response.headers:
        if name.lower() == b"content-type":
            return value.decode("latin-1")[:200]
    return None


def fetch_failure(error: WebhookError) -> tuple[int, str]:
    """The code and text of a failed TwiML fetch: 11200 for an answer other than 2xx,
    11205 for none."""
    if error.response is not None:
        text = (
            f"An attempt to retrieve content from {error.url} returned the HTTP status"
            f" code {error.response.status}"
        )
        return RETRIEVAL_FAILURE, text
    return CONNECTION_FAILURE, f"An attempt to retrieve content from {error.url} failed: {error}"


def _sid_of(params: Params, name: str) -> str | None:
    for key, value in params:
        if key == name:
            return value
    return None


class CallLog:
    """Queues a call's notifications and events and writes them in batches to the store
    (``store.notifications``, ``store.call_events``). Every method returns at once and
    never raises."""

    def __init__(
        self,
        store,
        *,
        clock: Callable[[], datetime] = utcnow,
        notifications_per_call: int = NOTIFICATIONS_PER_CALL,
        events_per_call: int = EVENTS_PER_CALL,
        max_pending: int = MAX_PENDING,
    ) -> None:
        self.store = store
        self.clock = clock
        self.notifications_per_call = notifications_per_call
        self.events_per_call = events_per_call
        self.max_pending = max_pending
        self._notifications: list[NotificationRecord] = []
        self._events: list[CallEvent] = []
        self._writer: asyncio.Task | None = None
        self.dropped = 0  # rows not kept: past MAX_PENDING, or their write failed

    # -- what the runtime reports

    def problem(
        self,
        *,
        account_sid: str,
        call_sid: str | None,
        code: int | None,
        text: str,
        level: int = ERROR,
        url: str | None = None,
        method: str | None = None,
        params: Params = (),
        response: HttpResponse | None = None,
        body: str | None = None,
        **fields: str,
    ) -> None:
        """A notification of ``call_sid``: error ``code`` (or warning, ``level`` 1)
        saying ``text``, met requesting ``url``; the answer's headers and body come from
        ``response``, or the body alone from ``body`` (a document that would not parse).
        ``fields`` go into the message text as Twilio's debugger shows them."""
        try:
            now = self.clock()
            pairs = [
                ("Msg", text),
                ("ErrorCode", "" if code is None else str(code)),
                ("LogLevel", "ERROR" if level == ERROR else "WARN"),
                *fields.items(),
            ]
            if url:
                pairs.append(("url", url))
            if response is not None:
                pairs.append(("httpResponse", str(response.status)))
            record = NotificationRecord(
                sid=new_sid("NO"),
                account_sid=account_sid,
                call_sid=call_sid,
                log=level,
                error_code=None if code is None else str(code)[:8],
                message_text=excerpt(urlencode(pairs), MAX_TEXT) or "",
                message_date=now,
                request_url=excerpt(url, MAX_URL),
                request_method=method.upper()[:8] if method else None,
                request_variables=excerpt(urlencode(list(params)), MAX_VARIABLES)
                if params
                else None,
                response_headers=_headers(response),
                response_body=_body(response) if response is not None else excerpt(body, MAX_BODY),
                date_created=now,
                date_updated=now,
            )
        except Exception:  # a report must never fail the call that made it
            log.exception("call_log.report_failed")
            return
        self._queue(self._notifications, record)

    def callback_failed(self, item: OutboxItem, error: WebhookError) -> None:
        """A status callback of a call that failed (the outbox's ``on_failed``): a
        warning at its first failure and when the outbox gives up on it."""
        if item.call_sid is None or item.attempts not in (0, MAX_ATTEMPTS - 1):
            return
        given_up = item.attempts == MAX_ATTEMPTS - 1
        if error.response is not None:
            code = CALLBACK_WARNING
            text = f"Got HTTP {error.response.status} response to {item.url}"
        else:
            code = CONNECTION_FAILURE
            text = f"Could not reach {item.url}: {error}"
        if given_up:
            text += f"; not sent again after {MAX_ATTEMPTS} attempts"
        self.problem(
            account_sid=item.account_sid,
            call_sid=item.call_sid,
            code=code,
            text=text,
            level=WARNING,
            url=item.url,
            method=item.method,
            params=[(str(name), str(value)) for name, value in item.params],
            response=error.response,
            statusCallback=item.url,
        )

    def exchanged(self, exchange: Exchange) -> None:
        """A request made to an application (the webhook client's ``on_exchange``): an
        event of the call it is about, if it names one (``CallSid``)."""
        try:
            call_sid = _sid_of(exchange.params, "CallSid")
            account_sid = _sid_of(exchange.params, "AccountSid")
            if not call_sid or not account_sid:
                return
            response = exchange.response
            event = CallEvent(
                call_sid=call_sid[:34],
                account_sid=account_sid[:34],
                request_method=exchange.method[:8],
                request_url=excerpt(exchange.url, MAX_URL) or "",
                request_parameters=[
                    [name[:MAX_PARAMETER], excerpt(value, MAX_PARAMETER) or ""]
                    for name, value in list(exchange.params)[:MAX_PARAMETERS]
                ],
                response_code=None if response is None else response.status,
                request_duration=round(exchange.seconds * 1000),
                content_type=None if response is None else _content_type(response),
                response_body=_body(response),
                error=excerpt(exchange.error, MAX_TEXT),
                date_created=self.clock(),
            )
        except Exception:
            log.exception("call_log.report_failed")
            return
        self._queue(self._events, event)

    def sip_attempt(
        self,
        *,
        account_sid: str,
        call_sid: str,
        target: str,
        status: int | None,
        seconds: float,
        params: Params = (),
        error: str | None = None,
    ) -> None:
        """An INVITE a call we placed sent to one target (control_api/calls/failover.py):
        an event with method ``INVITE``, the Request-URI and the SIP status (None: no
        response at all)."""
        try:
            event = CallEvent(
                call_sid=call_sid[:34],
                account_sid=account_sid[:34],
                request_method="INVITE",
                request_url=excerpt(target, MAX_URL) or "",
                request_parameters=[
                    [name[:MAX_PARAMETER], excerpt(value, MAX_PARAMETER) or ""]
                    for name, value in list(params)[:MAX_PARAMETERS]
                ],
                response_code=status,
                request_duration=round(seconds * 1000),
                content_type=None,
                response_body=None,
                error=excerpt(error, MAX_TEXT),
                date_created=self.clock(),
            )
        except Exception:
            log.exception("call_log.report_failed")
            return
        self._queue(self._events, event)

    # -- writing

    def _queue(self, pending: list, row: object) -> None:
        if len(self._notifications) + len(self._events) >= self.max_pending:
            self.dropped += 1
            return
        pending.append(row)
        if self._writer is None or self._writer.done():
            with contextlib.suppress(RuntimeError):  # no loop: written by the next flush
                self._writer = asyncio.get_running_loop().create_task(self._write())

    async def _write(self) -> None:
        while self._notifications or self._events:
            notifications = self._notifications[:BATCH]
            events = self._events[:BATCH]
            del self._notifications[:BATCH]
            del self._events[:BATCH]
            try:
                if notifications:
                    await self.store.notifications.add(
                        notifications, per_call=self.notifications_per_call
                    )
                if events:
                    await self.store.call_events.add(events, per_call=self.events_per_call)
            except Exception:
                self.dropped += len(notifications) + len(events)
                log.exception("call_log.write_failed")

    async def flush(self) -> None:
        """Wait until what is queued now is written."""
        while (
            self._notifications
            or self._events
            or (self._writer is not None and not self._writer.done())
        ):
            if self._writer is None or self._writer.done():
                self._writer = asyncio.get_running_loop().create_task(self._write())
            with contextlib.suppress(Exception):
                await asyncio.shield(self._writer)

    async def stop(self) -> None:
        await self.flush()
