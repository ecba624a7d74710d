"""Billing: pricing each call and message once, balances, triggers and billing events.

A call is priced when it ends (``call_finished``, from the call's journal), a message
when a carrier has taken it or it has arrived (``message_priced``). Each priced item
is one ``usage_items`` row, charged to the balance in the same transaction; then the
account's triggers are checked and a billing event is queued for the external billing
system. ``reconcile`` prices, on start, whatever a stop left unpriced, so a restart
loses no usage record. A call its node lost (``call_lost``) is priced for the minutes
it was answered, as a completed call of that length.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime
from decimal import Decimal

from sqlalchemy import and_, or_, select

from control_api.lookup import Lookup
from control_api.sids import rfc2822, utcnow
from control_api.store import BillingStore, LostCall, UsageItem, UsageTriggerRecord
from control_api.store.rows import parties
from control_api.store.schema import calls, messages, usage_items
from control_api.usage.pricing import PriceList, billable_minutes, call_category
from control_api.usage.records import CATEGORIES, category_total, current_period

__all__ = ["BalanceExhausted", "Billing", "money", "trigger_record_uri"]

log = logging.getLogger("callswitch.billing")

API_VERSION = "2010-04-01"
PRICED_MESSAGE_STATUSES = ("sent", "delivered", "undelivered", "received")


class BalanceExhausted(Exception):
    """The account has a balance and it is spent: no new calls or messages."""


def money(amount: Decimal, places: int = 5) -> str:
    """A Twilio price string: ``-0.01300`` for a charge of 0.013."""
    return f"{-amount:.{places}f}" if amount else f"{Decimal(0):.{places}f}"


def trigger_record_uri(trigger: UsageTriggerRecord) -> str:
    view = {
        "daily": "Today",
        "monthly": "ThisMonth",
        "yearly": "Yearly",
    }.get(trigger.recurring or "", "AllTime")
    return (
        f"/2010-04-01/Accounts/{trigger.account_sid}/Usage/Records/{view}.json"
        f"?Category={trigger.usage_category}"
    )


class Billing:
    """Prices usage and acts on it. ``outbox`` queues the billing events and wakes
    for trigger callbacks (which the store queues itself, atomically with the firing)."""

    def __init__(
        self,
        store,
        billing_store: BillingStore,
        outbox,
        prices: PriceList | None = None,
        *,
        billing_webhook: str | None = None,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        self.store = store
        self.billing = billing_store
        self.outbox = outbox
        self.prices = prices or PriceList()
        self.billing_webhook = billing_webhook
        self.clock = clock
        # Told each new balance as usage is charged: caches on the call path stay exact.
        self.balance_listeners: list[Callable[[str, Decimal], None]] = []
        # Balances read on every call and message: from a cache refreshed in the
        # background (a balance set from the CLI shows within a second) and kept
        # exact by the charges this process makes.
        self._balances = Lookup(billing_store.get_balance, fresh=1.0)
        self.balance_listeners.append(self._balances.put)

    # The rule

    async def is_spent(self, account_sid: str) -> bool:
        """True when the account has a balance and it is zero or below."""
        balance = await self._balances.get(account_sid)
        return balance is not None and balance <= 0

    async def check_funds(self, account_sid: str) -> None:
        """Raise ``BalanceExhausted`` when the account's balance is zero or below."""
        if await self.is_spent(account_sid):
            raise BalanceExhausted(account_sid)

    # Pricing

    def call_price(self, direction: str, to: str, from_: str, duration_s: float):
        category = call_category(direction, to, from_)
        far_end = from_ if direction == "inbound" else to
        minutes = billable_minutes(duration_s)
        return category, minutes, self.prices.unit_price(category, far_end) * minutes

    def message_price(self, direction: str, to: str, from_: str, segments: int):
        category = "sms-inbound" if direction == "inbound" else "sms-outbound"
        far_end = from_ if direction == "inbound" else to
        return category, self.prices.unit_price(category, far_end) * segments

    async def call_finished(
        self,
        *,
        sid: str,
        account_sid: str,
        direction: str,
        to: str,
        from_: str,
        status: str,
        duration_s: float,
    ) -> None:
        """Price a call that ended; a call never answered costs nothing and is not usage."""
        if status != "completed" or billable_minutes(duration_s) == 0:
            return
        _, _, price = self.call_price(direction, to, from_, duration_s)
        await self.store.calls.update(sid, price=money(price), price_unit="USD")
        await self._charge_call(sid, account_sid, direction, to, from_, duration_s)

    def lost_call_price(self, lost) -> str | None:
        """The price string of a call its node lost (``store.nodes.LostCall``): the
        minutes it was answered for, as ``call_finished`` prices them; None when free."""
        if not lost.answered or billable_minutes(lost.duration) == 0:
            return None
        _, _, price = self.call_price(lost.direction, lost.to, lost.from_, lost.duration)
        return money(price)

    async def call_lost(self, lost) -> None:
        """Charge a call its node lost, once its record is failed with its price (the
        node died mid-call: the minutes until it was last seen alive were used)."""
        if self.lost_call_price(lost) is None:
            return
        await self._charge_call(
            lost.sid, lost.account_sid, lost.direction, lost.to, lost.from_, lost.duration
        )

    async def _charge_call(
        self, sid: str, account_sid: str, direction: str, to: str, from_: str, duration_s: float
    ) -> None:
        """Record a priced call's usage and what it cost (``call_price``)."""
        category, minutes, price = self.call_price(direction, to, from_, duration_s)
        await self._charge(
            UsageItem(sid, account_sid, category, minutes, price, self.clock()),
            kind="call",
            extra=[("CallSid", sid), ("Direction", direction), ("To", to), ("From", from_)],
        )

    async def message_priced(
        self,
        *,
        sid: str,
        account_sid: str,
        direction: str,
        to: str,
        from_: str,
        segments: int,
        update_message: Callable | None = None,
    ) -> str:
        """Price a message; returns its price string (written by ``update_message``)."""
        category, price = self.message_price(direction, to, from_, segments)
        text = money(price)
        if update_message is not None:
            await update_message(sid, price=text, price_unit="USD")
        await self._charge(
            UsageItem(sid, account_sid, category, segments, price, self.clock()),
            kind="message",
            extra=[("MessageSid", sid), ("Direction", direction), ("To", to), ("From", from_)],
        )
        return text

    async def transcription_priced(self, *, sid: str, account_sid: str, duration_s: float) -> str:
        """Price a transcription per started minute of audio; returns its price string."""
        minutes = billable_minutes(duration_s)
        price = self.prices.unit_price("transcriptions", "") * minutes
        await self._charge(
            UsageItem(sid, account_sid, "transcriptions", minutes, price, self.clock()),
            kind="transcription",
            extra=[("TranscriptionSid", sid)],
        )
        return money(price)

    async def _charge(self, item: UsageItem, *, kind: str, extra: list) -> None:
        new, balance = await self.billing.record_usage(item)
        if not new:
            return  # priced before (a retry, or reconcile after a restart)
        if balance is not None:
            for listener in self.balance_listeners:
                listener(item.account_sid, balance)
        if self.billing_webhook:
            await self.billing.queue_webhook(
                delivery_id=f"billing-{item.source_sid}",
                account_sid=item.account_sid,
                url=self.billing_webhook,
                method="POST",
                params=[
                    ("AccountSid", item.account_sid),
                    ("EventType", f"{kind}.priced"),
                    *extra,
                    ("Category", item.category),
                    ("Usage", str(item.usage)),
                    ("UsageUnit", "segments" if kind == "message" else "minutes"),
                    ("Price", f"{item.price:.5f}"),
                    ("PriceUnit", "USD"),
                    ("Timestamp", rfc2822(item.occurred_at)),
                    ("ApiVersion", API_VERSION),
                ],
                now=item.occurred_at,
            )
            self.outbox.wake()
        await self.check_triggers(item.account_sid, item.category)

    # Triggers

    async def check_triggers(self, account_sid: str, category: str | None = None) -> int:
        """Fire every trigger of the account whose value is reached in its period and
        that has not fired in it; returns how many fired."""
        fired = 0
        now = self.clock()
        for trigger in await self.billing.triggers_of(account_sid):
            wanted = CATEGORIES.get(trigger.usage_category)
            if wanted is None or (category is not None and category not in wanted.parts):
                continue
            key, span = current_period(trigger.recurring, now)
            if await self.billing.fired_in(trigger.sid, key):
                continue
            sums = await self.billing.usage_sums(
                account_sid,
                span.start_at if span else None,
                span.end_before if span else None,
            )
            count, usage, price = category_total(wanted, sums)
            current = {"count": Decimal(count), "price": price}.get(trigger.trigger_by, usage)
            if current < Decimal(trigger.trigger_value):
                continue
            current_text = _plain(current)
            params = [
                ("AccountSid", account_sid),
                ("UsageTriggerSid", trigger.sid),
                ("DateFired", rfc2822(now)),
                ("Recurring", trigger.recurring or ""),
                ("UsageCategory", trigger.usage_category),
                ("TriggerBy", trigger.trigger_by),
                ("TriggerValue", trigger.trigger_value),
                ("CurrentValue", current_text),
                ("UsageRecordUri", trigger_record_uri(trigger)),
                ("IdempotencyToken", f"{trigger.sid}-{key}"),
            ]
            if await self.billing.fire_trigger(trigger, key, current_text, now, params):
                fired += 1
                self.outbox.wake()
                log.info(
                    "usage.trigger_fired",
                    extra={"trigger_sid": trigger.sid, "period": key, "value": current_text},
                )
        return fired

    # After a restart

    async def reconcile(self) -> int:
        """Price finished calls and sent or received messages that have no usage item
        yet (a stop between a call's end and its pricing; a lost call, failed with its
        price, whose charge did not happen); returns how many."""
        db = self.billing.db
        priced = select(usage_items.c.source_sid)
        call_rows = await db.run(
            lambda c: c.execute(
                select(calls).where(
                    or_(
                        calls.c.status == "completed",
                        # Lost by its node: failed, but priced when it was ended.
                        and_(calls.c.status == "failed", calls.c.price.is_not(None)),
                    ),
                    calls.c.duration > 0,
                    calls.c.sid.not_in(priced),
                )
            ).all()
        )
        message_rows = await db.run(
            lambda c: c.execute(
                select(messages).where(
                    messages.c.status.in_(PRICED_MESSAGE_STATUSES),
                    messages.c.sid.not_in(priced),
                )
            ).all()
        )
        for row in call_rows:
            if row.status == "failed":
                lost = LostCall(
                    **parties(row), answered=True, end_time=row.end_time, duration=row.duration
                )
                await self.call_lost(lost)
                continue
            await self.call_finished(**parties(row), status=row.status, duration_s=row.duration)
        for row in message_rows:
            await self.message_priced(**parties(row), segments=row.num_segments)
        return len(call_rows) + len(message_rows)


def _plain(value: Decimal) -> str:
    text = format(value.normalize(), "f")
    return text
