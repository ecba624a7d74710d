"""The lists mapped to SIP domains, and what they admit.

A mapping puts a credential list (CL…) or an IP access control list (AL…) on a domain
for one purpose (its ``kind``): ``calls`` (Auth/Calls: who may call the domain),
``registrations`` (Auth/Registrations: who may register to it), or ``domain`` (the
legacy Domains/{SD}/CredentialListMappings and IpAccessControlListMappings, which
admit calls too). A mapping is named by the mapped list's SID, as Twilio names it,
and shows the list's friendly name; a list deleted later drops out of its mappings.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Table, insert, select
from sqlalchemy.engine import Connection
from sqlalchemy.exc import IntegrityError

from control_api.sids import utcnow
from control_api.store.engine import Database
from control_api.store.rows import reader
from control_api.store.schema import (
    sip_credential_lists,
    sip_credentials,
    sip_domain_mappings,
    sip_domains,
    sip_ip_access_control_lists,
    sip_ip_addresses,
)
from control_api.store.sip_credentials import SipCredential

__all__ = [
    "CALL_KINDS",
    "KINDS",
    "DomainMapping",
    "DomainMappingStore",
    "MappingExists",
    "NoSuchMappedList",
]

KINDS = frozenset({"calls", "registrations", "domain"})
CALL_KINDS = ("calls", "domain")  # the mappings that admit INVITEs
_LISTS: dict[str, Table] = {"CL": sip_credential_lists, "AL": sip_ip_access_control_lists}
MAX_NETWORKS = 10_000  # addresses one domain's calls check against


class NoSuchMappedList(LookupError):
    """The domain, or the list to map, is not the account's."""


class MappingExists(Exception):
    """The list is mapped to the domain for that purpose already."""


@dataclass(slots=True)
class DomainMapping:
    """A list mapped to a domain: the list's SID and friendly name."""

    sid: str
    domain_sid: str
    account_sid: str
    kind: str
    friendly_name: str
    date_created: datetime
    date_updated: datetime


_mapping = reader(DomainMapping)
_credential = reader(SipCredential)


