"""Accounts: who may use the REST API, with the auth token that signs their webhooks."""

from __future__ import annotations

import hmac
import secrets
import time
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import insert, select
from sqlalchemy.exc import IntegrityError

from control_api.sids import new_sid, utcnow
from control_api.store.engine import Database
from control_api.store.rows import Rows, as_row, fit, friendly_name, reader
from control_api.store.schema import accounts

__all__ = ["ACCOUNT_CACHE_S", "ACCOUNT_STATUSES", "Account", "AccountStore"]

# How long a verified account (and its token) is used without asking the database: the
# bound on how late a token rotated or an account suspended by another process (the
# CLI, another node) stops working here. Changes made through this store apply at once.
ACCOUNT_CACHE_S = 2.0
MAX_CACHED_ACCOUNTS = 10_000
ACCOUNT_STATUSES = ("active", "suspended", "closed")

# Compared against when the account does not exist, so that both cases take as long.
_NO_TOKEN = "0" * 32


@dataclass(slots=True)
class Account:
    sid: str
    friendly_name: str
    auth_token: str
    status: str
    date_created: datetime
    date_updated: datetime


_account = reader(Account)


class AccountStore:
    """The accounts, and a short-lived copy of those verified lately."""

    def __init__(self, db: Database) -> None:
        self.rows = Rows(db, accounts, _account)
        # sid -> (when read, the account): verified credentials and signing keys.
        self._cache: dict[str, tuple[float, Account]] = {}
        self._changes = 0  # counts forget calls

    async def create(
        self,
        name: str | None = None,
        *,
        sid: str | None = None,
        auth_token: str | None = None,
    ) -> Account:
        """A new active account; the SID and a 32-hex-digit auth token are made up if not given."""
        now = utcnow()
        account = Account(
            sid=sid or new_sid("AC"),
            friendly_name=friendly_name(name or "callswitch account"),
            auth_token=auth_token or secrets.token_hex(16),
            status="active",
            date_created=now,
            date_updated=now,
        )
        statement = insert(accounts).values(**fit(accounts, as_row(account)))
        await self.rows.run(lambda c: c.execute(statement))
        return account

    async def get(self, sid: str) -> Account | None:
        return await self.rows.one(accounts.c.sid == sid)

    async def all(self) -> list[Account]:
        return await self.rows.all(
            select(accounts).order_by(accounts.c.date_created, accounts.c.sid)
        )

    async def auth_token(self, sid: str) -> str | None:
        """The account's auth token (the key that signs its webhooks), or None; at most
        ``ACCOUNT_CACHE_S`` old."""
        account = await self._recent(sid)
        return account.auth_token if account is not None else None

    async def authenticate(self, sid: str, auth_token: str) -> Account | None:
        """The active account whose SID and auth token these are, or None.

        The token is compared in constant time, from a copy of the account at most
        ``ACCOUNT_CACHE_S`` old when the same credentials were verified that recently,
        else from the database. A wrong token is always checked against the database,
        so a guess takes as long for an account that exists as for one that does not.
        """
        hit = self._cache.get(sid)
        if (
            hit is not None
            and time.monotonic() - hit[0] < ACCOUNT_CACHE_S
            and hmac.compare_digest(auth_token.encode(), hit[1].auth_token.encode())
        ):
            return hit[1] if hit[1].status == "active" else None
        changes = self._changes
        account = await self.get(sid)
        expected = account.auth_token if account is not None else _NO_TOKEN
        matches = hmac.compare_digest(auth_token.encode(), expected.encode())
        if account is None or not matches:
            return None
        self._remember(account, changes)
        return account if account.status == "active" else None

    async def update(
        self,
        sid: str,
        *,
        auth_token: str | None = None,
        status: str | None = None,
        name: str | None = None,
    ) -> Account | None:
        """Rotate the auth token, change the status (``active``, ``suspended``,
        ``closed``) or rename (1 to 64 characters); takes effect on this node at once
        (other nodes within ``ACCOUNT_CACHE_S``). The account after, or None if there
        is none."""
        values: dict[str, Any] = {"date_updated": utcnow()}
        if name is not None:
            values["friendly_name"] = friendly_name(name)
        if auth_token is not None:
            values["auth_token"] = auth_token
        if status is not None:
            if status not in ACCOUNT_STATUSES:
                raise ValueError(f"no account status {status!r}")
            values["status"] = status
        self.forget(sid)
        try:
            return await self.rows.update_one([accounts.c.sid == sid], fit(accounts, values))
        finally:
            self.forget(sid)  # a copy read while the write ran must not stay

    async def ensure(self, sid: str, auth_token: str) -> Account:
        """Seed an account: create it if absent, else set its auth token."""
        self.forget(sid)
        values = fit(accounts, {"auth_token": auth_token, "date_updated": utcnow()})
        account = await self.rows.update_one([accounts.c.sid == sid], values)
        self.forget(sid)
        if account is not None:
            return account
        try:
            return await self.create(sid=sid, auth_token=auth_token)
        except IntegrityError:  # another node seeded it meanwhile
            return await self.ensure(sid, auth_token)

    def forget(self, sid: str) -> None:
        """Drop the cached copy of an account (it is being changed)."""
        self._changes += 1
        self._cache.pop(sid, None)

    async def _recent(self, sid: str) -> Account | None:
        hit = self._cache.get(sid)
        if hit is not None and time.monotonic() - hit[0] < ACCOUNT_CACHE_S:
            return hit[1]
        changes = self._changes
        account = await self.get(sid)
        if account is not None:
            self._remember(account, changes)
        return account

    def _remember(self, account: Account, changes: int) -> None:
        if changes != self._changes:
            return  # an account changed while this copy was read: it may be the old one
        if len(self._cache) >= MAX_CACHED_ACCOUNTS:
            self._cache.clear()
        self._cache[account.sid] = (time.monotonic(), account)
