"""The lists mapped to a SIP domain: who may call it and who may register to it.

Five resources of one shape (create with the list's SID, list, fetch, delete; a
mapping is named by the mapped list's SID and shows its friendly name):

- ``Auth/Calls/CredentialListMappings`` (``CredentialListSid``): INVITEs carrying a
  digest of one of the list's credentials;
- ``Auth/Calls/IpAccessControlListMappings`` (``IpAccessControlListSid``): INVITEs from
  one of the list's addresses;
- ``Auth/Registrations/CredentialListMappings`` (``CredentialListSid``): REGISTERs, when
  the domain has ``SipRegistration``;
- the legacy ``CredentialListMappings`` and ``IpAccessControlListMappings``: INVITEs, as
  Auth/Calls.

A list of another account, or no list of that SID, is a 400 (21231, as a list mapped
already is); an unknown domain or mapping is 20404.
"""

from __future__ import annotations

from dataclasses import dataclass

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse

from control_api.api.auth import PathAccount
from control_api.api.paging import PageRequest, page_body
from control_api.api.params import form_params, query_params
from control_api.api.sip_domains import domain_base, existing_domain
from control_api.api.state import store_of
from control_api.errors import SIP_DOMAIN_INVALID, ApiError
from control_api.sids import is_sid, rfc2822
from control_api.store import DomainMapping, MappingExists, NoSuchMappedList

__all__ = ["MAPPINGS", "Mappings", "router"]

router = APIRouter()

_DOMAIN = "/2010-04-01/Accounts/{account_sid}/SIP/Domains/{domain_sid}/"


@dataclass(frozen=True)
class Mappings:
    """One mapping resource: its path under the domain, the kind of mapping it keeps,
    the list type (``CL`` or ``AL``) and parameter it maps, and its list key."""

    path: str
    kind: str
    prefix: str
    param: str
    key: str

    @property
    def legacy(self) -> bool:
        return self.kind == "domain"

    def json(self, mapping: DomainMapping) -> dict:
        body = {
            "account_sid": mapping.account_sid,
            "date_created": rfc2822(mapping.date_created),
            "date_updated": rfc2822(mapping.date_updated),
            "friendly_name": mapping.friendly_name,
            "sid": mapping.sid,
        }
        if self.legacy:  # the legacy resources also name their domain and themselves
            base = domain_base(mapping.account_sid, mapping.domain_sid)
            body["domain_sid"] = mapping.domain_sid
            body["uri"] = f"{base}/{self.path}/{mapping.sid}.json"
        return body


_CREDENTIALS = "CredentialListSid"
_IPS = "IpAccessControlListSid"
MAPPINGS = (
    Mappings("Auth/Calls/CredentialListMappings", "calls", "CL", _CREDENTIALS, "contents"),
    Mappings("Auth/Calls/IpAccessControlListMappings", "calls", "AL", _IPS, "contents"),
    Mappings(
        "Auth/Registrations/CredentialListMappings", "registrations", "CL", _CREDENTIALS, "contents"
    ),
    Mappings("CredentialListMappings", "domain", "CL", _CREDENTIALS, "credential_list_mappings"),
    Mappings(
        "IpAccessControlListMappings", "domain", "AL", _IPS, "ip_access_control_list_mappings"
    ),
)


def _routes(spec: Mappings) -> None:
    collection = f"{_DOMAIN}{spec.path}.json"
    instance = f"{_DOMAIN}{spec.path}/{{sid}}.json"

    async def create(request: Request, domain_sid: str, account: PathAccount) -> Response:
        params = await form_params(request)
        await existing_domain(request, account, domain_sid)
        list_sid = params.get(spec.param) or ""
        if not list_sid:
            raise ApiError.bad_parameter(f"A {spec.param} is required", SIP_DOMAIN_INVALID)
        if not is_sid(list_sid, spec.prefix):
            raise ApiError.bad_parameter(f"{spec.param} is not valid", SIP_DOMAIN_INVALID)
        mappings = store_of(request).domain_mappings
        try:
            mapping = await mappings.add(account.sid, domain_sid, spec.kind, list_sid)
        except NoSuchMappedList:
            raise ApiError.bad_parameter(
                f"{spec.param} {list_sid} is not a list of this account", SIP_DOMAIN_INVALID
            ) from None
        except MappingExists:
            raise ApiError.bad_parameter(
                f"{list_sid} is mapped to this domain already", SIP_DOMAIN_INVALID
            ) from None
        return JSONResponse(spec.json(mapping), status_code=201)

    async def list_all(request: Request, domain_sid: str, account: PathAccount) -> Response:
        params = query_params(request)
        page = PageRequest.from_params(params)
        await existing_domain(request, account, domain_sid)
        found = await store_of(request).domain_mappings.page(
            account.sid,
            domain_sid,
            spec.kind,
            spec.prefix,
            offset=page.offset,
            limit=page.fetch_limit,
        )
        rows = [spec.json(mapping) for mapping in found]
        return JSONResponse(page_body(request, params, spec.key, rows, page))

    async def fetch(request: Request, domain_sid: str, sid: str, account: PathAccount) -> Response:
        found = (
            await store_of(request).domain_mappings.get(account.sid, domain_sid, spec.kind, sid)
            if is_sid(domain_sid, "SD") and is_sid(sid, spec.prefix)
            else None
        )
        if found is None:
            raise ApiError.not_found(request.url.path)
        return JSONResponse(spec.json(found))

    async def delete(request: Request, domain_sid: str, sid: str, account: PathAccount) -> Response:
        if not (
            is_sid(domain_sid, "SD")
            and is_sid(sid, spec.prefix)
            and await store_of(request).domain_mappings.remove(
                account.sid, domain_sid, spec.kind, sid
            )
        ):
            raise ApiError.not_found(request.url.path)
        return Response(status_code=204)

    router.add_api_route(collection, create, methods=["POST"])
    router.add_api_route(collection, list_all, methods=["GET"])
    router.add_api_route(instance, fetch, methods=["GET"])
    router.add_api_route(instance, delete, methods=["DELETE"])


for _spec in MAPPINGS:
    _routes(_spec)
