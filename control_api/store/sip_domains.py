"""SIP domains (SD…): a host name of the node whose INVITEs run the domain's voice_url.

Domain names are unique on the node (an INVITE's Request-URI host picks one domain),
kept in lower case. Deleting a domain deletes its list mappings.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import insert, select
from sqlalchemy.engine import Connection
from sqlalchemy.exc import IntegrityError

from control_api.store.engine import Database
from control_api.store.rows import Listing, Owned, Rows, as_row, created, fit, reader
from control_api.store.schema import sip_domain_mappings, sip_domains

__all__ = [
    "SIP_DOMAIN_FIELDS",
    "DomainNameTaken",
    "SipDomain",
    "SipDomainStore",
    "check_domain_name",
]

MAX_DOMAIN_NAME = 253
_LABEL = re.compile(r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?")


class DomainNameTaken(Exception):
    """Some account (this one or another) has a domain of that name already."""

    def __init__(self, domain_name: str) -> None:
        super().__init__(f"the domain name {domain_name} is already in use")
        self.domain_name = domain_name


def check_domain_name(name: str) -> str:
    """``name`` in lower case if it is a host name of at least two labels of letters,
    digits and '-' (not an IP address); else ValueError."""
    lowered = name.lower()
    labels = lowered.split(".")
    if (
        len(lowered) > MAX_DOMAIN_NAME
        or len(labels) < 2
        or not all(_LABEL.fullmatch(label) for label in labels)
        or labels[-1].isdigit()
    ):
        raise ValueError(
            "A DomainName is a host name of at least two labels of letters, digits and '-'"
        )
    return lowered


@dataclass(slots=True)
class SipDomain:
    """A SIP domain (Twilio's SipDomain)."""

    sid: str
    account_sid: str
    friendly_name: str | None
    domain_name: str
    voice_url: str | None
    voice_method: str
    voice_fallback_url: str | None
    voice_fallback_method: str
    voice_status_callback_url: str | None
    voice_status_callback_method: str
    sip_registration: bool
    emergency_calling_enabled: bool
    secure: bool
    byoc_trunk_sid: str | None
    emergency_caller_sid: str | None
    date_created: datetime
    date_updated: datetime

    @property
    def status_callback(self) -> str | None:
        """Where its calls' status callbacks go, named as a number's and an application's."""
        return self.voice_status_callback_url

    @property
    def status_callback_method(self) -> str:
        return self.voice_status_callback_method


# What create and update take, with the defaults of create.
_DEFAULTS: dict[str, Any] = {
    "friendly_name": None,
    "voice_url": None,
    "voice_method": "POST",
    "voice_fallback_url": None,
    "voice_fallback_method": "POST",
    "voice_status_callback_url": None,
    "voice_status_callback_method": "POST",
    "sip_registration": False,
    "emergency_calling_enabled": False,
    "secure": False,
    "byoc_trunk_sid": None,
    "emergency_caller_sid": None,
}
SIP_DOMAIN_FIELDS = frozenset({*_DEFAULTS, "domain_name"})

_OLDEST_FIRST = Listing(order_by=(sip_domains.c.date_created, sip_domains.c.sid))


_domain = reader(SipDomain)


class SipDomainStore(Owned[SipDomain]):
    """The accounts' SIP domains, oldest first."""

    listing = _OLDEST_FIRST

    def __init__(self, db: Database) -> None:
        self.rows = Rows(db, sip_domains, _domain)

    async def create(self, account_sid: str, domain_name: str, **fields: Any) -> SipDomain:
        """A new domain. Raises ``ValueError`` (``check_domain_name``), ``TypeError`` for a
        field not in ``SIP_DOMAIN_FIELDS``, ``DomainNameTaken``."""
        _check_fields(fields)
        domain = created(
            SipDomain,
            "SD",
            account_sid=account_sid,
            domain_name=check_domain_name(domain_name),
            **{**_DEFAULTS, **fields},
        )
        statement = insert(sip_domains).values(**fit(sip_domains, as_row(domain)))
        try:
            await self.rows.run(lambda c: c.execute(statement))
        except IntegrityError:
            if await self.find(domain.domain_name) is not None:
                raise DomainNameTaken(domain.domain_name) from None
            raise
        return domain

    async def update(self, account_sid: str, sid: str, **fields: Any) -> SipDomain | None:
        """Change ``fields``; None if the account has no such domain. Raises as ``create``."""
        _check_fields(fields)
        if "domain_name" in fields:
            fields["domain_name"] = check_domain_name(fields["domain_name"])
        try:
            return await self.rows.change(
                "update", SIP_DOMAIN_FIELDS, fields, *self.owned(account_sid, sid)
            )
        except IntegrityError:
            raise DomainNameTaken(fields.get("domain_name", "")) from None

    async def delete(self, account_sid: str, sid: str) -> bool:
        """Delete a domain and its list mappings."""
        where = self.owned(account_sid, sid)

        def work(c: Connection) -> bool:
            mappings = sip_domain_mappings.c
            c.execute(
                sip_domain_mappings.delete().where(
                    mappings.domain_sid == sid, mappings.account_sid == account_sid
                )
            )
            deleted: bool = c.execute(sip_domains.delete().where(*where)).rowcount > 0
            return deleted

        deleted: bool = await self.rows.run(work)
        return deleted

    async def names(self) -> frozenset[str]:
        """Every domain's name (the node's: all accounts')."""
        query = select(sip_domains.c.domain_name)
        names = await self.rows.run(lambda c: c.execute(query).scalars().all())
        return frozenset(names)

    async def find(self, domain_name: str) -> SipDomain | None:
        """The domain of that name (any account's; the name in any case), or None."""
        return await self.rows.one(sip_domains.c.domain_name == domain_name.lower())


def _check_fields(fields: dict[str, Any]) -> None:
    unknown = set(fields) - SIP_DOMAIN_FIELDS
    if unknown:
        raise TypeError(f"no SIP domain field {sorted(unknown)}")
