"""The store: accounts, phone numbers, calls, the webhook outbox, SIP credentials,
recordings, conferences and their participants.

SQLAlchemy Core behind coroutines: SQLite for one process, PostgreSQL when several nodes
share state. Every query here is portable SQL, written as a function of a connection
and run in one transaction by ``engine.Database``. Opening the store upgrades the schema
to the newest migration, keeping the data.
"""

from __future__ import annotations

import asyncio
import hmac
import re
import secrets
import time
from collections.abc import Iterable
from dataclasses import dataclass, fields
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy import (
    Select,
    String,
    Table,
    and_,
    bindparam,
    func,
    insert,
    or_,
    select,
    update,
)
from sqlalchemy.engine import URL, Connection, make_url
from sqlalchemy.exc import DBAPIError, IntegrityError

from control_api.sids import new_sid, utcnow
from control_api.sip_realm import SIP_REALM
from control_api.store.e164 import format_number, normalize_e164
from control_api.store.engine import Database
from control_api.store.group import close_group, group_commit
from control_api.store.migrate import upgrade_to_head
from control_api.store.schema import (
    accounts,
    calls,
    conference_participants,
    conferences,
    metadata,
    outbox_row,
    phone_numbers,
    recordings,
    sip_credential_lists,
    sip_credentials,
    webhook_outbox,
)
from sip.auth import ha1

__all__ = [
    "MAX_FRIENDLY_NAME",
    "NUMBER_FIELDS",
    "Account",
    "CallRecord",
    "ConferenceRecord",
    "CredentialListNameTaken",
    "NoSuchCredentialList",
    "NumberTaken",
    "OutboxItem",
    "OutboxOutcome",
    "ParticipantRecord",
    "PhoneNumber",
    "RecordingRecord",
    "SipCredential",
    "SipCredentialList",
    "Store",
    "StoreUnavailable",
    "TextTooLong",
    "UsernameTaken",
    "check_sip_password",
    "check_sip_username",
]

MAX_FRIENDLY_NAME = 64
# How long a verified account (and its token) is used without asking the database: the
# bound on how late a token rotated or an account suspended by another process (the
# CLI, another node) stops working here. Changes made through this Store apply at once.
ACCOUNT_CACHE_S = 2.0
MAX_CACHED_ACCOUNTS = 10_000


class StoreUnavailable(Exception):
    """The database cannot be reached or opened (refused, no such database or role, a
    wrong password, a failed migration); the message names the URL without its password."""

    def __init__(self, url: URL, error: BaseException) -> None:
        reason = error.orig if isinstance(error, DBAPIError) and error.orig else error
        where = url.render_as_string(hide_password=True)
        super().__init__(f"cannot open the store at {where}: {reason}")


class TextTooLong(ValueError):
    """A text value is longer than its column holds (PostgreSQL enforces ``String(n)``)."""

    def __init__(self, table: str, column: str, length: int) -> None:
        super().__init__(f"{table}.{column} holds at most {length} characters")
        self.column = column
        self.length = length


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
    node_id: str | None = None  # None: the store's node_id, set on insert
    # Where the final status callback goes and the call's webhook parameters, for the
    # node that ends the call if its own is lost (control_api/cluster/node.py).
    final_callback: str | None = None
    final_callback_method: str | None = None
    callback_params: list[list[str]] | None = None


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
    claimed_by: str | None = None
    claimed_until: datetime | None = None


@dataclass(slots=True)
class OutboxOutcome:
    """How one delivery attempt of a claimed item ended: the columns to set."""

    id: int
    delivered_at: datetime | None = None
    abandoned_at: datetime | None = None
    attempts: int | None = None
    next_attempt_at: datetime | None = None
    last_error: str | None = None


class UsernameTaken(Exception):
    """The account has a SIP credential of that username already (usernames are unique
    per account; another account's are neither seen nor blocked)."""

    def __init__(self, username: str) -> None:
        super().__init__(f"the SIP username {username} is already in use")
        self.username = username


class CredentialListNameTaken(Exception):
    """The account has a credential list of that friendly name already."""

    def __init__(self, friendly_name: str) -> None:
        super().__init__(f"a credential list named {friendly_name} exists already")
        self.friendly_name = friendly_name


class NoSuchCredentialList(LookupError):
    """The account has no credential list with that SID."""


MAX_SIP_USERNAME = 32
MIN_SIP_PASSWORD = 12
# Accounts whose credential of one username a REGISTER's digest is tried against.
MAX_SAME_USERNAME = 100
_SIP_USERNAME = re.compile(r"[A-Za-z0-9._-]{1,%d}" % MAX_SIP_USERNAME)


def check_sip_username(username: str) -> str:
    """``username`` if it is 1 to 32 of ``A-Z a-z 0-9 . _ -``; else ValueError."""
    if _SIP_USERNAME.fullmatch(username) is None:
        raise ValueError(
            f"A SIP username has 1 to {MAX_SIP_USERNAME} characters of A-Z, a-z, 0-9, '.', '_' "
            "and '-'"
        )
    return username


