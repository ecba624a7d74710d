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
import functools
import hashlib
import hmac
import logging
import os
import secrets
import socket
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import KW_ONLY, InitVar, dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlencode, urlsplit, urlunsplit

from control_api.http_client import ConnectionPool, Guard, HttpError, HttpResponse
from control_api.http_client import request as http_request
from control_api.store import OutboxItem, OutboxOutcome
from control_api.worker import Worker

__all__ = [
    "UNKNOWN_LOCATION",
    "Exchange",
    "Outbox",
    "WebhookClient",
    "WebhookError",
    "backoff",
    "node_claimant",
    "sign",
]

log = logging.getLogger("callswitch.webhooks")

Params = Sequence[tuple[str, str]]

USER_AGENT = "TwilioProxy/1.1"
# Twilio's caller and called location parameters of an inbound webhook (a call's or a
# message's): callswitch has no number-to-place data, so it sends them empty.
UNKNOWN_LOCATION: tuple[tuple[str, str], ...] = tuple(
    (f"{side}{part}", "") for side in ("From", "To") for part in ("City", "State", "Zip", "Country")
)
WEBHOOK_TIMEOUT_S = 15.0  # Twilio's default for voice URLs
MAX_ATTEMPTS = 12
MAX_BACKOFF_S = 600.0
# How long a node's claim on a callback lasts: longer than its worst case of delivering
# what it claimed (max_claimed / concurrency = 4 rounds of the 15 s webhook timeout);
# a node that died holds its callbacks back this long at most.
LEASE_S = 120.0


