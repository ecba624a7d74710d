"""What every resource router does with its rows: find one by its SIDs, or answer 404,
and the routes that only read or delete them.

Twilio answers 404 with code 20404 for a SID the account has no row for, whether the
SID is of the wrong form, of another account or deleted. A router checks the form of
each SID in the path first (``path_sid``), which keeps arbitrary path text (NUL, say)
away from the database, then asks the store and hands the answer to ``found`` (a row
or None) or ``deleted`` (whether a row was deleted)::

    path_sid(request, sid, "SK")
    key = found(request, await store.api_keys.get(account.sid, sid))

A ``Resource`` does that for one resource, and routes its list (``GET``), and the
``GET`` and ``DELETE`` of one row, the same way for every resource::

    KEYS = Resource(INSTANCE, ("SK",), lambda r: store_of(r).api_keys, key_json)
    KEYS.add_routes(router)
    key = await KEYS.existing(request, account.sid, sid)
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import KW_ONLY, dataclass, field
from datetime import datetime
from typing import Any, Generic, Protocol, TypeVar

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse

from control_api.api.auth import PathAccount
from control_api.api.filters import Filter
from control_api.api.paging import page_response
from control_api.api.params import snake_case
from control_api.errors import ApiError
from control_api.sids import is_sid, rfc2822

__all__ = [
    "Dated",
    "Resource",
    "Show",
    "Table",
    "deleted",
    "found",
    "json_date",
    "path_sid",
    "stored_dates",
]

T = TypeVar("T")
T_co = TypeVar("T_co", covariant=True)

_PARAMETER = re.compile(r"{(\w+)}")


def path_sid(request: Request, value: str, *prefixes: str) -> str:
    """``value``, a path segment, if it is a SID of one of ``prefixes``; else 404."""
    if not any(is_sid(value, prefix) for prefix in prefixes):
        raise ApiError.not_found(request.url.path)
    return value


def found(request: Request, row: T | None) -> T:
    """``row``, or 404 for the requested path when there is none."""
    if row is None:
        raise ApiError.not_found(request.url.path)
    return row


def deleted(request: Request, done: bool) -> Response:
    """The answer to a DELETE: 204 when a row was deleted, else 404."""
    if not done:
        raise ApiError.not_found(request.url.path)
    return Response(status_code=204)


class Dated(Protocol):
    """A row whose dates are set when it is stored (its record allows None before)."""

    @property
    def date_created(self) -> datetime | None: ...

    @property
    def date_updated(self) -> datetime | None: ...


def json_date(value: datetime | None) -> str | None:
    """A time as the JSON shows it (RFC 2822), or None for none."""
    return None if value is None else rfc2822(value)


def stored_dates(row: Dated) -> tuple[str, str]:
    """A stored row's ``date_created`` and ``date_updated``, as its JSON shows them."""
    created, updated = row.date_created, row.date_updated
    assert created is not None and updated is not None, "a stored row is dated"
    return rfc2822(created), rfc2822(updated)


class Table(Protocol[T_co]):
    """Where a resource's rows are (``store.rows.Owned`` is one): each method takes the
    account's SID and then the SIDs of the path, in its order; ``page`` takes the
    list's filters and ``offset`` and ``limit`` as keywords."""

    @property
    def get(self) -> Callable[..., Awaitable[T_co | None]]: ...

    @property
    def delete(self) -> Callable[..., Awaitable[bool]]: ...

    @property
    def page(self) -> Callable[..., Awaitable[Sequence[T_co]]]: ...


# Rows of a resource -> their JSON, as Twilio shows them (the request reaches the store
# for a resource whose JSON is more than its row).
Show = Callable[[Request, Sequence[T]], Awaitable[list[dict]]]


