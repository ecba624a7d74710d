"""The store: accounts, phone numbers, calls and the webhook outbox.

SQLAlchemy Core behind coroutines: SQLite for one process, PostgreSQL when several nodes
share state. Every query here is portable SQL, written as a function of a connection
and run in one transaction by ``engine.Database``. Opening the store upgrades the schema
to the newest migration, keeping the data.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterable
from dataclasses import dataclass, fields
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy import Select, and_, func, insert, select, update
from sqlalchemy.engine import Connection, make_url
from sqlalchemy.exc import IntegrityError

from control_api.sids import new_sid, utcnow
from control_api.store.e164 import format_number, normalize_e164
from control_api.store.engine import Database
from control_api.store.migrate import upgrade_to_head
from control_api.store.schema import accounts, calls, phone_numbers, webhook_outbox

__all__ = [
    "MAX_FRIENDLY_NAME",
    "NUMBER_FIELDS",
    "Account",
    "CallRecord",
    "NumberTaken",
    "OutboxItem",
    "PhoneNumber",
    "Store",
]

MAX_FRIENDLY_NAME = 64


class NumberTaken(Exception):
    """The phone number already belongs to an account (numbers are unique across accounts)."""

    def __init__(self, phone_number: str) -> None:
        super().__init__(f"{phone_number} is already provisioned")
        self.phone_number = phone_number


@dataclass(slots=True)
class Account:
    sid: str
    friendly_name: str
    auth_token: str
    status: str
    date_created: datetime
    date_updated: datetime


@dataclass(slots=True)
class PhoneNumber:
    """An IncomingPhoneNumber: a number the platform answers and where its calls go."""

    sid: str
    account_sid: str
    phone_number: str
    friendly_name: str
    voice_url: str | None
    voice_method: str
    voice_fallback_url: str | None
    voice_fallback_method: str
    status_callback: str | None
    status_callback_method: str
    sms_url: str | None
    sms_method: str
    sms_fallback_url: str | None
    sms_fallback_method: str
    voice_application_sid: str | None
    sms_application_sid: str | None
    date_created: datetime
    date_updated: datetime


# What create_number and update_number take besides the number itself, with defaults.
NUMBER_FIELDS: dict[str, str | None] = {
    "friendly_name": None,  # None: the number, formatted
    "voice_url": None,
    "voice_method": "POST",
    "voice_fallback_url": None,
    "voice_fallback_method": "POST",
    "status_callback": None,
    "status_callback_method": "POST",
    "sms_url": None,
    "sms_method": "POST",
    "sms_fallback_url": None,
    "sms_fallback_method": "POST",
    "voice_application_sid": None,
    "sms_application_sid": None,
}


@dataclass
class CallRecord:
    """What the REST API shows of a call; the call engine writes it as the call moves on."""

    sid: str
    account_sid: str
    parent_call_sid: str | None = None
    to: str = ""
    from_: str = ""
    phone_number_sid: str | None = None
    status: str = "queued"
    direction: str = "inbound"
    start_time: datetime | None = None
    end_time: datetime | None = None
    duration: int | None = None
    price: str | None = None
    price_unit: str = "USD"
    answered_by: str | None = None
    forwarded_from: str | None = None
    caller_name: str | None = None
    sip_call_id: str | None = None
    date_created: datetime | None = None  # None: set on insert
    date_updated: datetime | None = None  # None: set on insert and on every update


CALL_FIELDS = frozenset(f.name for f in fields(CallRecord))
_CALL_UPDATABLE = CALL_FIELDS - {"sid", "account_sid", "date_created"}
# CallRecord attribute -> column, where they differ (SQL keywords).
_CALL_COLUMN = {"to": "to_address", "from_": "from_address"}
_CALL_ATTRIBUTE = {column: attribute for attribute, column in _CALL_COLUMN.items()}


@dataclass(slots=True)
class OutboxItem:
    """One webhook request waiting in (or done with) the durable outbox."""

    id: int
    delivery_id: str
    account_sid: str
    url: str
    method: str
    params: list[tuple[str, str]]
    call_sid: str | None
    attempts: int
    next_attempt_at: datetime
    created_at: datetime
    delivered_at: datetime | None
    abandoned_at: datetime | None
    last_error: str | None


class Store:
    """Persistent state of the control plane. Open with ``await Store.open(url)``.

    Every method is one transaction; methods that take an account SID only ever see
    that account's rows.
    """

    def __init__(self, db: Database) -> None:
        self.db = db

    @classmethod
    async def open(cls, url: str) -> Store:
        """Connect to ``url`` and upgrade the schema to the newest migration.

        ``sqlite+aiosqlite:///path/callswitch.db`` (the directory is created; WAL
        journal and a busy timeout so that readers and the writer share the file) or
        ``postgresql+asyncpg://user:pass@host/db``. See ``engine.Database`` for how
        the work is run.
        """
        parsed = make_url(url)
        if parsed.get_backend_name() == "sqlite" and parsed.database not in (None, "", ":memory:"):
            Path(parsed.database).expanduser().parent.mkdir(parents=True, exist_ok=True)
        db = Database(parsed)
        try:
            await db.run(upgrade_to_head)
        except BaseException:
            await db.dispose()
            raise
        return cls(db)

    async def close(self) -> None:
        await self.db.dispose()

    # Accounts

    async def create_account(
        self,
        friendly_name: str | None = None,
        *,
        sid: str | None = None,
        auth_token: str | None = None,
    ) -> Account:
        """A new active account; the SID and a 32-hex-digit auth token are made up if not given."""
        now = utcnow()
        account = Account(
            sid=sid or new_sid("AC"),
            friendly_name=_friendly_name(friendly_name or "callswitch account"),
            auth_token=auth_token or secrets.token_hex(16),
            status="active",
            date_created=now,
            date_updated=now,
        )
        await self.db.run(lambda c: c.execute(insert(accounts).values(**_as_row(account))))
        return account

    async def get_account(self, sid: str) -> Account | None:
        row = await self.db.run(
            lambda c: c.execute(select(accounts).where(accounts.c.sid == sid)).first()
        )
        return Account(**row._mapping) if row else None

    async def auth_token(self, sid: str) -> str | None:
        """The account's auth token (the key that signs its webhooks), or None."""
        account = await self.get_account(sid)
        return account.auth_token if account is not None else None

    async def ensure_account(self, sid: str, auth_token: str) -> Account:
        """Seed an account: create it if absent, else set its auth token."""

        def work(c: Connection) -> Any:
            c.execute(
                update(accounts)
                .where(accounts.c.sid == sid)
                .values(auth_token=auth_token, date_updated=utcnow())
            )
            return c.execute(select(accounts).where(accounts.c.sid == sid)).first()

        row = await self.db.run(work)
        if row is not None:
            return Account(**row._mapping)
        try:
            return await self.create_account(sid=sid, auth_token=auth_token)
        except IntegrityError:  # another node seeded it meanwhile
            return await self.ensure_account(sid, auth_token)

    async def list_accounts(self) -> list[Account]:
        query = select(accounts).order_by(accounts.c.date_created, accounts.c.sid)
        rows = await self.db.run(lambda c: c.execute(query).all())
        return [Account(**row._mapping) for row in rows]

    # Phone numbers

    async def create_number(
        self, account_sid: str, phone_number: str, **fields: Any
    ) -> PhoneNumber:
        """Provision ``phone_number`` (E.164, '+' optional) for the account.

        ``fields`` are keys of ``NUMBER_FIELDS``. Raises ``NumberTaken`` if any account
        has the number already, ``ValueError`` for a number that is not E.164 or a
        friendly name that is not 1 to 64 characters.
        """
        e164 = normalize_e164(phone_number)
        if e164 is None:
            raise ValueError(f"not an E.164 phone number: {phone_number!r}")
        values = {**NUMBER_FIELDS, **_number_fields(fields)}
        values["friendly_name"] = _friendly_name(values["friendly_name"] or format_number(e164))
        now = utcnow()
        number = PhoneNumber(
            sid=new_sid("PN"),
            account_sid=account_sid,
            phone_number=e164,
            date_created=now,
            date_updated=now,
            **values,
        )
        try:
            await self.db.run(lambda c: c.execute(insert(phone_numbers).values(**_as_row(number))))
        except IntegrityError:
            if await self.find_number(e164) is not None:
                raise NumberTaken(e164) from None
            raise
        return number

    async def get_number(self, account_sid: str, sid: str) -> PhoneNumber | None:
        query = select(phone_numbers).where(
            phone_numbers.c.account_sid == account_sid, phone_numbers.c.sid == sid
        )
        row = await self.db.run(lambda c: c.execute(query).first())
        return PhoneNumber(**row._mapping) if row else None

    async def find_number(self, phone: str) -> PhoneNumber | None:
        """The number an inbound call is for, in any account; ``phone`` with or without '+'."""
        e164 = normalize_e164(phone)
        if e164 is None:
            return None
        query = select(phone_numbers).where(phone_numbers.c.phone_number == e164)
        row = await self.db.run(lambda c: c.execute(query).first())
        return PhoneNumber(**row._mapping) if row else None

    async def list_numbers(
        self,
        account_sid: str,
        *,
        phone_number: str | None = None,
        friendly_name: str | None = None,
        offset: int = 0,
        limit: int = 50,
    ) -> list[PhoneNumber]:
        """The account's numbers, oldest first.

        ``phone_number`` matches any part of the number, with '*' standing for any one
        character (Twilio's filter); ``friendly_name`` matches exactly.
        """
        query = (
            _number_filter(select(phone_numbers), account_sid, phone_number, friendly_name)
            .order_by(phone_numbers.c.date_created, phone_numbers.c.sid)
            .offset(offset)
            .limit(limit)
        )
        rows = await self.db.run(lambda c: c.execute(query).all())
        return [PhoneNumber(**row._mapping) for row in rows]

    async def count_numbers(
        self,
        account_sid: str,
        *,
        phone_number: str | None = None,
        friendly_name: str | None = None,
    ) -> int:
        query = _number_filter(
            select(func.count()).select_from(phone_numbers),
            account_sid,
            phone_number,
            friendly_name,
        )
        return await self.db.run(lambda c: c.execute(query).scalar_one())

    async def update_number(self, account_sid: str, sid: str, **fields: Any) -> PhoneNumber | None:
        """Change ``fields`` (keys of ``NUMBER_FIELDS``); None if the account has no such number."""
        values = _number_fields(fields)
        if "friendly_name" in values:
            values["friendly_name"] = _friendly_name(values["friendly_name"] or "")
        where = (phone_numbers.c.account_sid == account_sid, phone_numbers.c.sid == sid)

        def work(c: Connection) -> Any:
            c.execute(update(phone_numbers).where(*where).values(**values, date_updated=utcnow()))
            return c.execute(select(phone_numbers).where(*where)).first()

        row = await self.db.run(work)
        return PhoneNumber(**row._mapping) if row else None

    async def delete_number(self, account_sid: str, sid: str) -> bool:
        statement = phone_numbers.delete().where(
            phone_numbers.c.account_sid == account_sid, phone_numbers.c.sid == sid
        )
        result = await self.db.run(lambda c: c.execute(statement))
        return result.rowcount > 0

    # Calls

    async def insert_call(self, record: CallRecord) -> CallRecord:
        """Store a new call; fills in ``date_created``/``date_updated`` if they are None."""
        record.date_created = record.date_created or utcnow()
        record.date_updated = record.date_updated or record.date_created
        statement = insert(calls).values(**_call_row(vars(record)))
        await self.db.run(lambda c: c.execute(statement))
        return record

    async def update_call(self, sid: str, **fields: Any) -> CallRecord | None:
        """Change ``fields`` (CallRecord attributes) of a call; None if there is no such call.

        ``date_updated`` is set to now unless given.
        """
        unknown = set(fields) - _CALL_UPDATABLE
        if unknown:
            raise TypeError(f"update_call() cannot change {sorted(unknown)}")
        fields.setdefault("date_updated", utcnow())

        def work(c: Connection) -> Any:
            c.execute(update(calls).where(calls.c.sid == sid).values(**_call_row(fields)))
            return c.execute(select(calls).where(calls.c.sid == sid)).first()

        row = await self.db.run(work)
        return _call_record(row) if row else None

    async def get_call(self, account_sid: str, sid: str) -> CallRecord | None:
        query = select(calls).where(calls.c.account_sid == account_sid, calls.c.sid == sid)
        row = await self.db.run(lambda c: c.execute(query).first())
        return _call_record(row) if row else None

    async def list_calls(
        self,
        account_sid: str,
        *,
        to: str | None = None,
        from_: str | None = None,
        status: str | None = None,
        parent_call_sid: str | None = None,
        start_time_after: datetime | None = None,
        start_time_before: datetime | None = None,
        end_time_after: datetime | None = None,
        end_time_before: datetime | None = None,
        offset: int = 0,
        limit: int = 50,
    ) -> list[CallRecord]:
        """The account's calls, newest first.

        ``*_after`` bounds are inclusive (>=), ``*_before`` bounds exclusive (<); a call
        without that time never matches a bound on it.
        """
        conditions = _call_filter(
            account_sid,
            to,
            from_,
            status,
            parent_call_sid,
            start_time_after,
            start_time_before,
            end_time_after,
            end_time_before,
        )
        query = (
            select(calls)
            .where(*conditions)
            .order_by(calls.c.date_created.desc(), calls.c.sid.desc())
            .offset(offset)
            .limit(limit)
        )
        rows = await self.db.run(lambda c: c.execute(query).all())
        return [_call_record(row) for row in rows]

    async def count_calls(
        self,
        account_sid: str,
        *,
        to: str | None = None,
        from_: str | None = None,
        status: str | None = None,
        parent_call_sid: str | None = None,
        start_time_after: datetime | None = None,
        start_time_before: datetime | None = None,
        end_time_after: datetime | None = None,
        end_time_before: datetime | None = None,
    ) -> int:
        conditions = _call_filter(
            account_sid,
            to,
            from_,
            status,
            parent_call_sid,
            start_time_after,
            start_time_before,
            end_time_after,
            end_time_before,
        )
        query = select(func.count()).select_from(calls).where(*conditions)
        return await self.db.run(lambda c: c.execute(query).scalar_one())

    async def delete_call(self, account_sid: str, sid: str) -> bool:
        statement = calls.delete().where(calls.c.account_sid == account_sid, calls.c.sid == sid)
        result = await self.db.run(lambda c: c.execute(statement))
        return result.rowcount > 0

    # Webhook outbox

    async def enqueue_webhook(
        self,
        *,
        delivery_id: str,
        account_sid: str,
        url: str,
        method: str,
        params: Iterable[tuple[str, str]],
        call_sid: str | None = None,
        now: datetime,
    ) -> int:
        """Queue a request, due at ``now``; returns its id.

        ``delivery_id`` makes this idempotent: enqueueing the same id again returns the
        first item's id and changes nothing.
        """
        statement = insert(webhook_outbox).values(
            delivery_id=delivery_id,
            account_sid=account_sid,
            url=url,
            method=method,
            params=[[name, value] for name, value in params],
            call_sid=call_sid,
            attempts=0,
            next_attempt_at=now,
            created_at=now,
        )
        try:
            result = await self.db.run(lambda c: c.execute(statement))
            return result.inserted_primary_key[0]
        except IntegrityError:
            query = select(webhook_outbox.c.id).where(webhook_outbox.c.delivery_id == delivery_id)
            existing = await self.db.run(lambda c: c.execute(query).scalar_one_or_none())
            if existing is None:
                raise
            return existing

    async def due_webhooks(self, now: datetime, limit: int = 100) -> list[OutboxItem]:
        """Items neither delivered nor abandoned whose next attempt is due, oldest first."""
        query = (
            select(webhook_outbox)
            .where(_pending(), webhook_outbox.c.next_attempt_at <= now)
            .order_by(webhook_outbox.c.next_attempt_at, webhook_outbox.c.id)
            .limit(limit)
        )
        rows = await self.db.run(lambda c: c.execute(query).all())
        return [_outbox_item(row) for row in rows]

    async def get_webhook(self, id: int) -> OutboxItem | None:
        query = select(webhook_outbox).where(webhook_outbox.c.id == id)
        row = await self.db.run(lambda c: c.execute(query).first())
        return _outbox_item(row) if row else None

    async def mark_delivered(self, id: int, now: datetime) -> None:
        await self._update_outbox(id, delivered_at=now)

    async def reschedule(
        self, id: int, attempts: int, next_attempt_at: datetime, error: str
    ) -> None:
        await self._update_outbox(
            id, attempts=attempts, next_attempt_at=next_attempt_at, last_error=error
        )

    async def abandon(self, id: int, now: datetime, error: str) -> None:
        await self._update_outbox(id, abandoned_at=now, last_error=error)

    async def pending_count(self) -> int:
        """Items neither delivered nor abandoned, due or not."""
        query = select(func.count()).select_from(webhook_outbox).where(_pending())
        return await self.db.run(lambda c: c.execute(query).scalar_one())

    async def _update_outbox(self, id: int, **values: Any) -> None:
        statement = update(webhook_outbox).where(webhook_outbox.c.id == id).values(**values)
        await self.db.run(lambda c: c.execute(statement))