class WebhookError(RuntimeError):
    """The application could not be reached or did not answer 2xx (Twilio 11200).

    ``response`` is its answer (None: there was none, ``status`` is then None too);
    ``url`` and ``method`` are the request's, as sent."""

    def __init__(
        self,
        message: str,
        status: int | None = None,
        *,
        url: str = "",
        method: str = "",
        response: HttpResponse | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.url = url
        self.method = method
        self.response = response


@dataclass(frozen=True, slots=True)
class Exchange:
    """One request made to an application and how it went (the call logs' events)."""

    url: str
    method: str
    params: Params
    response: HttpResponse | None  # None: no answer, ``error`` says why
    seconds: float
    error: str | None = None


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


def _ignore(*_: object) -> None:
    pass


class WebhookClient:
    """Makes signed requests to the application's URLs."""

    def __init__(self, timeout: float = WEBHOOK_TIMEOUT_S, guard: Guard | None = None) -> None:
        self.timeout = timeout
        # --fetch-deny (control_api/fetch_policy.py): asked before every connection; a
        # denied URL fails as an unreachable one does (WebhookError, Twilio 11200).
        self.guard = guard
        # Told how each request went: seconds taken and "ok", "http_error" or "unreachable".
        self.on_result: Callable[[float, str], None] = _ignore_result
        # Told of every request and its answer (control_api/call_log.py).
        self.on_exchange: Callable[[Exchange], None] = _ignore
        # Status callbacks come many to one application: their connections are kept.
        self.pool = ConnectionPool(guard=guard)

    async def request(
        self,
        url: str,
        method: str,
        params: Params,
        auth_token: str,
        *,
        idempotency_token: str | None = None,
        timeout: float | None = None,
        keep_alive: bool = False,
    ) -> HttpResponse:
        """``keep_alive`` sends over a pooled persistent connection (status callbacks);
        without it the connection is closed after the answer (voice webhooks)."""
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
            if keep_alive:
                response = await self.pool.request(
                    method, url, headers=headers, body=body, timeout=timeout or self.timeout
                )
            else:
                response = await http_request(
                    method,
                    url,
                    headers=headers,
                    body=body,
                    timeout=timeout or self.timeout,
                    guard=self.guard,
                )
        except HttpError as exc:
            seconds = time.monotonic() - started
            self.on_result(seconds, "unreachable")
            self.on_exchange(Exchange(url, method, params, None, seconds, str(exc)))
            raise WebhookError(f"{method} {url}: {exc}", url=url, method=method) from exc
        seconds = time.monotonic() - started
        self.on_exchange(Exchange(url, method, params, response, seconds))
        if not 200 <= response.status < 300:
            self.on_result(seconds, "http_error")
            raise WebhookError(
                f"{method} {url}: HTTP {response.status}",
                response.status,
                url=url,
                method=method,
                response=response,
            )
        self.on_result(seconds, "ok")
        return response

    async def fetch_twiml(self, url: str, method: str, params: Params, auth_token: str) -> str:
        response = await self.request(url, method, params, auth_token)
        return response.text

    async def close(self) -> None:
        self.pool.close()


def backoff(attempts: int) -> float:
    """Seconds before retry number ``attempts`` (1, 2, 4 … capped at ten minutes)."""
    return min(2.0 ** max(attempts - 1, 0), MAX_BACKOFF_S)


def node_claimant(data_dir: str) -> str:
    """A node's name in outbox claims, the same at each start: its host and (hashed,
    to fit the column) its data directory, which no two live nodes share."""
    where = hashlib.sha256(str(Path(data_dir).resolve()).encode()).hexdigest()[:16]
    return f"{socket.gethostname()[:40]}:{where}"


def _order_key(item) -> str | None:
    """What a callback is about: callbacks with one key are sent in order."""
    if item.call_sid:
        return item.call_sid
    for name, value in item.params:
        if name == "MessageSid":
            return value
    return None


def _process_claimant() -> str:
    return f"{socket.gethostname()[:40]}:{os.getpid()}:{secrets.token_hex(4)}"


@dataclass(eq=False)
class Outbox(Worker):
    """Durable, retried delivery of status callbacks, once across the nodes of a store.

    ``store`` provides ``enqueue_webhook``, ``claim_webhooks`` and ``record_outcomes``
    (``control_api.store.Store``); ``auth_token`` looks up the signing key of an
    account (at delivery time, so a rotated token signs the retries).

    Several nodes may share one store: a node claims the due callbacks it delivers,
    with a lease of ``lease`` seconds, so no other node takes them meanwhile; a node
    that dies leaves its claims to run out, and another node delivers those callbacks
    afterwards (at least once, as always: one that was delivered just before the node
    died may be delivered again). A node given the same ``claimant`` name each time
    it starts (``callswitch.server`` names it by host and data directory) takes back
    at start what it held when it died, without waiting for the lease. Outcomes are
    written in batches, and callbacks go
    over kept-alive connections to each application.

    Callbacks about one call or message (``_order_key``) that a node holds at once
    are sent one after the other, in the order they were queued (``sending`` before
    ``sent`` before ``delivered``); others go concurrently.
    """

    store: Any
    client: WebhookClient
    auth_token: Callable[[str], Awaitable[str | None]]
    _: KW_ONLY
    concurrency: InitVar[int] = 64
    max_claimed: int = 256
    lease: float = LEASE_S
    # Names this process in claims: host and PID, plus randomness for a PID reused.
    claimant: str = field(default_factory=_process_claimant)
    clock: Callable[[], float] = time.time
    _wake: asyncio.Event = field(default_factory=asyncio.Event, init=False, repr=False)
    _slots: asyncio.Semaphore = field(init=False, repr=False)
    _inflight: dict[int, asyncio.Task] = field(default_factory=dict, init=False, repr=False)
    # The newest delivery of each order key.
    _last: dict[str, asyncio.Task] = field(default_factory=dict, init=False, repr=False)
    _outcomes: list[OutboxOutcome] = field(default_factory=list, init=False, repr=False)
    _recording: asyncio.Task | None = field(default=None, init=False, repr=False)
    _task: asyncio.Task | None = field(default=None, init=False, repr=False)
    _stopping: bool = field(default=False, init=False, repr=False)
    # Told of each failed delivery: the item (its attempts before this one) and why.
    on_failed: Callable[[OutboxItem, WebhookError], None] = field(
        default=_ignore, init=False, repr=False
    )

    def __post_init__(self, concurrency: int) -> None:
        self._slots = asyncio.Semaphore(concurrency)

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
        await self.store.outbox.enqueue(
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

    async def stop(self, grace: float = 2.0) -> None:
        """Let the worker finish what it is doing (a cancelled query would only be
        retried after restart anyway), then stop it. Callbacks still in flight after
        ``grace`` are given up and their claims released (they go again, at least
        once); a node that dies instead holds them until its lease runs out."""
        if not await self._end_loop(grace):
            return
        if self._inflight:
            await asyncio.wait(list(self._inflight.values()), timeout=grace)
        # What is still going is given up, and its claims released at once, so that
        # the next start (or another node) need not wait out the lease.
        unfinished = list(self._inflight)
        for task in list(self._inflight.values()):
            task.cancel()
        with contextlib.suppress(Exception):
            await self._flush()
            if unfinished:
                await self.store.outbox.record_outcomes([OutboxOutcome(id) for id in unfinished])

    async def _run(self) -> None:
        try:
            released = await self.store.outbox.release_claims(self.claimant)
        except Exception:
            log.exception("webhook.outbox_error")
        else:
            if released:
                log.info("webhook.claims_released", extra={"items": released})
        while not self._stopping:
            claimed = 0
            try:
                claimed = await self._claim_and_start()
            except Exception:  # the store may be briefly unavailable: keep going
                log.exception("webhook.outbox_error")
            if self._stopping:
                return
            if claimed and len(self._inflight) < self.max_claimed:
                continue  # a full batch: there may be more due
            self._wake.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), timeout=1.0)

    async def deliver_due(self) -> int:
        """Claim what is due now, attempt it, and write the outcomes; returns how many
        were tried."""
        before = set(self._inflight.values())
        await self._claim_and_start()
        started = [t for t in self._inflight.values() if t not in before]
        if started:
            await asyncio.gather(*started)
        await self._flush()
        return len(started)

    async def _claim_and_start(self) -> int:
        room = self.max_claimed - len(self._inflight)
        if room <= 0:
            return 0
        now = self._now()
        items = await self.store.outbox.claim(
            self.claimant, now, now + timedelta(seconds=self.lease), room
        )
        loop = asyncio.get_running_loop()
        for item in items:
            if item.id in self._inflight:
                continue
            key = _order_key(item)
            before = self._last.get(key) if key is not None else None
            task = loop.create_task(self._deliver(item, before))
            self._inflight[item.id] = task
            if key is not None:
                self._last[key] = task
            task.add_done_callback(functools.partial(self._forget, item.id, key))
        return len(items)

    def _forget(self, id: int, key: str | None, task: asyncio.Task) -> None:
        self._inflight.pop(id, None)
        if key is not None and self._last.get(key) is task:
            del self._last[key]
        if len(self._inflight) == self.max_claimed - 1:
            self._wake.set()  # room for more

    async def _deliver(self, item, before: asyncio.Task | None = None) -> None:
        if before is not None:
            await asyncio.wait([before])  # the earlier callback about the same call or message
        async with self._slots:
            try:
                token = await self.auth_token(item.account_sid)
            except Exception as exc:  # the store: the claim runs out and it is tried again
                log.warning("webhook.token_lookup_failed", extra={"error": str(exc)})
                return
            if token is None:
                self._record(
                    OutboxOutcome(item.id, abandoned_at=self._now(), last_error="account is gone")
                )
                return
            try:
                await self.client.request(
                    item.url,
                    item.method,
                    [tuple(p) for p in item.params],
                    token,
                    idempotency_token=item.delivery_id,
                    keep_alive=True,
                )
            except WebhookError as exc:
                self._failed(item, str(exc))
                self.on_failed(item, exc)
            else:
                self._record(OutboxOutcome(item.id, delivered_at=self._now()))

    def _failed(self, item, error: str) -> None:
        attempts = item.attempts + 1
        if attempts >= MAX_ATTEMPTS:
            self._record(OutboxOutcome(item.id, abandoned_at=self._now(), last_error=error))
            log.warning(
                "webhook.abandoned",
                extra={"url": item.url, "error": error, "call_sid": item.call_sid},
            )
            return
        retry_at = self._now() + timedelta(seconds=backoff(attempts))
        self._record(
            OutboxOutcome(item.id, attempts=attempts, next_attempt_at=retry_at, last_error=error)
        )
        log.info(
            "webhook.retry",
            extra={
                "url": item.url,
                "attempts": attempts,
                "error": error,
                "call_sid": item.call_sid,
            },
        )

    def _record(self, outcome: OutboxOutcome) -> None:
        """Outcomes queue up while one batch is being written, and go in the next."""
        self._outcomes.append(outcome)
        if self._recording is None or self._recording.done():
            self._recording = asyncio.get_running_loop().create_task(self._write_outcomes())

    async def _write_outcomes(self) -> None:
        while self._outcomes:
            batch, self._outcomes = self._outcomes, []
            try:
                await self.store.outbox.record_outcomes(batch)
            except Exception:
                # Not written: the claims run out and the callbacks are tried again
                # (at least once).
                log.exception("webhook.outcomes_not_recorded", extra={"items": len(batch)})

    async def _flush(self) -> None:
        while self._recording is not None and not self._recording.done():
            await asyncio.shield(self._recording)
