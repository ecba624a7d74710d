"""SIP IpAccessControlLists and their IpAddresses: the sources a SIP domain admits.

``/SIP/IpAccessControlLists.json`` creates (``FriendlyName``) and lists the account's
lists; ``/SIP/IpAccessControlLists/{AL}.json`` fetches, renames and deletes one (with
its addresses and its mappings to domains). ``.../{AL}/IpAddresses.json`` creates
(``FriendlyName``, ``IpAddress``, optional ``CidrPrefixLength``: the whole address by
default) and lists addresses; ``.../IpAddresses/{IP}.json`` fetches, updates and
deletes one. A list admits calls once mapped to a domain's Auth/Calls.

Every validation failure is 21234.
"""

from __future__ import annotations

import re

from fastapi import APIRouter, Request

from control_api.api.params import Params
from control_api.api.sip_lists import Entries, SipListKind
from control_api.api.state import store_of
from control_api.errors import IP_ACCESS_CONTROL_INVALID
from control_api.store import NoSuchIpAccessControlList, SipIpAddress
from control_api.store.ip_access_control import MAX_ACL_NAME

__all__ = ["ip_access_control_list_json", "ip_address_json", "router"]

router = APIRouter()

KIND = SipListKind(
    "IpAccessControlLists", "IpAddresses", ("AL", "IP"), MAX_ACL_NAME, IP_ACCESS_CONTROL_INVALID
)
ip_access_control_list_json = KIND.list_json
_invalid = KIND.invalid
_friendly_name = KIND.friendly_name
_PREFIX = re.compile(r"[0-9]{1,3}")


def ip_address_json(entry: SipIpAddress) -> dict:
    return KIND.entry_json(
        entry,
        entry.ip_access_control_list_sid,
        cidr_prefix_length=entry.cidr_prefix_length,
        friendly_name=entry.friendly_name,
        ip_address=entry.ip_address,
    )


def _prefix(params: Params) -> int | None:
    value = params.get("CidrPrefixLength") or ""
    if value == "":
        return None
    if _PREFIX.fullmatch(value) is None:
        raise _invalid("CidrPrefixLength must be a whole number")
    return int(value)


async def _new_address(
    request: Request, account_sid: str, list_sid: str, params: Params
) -> SipIpAddress | None:
    name = _friendly_name(params.get("FriendlyName"))
    address = params.get("IpAddress")
    if not address:
        raise _invalid("An IpAddress is required")
    addresses = store_of(request).ip_addresses
    try:
        return await addresses.create(account_sid, list_sid, name, address, _prefix(params))
    except ValueError as exc:
        raise _invalid(str(exc)) from None
    except NoSuchIpAccessControlList:  # deleted meanwhile
        return None


async def _changed_address(
    request: Request, entry: SipIpAddress, params: Params
) -> SipIpAddress | None:
    fields: dict = {}
    if "FriendlyName" in params:
        fields["friendly_name"] = _friendly_name(params.get("FriendlyName"))
    if params.get("IpAddress"):
        fields["ip_address"] = params.get("IpAddress")
    prefix = _prefix(params)
    if prefix is not None:
        fields["cidr_prefix_length"] = prefix
    if not fields:
        return entry
    where = (entry.account_sid, entry.ip_access_control_list_sid, entry.sid)
    try:
        return await store_of(request).ip_addresses.update(*where, **fields)
    except ValueError as exc:
        raise _invalid(str(exc)) from None


IP_ADDRESSES = Entries(
    lambda r: store_of(r).ip_addresses, ip_address_json, _new_address, _changed_address
)
KIND.add_routes(router, lambda r: store_of(r).ip_access_control_lists, IP_ADDRESSES)