def _friendly_name(name: str) -> str:
    if not 1 <= len(name) <= MAX_FRIENDLY_NAME:
        raise ValueError(f"a friendly name has 1 to {MAX_FRIENDLY_NAME} characters")
    return name


def _as_row(record: Any) -> dict[str, Any]:
    return {f.name: getattr(record, f.name) for f in fields(record)}


def _number_fields(given: dict[str, Any]) -> dict[str, Any]:
    unknown = set(given) - set(NUMBER_FIELDS)
    if unknown:
        raise TypeError(f"not a phone number field: {sorted(unknown)}")
    return dict(given)


def _like_pattern(value: str) -> str:
    escaped = value.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return "%" + escaped.replace("*", "_") + "%"


def _number_filter(
    query: Select, account_sid: str, phone_number: str | None, friendly_name: str | None
) -> Select:
    query = query.where(phone_numbers.c.account_sid == account_sid)
    if phone_number is not None:
        query = query.where(phone_numbers.c.phone_number.like(_like_pattern(phone_number), "\\"))
    if friendly_name is not None:
        query = query.where(phone_numbers.c.friendly_name == friendly_name)
    return query


def _call_filter(
    account_sid: str,
    to: str | None,
    from_: str | None,
    status: str | None,
    parent_call_sid: str | None,
    start_time_after: datetime | None,
    start_time_before: datetime | None,
    end_time_after: datetime | None,
    end_time_before: datetime | None,
) -> list:
    c = calls.c
    conditions = [c.account_sid == account_sid]
    for column, value in (
        (c.to_address, to),
        (c.from_address, from_),
        (c.status, status),
        (c.parent_call_sid, parent_call_sid),
    ):
        if value is not None:
            conditions.append(column == value)
    for column, after, before in (
        (c.start_time, start_time_after, start_time_before),
        (c.end_time, end_time_after, end_time_before),
    ):
        if after is not None:
            conditions.append(column >= after)
        if before is not None:
            conditions.append(column < before)
    return conditions


def _call_row(values: dict[str, Any]) -> dict[str, Any]:
    return {_CALL_COLUMN.get(name, name): value for name, value in values.items()}


def _call_record(row) -> CallRecord:
    return CallRecord(**{_CALL_ATTRIBUTE.get(k, k): v for k, v in row._mapping.items()})


def _pending():
    return and_(webhook_outbox.c.delivered_at.is_(None), webhook_outbox.c.abandoned_at.is_(None))


def _outbox_item(row) -> OutboxItem:
    values = dict(row._mapping)
    values["params"] = [(str(name), str(value)) for name, value in values["params"]]
    return OutboxItem(**values)
