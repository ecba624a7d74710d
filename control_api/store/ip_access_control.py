"""IP access control lists (AL…) and their IP addresses (IP…): the sources a SIP domain
admits without credentials, each an address and a CIDR prefix length."""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Executable, insert

from control_api.sids import utcnow
from control_api.store.engine import Database
from control_api.store.lists import Entries, Lists, NamedList, insert_in_list
from control_api.store.rows import (
    Listing,
    Rows,
    as_row,
    created,
    fit,
    reader,
)
from control_api.store.schema import (
    sip_domain_mappings,
    sip_ip_access_control_lists,
    sip_ip_addresses,
)

__all__ = [
    "MAX_ACL_NAME",
    "IpAccessControlList",
    "IpAccessControlListStore",
    "IpAddressStore",
    "NoSuchIpAccessControlList",
    "SipIpAddress",
    "check_cidr",
]

MAX_ACL_NAME = 255
# Shortest prefixes a list may hold: a whole /0 (or /7) would admit the internet.
MIN_PREFIX = {4: 8, 6: 16}


class NoSuchIpAccessControlList(LookupError):
    """The account has no IP access control list with that SID."""


def check_cidr(address: str, prefix: int | None) -> tuple[str, int]:
    """The address (normalised) and prefix length if they make a network; else ValueError.

    Without ``prefix`` the whole address counts (32 for IPv4, 128 for IPv6). Host bits
    beyond the prefix are allowed: ``10.1.2.3/8`` means ``10.0.0.0/8``.
    """
    try:
        ip = ipaddress.ip_address(address.strip())
    except ValueError:
        raise ValueError(f"IpAddress is not an IP address: {address[:64]}") from None
    bits = ip.max_prefixlen
    length = bits if prefix is None else prefix
    if not MIN_PREFIX[ip.version] <= length <= bits:
        raise ValueError(
            f"CidrPrefixLength must be between {MIN_PREFIX[ip.version]} and {bits} for {ip}"
        )
    return str(ip), length


@dataclass(slots=True)
class IpAccessControlList(NamedList):
    """A named list of IP addresses (Twilio's SIP IpAccessControlList)."""


@dataclass(slots=True)
class SipIpAddress:
    """One address or CIDR block of a list (Twilio's SIP IpAddress)."""

    sid: str
    ip_access_control_list_sid: str
    account_sid: str
    friendly_name: str
    ip_address: str
    cidr_prefix_length: int
    date_created: datetime
    date_updated: datetime

    @property
    def network(self) -> ipaddress.IPv4Network | ipaddress.IPv6Network:
        return ipaddress.ip_network(f"{self.ip_address}/{self.cidr_prefix_length}", strict=False)


def _name(name: str) -> str:
    if not 1 <= len(name) <= MAX_ACL_NAME:
        raise ValueError(f"FriendlyName must have 1 to {MAX_ACL_NAME} characters")
    return name


class IpAccessControlListStore(Lists[IpAccessControlList]):
    """The accounts' IP access control lists, oldest first, each with its addresses."""

    entry_table = sip_ip_addresses
    entry_column = "ip_access_control_list_sid"

    listing = Listing(
        order_by=(sip_ip_access_control_lists.c.date_created, sip_ip_access_control_lists.c.sid)
    )

    def __init__(self, db: Database) -> None:
        self.rows = Rows(db, sip_ip_access_control_lists, reader(IpAccessControlList))

    async def create(self, account_sid: str, friendly_name: str) -> IpAccessControlList:
        """A new, empty list; ``ValueError`` for a name that is not 1 to 255 characters."""
        acl = created(
            IpAccessControlList, "AL", account_sid=account_sid, friendly_name=_name(friendly_name)
        )
        statement = insert(sip_ip_access_control_lists).values(**as_row(acl))
        await self.rows.run(lambda c: c.execute(statement))
        return acl

    async def update(
        self, account_sid: str, sid: str, friendly_name: str
    ) -> IpAccessControlList | None:
        values = {"friendly_name": _name(friendly_name), "date_updated": utcnow()}
        return await self.rows.update_one(self.owned(account_sid, sid), values)

    def also_deleted(self, account_sid: str, sid: str) -> tuple[Executable, ...]:
        """A list goes with its mappings to domains."""
        mappings = sip_domain_mappings.c
        unmap = sip_domain_mappings.delete().where(
            mappings.sid == sid, mappings.account_sid == account_sid
        )
        return (unmap,)


class IpAddressStore(Entries[SipIpAddress]):
    """The addresses in the accounts' IP access control lists."""

    list_column = IpAccessControlListStore.entry_column

    def __init__(self, db: Database) -> None:
        self.rows = Rows(db, sip_ip_addresses, reader(SipIpAddress))

    async def create(
        self,
        account_sid: str,
        list_sid: str,
        friendly_name: str,
        ip_address: str,
        cidr_prefix_length: int | None = None,
    ) -> SipIpAddress:
        """Add an address to a list. Raises ``ValueError`` (``check_cidr``, the name) or
        ``NoSuchIpAccessControlList``."""
        address, prefix = check_cidr(ip_address, cidr_prefix_length)
        entry = created(
            SipIpAddress,
            "IP",
            ip_access_control_list_sid=list_sid,
            account_sid=account_sid,
            friendly_name=_name(friendly_name),
            ip_address=address,
            cidr_prefix_length=prefix,
        )
        values = fit(sip_ip_addresses, as_row(entry))
        work = insert_in_list(
            sip_ip_access_control_lists, account_sid, list_sid, sip_ip_addresses, values
        )
        if not await self.rows.run(work):
            raise NoSuchIpAccessControlList(list_sid)
        return entry

    async def update(
        self, account_sid: str, list_sid: str, sid: str, **fields: Any
    ) -> SipIpAddress | None:
        """Change ``friendly_name``, ``ip_address`` and/or ``cidr_prefix_length`` (checked
        together, ``ValueError``); None if there is no such address."""
        current = await self.get(account_sid, list_sid, sid)
        if current is None:
            return None
        values: dict[str, Any] = {}
        if "friendly_name" in fields:
            values["friendly_name"] = _name(fields["friendly_name"])
        if "ip_address" in fields or "cidr_prefix_length" in fields:
            address = fields.get("ip_address", current.ip_address)
            prefix = fields.get("cidr_prefix_length", current.cidr_prefix_length)
            values["ip_address"], values["cidr_prefix_length"] = check_cidr(address, prefix)
        allowed = frozenset({"friendly_name", "ip_address", "cidr_prefix_length"})
        return await self.rows.change(
            "update", allowed, values, *self.within(account_sid, list_sid, sid)
        )
