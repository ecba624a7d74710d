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
from collections.abc import Iterator, Sequence
from contextlib import contextmanager

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse

from control_api.api.accounts import API_VERSION, account_uri
from control_api.api.auth import PathAccount
from control_api.api.params import (
    Parser,
    form_params,
    method_parser,
    parse_fields,
    settings,
    url_parser,
)
from control_api.api.resource import Resource, found
from control_api.api.state import store_of
from control_api.errors import SIP_DOMAIN_INVALID, ApiError
from control_api.sids import is_sid, rfc2822
from control_api.store import MAX_FRIENDLY_NAME, DomainNameTaken, SipDomain

__all__ = ["DOMAINS", "domain_base", "router", "sip_domain_json"]

router = APIRouter()

INSTANCE = "/2010-04-01/Accounts/{account_sid}/SIP/Domains/{sid}.json"

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


def _domain_name(name: str, value: str) -> str:
    if _NAME.fullmatch(value) is None:
        raise _invalid(f"{name} must be a host name of letters, digits, '-' and '.'")
    return value


def _friendly_name(name: str, value: str) -> str | None:
    if len(value) > MAX_FRIENDLY_NAME:
        raise _invalid(f"{name} must have at most {MAX_FRIENDLY_NAME} characters")
    return value or None


def _boolean(name: str, value: str) -> bool:
    """``true`` or ``false`` in any case, as the official library sends them."""
    lowered = value.strip().lower()
    if lowered not in ("true", "false"):
        raise _invalid(f"{name} must be true or false")
    return lowered == "true"


def _sid_parser(prefix: str) -> Parser:
    """A SID of ``prefix``, or None for an empty value."""

    def parse(name: str, value: str) -> str | None:
        if value and not is_sid(value, prefix):
            raise _invalid(f"{name} must be a {prefix} SID")
        return value or None

    return parse


_URLS = ("VoiceUrl", "VoiceFallbackUrl", "VoiceStatusCallbackUrl")
_METHODS = ("VoiceMethod", "VoiceFallbackMethod", "VoiceStatusCallbackMethod")

# Request parameter -> (store field, parser), in the order they are checked (21231).
SETTINGS: dict[str, tuple[str, Parser]] = {
    **settings(_domain_name, "DomainName"),
    **settings(_friendly_name, "FriendlyName"),
    **settings(url_parser(SIP_DOMAIN_INVALID), *_URLS),
    **settings(method_parser(SIP_DOMAIN_INVALID), *_METHODS),
    **settings(_boolean, "SipRegistration", "EmergencyCallingEnabled", "Secure"),
    **settings(_sid_parser("BY"), "ByocTrunkSid"),
    **settings(_sid_parser("PN"), "EmergencyCallerSid"),
}


async def _show(request: Request, domains: Sequence[SipDomain]) -> list[dict]:
    """The domains' JSON, with the types of the lists mapped to each."""
    mappings = store_of(request).domain_mappings
    return [
        sip_domain_json(domain, await mappings.call_list_types(domain.sid)) for domain in domains
    ]


DOMAINS = Resource(INSTANCE, ("SD",), lambda r: store_of(r).sip_domains, show=_show)
DOMAINS.add_routes(router)


@contextmanager
def _refusals(name: str | None) -> Iterator[None]:
    """The store's refusals of a domain's settings, as 21231."""
    try:
        yield
    except DomainNameTaken:
        raise _invalid(f"The domain name {name} is already in use") from None
    except ValueError as exc:
        raise _invalid(str(exc)) from None


@router.post(DOMAINS.list_path)
async def create_domain(request: Request, account: PathAccount) -> Response:
    fields = parse_fields(await form_params(request), SETTINGS)
    name = fields.pop("domain_name", None)
    if not name:
        raise _invalid("A DomainName is required")
    with _refusals(name):
        domain = await store_of(request).sip_domains.create(account.sid, name, **fields)
    return JSONResponse(await DOMAINS.json(request, domain), status_code=201)


@router.post(INSTANCE)
async def update_domain(request: Request, sid: str, account: PathAccount) -> Response:
    fields = parse_fields(await form_params(request), SETTINGS)
    domain = await DOMAINS.existing(request, account.sid, sid)
    if fields:
        with _refusals(fields.get("domain_name")):
            updated = await store_of(request).sip_domains.update(account.sid, sid, **fields)
        domain = found(request, updated)  # None: deleted meanwhile
    return JSONResponse(await DOMAINS.json(request, domain))
