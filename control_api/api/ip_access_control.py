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

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse

from control_api.api.accounts import account_uri
from control_api.api.auth import PathAccount
from control_api.api.paging import PageRequest, page_body
from control_api.api.params import Params, form_params, query_params
from control_api.api.state import store_of
from control_api.errors import IP_ACCESS_CONTROL_INVALID, ApiError
from control_api.sids import is_sid, rfc2822
from control_api.store import (
    Account,
    IpAccessControlList,
    NoSuchIpAccessControlList,
    SipIpAddress,
)
from control_api.store.ip_access_control import MAX_ACL_NAME

__all__ = ["ip_access_control_list_json", "ip_address_json", "router"]

router = APIRouter()

LISTS = "/2010-04-01/Accounts/{account_sid}/SIP/IpAccessControlLists.json"
LIST = "/2010-04-01/Accounts/{account_sid}/SIP/IpAccessControlLists/{list_sid}.json"
ADDRESSES = (
    "/2010-04-01/Accounts/{account_sid}/SIP/IpAccessControlLists/{list_sid}/IpAddresses.json"
)
ADDRESS = (
    "/2010-04-01/Accounts/{account_sid}/SIP/IpAccessControlLists/{list_sid}/IpAddresses/{sid}.json"
)
_PREFIX = re.compile(r"[0-9]{1,3}")


def _base(account_sid: str, list_sid: str) -> str:
    return f"{account_uri(account_sid)}/SIP/IpAccessControlLists/{list_sid}"


def ip_access_control_list_json(acl: IpAccessControlList) -> dict:
    base = _base(acl.account_sid, acl.sid)
    return {
        "account_sid": acl.account_sid,
        "date_created": rfc2822(acl.date_created),
        "date_updated": rfc2822(acl.date_updated),
        "friendly_name": acl.friendly_name,
        "sid": acl.sid,
        "subresource_uris": {"ip_addresses": f"{base}/IpAddresses.json"},
        "uri": f"{base}.json",
    }


def ip_address_json(entry: SipIpAddress) -> dict:
    base = _base(entry.account_sid, entry.ip_access_control_list_sid)
    return {
        "account_sid": entry.account_sid,
        "cidr_prefix_length": entry.cidr_prefix_length,
        "date_created": rfc2822(entry.date_created),
        "date_updated": rfc2822(entry.date_updated),
        "friendly_name": entry.friendly_name,
        "ip_access_control_list_sid": entry.ip_access_control_list_sid,
        "ip_address": entry.ip_address,
        "sid": entry.sid,
        "uri": f"{base}/IpAddresses/{entry.sid}.json",
    }


def _invalid(message: str) -> ApiError:
    return ApiError.bad_parameter(message, IP_ACCESS_CONTROL_INVALID)


def _friendly_name(value: str | None) -> str:
    if not value:
        raise _invalid("A FriendlyName is required")
    if len(value) > MAX_ACL_NAME:
        raise _invalid(f"FriendlyName must have 1 to {MAX_ACL_NAME} characters")
    return value


def _prefix(params: Params) -> int | None:
    value = params.get("CidrPrefixLength") or ""
    if value == "":
        return None
    if _PREFIX.fullmatch(value) is None:
        raise _invalid("CidrPrefixLength must be a whole number")
    return int(value)


async def _existing_list(request: Request, account: Account, list_sid: str) -> IpAccessControlList:
    lists = store_of(request).ip_access_control_lists
    found = await lists.get(account.sid, list_sid) if is_sid(list_sid, "AL") else None
    if found is None:
        raise ApiError.not_found(request.url.path)
    return found


async def _existing_address(
    request: Request, account: Account, list_sid: str, sid: str
) -> SipIpAddress:
    found = (
        await store_of(request).ip_addresses.get(account.sid, list_sid, sid)
        if is_sid(list_sid, "AL") and is_sid(sid, "IP")
        else None
    )
    if found is None:
        raise ApiError.not_found(request.url.path)
    return found


# IP access control lists


@router.post(LISTS)
async def create_list(request: Request, account: PathAccount) -> Response:
    name = _friendly_name((await form_params(request)).get("FriendlyName"))
    created = await store_of(request).ip_access_control_lists.create(account.sid, name)
    return JSONResponse(ip_access_control_list_json(created), status_code=201)