def check_sip_password(password: str) -> str:
    """``password`` if it meets Twilio's rule for SIP credentials; else ValueError.

    At least 12 characters, with a digit, an upper case and a lower case letter.
    """
    if not (
        len(password) >= MIN_SIP_PASSWORD
        and any(ch.isdigit() for ch in password)
        and any(ch.isupper() for ch in password)
        and any(ch.islower() for ch in password)
    ):
        raise ValueError(
            f"A SIP password has at least {MIN_SIP_PASSWORD} characters, with at least one "
            "digit, one upper case and one lower case letter"
        )
    return password


@dataclass(slots=True)
class SipCredentialList:
    """A named set of SIP credentials (Twilio's SIP CredentialList)."""

    sid: str
    account_sid: str
    friendly_name: str
    date_created: datetime
    date_updated: datetime


@dataclass(slots=True)
class SipCredential:
    """A SIP username and the digest HA1s of its password (RFC 7616 §3.4.2), never the password."""

    sid: str
    credential_list_sid: str
    account_sid: str
    username: str
    ha1_md5: str
    ha1_sha256: str
    date_created: datetime
    date_updated: datetime


@dataclass
class RecordingRecord:
    """A recording as the REST API shows it; the call engine writes it as it records.

    ``file_path`` is the WAV file relative to the recordings directory.
    """

    sid: str
    account_sid: str
    call_sid: str | None = None
    conference_sid: str | None = None
    status: str = "in-progress"  # in-progress, processing, completed, absent, failed
    source: str = "RecordVerb"  # RecordVerb, DialVerb, OutboundAPI, Conference, ...
    channels: int = 1
    duration: int | None = None  # whole seconds; None while recording
    start_time: datetime | None = None
    price: str | None = None
    price_unit: str = "USD"
    error_code: int | None = None
    track: str = "both"
    file_path: str | None = None
    date_created: datetime | None = None  # None: set on insert
    date_updated: datetime | None = None  # None: set on insert and on every update


@dataclass
class ConferenceRecord:
    """A conference room; the call engine writes it as participants come and go."""

    sid: str
    account_sid: str
    friendly_name: str
    status: str = "init"  # init, in-progress, completed
    region: str = "us1"
    reason_conference_ended: str | None = None
    call_sid_ending_conference: str | None = None
    date_created: datetime | None = None  # None: set on insert
    date_updated: datetime | None = None  # None: set on insert and on every update


@dataclass
class ParticipantRecord:
    """One call in a conference, keyed by (conference_sid, call_sid)."""

    conference_sid: str
    call_sid: str
    account_sid: str
    label: str | None = None
    muted: bool = False
    hold: bool = False
    coaching: bool = False
    status: str = "connected"  # queued, connecting, ringing, connected, complete, failed
    start_conference_on_enter: bool = True
    end_conference_on_exit: bool = False
    date_created: datetime | None = None  # None: set on insert
    date_updated: datetime | None = None  # None: set on insert and on every update


_RECORDING_UPDATABLE = frozenset(f.name for f in fields(RecordingRecord)) - {
    "sid",
    "account_sid",
    "date_created",
}
_CONFERENCE_UPDATABLE = frozenset(f.name for f in fields(ConferenceRecord)) - {
    "sid",
    "account_sid",
    "date_created",
}
_PARTICIPANT_UPDATABLE = frozenset(f.name for f in fields(ParticipantRecord)) - {
    "conference_sid",
    "call_sid",
    "account_sid",
    "date_created",
}
LIVE_CONFERENCE_STATUSES = ("init", "in-progress")


# Compared against when the account does not exist, so that both cases take as long.
_NO_TOKEN = "0" * 32