class DomainMappingStore:
    """Lists mapped to the accounts' domains, and the sources and credentials they admit."""

    def __init__(self, db: Database) -> None:
        self.db = db

    def _select(self, account_sid: str, domain_sid: str, kind: str, prefix: str) -> Any:
        lists = _LISTS[prefix]
        m = sip_domain_mappings.c
        return (
            select(
                m.sid,
                m.domain_sid,
                m.account_sid,
                m.kind,
                lists.c.friendly_name,
                m.date_created,
                m.date_updated,
            )
            .join(lists, (lists.c.sid == m.sid) & (lists.c.account_sid == m.account_sid))
            .where(m.account_sid == account_sid, m.domain_sid == domain_sid, m.kind == kind)
        )

    async def add(
        self, account_sid: str, domain_sid: str, kind: str, list_sid: str
    ) -> DomainMapping:
        """Map the account's list ``list_sid`` (CL… or AL…) to its domain for ``kind``.
        Raises ``NoSuchMappedList`` (no such domain or list in the account, or an IP list
        for registrations) or ``MappingExists``."""
        prefix = list_sid[:2]
        if kind not in KINDS or prefix not in _LISTS or (kind, prefix) == ("registrations", "AL"):
            raise NoSuchMappedList(list_sid)
        lists, now = _LISTS[prefix], utcnow()
        row = {
            "domain_sid": domain_sid,
            "kind": kind,
            "sid": list_sid,
            "account_sid": account_sid,
            "date_created": now,
            "date_updated": now,
        }

        def work(c: Connection) -> bool:
            domain = select(sip_domains.c.sid).where(
                sip_domains.c.account_sid == account_sid, sip_domains.c.sid == domain_sid
            )
            found = select(lists.c.sid).where(
                lists.c.account_sid == account_sid, lists.c.sid == list_sid
            )
            if c.execute(domain).first() is None or c.execute(found).first() is None:
                return False
            c.execute(insert(sip_domain_mappings).values(**row))
            return True

        try:
            added = await self.db.run(work)
        except IntegrityError:
            raise MappingExists(list_sid) from None
        if not added:
            raise NoSuchMappedList(list_sid)
        mapping = await self.get(account_sid, domain_sid, kind, list_sid)
        if mapping is None:  # the list went meanwhile
            raise NoSuchMappedList(list_sid)
        return mapping

    async def get(
        self, account_sid: str, domain_sid: str, kind: str, sid: str
    ) -> DomainMapping | None:
        if sid[:2] not in _LISTS:
            return None
        query = self._select(account_sid, domain_sid, kind, sid[:2]).where(
            sip_domain_mappings.c.sid == sid
        )
        row = await self.db.run(lambda c: c.execute(query).first())
        return _mapping(row) if row is not None else None

    async def page(
        self,
        account_sid: str,
        domain_sid: str,
        kind: str,
        prefix: str,
        *,
        offset: int = 0,
        limit: int = 50,
    ) -> list[DomainMapping]:
        """The domain's mappings of ``kind`` to lists of ``prefix`` (CL or AL), oldest first."""
        m = sip_domain_mappings.c
        query = (
            self._select(account_sid, domain_sid, kind, prefix)
            .order_by(m.date_created, m.sid)
            .offset(offset)
            .limit(limit)
        )
        rows = await self.db.run(lambda c: c.execute(query).all())
        return [_mapping(row) for row in rows]

    async def remove(self, account_sid: str, domain_sid: str, kind: str, sid: str) -> bool:
        m = sip_domain_mappings.c
        statement = sip_domain_mappings.delete().where(
            m.account_sid == account_sid, m.domain_sid == domain_sid, m.kind == kind, m.sid == sid
        )
        result = await self.db.run(lambda c: c.execute(statement))
        removed: bool = result.rowcount > 0
        return removed

    # -- what a domain admits (the SIP side asks these)

    async def call_networks(
        self, domain_sid: str
    ) -> list[ipaddress.IPv4Network | ipaddress.IPv6Network]:
        """The networks of every IP list mapped to the domain for calls."""
        m, a = sip_domain_mappings.c, sip_ip_addresses.c
        query = (
            select(a.ip_address, a.cidr_prefix_length)
            .join(
                sip_domain_mappings,
                (m.sid == a.ip_access_control_list_sid) & (m.account_sid == a.account_sid),
            )
            .where(m.domain_sid == domain_sid, m.kind.in_(CALL_KINDS))
            .limit(MAX_NETWORKS)
        )
        rows = await self.db.run(lambda c: c.execute(query).all())
        return [
            ipaddress.ip_network(f"{row.ip_address}/{row.cidr_prefix_length}", strict=False)
            for row in rows
        ]

    async def call_list_types(self, domain_sid: str) -> set[str]:
        """The kinds of list (``CL``, ``AL``) mapped to the domain for calls."""
        m = sip_domain_mappings.c
        query = select(m.sid).where(m.domain_sid == domain_sid, m.kind.in_(CALL_KINDS))
        sids = await self.db.run(lambda c: c.execute(query).scalars().all())
        return {sid[:2] for sid in sids}

    async def has_credential_lists(self, domain_sid: str, kinds: tuple[str, ...]) -> bool:
        """Whether any credential list is mapped to the domain for one of ``kinds``."""
        m = sip_domain_mappings.c
        query = (
            select(m.sid)
            .where(m.domain_sid == domain_sid, m.kind.in_(kinds), m.sid.like("CL%"))
            .limit(1)
        )
        row = await self.db.run(lambda c: c.execute(query).first())
        return row is not None

    async def credentials(
        self, domain_sid: str, kinds: tuple[str, ...], username: str
    ) -> list[SipCredential]:
        """The credentials of ``username`` in the lists mapped to the domain for ``kinds``."""
        m, t = sip_domain_mappings.c, sip_credentials.c
        query = (
            select(sip_credentials)
            .join(
                sip_domain_mappings,
                (m.sid == t.credential_list_sid) & (m.account_sid == t.account_sid),
            )
            .where(m.domain_sid == domain_sid, m.kind.in_(kinds), t.username == username)
            .distinct()
            .limit(10)
        )
        rows = await self.db.run(lambda c: c.execute(query).all())
        return [_credential(row) for row in rows]
