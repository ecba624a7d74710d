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
from control_api.api.params import form_params
from control_api.api.resource import Resource
from control_api.api.sip_domains import DOMAINS, domain_base
from control_api.api.state import store_of
from control_api.errors import SIP_DOMAIN_INVALID, ApiError
from control_api.sids import is_sid, rfc2822
from control_api.store import DomainMapping, DomainMappingStore, MappingExists, NoSuchMappedList

__all__ = ["MAPPINGS", "Mappings", "router"]

router = APIRouter()

_DOMAIN = "/2010-04-01/Accounts/{account_sid}/SIP/Domains/{domain_sid}/"


# The parameter that names the list a mapping maps, by the list's SID prefix.
_PARAMETERS = {"CL": "CredentialListSid", "AL": "IpAccessControlListSid"}


@dataclass(frozen=True)
class Mappings:
    """One mapping resource: its path under the domain, the kind of mapping it keeps
    (``calls``, ``registrations``, or ``domain`` for the legacy resources) and the type
    of list it maps (``CL`` or ``AL``)."""

    path: str
    kind: str
    prefix: str

    @property
    def param(self) -> str:
        return _PARAMETERS[self.prefix]

    @property
    def key(self) -> str:
        """The list's key: ``contents`` under Auth, else the resource's name (as
        ``Resource`` names a list by default)."""
        return "" if self.kind == "domain" else "contents"

    def json(self, mapping: DomainMapping) -> dict:
        body = {
            "account_sid": mapping.account_sid,
            "date_created": rfc2822(mapping.date_created),
            "date_updated": rfc2822(mapping.date_updated),
            "friendly_name": mapping.friendly_name,
            "sid": mapping.sid,
        }
        if self.kind == "domain":  # the legacy resources also name domain and themselves
            base = domain_base(mapping.account_sid, mapping.domain_sid)
            body["domain_sid"] = mapping.domain_sid
            body["uri"] = f"{base}/{self.path}/{mapping.sid}.json"
        return body


MAPPINGS = (
    Mappings("Auth/Calls/CredentialListMappings", "calls", "CL"),
    Mappings("Auth/Calls/IpAccessControlListMappings", "calls", "AL"),
    Mappings("Auth/Registrations/CredentialListMappings", "registrations", "CL"),
    Mappings("CredentialListMappings", "domain", "CL"),
    Mappings("IpAccessControlListMappings", "domain", "AL"),
)


@dataclass(frozen=True, slots=True)
class _Table:
    """The store's mappings of one resource, as a ``Resource`` reads its rows."""

    mappings: DomainMappingStore
    spec: Mappings

    async def get(self, account_sid: str, domain_sid: str, sid: str) -> DomainMapping | None:
        return await self.mappings.get(account_sid, domain_sid, self.spec.kind, sid)

    async def delete(self, account_sid: str, domain_sid: str, sid: str) -> bool:
        return await self.mappings.remove(account_sid, domain_sid, self.spec.kind, sid)

    async def page(self, account_sid: str, domain_sid: str, **window: int) -> list[DomainMapping]:
        kind, prefix = self.spec.kind, self.spec.prefix
        return await self.mappings.page(account_sid, domain_sid, kind, prefix, **window)


def _routes(spec: Mappings) -> None:
    resource = Resource(
        f"{_DOMAIN}{spec.path}/{{sid}}.json",
        ("SD", spec.prefix),
        lambda request: _Table(store_of(request).domain_mappings, spec),
        spec.json,
        key=spec.key,
        parent=DOMAINS,
    )

    async def create(request: Request, domain_sid: str, account: PathAccount) -> Response:
        params = await form_params(request)
        await DOMAINS.existing(request, account.sid, domain_sid)
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

    router.add_api_route(resource.list_path, create, methods=["POST"])
    resource.add_routes(router)


for _spec in MAPPINGS:
    _routes(_spec)