class Store:
    """Persistent state of the control plane. Open with ``await Store.open(url)``.

    Every method is one transaction; methods that take an account SID only ever see
    that account's rows.
    """

    def __init__(self, db: Database) -> None:
        self.db = db
        # This process's --node-id: calls it inserts are stamped with it, so that when
        # the process is lost the calls it held can be found (control_api/cluster/).
        self.node_id: str | None = None
        # sid -> (when read, the account): verified credentials and signing keys.
        self._accounts: dict[str, tuple[float, Account]] = {}
        self._account_changes = 0  # counts forget_account calls

    @classmethod
    async def open(cls, url: str, *, pooled: bool = True) -> Store:
        """Connect to ``url`` and upgrade the schema to the newest migration.

        ``sqlite+aiosqlite:///path/callswitch.db`` (the directory is created; WAL
        journal and a busy timeout so that readers and the writer share the file) or
        ``postgresql://user:pass@host/db`` (asyncpg, a pool of connections). See
        ``engine.Database`` for how the work is run and for ``pooled``.
        """
        parsed = make_url(url)
        if parsed.get_backend_name() == "sqlite" and parsed.database not in (None, "", ":memory:"):
            Path(parsed.database).expanduser().parent.mkdir(parents=True, exist_ok=True)
        db = Database(parsed, pooled=pooled)
        try:
            await db.run(upgrade_to_head)
        except (DBAPIError, OSError) as exc:
            await db.dispose()
            raise StoreUnavailable(parsed, exc) from exc
        except BaseException:
            await db.dispose()
            raise
        return cls(db)

    async def close(self) -> None:
        await asyncio.to_thread(close_group, self.db)
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
        await self.db.run(
            lambda c: c.execute(insert(accounts).values(**_fit(accounts, _as_row(account))))
        )
        return account

    async def get_account(self, sid: str) -> Account | None:
        row = await self.db.run(
            lambda c: c.execute(select(accounts).where(accounts.c.sid == sid)).first()
        )
        return Account(**row._mapping) if row else None

    async def auth_token(self, sid: str) -> str | None:
        """The account's auth token (the key that signs its webhooks), or None; at most
        ``ACCOUNT_CACHE_S`` old."""
        account = await self._recent_account(sid)
        return account.auth_token if account is not None else None

    async def authenticate(self, sid: str, auth_token: str) -> Account | None:
        """The active account whose SID and auth token these are, or None.

        The token is compared in constant time, from a copy of the account at most
        ``ACCOUNT_CACHE_S`` old when the same credentials were verified that recently,
        else from the database. A wrong token is always checked against the database,
        so a guess takes as long for an account that exists as for one that does not.
        """
        hit = self._accounts.get(sid)
        if (
            hit is not None
            and time.monotonic() - hit[0] < ACCOUNT_CACHE_S
            and hmac.compare_digest(auth_token.encode(), hit[1].auth_token.encode())
        ):
            return hit[1] if hit[1].status == "active" else None
        changes = self._account_changes
        account = await self.get_account(sid)
        expected = account.auth_token if account is not None else _NO_TOKEN
        matches = hmac.compare_digest(auth_token.encode(), expected.encode())
        if account is None or not matches:
            return None
        self._remember(account, changes)
        return account if account.status == "active" else None

    async def update_account(
        self, sid: str, *, auth_token: str | None = None, status: str | None = None
    ) -> Account | None:
        """Rotate the auth token or change the status (``active``, ``suspended``,
        ``closed``); takes effect on this node at once (other nodes within
        ``ACCOUNT_CACHE_S``). The account after, or None if there is none."""
        values: dict[str, Any] = {"date_updated": utcnow()}
        if auth_token is not None:
            values["auth_token"] = auth_token
        if status is not None:
            if status not in ("active", "suspended", "closed"):
                raise ValueError(f"no account status {status!r}")
            values["status"] = status

        def work(c: Connection) -> Any:
            c.execute(
                update(accounts).where(accounts.c.sid == sid).values(**_fit(accounts, values))
            )
            return c.execute(select(accounts).where(accounts.c.sid == sid)).first()

        self.forget_account(sid)
        try:
            row = await self.db.run(work)
        finally:
            self.forget_account(sid)  # a copy read while the write ran must not stay
        return Account(**row._mapping) if row else None

    def forget_account(self, sid: str) -> None:
        """Drop the cached copy of an account (it is being changed)."""
        self._account_changes += 1
        self._accounts.pop(sid, None)

    async def _recent_account(self, sid: str) -> Account | None:
        hit = self._accounts.get(sid)
        if hit is not None and time.monotonic() - hit[0] < ACCOUNT_CACHE_S:
            return hit[1]
        changes = self._account_changes
        account = await self.get_account(sid)
        if account is not None:
            self._remember(account, changes)
        return account

    def _remember(self, account: Account, changes: int) -> None:
        if changes != self._account_changes:
            return  # an account changed while this copy was read: it may be the old one
        if len(self._accounts) >= MAX_CACHED_ACCOUNTS:
            self._accounts.clear()
        self._accounts[account.sid] = (time.monotonic(), account)

    async def ensure_account(self, sid: str, auth_token: str) -> Account:
        """Seed an account: create it if absent, else set its auth token."""
        self.forget_account(sid)

        def work(c: Connection) -> Any:
            c.execute(
                update(accounts)
                .where(accounts.c.sid == sid)
                .values(**_fit(accounts, {"auth_token": auth_token, "date_updated": utcnow()}))
            )
            return c.execute(select(accounts).where(accounts.c.sid == sid)).first()

        row = await self.db.run(work)
        self.forget_account(sid)
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
            await self.db.run(
                lambda c: c.execute(
                    insert(phone_numbers).values(**_fit(phone_numbers, _as_row(number)))
                )
            )
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

    async def find_numbers(self, phones: Iterable[str]) -> dict[str, PhoneNumber | None]:
        """``find_number`` for many numbers in one query: each given number (as given)
        to its PhoneNumber, or None."""
        wanted = {phone: normalize_e164(phone) for phone in phones}
        e164s = sorted({e for e in wanted.values() if e is not None})
        found: dict[str, PhoneNumber] = {}
        if e164s:
            query = select(phone_numbers).where(phone_numbers.c.phone_number.in_(e164s))
            rows = await self.db.run(lambda c: c.execute(query).all())
            found = {row.phone_number: PhoneNumber(**row._mapping) for row in rows}
        return {phone: found.get(e164) if e164 else None for phone, e164 in wanted.items()}

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
            c.execute(
                update(phone_numbers)
                .where(*where)
                .values(**_fit(phone_numbers, values), date_updated=utcnow())
            )
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
        record.node_id = record.node_id or self.node_id
        # Committed with the other calls' writes of the moment (control_api/store/group.py):
        # each call writes its record several times, many calls at once.
        await group_commit(self.db).insert(calls, _fit(calls, _call_row(vars(record))))
        return record

    async def update_call(self, sid: str, **fields: Any) -> bool:
        """Change ``fields`` (CallRecord attributes) of a call; False if there is no such
        call. ``date_updated`` is set to now unless given. Grouped like ``insert_call``.
        """
        unknown = set(fields) - _CALL_UPDATABLE
        if unknown:
            raise TypeError(f"update_call() cannot change {sorted(unknown)}")
        fields.setdefault("date_updated", utcnow())
        statement = update(calls).where(calls.c.sid == sid).values(**_fit(calls, _call_row(fields)))
        return await group_commit(self.db).run(lambda c: c.execute(statement).rowcount > 0)

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
            **_fit(
                webhook_outbox,
                outbox_row(
                    delivery_id=delivery_id,
                    account_sid=account_sid,
                    url=url,
                    method=method,
                    params=params,
                    call_sid=call_sid,
                    now=now,
                ),
            )
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

    async def claim_webhooks(
        self, claimant: str, now: datetime, lease_until: datetime, limit: int = 100
    ) -> list[OutboxItem]:
        """Claim up to ``limit`` due items for ``claimant`` until ``lease_until``, oldest
        first, and return them: items another node holds an unexpired claim on are not
        taken, so each item is delivered by one node at a time.

        On PostgreSQL the due rows are locked ``FOR UPDATE SKIP LOCKED``: two nodes
        claiming at once take different rows instead of waiting on each other. The
        UPDATE repeats the conditions, so a row another writer claimed between the
        select and the update stays theirs (SQLite's driver runs the select outside
        the transaction it opens for the update).
        """
        o = webhook_outbox.c
        unclaimed = (
            _pending(),
            o.next_attempt_at <= now,
            or_(o.claimed_until.is_(None), o.claimed_until <= now),
        )
        query = select(o.id).where(*unclaimed).order_by(o.next_attempt_at, o.id).limit(limit)

        def work(c: Connection) -> list[Any]:
            locked = query
            if c.dialect.name == "postgresql":
                locked = query.with_for_update(skip_locked=True)
            ids = list(c.execute(locked).scalars())
            if not ids:
                return []
            c.execute(
                update(webhook_outbox)
                .where(o.id.in_(ids), *unclaimed)
                .values(claimed_by=claimant, claimed_until=lease_until)
            )
            return c.execute(
                select(webhook_outbox)
                .where(o.id.in_(ids), o.claimed_by == claimant, o.claimed_until == lease_until)
                .order_by(o.next_attempt_at, o.id)
            ).all()

        return [_outbox_item(row) for row in await self.db.run(work)]

    async def release_claims(self, claimant: str) -> int:
        """Drop every claim ``claimant`` holds on pending items (a node starting again
        under its old name takes back what it held when it died); returns how many."""
        o = webhook_outbox.c
        statement = (
            update(webhook_outbox)
            .where(o.claimed_by == claimant, _pending())
            .values(claimed_by=None, claimed_until=None)
        )
        result = await self.db.run(lambda c: c.execute(statement))
        return result.rowcount

    async def record_outcomes(self, outcomes: Iterable[OutboxOutcome]) -> None:
        """Write how claimed items' attempts ended, all in one transaction; each item's
        claim is released."""
        rows = [_outcome_values(outcome) for outcome in outcomes]
        if rows:
            await self.db.run(lambda c: record_outcomes(c, rows))

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
        statement = (
            update(webhook_outbox)
            .where(webhook_outbox.c.id == id)
            .values(**_fit(webhook_outbox, values))
        )
        await self.db.run(lambda c: c.execute(statement))

    # SIP credential lists

    async def create_credential_list(
        self, account_sid: str, friendly_name: str
    ) -> SipCredentialList:
        """A new, empty list. Raises ``CredentialListNameTaken`` if the account has one of
        that name, ``ValueError`` for a name that is not 1 to 64 characters."""
        now = utcnow()
        credential_list = SipCredentialList(
            sid=new_sid("CL"),
            account_sid=account_sid,
            friendly_name=_friendly_name(friendly_name),
            date_created=now,
            date_updated=now,
        )
        statement = insert(sip_credential_lists).values(
            **_fit(sip_credential_lists, _as_row(credential_list))
        )
        try:
            await self.db.run(lambda c: c.execute(statement))
        except IntegrityError:
            if await self.list_credential_lists(account_sid, friendly_name=friendly_name):
                raise CredentialListNameTaken(friendly_name) from None
            raise
        return credential_list

    async def get_credential_list(self, account_sid: str, sid: str) -> SipCredentialList | None:
        query = select(sip_credential_lists).where(
            sip_credential_lists.c.account_sid == account_sid, sip_credential_lists.c.sid == sid
        )
        row = await self.db.run(lambda c: c.execute(query).first())
        return SipCredentialList(**row._mapping) if row else None

    async def list_credential_lists(
        self,
        account_sid: str,
        *,
        friendly_name: str | None = None,
        offset: int = 0,
        limit: int = 50,
    ) -> list[SipCredentialList]:
        """The account's lists, oldest first; ``friendly_name`` matches exactly."""
        t = sip_credential_lists.c
        query = select(sip_credential_lists).where(t.account_sid == account_sid)
        if friendly_name is not None:
            query = query.where(t.friendly_name == friendly_name)
        query = query.order_by(t.date_created, t.sid).offset(offset).limit(limit)
        rows = await self.db.run(lambda c: c.execute(query).all())
        return [SipCredentialList(**row._mapping) for row in rows]

    async def update_credential_list(
        self, account_sid: str, sid: str, friendly_name: str
    ) -> SipCredentialList | None:
        """Rename a list; None if the account has no such list. Raises as ``create``."""
        where = (
            sip_credential_lists.c.account_sid == account_sid,
            sip_credential_lists.c.sid == sid,
        )
        values = {"friendly_name": _friendly_name(friendly_name), "date_updated": utcnow()}

        def work(c: Connection) -> Any:
            c.execute(update(sip_credential_lists).where(*where).values(**values))
            return c.execute(select(sip_credential_lists).where(*where)).first()

        try:
            row = await self.db.run(work)
        except IntegrityError:
            raise CredentialListNameTaken(friendly_name) from None
        return SipCredentialList(**row._mapping) if row else None

    async def delete_credential_list(self, account_sid: str, sid: str) -> bool:
        """Delete a list and every credential in it."""
        where = (
            sip_credential_lists.c.account_sid == account_sid,
            sip_credential_lists.c.sid == sid,
        )

        def work(c: Connection) -> bool:
            # FOR UPDATE (PostgreSQL; SQLite has one writer anyway) waits for credentials
            # being added to the list, so that deleting them below sees them all.
            locked = select(sip_credential_lists.c.sid).where(*where).with_for_update()
            if c.execute(locked).first() is None:
                return False
            c.execute(sip_credentials.delete().where(sip_credentials.c.credential_list_sid == sid))
            return c.execute(sip_credential_lists.delete().where(*where)).rowcount > 0

        return await self.db.run(work)

    # SIP credentials

    async def create_sip_credential(
        self, account_sid: str, credential_list_sid: str, username: str, password: str
    ) -> SipCredential:
        """Add ``username`` to a list, keeping only the HA1s of ``password`` (realm
        ``SIP_REALM``). Raises ``ValueError`` (``check_sip_username``,
        ``check_sip_password``), ``NoSuchCredentialList``, or ``UsernameTaken`` if this
        account has the username already (other accounts' usernames do not matter)."""
        check_sip_username(username)
        check_sip_password(password)
        now = utcnow()
        credential = SipCredential(
            sid=new_sid("CR"),
            credential_list_sid=credential_list_sid,
            account_sid=account_sid,
            username=username,
            date_created=now,
            date_updated=now,
            **_ha1s(username, password),
        )
        list_where = (
            sip_credential_lists.c.account_sid == account_sid,
            sip_credential_lists.c.sid == credential_list_sid,
        )

        def work(c: Connection) -> bool:
            # FOR KEY SHARE: the list cannot be deleted between this check and the insert.
            locked = (
                select(sip_credential_lists.c.sid)
                .where(*list_where)
                .with_for_update(read=True, key_share=True)
            )
            if c.execute(locked).first() is None:
                return False
            c.execute(insert(sip_credentials).values(**_as_row(credential)))
            return True

        try:
            inserted = await self.db.run(work)
        except IntegrityError:
            if await self.find_sip_credential(username, account_sid) is not None:
                raise UsernameTaken(username) from None
            raise
        if not inserted:
            raise NoSuchCredentialList(credential_list_sid)
        return credential

    async def get_sip_credential(
        self, account_sid: str, credential_list_sid: str, sid: str
    ) -> SipCredential | None:
        query = select(sip_credentials).where(
            *_credential_where(account_sid, credential_list_sid, sid)
        )
        row = await self.db.run(lambda c: c.execute(query).first())
        return SipCredential(**row._mapping) if row else None

    async def list_sip_credentials(
        self, account_sid: str, credential_list_sid: str, *, offset: int = 0, limit: int = 50
    ) -> list[SipCredential]:
        """The list's credentials, oldest first."""
        t = sip_credentials.c
        query = (
            select(sip_credentials)
            .where(t.account_sid == account_sid, t.credential_list_sid == credential_list_sid)
            .order_by(t.date_created, t.sid)
            .offset(offset)
            .limit(limit)
        )
        rows = await self.db.run(lambda c: c.execute(query).all())
        return [SipCredential(**row._mapping) for row in rows]

    async def update_sip_credential(
        self, account_sid: str, credential_list_sid: str, sid: str, password: str
    ) -> SipCredential | None:
        """Set a new password (its HA1s); None if there is no such credential."""
        check_sip_password(password)
        where = _credential_where(account_sid, credential_list_sid, sid)

        def work(c: Connection) -> Any:
            row = c.execute(select(sip_credentials.c.username).where(*where)).first()
            if row is None:
                return None
            values = _ha1s(row.username, password)
            c.execute(update(sip_credentials).where(*where).values(**values, date_updated=utcnow()))
            return c.execute(select(sip_credentials).where(*where)).first()

        row = await self.db.run(work)
        return SipCredential(**row._mapping) if row else None

    async def delete_sip_credential(
        self, account_sid: str, credential_list_sid: str, sid: str
    ) -> bool:
        statement = sip_credentials.delete().where(
            *_credential_where(account_sid, credential_list_sid, sid)
        )
        result = await self.db.run(lambda c: c.execute(statement))
        return result.rowcount > 0

    async def find_sip_credential(
        self, username: str, account_sid: str | None = None
    ) -> SipCredential | None:
        """The credential of ``username`` in ``account_sid`` (or the oldest in any account)."""
        t = sip_credentials.c
        query = select(sip_credentials).where(t.username == username)
        if account_sid is not None:
            query = query.where(t.account_sid == account_sid)
        query = query.order_by(t.date_created, t.sid).limit(1)
        row = await self.db.run(lambda c: c.execute(query).first())
        return SipCredential(**row._mapping) if row else None

    async def find_sip_credentials(
        self, username: str, *, limit: int = MAX_SAME_USERNAME
    ) -> list[SipCredential]:
        """Every account's credential of ``username``, oldest first (for the registrar,
        which tries each one's digest: the one that verifies is the caller's)."""
        t = sip_credentials.c
        query = (
            select(sip_credentials)
            .where(t.username == username)
            .order_by(t.date_created, t.sid)
            .limit(limit)
        )
        rows = await self.db.run(lambda c: c.execute(query).all())
        return [SipCredential(**row._mapping) for row in rows]

    async def delete_sip_credential_by_username(
        self, username: str, account_sid: str | None = None
    ) -> int:
        """Remove the credentials of ``username`` (in ``account_sid``, else in every
        account); returns how many went."""
        t = sip_credentials.c
        statement = sip_credentials.delete().where(t.username == username)
        if account_sid is not None:
            statement = statement.where(t.account_sid == account_sid)
        result = await self.db.run(lambda c: c.execute(statement))
        return result.rowcount

    # Recordings

    async def insert_recording(self, record: RecordingRecord) -> RecordingRecord:
        """Store a new recording; fills in ``date_created``/``date_updated`` if they are None."""
        record.date_created = record.date_created or utcnow()
        record.date_updated = record.date_updated or record.date_created
        statement = insert(recordings).values(**_fit(recordings, vars(record)))
        await self.db.run(lambda c: c.execute(statement))
        return record

    async def update_recording(self, sid: str, **fields: Any) -> RecordingRecord | None:
        """Change ``fields`` (RecordingRecord attributes); None if there is no such recording.

        ``date_updated`` is set to now unless given.
        """
        row = await self._update_row(
            recordings, _RECORDING_UPDATABLE, "update_recording", fields, recordings.c.sid == sid
        )
        return RecordingRecord(**row._mapping) if row else None

    async def get_recording(self, account_sid: str, sid: str) -> RecordingRecord | None:
        query = select(recordings).where(
            recordings.c.account_sid == account_sid, recordings.c.sid == sid
        )
        row = await self.db.run(lambda c: c.execute(query).first())
        return RecordingRecord(**row._mapping) if row else None

    async def list_recordings(
        self,
        account_sid: str,
        *,
        call_sid: str | None = None,
        conference_sid: str | None = None,
        date_created_after: datetime | None = None,
        date_created_before: datetime | None = None,
        offset: int = 0,
        limit: int = 50,
    ) -> list[RecordingRecord]:
        """The account's recordings, newest first; ``after`` inclusive, ``before`` exclusive."""
        t = recordings.c
        conditions = [t.account_sid == account_sid]
        if call_sid is not None:
            conditions.append(t.call_sid == call_sid)
        if conference_sid is not None:
            conditions.append(t.conference_sid == conference_sid)
        conditions += _time_range(t.date_created, date_created_after, date_created_before)
        query = (
            select(recordings)
            .where(*conditions)
            .order_by(t.date_created.desc(), t.sid.desc())
            .offset(offset)
            .limit(limit)
        )
        rows = await self.db.run(lambda c: c.execute(query).all())
        return [RecordingRecord(**row._mapping) for row in rows]

    async def delete_recording(self, account_sid: str, sid: str) -> bool:
        """Delete the row only; the caller removes the file."""
        statement = recordings.delete().where(
            recordings.c.account_sid == account_sid, recordings.c.sid == sid
        )
        result = await self.db.run(lambda c: c.execute(statement))
        return result.rowcount > 0

    # Conferences

    async def insert_conference(self, record: ConferenceRecord) -> ConferenceRecord:
        """Store a new conference; fills in ``date_created``/``date_updated`` if None."""
        record.date_created = record.date_created or utcnow()
        record.date_updated = record.date_updated or record.date_created
        statement = insert(conferences).values(**_fit(conferences, vars(record)))
        await self.db.run(lambda c: c.execute(statement))
        return record

    async def create_conference(
        self, account_sid: str, friendly_name: str, *, status: str = "init"
    ) -> ConferenceRecord:
        """A new conference with a fresh CF SID."""
        record = ConferenceRecord(
            sid=new_sid("CF"), account_sid=account_sid, friendly_name=friendly_name, status=status
        )
        return await self.insert_conference(record)

    async def update_conference(self, sid: str, **fields: Any) -> ConferenceRecord | None:
        """Change ``fields`` (ConferenceRecord attributes); None if there is no such conference.

        ``date_updated`` is set to now unless given.
        """
        row = await self._update_row(
            conferences,
            _CONFERENCE_UPDATABLE,
            "update_conference",
            fields,
            conferences.c.sid == sid,
        )
        return ConferenceRecord(**row._mapping) if row else None

    async def get_conference(self, account_sid: str, sid: str) -> ConferenceRecord | None:
        query = select(conferences).where(
            conferences.c.account_sid == account_sid, conferences.c.sid == sid
        )
        row = await self.db.run(lambda c: c.execute(query).first())
        return ConferenceRecord(**row._mapping) if row else None

    async def find_live_conference(
        self, account_sid: str, friendly_name: str
    ) -> ConferenceRecord | None:
        """The account's conference of that name that has not ended (init or in-progress)."""
        t = conferences.c
        query = (
            select(conferences)
            .where(
                t.account_sid == account_sid,
                t.friendly_name == friendly_name,
                t.status.in_(LIVE_CONFERENCE_STATUSES),
            )
            .order_by(t.date_created.desc(), t.sid.desc())
            .limit(1)
        )
        row = await self.db.run(lambda c: c.execute(query).first())
        return ConferenceRecord(**row._mapping) if row else None

    async def list_conferences(
        self,
        account_sid: str,
        *,
        friendly_name: str | None = None,
        status: str | None = None,
        date_created_after: datetime | None = None,
        date_created_before: datetime | None = None,
        date_updated_after: datetime | None = None,
        date_updated_before: datetime | None = None,
        offset: int = 0,
        limit: int = 50,
    ) -> list[ConferenceRecord]:
        """The account's conferences, newest first; ``after`` inclusive, ``before`` exclusive."""
        t = conferences.c
        conditions = [t.account_sid == account_sid]
        if friendly_name is not None:
            conditions.append(t.friendly_name == friendly_name)
        if status is not None:
            conditions.append(t.status == status)
        conditions += _time_range(t.date_created, date_created_after, date_created_before)
        conditions += _time_range(t.date_updated, date_updated_after, date_updated_before)
        query = (
            select(conferences)
            .where(*conditions)
            .order_by(t.date_created.desc(), t.sid.desc())
            .offset(offset)
            .limit(limit)
        )
        rows = await self.db.run(lambda c: c.execute(query).all())
        return [ConferenceRecord(**row._mapping) for row in rows]

    # Conference participants

    async def insert_participant(self, record: ParticipantRecord) -> ParticipantRecord:
        """Store a call joining a conference; fills in the dates if they are None."""
        record.date_created = record.date_created or utcnow()
        record.date_updated = record.date_updated or record.date_created
        statement = insert(conference_participants).values(
            **_fit(conference_participants, vars(record))
        )
        await self.db.run(lambda c: c.execute(statement))
        return record

    async def update_participant(
        self, conference_sid: str, call_sid: str, **fields: Any
    ) -> ParticipantRecord | None:
        """Change ``fields`` (ParticipantRecord attributes); None if there is no such row.

        ``date_updated`` is set to now unless given.
        """
        t = conference_participants.c
        row = await self._update_row(
            conference_participants,
            _PARTICIPANT_UPDATABLE,
            "update_participant",
            fields,
            and_(t.conference_sid == conference_sid, t.call_sid == call_sid),
        )
        return ParticipantRecord(**row._mapping) if row else None

    async def get_participant(
        self, account_sid: str, conference_sid: str, call_sid: str
    ) -> ParticipantRecord | None:
        t = conference_participants.c
        query = select(conference_participants).where(
            t.account_sid == account_sid, t.conference_sid == conference_sid, t.call_sid == call_sid
        )
        row = await self.db.run(lambda c: c.execute(query).first())
        return ParticipantRecord(**row._mapping) if row else None

    async def list_participants(
        self,
        account_sid: str,
        conference_sid: str,
        *,
        muted: bool | None = None,
        hold: bool | None = None,
        coaching: bool | None = None,
        status: str | None = None,
        offset: int = 0,
        limit: int = 50,
    ) -> list[ParticipantRecord]:
        """The conference's participants, in the order they joined."""
        t = conference_participants.c
        conditions = [t.account_sid == account_sid, t.conference_sid == conference_sid]
        for column, value in (
            (t.muted, muted),
            (t.hold, hold),
            (t.coaching, coaching),
            (t.status, status),
        ):
            if value is not None:
                conditions.append(column == value)
        query = (
            select(conference_participants)
            .where(*conditions)
            .order_by(t.date_created, t.call_sid)
            .offset(offset)
            .limit(limit)
        )
        rows = await self.db.run(lambda c: c.execute(query).all())
        return [ParticipantRecord(**row._mapping) for row in rows]

    async def delete_participant(self, conference_sid: str, call_sid: str) -> bool:
        t = conference_participants.c
        statement = conference_participants.delete().where(
            t.conference_sid == conference_sid, t.call_sid == call_sid
        )
        result = await self.db.run(lambda c: c.execute(statement))
        return result.rowcount > 0

    async def _update_row(
        self, table, updatable: frozenset[str], name: str, fields: dict[str, Any], where
    ) -> Any:
        """Update one row of ``table`` matched by ``where``; the row after, or None."""
        unknown = set(fields) - updatable
        if unknown:
            raise TypeError(f"{name}() cannot change {sorted(unknown)}")
        fields.setdefault("date_updated", utcnow())

        def work(c: Connection) -> Any:
            c.execute(update(table).where(where).values(**_fit(table, fields)))
            return c.execute(select(table).where(where)).first()

        return await self.db.run(work)


