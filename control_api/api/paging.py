"""Twilio's list pages: ``PageSize``, ``Page`` and ``PageToken`` in, the page shape out.

A page answers ``{"<key>": [...], "page", "page_size", "start", "end", "uri",
"first_page_uri", "next_page_uri", "previous_page_uri"}``. The official library walks a
list by following ``next_page_uri``, so that URI keeps every filter of the request.

``PageToken`` is ``PT`` and the offset of the page's first row; it wins over ``Page``
when both are given. Pages are offsets into the list as it is when each page is read.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import TypeVar
from urllib.parse import urlencode

from fastapi import Request
from fastapi.responses import JSONResponse

from control_api.api.filters import Filter, query_filters
from control_api.api.params import Params, query_params
from control_api.errors import ApiError

__all__ = ["DEFAULT_PAGE_SIZE", "MAX_PAGE_SIZE", "PageRequest", "page_body", "page_response"]

DEFAULT_PAGE_SIZE = 50
MAX_PAGE_SIZE = 1000
MAX_OFFSET = 10**12
_PAGING = ("Page", "PageSize", "PageToken")
_TOKEN = re.compile(r"PT([0-9]{1,13})")
_NUMBER = re.compile(r"[0-9]{1,13}")

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class PageRequest:
    page: int
    page_size: int
    offset: int

    @classmethod
    def from_params(cls, params: Params) -> PageRequest:
        page_size = _number(params, "PageSize", DEFAULT_PAGE_SIZE)
        if not 1 <= page_size <= MAX_PAGE_SIZE:
            raise ApiError.bad_parameter(f"PageSize must be between 1 and {MAX_PAGE_SIZE}")
        page = _number(params, "Page", 0)
        token = params.get("PageToken")
        if token:
            match = _TOKEN.fullmatch(token)
            if match is None:
                raise ApiError.bad_parameter("PageToken is not valid")
            offset = int(match.group(1))
        else:
            offset = page * page_size
        if offset > MAX_OFFSET:
            raise ApiError.bad_parameter("Page is out of range")
        return cls(page, page_size, offset)

    @property
    def fetch_limit(self) -> int:
        """Rows to ask the store for: one more than a page tells whether another follows."""
        return self.page_size + 1


def page_body(
    request: Request, params: Params, key: str, rows: list[dict], page: PageRequest
) -> dict:
    """The list answer for ``rows`` (as fetched with ``page.fetch_limit``)."""
    more = len(rows) > page.page_size
    rows = rows[: page.page_size]
    kept = [(name, value) for name, value in params.multi_items() if name not in _PAGING]
    path = request.url.path

    def uri(number: int, offset: int | None) -> str:
        query = [*kept, ("PageSize", str(page.page_size)), ("Page", str(number))]
        if offset is not None:
            query.append(("PageToken", f"PT{offset}"))
        return f"{path}?{urlencode(query)}"

    previous_offset = max(page.offset - page.page_size, 0)
    return {
        key: rows,
        "page": page.page,
        "page_size": page.page_size,
        "start": page.offset,
        "end": page.offset + max(len(rows) - 1, 0),
        "uri": uri(page.page, page.offset if page.offset else None),
        "first_page_uri": uri(0, None),
        "next_page_uri": uri(page.page + 1, page.offset + page.page_size) if more else None,
        "previous_page_uri": (
            uri(max(page.page - 1, 0), previous_offset) if page.offset > 0 else None
        ),
    }


async def page_response(
    request: Request,
    key: str,
    fetch: Callable[..., Awaitable[Iterable[T]]],
    render: Callable[[T], dict],
    filters: Mapping[str, Filter] | None = None,
) -> JSONResponse:
    """A list resource's GET: the page ``fetch`` reads, each row as ``render`` shows it.

    ``fetch`` takes, as keywords, the store's filters that the query gives (read by
    ``filters``: ``control_api.api.filters``) and the page's ``offset`` and ``limit``,
    as a store's ``page`` does: ``functools.partial(store.calls.page, account_sid)``.
    """
    params = query_params(request)
    page = PageRequest.from_params(params)
    query = query_filters(params, filters or {})
    found = await fetch(**query, offset=page.offset, limit=page.fetch_limit)
    rows = [render(row) for row in found]
    return JSONResponse(page_body(request, params, key, rows, page))


def _number(params: Params, name: str, default: int) -> int:
    value = params.get(name)
    if value is None or value == "":
        return default
    if _NUMBER.fullmatch(value) is None:
        raise ApiError.bad_parameter(f"{name} must be a whole number")
    return int(value)
