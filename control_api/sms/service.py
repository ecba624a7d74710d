"""The message service: creating messages, the durable send queue, receipts, inbound.

Outbound (reference §7): ``create`` writes the message ``queued`` and wakes the
sender. The sender takes due messages from the store, marks each ``sending`` and
hands it to the carrier that serves its ``To``; ``sent`` once the carrier took it,
then ``delivered`` or ``undelivered`` by the carrier's receipt, or ``failed`` when the
carrier refused it. A carrier that cannot take messages now leaves the message
``queued`` for a later attempt, with backoff; ``requeue_unaccepted`` on start puts
back what a stop left ``sending``. Each status change is a signed status callback
through the durable outbox.

Inbound: a carrier reports a message for one of our numbers; it is stored
``received``, priced, and posted to the number's ``SmsUrl`` (signed, reference §7);
the ``<Message>`` verbs of the answer are sent as replies (``outbound-reply``).

Media (MMS, media.py): an inbound message's are stored and its webhook names them
(``NumMedia``, ``MediaUrl0``…, ``MediaContentType0``…); an outbound message's
``MediaUrl``s are fetched (through the fetch policy) and stored before its carrier
gets it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import secrets
import time
from collections import Counter
from collections.abc import Callable, Sequence
from datetime import datetime, timedelta

from control_api.lookup import Lookup
from control_api.sids import new_sid, utcnow
from control_api.sms.carriers import (
    Carrier,
    CarrierEvents,
    CarrierRejected,
    CarrierUnavailable,
    LocalCarrier,
    OutboundSms,
    select_carrier,
)
from control_api.sms.media import MediaFetcher, MediaFetchError, MessageMedia
from control_api.sms.mms import MmsPart
from control_api.sms.segments import segment
from control_api.store import MessageRecord
from control_api.store.rows import parties
from control_api.twiml.parser import TwimlError, parse_messaging_twiml
from control_api.twiml.verbs import Message
from control_api.usage.billing import money
from control_api.webhooks import UNKNOWN_LOCATION, WebhookError
from control_api.worker import Worker

__all__ = ["API_VERSION", "Messaging", "message_callback_params"]

log = logging.getLogger("callswitch.sms")

API_VERSION = "2010-04-01"
MAX_BACKOFF_S = 300.0
BATCH = 200
# How long a message taken 'sending' is this node's alone; past it (the node died
# before a carrier answered) any node puts it back in the queue, checked this often.
SENDING_LEASE_S = 120.0
LAPSED_CHECK_S = 30.0
EARLY_RECEIPT_S = 600.0  # how long a receipt waits for its message's carrier id
MAX_EARLY_RECEIPTS = 100_000
# Twilio's error codes for messages (twilio.com/docs/api/errors/<code>).
QUEUE_OVERFLOW = 30001  # the message waited longer than its ValidityPeriod
ACCOUNT_SUSPENDED = 30002  # the balance ran out before a queued message was sent
UNKNOWN_DESTINATION = 30005
DELIVERY_UNKNOWN = 30008  # the carrier refused or failed it


def message_callback_params(message: MessageRecord) -> list[tuple[str, str]]:
    """The status callback of a message (reference §7)."""
    params = [
        ("MessageSid", message.sid),
        ("SmsSid", message.sid),
        ("AccountSid", message.account_sid),
        ("From", message.from_),
        ("To", message.to),
        ("MessageStatus", message.status),
        ("SmsStatus", message.status),
        ("ApiVersion", API_VERSION),
    ]
    if message.error_code is not None:
        params.append(("ErrorCode", str(message.error_code)))
    return params


class Messaging(Worker):
    """Messages of every account: the send queue, carriers, receipts and inbound."""

    def __init__(
        self,
        store,
        outbox,
        webhooks,
        *,
        billing=None,
        carriers: Sequence[Carrier] = (),
        clock: Callable[[], datetime] = utcnow,
        max_inflight: int = 400,
        claimant: str | None = None,
        media_fetcher: MediaFetcher | None = None,
        base_url: str = "",
    ) -> None:
        self.store = store  # accounts and numbers
        # Messages handed to carriers and not yet answered: the rest wait in the store.
        self.max_inflight = max_inflight
        self.messages = store.messages
        self.outbox = outbox
        self.webhooks = webhooks
        self.billing = billing
        self.clock = clock
        # This node's name on the messages it takes (see ``node_claimant``); by
        # default one of its own, so a restart waits out the lease of what it left.
        self.claimant = claimant or f"sms:{secrets.token_hex(8)}"
        self.events = CarrierEvents(
            receipt=self.receipt, inbound=self.inbound, available=self.carrier_available
        )
        self.local = LocalCarrier(self._is_ours, self.events)
        # MMS media; ``base_url`` (where the API is reached) makes their URLs absolute.
        self.media = MessageMedia(store, media_fetcher or MediaFetcher(), base_url)
        self._numbers = Lookup(store.numbers.find, fresh=1.0)
        self.carriers: list[Carrier] = [self.local, *carriers]
        self._wake = asyncio.Event()
        self._inflight: set[str] = set()
        self._early: dict[tuple[str, str], tuple[bool, int | None, float]] = {}
        self._tasks: set[asyncio.Task] = set()
        self._task: asyncio.Task | None = None
        self._stopping = False
        # (direction, status) -> messages that reached it since the process started:
        # every change of status made here, for /metrics.
        self.status_counts: Counter[tuple[str, str]] = Counter()

    @property
    def inflight(self) -> int:
        """Messages handed to carriers and not yet answered."""
        return len(self._inflight)

    def add_carrier(self, carrier: Carrier) -> None:
        self.carriers.append(carrier)

    # Creating

    async def create(
        self,
        account_sid: str,
        *,
        to: str,
        from_: str,
        body: str,
        media_urls: Sequence[str] = (),
        status_callback: str | None = None,
        status_callback_method: str = "POST",
        validity_period: int | None = None,
        messaging_service_sid: str | None = None,
        direction: str = "outbound-api",
    ) -> MessageRecord:
        """Queue an outbound message; the caller checked the parameters and funds."""
        now = self.clock()
        cut = segment(body)
        record = MessageRecord(
            sid=new_sid("MM" if media_urls else "SM"),
            account_sid=account_sid,
            to=to,
            from_=from_,
            body=body,
            status="queued",
            direction=direction,
            num_segments=cut.count,
            encoding=cut.encoding,
            media_urls=list(media_urls),
            messaging_service_sid=messaging_service_sid,
            status_callback=status_callback,
            status_callback_method=status_callback_method,
            validity_period=validity_period,
            next_attempt_at=now,
            date_created=now,
            date_updated=now,
        )
        await self.messages.insert(record)
        self.status_counts[record.direction, "queued"] += 1
        self._wake.set()
        return record

    # The sender

    async def stop(self, grace: float = 2.0) -> None:
        if not await self._end_loop(grace):
            return
        if self._tasks:
            with contextlib.suppress(TimeoutError, asyncio.CancelledError):
                await asyncio.wait_for(asyncio.gather(*self._tasks), grace)

    async def _run(self) -> None:
        lapsed_check = -math.inf
        while not self._stopping:
            try:
                if time.monotonic() - lapsed_check >= LAPSED_CHECK_S:
                    lapsed_check = time.monotonic()
                    await self.requeue_unaccepted()
                sent = await self.send_due()
            except Exception:  # the store may be briefly unavailable: keep going
                log.exception("sms.sender_error")
                sent = 0
            if self._stopping:
                return
            if sent >= BATCH:
                continue
            self._wake.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), timeout=1.0)

    async def requeue_unaccepted(self) -> int:
        """Put back in the queue what this node left 'sending' when it stopped, and
        what other nodes left when they died (their lease ran out)."""
        requeued = await self.messages.requeue_unaccepted(self.clock(), self.claimant)
        if requeued:
            log.info("sms.requeued", extra={"messages": requeued})
        return requeued

    async def send_due(self) -> int:
        """Hand every due message to its carrier (without waiting for them to answer);
        returns how many were taken."""
        room = min(self.max_inflight - len(self._inflight), BATCH)
        if room <= 0:
            return 0
        # Taken: 'sending' in the store from here, so no other sender takes them.
        due = await self.messages.take_due(
            self.clock(), room, claimant=self.claimant, lease_s=SENDING_LEASE_S
        )
        if due:
            await self._learn_numbers({m.to for m in due})
        for message in due:
            self._inflight.add(message.sid)
            task = asyncio.create_task(self._send(message))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
        return len(due)

    async def _learn_numbers(self, phones: set[str]) -> None:
        """Which of a batch's destinations are our numbers, in one query (the local
        carrier asks about each)."""
        for phone, number in (await self.store.numbers.find_many(phones)).items():
            self._numbers.put(phone, number)

    async def _send(self, message: MessageRecord) -> None:
        try:
            await self._send_one(message)
        except Exception:
            log.exception("sms.send_error", extra={"message_sid": message.sid})
            if message.carrier_message_id is None:
                # No carrier took it: back to the queue rather than 'sending' until a restart.
                with contextlib.suppress(Exception):
                    await self.messages.update_if(message.sid, ("sending",), status="queued")
        finally:
            self._inflight.discard(message.sid)
            self._wake.set()  # room for the next ones

    async def _send_one(self, message: MessageRecord) -> None:
        now = self.clock()
        assert message.date_created is not None, "a queued message is stored"
        if message.validity_period is not None and now - message.date_created > timedelta(
            seconds=message.validity_period
        ):
            await self._fail(message, QUEUE_OVERFLOW, "ValidityPeriod expired in the queue")
            return
        if self.billing is not None and await self.billing.is_spent(message.account_sid):
            await self._fail(message, ACCOUNT_SUSPENDED, "The account's balance is spent")
            return
        await self.local.claims(message.to)
        carrier = select_carrier(self.carriers, message.to)
        if carrier is None or carrier.serves(message.to) < 0:
            await self._retry(message, "no carrier serves this number")
            return
        body = message.body
        media: tuple[MmsPart, ...] = ()
        if message.media_urls:
            try:
                body, media = await self.media.outbound(message, _carries_media(carrier))
            except MediaFetchError as exc:
                await self._fail(message, exc.error_code, str(exc))
                return
        message.status = "sending"
        self._callback(message)
        sms = OutboundSms(
            message.sid,
            message.to,
            message.from_,
            body,
            tuple(message.media_urls),
            message.validity_period,
            media,
        )
        try:
            carrier_id = await carrier.submit(sms)
        except CarrierUnavailable as exc:
            await self._retry(message, str(exc))
            return
        except CarrierRejected as exc:
            await self._fail(message, exc.error_code, str(exc))
            return
        message.carrier_message_id = carrier_id
        sent_at = self.clock()
        # The price goes in the same write (the usage record follows in _price).
        price = self._price_fields(message)
        # A receipt may beat this write: only a message still 'sending' becomes 'sent'.
        if await self.messages.update_if(
            message.sid,
            ("sending",),
            status="sent",
            carrier=carrier.name,
            carrier_message_id=carrier_id,
            date_sent=sent_at,
            **price,
        ):
            message.status = "sent"
            message.date_sent = sent_at
            self._callback(message)
        else:
            await self.messages.update(
                message.sid, carrier=carrier.name, carrier_message_id=carrier_id, **price
            )
        early = self._early.pop((carrier.name, carrier_id), None)
        if early is not None:
            await self._apply_receipt(message, early[0], early[1])
        await self._price(message, written=True)

    async def _retry(self, message: MessageRecord, reason: str) -> None:
        """Back to the queue (from 'sending', where ``take_due`` put it), with backoff."""
        attempts = message.attempts + 1
        delay = min(2.0 ** min(attempts, 16), MAX_BACKOFF_S)
        message.status = "queued"
        await self.messages.update(
            message.sid,
            status="queued",
            attempts=attempts,
            next_attempt_at=self.clock() + timedelta(seconds=delay),
        )
        log.info(
            "sms.retry",
            extra={"message_sid": message.sid, "reason": reason, "in_s": delay},
        )

    async def _fail(self, message: MessageRecord, code: int, reason: str) -> None:
        await self.messages.update(
            message.sid, status="failed", error_code=code, error_message=reason
        )
        message.status, message.error_code = "failed", code
        self._callback(message)
        log.info("sms.failed", extra={"message_sid": message.sid, "error_code": code})

    def _price_fields(self, message: MessageRecord) -> dict[str, str]:
        """The message's price columns, for a write about to be made anyway."""
        if self.billing is None:
            return {}
        _, price = self.billing.message_price(
            message.direction, message.to, message.from_, message.num_segments
        )
        message.price, message.price_unit = money(price), "USD"
        return {"price": message.price, "price_unit": message.price_unit}

    async def _price(self, message: MessageRecord, *, written: bool = False) -> None:
        """Record the message's usage (and its price on the message, unless ``written``
        by ``_price_fields`` already)."""
        if self.billing is None:
            return
        await self.billing.message_priced(
            **parties(message),
            segments=message.num_segments,
            update_message=None if written else self.messages.update,
        )

    def _spawn(self, coroutine) -> None:
        task = asyncio.get_running_loop().create_task(coroutine)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def _callback(self, message: MessageRecord) -> None:
        """The message's status just changed: counted, and its status callback queued."""
        self.status_counts[message.direction, message.status] += 1
        if not message.status_callback or self.outbox is None:
            return
        params = message_callback_params(message)
        task = asyncio.create_task(
            self.messages.queue_webhook(
                delivery_id=f"{message.sid}-{message.status}",
                account_sid=message.account_sid,
                url=message.status_callback,
                method=message.status_callback_method,
                params=params,
                now=self.clock(),
                wake=self.outbox.wake,
            )
        )
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    # What carriers report

    async def carrier_available(self, carrier: str) -> None:
        """A carrier came (back) up: what waits for it need not wait out its backoff."""
        await self.messages.due_now(self.clock())
        self._wake.set()

    async def receipt(
        self, carrier: str, carrier_id: str, delivered: bool, error_code: int | None
    ) -> None:
        message = await self.messages.find_by_carrier_id(carrier, carrier_id)
        if message is None:
            # A receipt can overtake the write of the carrier's id after the carrier
            # took the message: kept until that write looks for it.
            self._early[(carrier, carrier_id)] = (delivered, error_code, time.monotonic())
            self._forget_early()
            return
        await self._apply_receipt(message, delivered, error_code)

    def _forget_early(self) -> None:
        horizon = time.monotonic() - EARLY_RECEIPT_S
        while self._early:
            key, (_, _, at) = next(iter(self._early.items()))
            if at >= horizon and len(self._early) <= MAX_EARLY_RECEIPTS:
                break
            del self._early[key]
            log.info("sms.receipt_unknown", extra={"carrier": key[0], "id": key[1]})

    async def _apply_receipt(
        self, message: MessageRecord, delivered: bool, error_code: int | None
    ) -> None:
        status = "delivered" if delivered else "undelivered"
        code = None if delivered else (error_code or DELIVERY_UNKNOWN)
        values: dict[str, object] = {"status": status, "error_code": code}
        if message.date_sent is None:
            values["date_sent"] = self.clock()
        if await self.messages.update_if(message.sid, ("sending", "sent"), **values):
            message.status, message.error_code = status, code
            self._callback(message)

    async def _is_ours(self, phone: str) -> bool:
        return await self._numbers.get(phone) is not None

    async def inbound(self, from_: str, to: str, body: str, media: Sequence[MmsPart] = ()) -> bool:
        """A message for ``to`` (with ``media``: an MMS): stored, priced, posted to its
        SmsUrl, replies sent. False when ``to`` is not one of our numbers."""
        number = await self.store.numbers.find(to)
        if number is None:
            return False
        now = self.clock()
        cut = segment(body)
        sid = new_sid("MM" if media else "SM")
        record = MessageRecord(
            sid=sid,
            account_sid=number.account_sid,
            to=number.phone_number,
            from_=from_,
            body=body,
            status="received",
            direction="inbound",
            num_segments=cut.count,
            encoding=cut.encoding,
            media_urls=await self.media.received(number.account_sid, sid, media),
            date_sent=now,
            date_created=now,
            date_updated=now,
        )
        await self.messages.insert(record)
        self.status_counts[record.direction, "received"] += 1
        # Stored: the carrier may hear "taken" now; pricing and the webhook follow.
        self._spawn(self._price(record))
        if number.sms_url:
            types = [part.content_type for part in media]
            task = asyncio.create_task(self._post_inbound(number, record, types))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
        return True

    async def _post_inbound(
        self, number, record: MessageRecord, media_types: Sequence[str] = ()
    ) -> None:
        token = await self.store.accounts.auth_token(record.account_sid)
        if token is None:
            return
        params = inbound_params(record, media_types)
        answer = None
        for url, method in (
            (number.sms_url, number.sms_method),
            (number.sms_fallback_url, number.sms_fallback_method),
        ):
            if not url:
                continue
            try:
                answer = await self.webhooks.request(url, method or "POST", params, token)
                break
            except WebhookError as exc:
                log.warning("sms.webhook_failed", extra={"url": url, "error": str(exc)})
        if answer is None or not answer.body.strip():
            return
        try:
            verbs = parse_messaging_twiml(answer.body)
        except TwimlError as exc:
            log.warning("sms.twiml_error", extra={"message_sid": record.sid, "error": str(exc)})
            return
        for verb in verbs:
            if isinstance(verb, Message):
                await self.create(
                    record.account_sid,
                    to=verb.to or record.from_,
                    from_=verb.from_ or record.to,
                    body=verb.body,
                    media_urls=verb.media,
                    status_callback=verb.status_callback or verb.action,
                    status_callback_method=verb.method or "POST",
                    direction="outbound-reply",
                )


def _carries_media(carrier: Carrier) -> bool:
    return bool(getattr(carrier, "carries_media", False))


def inbound_params(record: MessageRecord, media_types: Sequence[str] = ()) -> list[tuple[str, str]]:
    """The inbound webhook's parameters (reference §7); ``media_types`` are the
    content types of its media, in order."""
    params = [
        ("MessageSid", record.sid),
        ("SmsSid", record.sid),
        ("SmsMessageSid", record.sid),
        ("AccountSid", record.account_sid),
        ("MessagingServiceSid", record.messaging_service_sid or ""),
        ("From", record.from_),
        ("To", record.to),
        ("Body", record.body),
        ("NumMedia", str(len(record.media_urls))),
        ("NumSegments", str(record.num_segments)),
        ("SmsStatus", "received"),
        ("ApiVersion", API_VERSION),
        *UNKNOWN_LOCATION,
    ]
    for index, url in enumerate(record.media_urls):
        params.append((f"MediaContentType{index}", _at(media_types, index)))
        params.append((f"MediaUrl{index}", url))
    return params


def _at(values: Sequence[str], index: int) -> str:
    return values[index] if index < len(values) else ""