@dataclass(frozen=True)
class Resource(Generic[T]):
    """One resource of an account: where its rows are, how they show, and its routes.

    ``path`` is the path of one row, ``…/Accounts/{account_sid}/Keys/{sid}.json``, or
    of a nested one, ``…/CredentialLists/{list_sid}/Credentials/{sid}.json``; its list
    is the path without the last SID (``…/Credentials.json``). ``prefixes`` are the
    SID prefixes of the path's SIDs after the account's, in order (``("CL", "CR")``; a
    tuple where a SID may have either prefix). ``table`` gives the request's rows,
    ``render`` the JSON of a row, or ``show`` that of rows whose JSON needs more than
    the row; ``filters`` are the list's query filters (``control_api.api.filters``) and
    ``key`` its key, by default its name in snake case (``…/IpAddresses.json``:
    ``ip_addresses``). A nested resource's ``parent`` is checked to exist before its
    list is read (after the query: a bad filter is a 400 first).
    """

    path: str
    prefixes: tuple[str | tuple[str, ...], ...]
    table: Callable[[Request], Table[T]]
    render: Callable[[T], dict] | None = None
    filters: Mapping[str, Filter] = field(default_factory=dict)
    _: KW_ONLY
    show: Show[T] | None = None
    key: str = ""
    parent: Resource[Any] | None = None

    def __post_init__(self) -> None:
        if (self.render is None) == (self.show is None):
            raise TypeError("a Resource has either a render or a show")

    @property
    def list_path(self) -> str:
        return self.path.rsplit("/", 1)[0] + ".json"

    @property
    def list_key(self) -> str:
        return self.key or snake_case(self.list_path.rsplit("/", 1)[1].removesuffix(".json"))

    async def rendered(self, request: Request, rows: Sequence[T]) -> list[dict]:
        """``rows`` as Twilio shows them."""
        if self.show is not None:
            return await self.show(request, rows)
        assert self.render is not None  # one of the two, as __post_init__ checks
        return [self.render(row) for row in rows]

    def checked(self, request: Request, sids: Sequence[str]) -> Sequence[str]:
        """``sids`` (the path's after the account's, in order), each of its prefixes;
        else 404."""
        for sid, prefix in zip(sids, self.prefixes, strict=True):
            path_sid(request, sid, *_alternatives(prefix))
        return sids

    async def existing(self, request: Request, account_sid: str, *sids: str) -> T:
        """The account's row that ``sids`` (the path's, in order) name; else 404."""
        self.checked(request, sids)
        return found(request, await self.table(request).get(account_sid, *sids))

    async def json(self, request: Request, row: T) -> dict:
        """One row as Twilio shows it."""
        return (await self.rendered(request, [row]))[0]

    async def page(self, request: Request, account_sid: str, *parent_sids: str) -> Response:
        """The list's page the query asks for: the account's rows (under ``parent_sids``)."""

        async def fetch(**query: Any) -> list[dict]:
            if self.parent is not None:
                await self.parent.existing(request, account_sid, *parent_sids)
            rows = await self.table(request).page(account_sid, *parent_sids, **query)
            return await self.rendered(request, rows)

        return await page_response(request, self.list_key, fetch, _as_is, self.filters)

    def add_routes(
        self,
        router: APIRouter,
        refuse_delete: Callable[[Request, T], Awaitable[None]] | None = None,
    ) -> None:
        """Route ``GET`` of the list and ``GET`` and ``DELETE`` of one row on ``router``;
        ``refuse_delete`` raises (400) for a row that cannot be deleted (yet)."""

        async def list_rows(request: Request, account: PathAccount) -> Response:
            parent_sids = _path_values(request, self.list_path)  # checked by the parent
            return await self.page(request, account.sid, *parent_sids)

        async def fetch_row(request: Request, account: PathAccount) -> Response:
            row = await self.existing(request, account.sid, *_path_values(request, self.path))
            return JSONResponse(await self.json(request, row))

        async def delete_row(request: Request, account: PathAccount) -> Response:
            sids = self.checked(request, _path_values(request, self.path))
            if refuse_delete is not None:
                await refuse_delete(request, await self.existing(request, account.sid, *sids))
            return deleted(request, await self.table(request).delete(account.sid, *sids))

        router.add_api_route(self.list_path, list_rows, methods=["GET"])
        router.add_api_route(self.path, fetch_row, methods=["GET"])
        router.add_api_route(self.path, delete_row, methods=["DELETE"])


def _path_values(request: Request, path: str) -> list[str]:
    """The values of ``path``'s parameters after the account's, as the request gives them."""
    return [request.path_params[name] for name in _PARAMETER.findall(path)[1:]]


def _alternatives(prefix: str | tuple[str, ...]) -> tuple[str, ...]:
    return (prefix,) if isinstance(prefix, str) else prefix


def _as_is(body: dict) -> dict:
    return body
