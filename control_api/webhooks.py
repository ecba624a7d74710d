"""Requests to the application: signed as Twilio signs them, and a durable outbox.

Voice webhooks (fetching TwiML) are made at once and their answer is awaited.
Status callbacks go through the outbox: a row in the store first, then delivery
with retries and backoff, so a crash or restart loses none of them. A callback
is delivered at least once and always with the same parameters (so the same
``SequenceNumber``) and the same ``I-Twilio-Idempotency-Token`` header.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import hmac
import logging
import secrets
import time
from collections.abc import Awaitable, Callable, Sequence
from datetime import UTC, datetime, timedelta
from urllib.parse import urlencode, urlsplit, urlunsplit

from control_api.http_client import HttpError, HttpResponse
from control_api.http_client import request as http_request

__all__ = [
    "Outbox",
    "WebhookClient",
    "WebhookError",
    "backoff",
    "sign",
]

log = logging.getLogger("callswitch.webhooks")

Params = Sequence[tuple[str, str]]

USER_AGENT = "TwilioProxy/1.1"
WEBHOOK_TIMEOUT_S = 15.0  # Twilio's default for voice URLs
MAX_ATTEMPTS = 12
MAX_BACKOFF_S = 600.0


class WebhookError(RuntimeError):
    """The application could not be reached or did not answer 2xx (Twilio 11200)."""

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


def sign(url: str, params: Params | None, auth_token: str) -> str:
    """``X-Twilio-Signature``: HMAC-SHA1 of the URL and the sorted POST parameters.

    Names are sorted, and a repeated name contributes its values sorted, as the
    official library's ``RequestValidator`` computes it.
    """
    data = url
    if params:
        grouped: dict[str, list[str]] = {}
        for name, value in params:
            grouped.setdefault(name, []).append(value)
        for name in sorted(grouped):
            for value in sorted(set(grouped[name])):
                data += name + value
    digest = hmac.new(auth_token.encode(), data.encode(), hashlib.sha1).digest()
    return base64.b64encode(digest).decode()


def _with_query(url: str, params: Params) -> str:
    parts = urlsplit(url)
    query = "&".join(q for q in (parts.query, urlencode(list(params))) if q)
    return urlunsplit(parts._replace(query=query))


def _ignore_result(seconds: float, outcome: str) -> None:
    pass


class WebhookClient:
    """Makes signed requests to the application's URLs."""

    def __init__(self, timeout: float = WEBHOOK_TIMEOUT_S) -> None:
        self.timeout = timeout
        # Told how each request went: seconds taken and "ok", "http_error" or "unreachable".
        self.on_result: Callable[[float, str], None] = _ignore_result

    async def request(
        self,
        url: str,
        method: str,
        params: Params,
        auth_token: str,
        *,
        idempotency_token: str | None = None,
        timeout: float | None = None,
    ) -> HttpResponse:
        method = method.upper()
        headers = [("User-Agent", USER_AGENT)]
        if idempotency_token:
            headers.append(("I-Twilio-Idempotency-Token", idempotency_token))
        body = b""
        if method == "GET":
            url = _with_query(url, params)
            headers.append(("X-Twilio-Signature", sign(url, None, auth_token)))
        else:
            headers.append(("X-Twilio-Signature", sign(url, params, auth_token)))
            headers.append(("Content-Type", "application/x-www-form-urlencoded; charset=utf-8"))
            body = urlencode(list(params)).encode()
        started = time.monotonic()
        try:
            response = await http_request(
                method, url, headers=headers, body=body, timeout=timeout or self.timeout
            )
        except HttpError as exc:
            self.on_result(time.monotonic() - started, "unreachable")
            raise WebhookError(f"{method} {url}: {exc}") from exc
        if not 200 <= response.status < 300:
            self.on_result(time.monotonic() - started, "http_error")
            raise WebhookError(f"{method} {url}: HTTP {response.status}", response.status)
        self.on_result(time.monotonic() - started, "ok")
        return response

    async def fetch_twiml(self, url: str, method: str, params: Params, auth_token: str) -> str:
        response = await self.request(url, method, params, auth_token)
        return response.text

    async def close(self) -> None:
        pass


