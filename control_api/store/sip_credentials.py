"""SIP credential lists and their credentials: the usernames (unique per account) and
the digest HA1s of their passwords that the registrar checks REGISTERs against."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import insert, select, update
from sqlalchemy.engine import Connection
from sqlalchemy.exc import IntegrityError

from control_api.sids import utcnow
from control_api.sip_realm import SIP_REALM
from control_api.store.engine import Database
from control_api.store.lists import Entries, Lists, NamedList, insert_in_list
from control_api.store.rows import (
    Listing,
    Rows,
    as_row,
    created,
    fit,
    friendly_name,
    reader,
)
from control_api.store.schema import sip_credential_lists, sip_credentials
from sip.auth import ha1

__all__ = [
    "MAX_SAME_USERNAME",
    "CredentialListNameTaken",
    "CredentialListStore",
    "NoSuchCredentialList",
    "SipCredential",
    "SipCredentialList",
    "SipCredentialStore",
    "UsernameTaken",
    "check_sip_password",
    "check_sip_username",
]

MAX_SIP_USERNAME = 32
MIN_SIP_PASSWORD = 12
# Accounts whose credential of one username a REGISTER's digest is tried against.
MAX_SAME_USERNAME = 100
_SIP_USERNAME = re.compile(r"[A-Za-z0-9._-]{1,%d}" % MAX_SIP_USERNAME)


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
class SipCredentialList(NamedList):
    """A named set of SIP credentials (Twilio's SIP CredentialList)."""


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


_credential_list = reader(SipCredentialList)


_credential = reader(SipCredential)


_BY_NAME = Listing(
    order_by=(sip_credential_lists.c.date_created, sip_credential_lists.c.sid),
    equal={"friendly_name": sip_credential_lists.c.friendly_name},
)


class CredentialListStore(Lists[SipCredentialList]):
    """The accounts' SIP credential lists, oldest first, each with its credentials;
    ``page`` filters: friendly_name."""

    entry_table = sip_credentials
    entry_column = "credential_list_sid"

    listing = _BY_NAME

    def __init__(self, db: Database) -> None:
        self.rows = Rows(db, sip_credential_lists, _credential_list)

    async def create(self, account_sid: str, name: str) -> SipCredentialList:
        """A new, empty list. Raises ``CredentialListNameTaken`` if the account has one of
        that name, ``ValueError`` for a name that is not 1 to 64 characters."""
        credential_list = created(
            SipCredentialList, "CL", account_sid=account_sid, friendly_name=friendly_name(name)
        )
        statement = insert(sip_credential_lists).values(
            **fit(sip_credential_lists, as_row(credential_list))
        )
        try:
            await self.rows.run(lambda c: c.execute(statement))
        except IntegrityError:
            if await self.page(account_sid, friendly_name=name):
                raise CredentialListNameTaken(name) from None
            raise
        return credential_list

    async def update(self, account_sid: str, sid: str, name: str) -> SipCredentialList | None:
        """Rename a list; None if the account has no such list. Raises as ``create``."""
        values = {"friendly_name": friendly_name(name), "date_updated": utcnow()}
        try:
            return await self.rows.update_one(self.owned(account_sid, sid), values)
        except IntegrityError:
            raise CredentialListNameTaken(name) from None


class SipCredentialStore(Entries[SipCredential]):
    """The SIP credentials in the accounts' lists."""

    list_column = CredentialListStore.entry_column

    def __init__(self, db: Database) -> None:
        self.rows = Rows(db, sip_credentials, _credential)

    async def create(
        self, account_sid: str, credential_list_sid: str, username: str, password: str
    ) -> SipCredential:
        """Add ``username`` to a list, keeping only the HA1s of ``password`` (realm
        ``SIP_REALM``). Raises ``ValueError`` (``check_sip_username``,
        ``check_sip_password``), ``NoSuchCredentialList``, or ``UsernameTaken`` if this
        account has the username already (other accounts' usernames do not matter)."""
        check_sip_username(username)
        check_sip_password(password)
        credential = created(
            SipCredential,
            "CR",
            credential_list_sid=credential_list_sid,
            account_sid=account_sid,
            username=username,
            **_ha1s(username, password),
        )
        work = insert_in_list(
            sip_credential_lists,
            account_sid,
            credential_list_sid,
            sip_credentials,
            as_row(credential),
        )
        try:
            inserted = await self.rows.run(work)
        except IntegrityError:
            if await self.find(username, account_sid) is not None:
                raise UsernameTaken(username) from None
            raise
        if not inserted:
            raise NoSuchCredentialList(credential_list_sid)
        return credential

    async def update(
        self, account_sid: str, credential_list_sid: str, sid: str, password: str
    ) -> SipCredential | None:
        """Set a new password (its HA1s); None if there is no such credential."""
        check_sip_password(password)
        where = self.within(account_sid, credential_list_sid, sid)

        def work(c: Connection) -> Any:
            row = c.execute(select(sip_credentials.c.username).where(*where)).first()
            if row is None:
                return None
            values = _ha1s(row.username, password)
            c.execute(update(sip_credentials).where(*where).values(**values, date_updated=utcnow()))
            return c.execute(select(sip_credentials).where(*where)).first()

        row = await self.rows.run(work)
        return _credential(row) if row else None

    async def find(self, username: str, account_sid: str | None = None) -> SipCredential | None:
        """The credential of ``username`` in ``account_sid`` (or the oldest in any account)."""
        t = sip_credentials.c
        query = select(sip_credentials).where(t.username == username)
        if account_sid is not None:
            query = query.where(t.account_sid == account_sid)
        return await self.rows.first(query.order_by(t.date_created, t.sid).limit(1))

    async def find_all(
        self, username: str, *, limit: int = MAX_SAME_USERNAME
    ) -> list[SipCredential]:
        """Every account's credential of ``username``, oldest first (for the registrar,
        which tries each one's digest: the one that verifies is the caller's)."""
        t = sip_credentials.c
        return await self.rows.page([t.username == username], (t.date_created, t.sid), 0, limit)

    async def delete_username(self, username: str, account_sid: str | None = None) -> int:
        """Remove the credentials of ``username`` (in ``account_sid``, else in every
        account); returns how many went."""
        t = sip_credentials.c
        where = [t.username == username]
        if account_sid is not None:
            where.append(t.account_sid == account_sid)
        return await self.rows.delete(*where)


def _ha1s(username: str, password: str) -> dict[str, str]:
    return {
        "ha1_md5": ha1(username, SIP_REALM, password, "MD5"),
        "ha1_sha256": ha1(username, SIP_REALM, password, "SHA-256"),
    }
