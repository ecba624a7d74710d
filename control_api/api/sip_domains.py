"""The SIP Domains resource: host names whose calls run a TwiML application.

``POST SIP/Domains.json`` creates one (``DomainName`` required; 201); ``GET`` lists the
account's; ``GET``/``POST``/``DELETE SIP/Domains/{SD}.json`` fetch, update and delete
one (deleting drops its list mappings). An INVITE whose Request-URI host is the
domain's name is admitted by the lists mapped to the domain (see
``sip_domain_mappings.py``) and runs ``VoiceUrl``; with ``SipRegistration=true``,
phones register to it with the credentials of its Auth/Registrations lists.

Domain names are unique on the node; every validation failure is 21231.
"""

from __future__ import annotations

import re
from typing import Any

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse

from control_api.api.accounts import API_VERSION, account_uri
from control_api.api.auth import PathAccount
from control_api.api.paging import PageRequest, page_body
from control_api.api.params import Params, form_params, parse_method, parse_url, query_params
from control_api.api.state import store_of
from control_api.errors import SIP_DOMAIN_INVALID, ApiError
from control_api.sids import is_sid, rfc2822
from control_api.store import MAX_FRIENDLY_NAME, Account, DomainNameTaken, SipDomain, Store

__all__ = ["domain_base", "existing_domain", "parse_bool", "router", "sip_domain_json"]

router = APIRouter()

LIST = "/2010-04-01/Accounts/{account_sid}/SIP/Domains.json"
INSTANCE = "/2010-04-01/Accounts/{account_sid}/SIP/Domains/{sid}.json"

_URLS = {
    "VoiceUrl": "voice_url",
    "VoiceFallbackUrl": "voice_fallback_url",
    "VoiceStatusCallbackUrl": "voice_status_callback_url",
}
_METHODS = {
    "VoiceMethod": "voice_method",
    "VoiceFallbackMethod": "voice_fallback_method",
    "VoiceStatusCallbackMethod": "voice_status_callback_method",
}
_BOOLEANS = {
    "SipRegistration": "sip_registration",
    "EmergencyCallingEnabled": "emergency_calling_enabled",
    "Secure": "secure",
}
_SIDS = {
    "ByocTrunkSid": ("byoc_trunk_sid", "BY"),
    "EmergencyCallerSid": ("emergency_caller_sid", "PN"),
}
_NAME = re.compile(r"[A-Za-z0-9.-]{1,253}")


def domain_base(account_sid: str, sid: str) -> str:
    return f"{account_uri(account_sid)}/SIP/Domains/{sid}"


def sip_domain_json(domain: SipDomain, list_types: set[str]) -> dict:
    """The domain as Twilio shows it; ``list_types`` (CL, AL) make its ``auth_type``."""
    base = domain_base(domain.account_sid, domain.sid)
    auth = [
        name for kind, name in (("AL", "IP_ACL"), ("CL", "CREDENTIAL_LIST")) if kind in list_types
    ]
    return {
        "account_sid": domain.account_sid,
        "api_version": API_VERSION,
        "auth_type": ",".join(auth),
        "byoc_trunk_sid": domain.byoc_trunk_sid,
        "date_created": rfc2822(domain.date_created),
        "date_updated": rfc2822(domain.date_updated),
        "domain_name": domain.domain_name,
        "emergency_caller_sid": domain.emergency_caller_sid,
        "emergency_calling_enabled": domain.emergency_calling_enabled,
        "friendly_name": domain.friendly_name,
        "secure": domain.secure,
        "sid": domain.sid,
        "sip_registration": domain.sip_registration,
        "subresource_uris": {
            "credential_list_mappings": f"{base}/CredentialListMappings.json",
            "ip_access_control_list_mappings": f"{base}/IpAccessControlListMappings.json",
        },
        "uri": f"{base}.json",
        "voice_fallback_method": domain.voice_fallback_method,
        "voice_fallback_url": domain.voice_fallback_url,
        "voice_method": domain.voice_method,
        "voice_status_callback_method": domain.voice_status_callback_method,
        "voice_status_callback_url": domain.voice_status_callback_url,
        "voice_url": domain.voice_url,
    }


def _invalid(message: str) -> ApiError:
    return ApiError.bad_parameter(message, SIP_DOMAIN_INVALID)