def backoff(attempts: int) -> float:
    """Seconds before retry number ``attempts`` (1, 2, 4 … capped at ten minutes)."""
    return min(2.0 ** max(attempts - 1, 0), MAX_BACKOFF_S)


class Outbox:
    """Durable, retried delivery of status callbacks.

    ``store`` provides ``enqueue_webhook``, ``due_webhooks``, ``mark_delivered``,
    ``reschedule`` and ``abandon``; ``auth_token`` looks up the signing key of an
    account (at delivery time, so a rotated token signs the retries).
    """

    def __init__(
        self,
        store,
        client: WebhookClient,
        auth_token: Callable[[str], Awaitable[str | None]],
        *,
        concurrency: int = 16,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.store = store
        self.client = client
        self.auth_token = auth_token
        self.clock = clock
        self._wake = asyncio.Event()
        self._slots = asyncio.Semaphore(concurrency)
        self._inflight: set[int] = set()
        self._task: asyncio.Task | None = None
        self._stopping = False

    def _now(self) -> datetime:
        return datetime.fromtimestamp(self.clock(), UTC)

    async def enqueue(
        self,
        *,
        account_sid: str,
        url: str,
        method: str,
        params: Params,
        call_sid: str | None = None,
        delivery_id: str | None = None,
    ) -> str:
        """Store a callback for delivery; returns its delivery id.

        A given ``delivery_id`` makes this idempotent: the same id is queued once.
        """
        delivery_id = delivery_id or secrets.token_hex(16)
        await self.store.enqueue_webhook(
            delivery_id=delivery_id,
            account_sid=account_sid,
            url=url,
            method=method,
            params=[list(pair) for pair in params],
            call_sid=call_sid,
            now=self._now(),
        )
        self._wake.set()
        return delivery_id

    def wake(self) -> None:
        """Look for due callbacks now (one was queued behind the outbox's back)."""
        self._wake.set()

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._run())

    async def stop(self, grace: float = 2.0) -> None:
        """Let the worker finish what it is doing (a cancelled query would only be
        retried after restart anyway), then stop it."""
        if self._task is None:
            return
        self._stopping = True
        self._wake.set()
        with contextlib.suppress(TimeoutError, asyncio.CancelledError):
            await asyncio.wait_for(self._task, grace)
        self._task = None

    async def _run(self) -> None:
        while not self._stopping:
            try:
                await self.deliver_due()
            except Exception:  # the store may be briefly unavailable: keep going
                log.exception("webhook.outbox_error")
            if self._stopping:
                return
            self._wake.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), timeout=1.0)

    async def deliver_due(self) -> int:
        """Attempt every callback that is due now; returns how many were tried."""
        items = [
            i for i in await self.store.due_webhooks(self._now()) if i.id not in self._inflight
        ]
        tasks = [asyncio.create_task(self._deliver(item)) for item in items]
        if tasks:
            await asyncio.gather(*tasks)
        return len(tasks)

    async def _deliver(self, item) -> None:
        self._inflight.add(item.id)
        try:
            async with self._slots:
                token = await self.auth_token(item.account_sid)
                if token is None:
                    await self.store.abandon(item.id, self._now(), "account is gone")
                    return
                try:
                    await self.client.request(
                        item.url,
                        item.method,
                        [tuple(p) for p in item.params],
                        token,
                        idempotency_token=item.delivery_id,
                    )
                except WebhookError as exc:
                    await self._failed(item, str(exc))
                else:
                    await self.store.mark_delivered(item.id, self._now())
        finally:
            self._inflight.discard(item.id)

    async def _failed(self, item, error: str) -> None:
        attempts = item.attempts + 1
        if attempts >= MAX_ATTEMPTS:
            await self.store.abandon(item.id, self._now(), error)
            log.warning(
                "webhook.abandoned",
                extra={"url": item.url, "error": error, "call_sid": item.call_sid},
            )
            return
        retry_at = self._now() + timedelta(seconds=backoff(attempts))
        await self.store.reschedule(item.id, attempts, retry_at, error)
        log.info(
            "webhook.retry",
            extra={
                "url": item.url,
                "attempts": attempts,
                "error": error,
                "call_sid": item.call_sid,
            },
        )
