"""What every resource router does with one row: find it by its SID, or answer 404.

Twilio answers 404 with code 20404 for a SID the account has no row for, whether the
SID is of the wrong form, of another account or deleted. A router checks the form of
each SID in the path first (``path_sid``), which keeps arbitrary path text (NUL, say)
away from the database, then asks the store and hands the answer to ``found`` (a row
or None) or ``deleted`` (whether a row was deleted)::

    path_sid(request, sid, "SK")
    key = found(request, await store.api_keys.get(account.sid, sid))
"""

from __future__ import annotations

from typing import TypeVar

from fastapi import Request, Response

from control_api.errors import ApiError
from control_api.sids import is_sid

__all__ = ["deleted", "found", "path_sid"]

T = TypeVar("T")


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