def parse_bool(name: str, value: str, code: int = SIP_DOMAIN_INVALID) -> bool:
    """``true`` or ``false`` in any case, as the official library sends them."""
    lowered = value.strip().lower()
    if lowered not in ("true", "false"):
        raise ApiError.bad_parameter(f"{name} must be true or false", code)
    return lowered == "true"


def _fields(params: Params) -> dict[str, Any]:
    """The domain settings the request names, checked (21231)."""
    fields: dict[str, Any] = {}
    if "DomainName" in params:
        name = params.get("DomainName") or ""
        if _NAME.fullmatch(name) is None:
            raise _invalid("DomainName must be a host name of letters, digits, '-' and '.'")
        fields["domain_name"] = name
    if "FriendlyName" in params:
        friendly = params.get("FriendlyName") or ""
        if len(friendly) > MAX_FRIENDLY_NAME:
            raise _invalid(f"FriendlyName must have at most {MAX_FRIENDLY_NAME} characters")
        fields["friendly_name"] = friendly or None
    for param, field in _URLS.items():
        if param in params:
            fields[field] = parse_url(param, params.get(param) or "", SIP_DOMAIN_INVALID)
    for param, field in _METHODS.items():
        if param in params:
            fields[field] = parse_method(param, params.get(param) or "", SIP_DOMAIN_INVALID)
    for param, field in _BOOLEANS.items():
        if param in params:
            fields[field] = parse_bool(param, params.get(param) or "")
    for param, (field, prefix) in _SIDS.items():
        if param in params:
            value = params.get(param) or ""
            if value and not is_sid(value, prefix):
                raise _invalid(f"{param} must be a {prefix} SID")
            fields[field] = value or None
    return fields


async def existing_domain(request: Request, account: Account, sid: str) -> SipDomain:
    """The account's domain ``sid``, else 20404."""
    found = await store_of(request).sip_domains.get(account.sid, sid) if is_sid(sid, "SD") else None
    if found is None:
        raise ApiError.not_found(request.url.path)
    return found


async def _json(store: Store, domain: SipDomain) -> dict:
    return sip_domain_json(domain, await store.domain_mappings.call_list_types(domain.sid))


@router.post(LIST)
async def create_domain(request: Request, account: PathAccount) -> Response:
    fields = _fields(await form_params(request))
    name = fields.pop("domain_name", None)
    if not name:
        raise _invalid("A DomainName is required")
    store = store_of(request)
    try:
        domain = await store.sip_domains.create(account.sid, name, **fields)
    except DomainNameTaken:
        raise _invalid(f"The domain name {name} is already in use") from None
    except ValueError as exc:
        raise _invalid(str(exc)) from None
    return JSONResponse(await _json(store, domain), status_code=201)


@router.get(LIST)
async def list_domains(request: Request, account: PathAccount) -> Response:
    params = query_params(request)
    page = PageRequest.from_params(params)
    store = store_of(request)
    found = await store.sip_domains.page(account.sid, offset=page.offset, limit=page.fetch_limit)
    rows = [await _json(store, domain) for domain in found]
    return JSONResponse(page_body(request, params, "domains", rows, page))


@router.get(INSTANCE)
async def fetch_domain(request: Request, sid: str, account: PathAccount) -> Response:
    domain = await existing_domain(request, account, sid)
    return JSONResponse(await _json(store_of(request), domain))


@router.post(INSTANCE)
async def update_domain(request: Request, sid: str, account: PathAccount) -> Response:
    fields = _fields(await form_params(request))
    domain = await existing_domain(request, account, sid)
    store = store_of(request)
    if fields:
        try:
            updated = await store.sip_domains.update(account.sid, sid, **fields)
        except DomainNameTaken:
            raise _invalid(f"The domain name {fields['domain_name']} is already in use") from None
        except ValueError as exc:
            raise _invalid(str(exc)) from None
        if updated is None:  # deleted meanwhile
            raise ApiError.not_found(request.url.path)
        domain = updated
    return JSONResponse(await _json(store, domain))


@router.delete(INSTANCE)
async def delete_domain(request: Request, sid: str, account: PathAccount) -> Response:
    store = store_of(request)
    if not (is_sid(sid, "SD") and await store.sip_domains.delete(account.sid, sid)):
        raise ApiError.not_found(request.url.path)
    return Response(status_code=204)