@router.get(LISTS)
async def list_lists(request: Request, account: PathAccount) -> Response:
    params = query_params(request)
    page = PageRequest.from_params(params)
    found = await store_of(request).ip_access_control_lists.page(
        account.sid, offset=page.offset, limit=page.fetch_limit
    )
    rows = [ip_access_control_list_json(item) for item in found]
    return JSONResponse(page_body(request, params, "ip_access_control_lists", rows, page))


@router.get(LIST)
async def fetch_list(request: Request, list_sid: str, account: PathAccount) -> Response:
    acl = await _existing_list(request, account, list_sid)
    return JSONResponse(ip_access_control_list_json(acl))


@router.post(LIST)
async def update_list(request: Request, list_sid: str, account: PathAccount) -> Response:
    params = await form_params(request)
    await _existing_list(request, account, list_sid)
    name = _friendly_name(params.get("FriendlyName"))
    updated = await store_of(request).ip_access_control_lists.update(account.sid, list_sid, name)
    if updated is None:  # deleted meanwhile
        raise ApiError.not_found(request.url.path)
    return JSONResponse(ip_access_control_list_json(updated))


@router.delete(LIST)
async def delete_list(request: Request, list_sid: str, account: PathAccount) -> Response:
    lists = store_of(request).ip_access_control_lists
    if not (is_sid(list_sid, "AL") and await lists.delete(account.sid, list_sid)):
        raise ApiError.not_found(request.url.path)
    return Response(status_code=204)


# IP addresses


@router.post(ADDRESSES)
async def create_address(request: Request, list_sid: str, account: PathAccount) -> Response:
    params = await form_params(request)
    await _existing_list(request, account, list_sid)
    name = _friendly_name(params.get("FriendlyName"))
    address = params.get("IpAddress")
    if not address:
        raise _invalid("An IpAddress is required")
    try:
        created = await store_of(request).ip_addresses.create(
            account.sid, list_sid, name, address, _prefix(params)
        )
    except ValueError as exc:
        raise _invalid(str(exc)) from None
    except NoSuchIpAccessControlList:  # deleted meanwhile
        raise ApiError.not_found(request.url.path) from None
    return JSONResponse(ip_address_json(created), status_code=201)


@router.get(ADDRESSES)
async def list_addresses(request: Request, list_sid: str, account: PathAccount) -> Response:
    params = query_params(request)
    page = PageRequest.from_params(params)
    await _existing_list(request, account, list_sid)
    found = await store_of(request).ip_addresses.page(
        account.sid, list_sid, offset=page.offset, limit=page.fetch_limit
    )
    rows = [ip_address_json(item) for item in found]
    return JSONResponse(page_body(request, params, "ip_addresses", rows, page))


@router.get(ADDRESS)
async def fetch_address(
    request: Request, list_sid: str, sid: str, account: PathAccount
) -> Response:
    return JSONResponse(ip_address_json(await _existing_address(request, account, list_sid, sid)))


@router.post(ADDRESS)
async def update_address(
    request: Request, list_sid: str, sid: str, account: PathAccount
) -> Response:
    params = await form_params(request)
    entry = await _existing_address(request, account, list_sid, sid)
    fields: dict = {}
    if "FriendlyName" in params:
        fields["friendly_name"] = _friendly_name(params.get("FriendlyName"))
    if params.get("IpAddress"):
        fields["ip_address"] = params.get("IpAddress")
    prefix = _prefix(params)
    if prefix is not None:
        fields["cidr_prefix_length"] = prefix
    if fields:
        try:
            updated = await store_of(request).ip_addresses.update(
                account.sid, list_sid, sid, **fields
            )
        except ValueError as exc:
            raise _invalid(str(exc)) from None
        if updated is None:  # deleted meanwhile
            raise ApiError.not_found(request.url.path)
        entry = updated
    return JSONResponse(ip_address_json(entry))


@router.delete(ADDRESS)
async def delete_address(
    request: Request, list_sid: str, sid: str, account: PathAccount
) -> Response:
    if not (
        is_sid(list_sid, "AL")
        and is_sid(sid, "IP")
        and await store_of(request).ip_addresses.delete(account.sid, list_sid, sid)
    ):
        raise ApiError.not_found(request.url.path)
    return Response(status_code=204)