# The declared length of each bounded text column, by table.
_LENGTHS: dict[Table, dict[str, int]] = {
    table: {
        column.name: column.type.length
        for column in table.c
        if isinstance(column.type, String) and column.type.length
    }
    for table in metadata.tables.values()
}


def _fit(table: Table, values: dict[str, Any]) -> dict[str, Any]:
    """``values`` if every text fits its column, else ``TextTooLong``: PostgreSQL refuses
    a longer value where SQLite would keep it, and the two must answer alike."""
    lengths = _LENGTHS[table]
    for name, value in values.items():
        limit = lengths.get(name)
        if limit is not None and isinstance(value, str) and len(value) > limit:
            raise TextTooLong(table.name, name, limit)
    return values


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


def _outcome_values(outcome: OutboxOutcome) -> dict[str, Any]:
    values = {f.name: getattr(outcome, f.name) for f in fields(outcome)}
    return {name: value for name, value in values.items() if value is not None}


def record_outcomes(c: Connection, rows: list[dict[str, Any]]) -> None:
    """Attempt outcomes (from ``_outcome_values``) inside the caller's transaction, each
    releasing its item's claim: one executemany per kind of outcome."""
    o = webhook_outbox.c
    kinds: dict[tuple[str, ...], list[dict[str, Any]]] = {}
    for values in rows:
        names = tuple(sorted(name for name in values if name != "id"))
        kinds.setdefault(names, []).append(
            {"item_id": values["id"], **{f"new_{n}": values[n] for n in names}}
        )
    for names, params in kinds.items():
        statement = (
            update(webhook_outbox)
            .where(o.id == bindparam("item_id"))
            .values(
                claimed_by=None,
                claimed_until=None,
                **{name: bindparam(f"new_{name}") for name in names},
            )
        )
        c.execute(statement, params)


def _outbox_item(row) -> OutboxItem:
    values = dict(row._mapping)
    values["params"] = [(str(name), str(value)) for name, value in values["params"]]
    return OutboxItem(**values)


def _ha1s(username: str, password: str) -> dict[str, str]:
    return {
        "ha1_md5": ha1(username, SIP_REALM, password, "MD5"),
        "ha1_sha256": ha1(username, SIP_REALM, password, "SHA-256"),
    }


def _credential_where(account_sid: str, credential_list_sid: str, sid: str) -> tuple:
    t = sip_credentials.c
    return (
        t.account_sid == account_sid,
        t.credential_list_sid == credential_list_sid,
        t.sid == sid,
    )


def _time_range(column, after: datetime | None, before: datetime | None) -> list:
    conditions = []
    if after is not None:
        conditions.append(column >= after)
    if before is not None:
        conditions.append(column < before)
    return conditions
