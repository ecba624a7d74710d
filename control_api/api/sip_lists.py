"""What the two kinds of SIP list share: an account's named list of entries that SIP
domains map, under ``/SIP/<Kind>/{list_sid}`` with its entries under ``…/<Entries>``.

``CredentialLists`` hold ``Credentials`` (``sip_credentials.py``);
``IpAccessControlLists`` hold ``IpAddresses`` (``ip_access_control.py``). Both create
(``FriendlyName``, 201), list, fetch, rename and delete their lists the same way, and
create (201), list, fetch, change and delete entries the same way; each refuses a bad
value with its own error code. What an entry is made of, and how it changes, is each
kind's (``Entries``).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Generic, Protocol, TypeVar

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse

from control_api.api.accounts import account_uri
from control_api.api.auth import PathAccount
from control_api.api.params import Params, form_params, snake_case
from control_api.api.resource import Resource, Table, found
from control_api.errors import ApiError
from control_api.sids import rfc2822
from control_api.store import IpAccessControlList, SipCredential, SipCredentialList, SipIpAddress

__all__ = ["Entries", "NamedLists", "SipListKind"]

ACCOUNT = "/2010-04-01/Accounts/{account_sid}"

SipList = SipCredentialList | IpAccessControlList
SipEntry = SipCredential | SipIpAddress
L = TypeVar("L", bound=SipList)
E = TypeVar("E")
L_co = TypeVar("L_co", covariant=True)


class NamedLists(Table[L_co], Protocol[L_co]):
    """The store's lists of a kind: a ``Table`` that also creates
    (``create(account_sid, name)``) and renames (``update(account_sid, sid, name)``)."""

    @property
    def create(self) -> Callable[..., Awaitable[L_co]]: ...

    @property
    def update(self) -> Callable[..., Awaitable[L_co | None]]: ...


@dataclass(frozen=True, slots=True)
class Entries(Generic[E]):
    """A kind's entries: the request's store of them, their JSON, and how a ``POST``
    makes one (``new(request, account_sid, list_sid, params)``: the entry stored, None
    if the list was deleted meanwhile) and changes one (``change(request, entry,
    params)``: the entry after, None if it was deleted meanwhile); both refuse a bad
    value with the kind's code."""

    table: Callable[[Request], Table[E]]
    json: Callable[[E], dict]
    new: Callable[[Request, str, str, Params], Awaitable[E | None]]
    change: Callable[[Request, E, Params], Awaitable[E | None]]


@dataclass(frozen=True, slots=True)
class SipListKind:
    """One kind of SIP list: its name in the path and its entries', their SID
    prefixes, the longest ``FriendlyName`` it takes, the code of its validation errors,
    and (``taken``) the store's refusals of a name another list has."""

    name: str
    entries: str
    prefixes: tuple[str, str]
    max_name: int
    code: int
    taken: tuple[type[Exception], ...] = ()

    @property
    def list_path(self) -> str:
        """The route of one list; that of the lists is the route without ``/{list_sid}``."""
        return f"{ACCOUNT}/SIP/{self.name}/{{list_sid}}.json"

    @property
    def entry_path(self) -> str:
        """The route of one entry; that of the list's is the route without ``/{sid}``."""
        return self.list_path.removesuffix(".json") + f"/{self.entries}/{{sid}}.json"

    def base(self, account_sid: str, list_sid: str) -> str:
        """The list's URI without ``.json``."""
        return f"{account_uri(account_sid)}/SIP/{self.name}/{list_sid}"

    def entry_json(self, entry: SipEntry, list_sid: str, **own: object) -> dict:
        """An entry of list ``list_sid`` as Twilio shows it: what every entry shows
        (its list's SID as ``<list>_sid``) and ``own``, the kind's, by name."""
        base = self.base(entry.account_sid, list_sid)
        shown = {
            "account_sid": entry.account_sid,
            "date_created": rfc2822(entry.date_created),
            "date_updated": rfc2822(entry.date_updated),
            f"{self.noun.replace(' ', '_')}_sid": list_sid,
            "sid": entry.sid,
            "uri": f"{base}/{self.entries}/{entry.sid}.json",
            **own,
        }
        return dict(sorted(shown.items()))

    def list_json(self, sip_list: SipList) -> dict:
        """A list as Twilio shows it."""
        base = self.base(sip_list.account_sid, sip_list.sid)
        return {
            "account_sid": sip_list.account_sid,
            "date_created": rfc2822(sip_list.date_created),
            "date_updated": rfc2822(sip_list.date_updated),
            "friendly_name": sip_list.friendly_name,
            "sid": sip_list.sid,
            "subresource_uris": {snake_case(self.entries): f"{base}/{self.entries}.json"},
            "uri": f"{base}.json",
        }

    def invalid(self, message: str) -> ApiError:
        """A 400 with the kind's code."""
        return ApiError.bad_parameter(message, self.code)

    def friendly_name(self, value: str | None) -> str:
        """A list's (or entry's) required ``FriendlyName``."""
        if not value:
            raise self.invalid("A FriendlyName is required")
        if len(value) > self.max_name:
            raise self.invalid(f"FriendlyName must have 1 to {self.max_name} characters")
        return value

    @contextmanager
    def _name_refused(self, name: str) -> Iterator[None]:
        try:
            yield
        except self.taken:
            raise self.invalid(f"A {self.noun} named {name} exists already") from None

    @property
    def noun(self) -> str:
        """``CredentialLists``: ``credential list``."""
        return snake_case(self.name).removesuffix("s").replace("_", " ")

    def add_routes(
        self,
        router: APIRouter,
        lists: Callable[[Request], NamedLists[L]],
        entries: Entries[E],
    ) -> None:
        """Route the lists of this kind and their ``entries`` on ``router``."""
        list_rows = Resource(self.list_path, self.prefixes[:1], lists, self.list_json)
        entry_rows = Resource(
            self.entry_path, self.prefixes, entries.table, entries.json, parent=list_rows
        )

        async def create_list(request: Request, account: PathAccount) -> Response:
            name = self.friendly_name((await form_params(request)).get("FriendlyName"))
            with self._name_refused(name):
                created = await lists(request).create(account.sid, name)
            return JSONResponse(self.list_json(created), status_code=201)

        async def update_list(request: Request, list_sid: str, account: PathAccount) -> Response:
            params = await form_params(request)
            await list_rows.existing(request, account.sid, list_sid)
            name = self.friendly_name(params.get("FriendlyName"))
            with self._name_refused(name):
                updated = await lists(request).update(account.sid, list_sid, name)
            return JSONResponse(self.list_json(found(request, updated)))  # None: deleted

        async def create_entry(request: Request, list_sid: str, account: PathAccount) -> Response:
            params = await form_params(request)
            await list_rows.existing(request, account.sid, list_sid)
            created = await entries.new(request, account.sid, list_sid, params)
            return JSONResponse(entries.json(found(request, created)), status_code=201)

        async def update_entry(
            request: Request, list_sid: str, sid: str, account: PathAccount
        ) -> Response:
            params = await form_params(request)
            entry = await entry_rows.existing(request, account.sid, list_sid, sid)
            changed = await entries.change(request, entry, params)
            return JSONResponse(entries.json(found(request, changed)))  # None: deleted

        router.add_api_route(list_rows.list_path, create_list, methods=["POST"])
        router.add_api_route(self.list_path, update_list, methods=["POST"])
        router.add_api_route(entry_rows.list_path, create_entry, methods=["POST"])
        router.add_api_route(self.entry_path, update_entry, methods=["POST"])
        list_rows.add_routes(router)
        entry_rows.add_routes(router)
