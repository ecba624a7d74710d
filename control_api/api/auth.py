"""HTTP Basic authentication with ``AccountSid:AuthToken`` or ``ApiKeySid:ApiKeySecret``.

Every resource lives under ``/Accounts/{AccountSid}``; credentials are good only for
their own account's path. Credentials that are wrong, missing, of a closed account, or
for another account than the path names all get the same answer, Twilio's 401 with
code 20003 "Authenticate", so the answer never tells whether an account exists.
Verified ``AccountSid:AuthToken`` pairs are remembered for ``ACCOUNT_CACHE_S`` seconds
(``AccountStore.authenticate``): a token rotated or an account suspended elsewhere stops
working within that bound, at once when changed through the same Store.
"""

from __future__ import annotations

import base64
import binascii
import hmac
from typing import Annotated

from fastapi import Depends, Request

from control_api.api.state import store_of
from control_api.errors import ApiError
from control_api.sids import is_sid
from control_api.store import Account, Store

__all__ = ["AuthenticatedAccount", "PathAccount", "authenticate", "path_account"]

# Compared against when the account does not exist, so that both cases take as long.
_NO_TOKEN = "0" * 32


async def authenticate(request: Request) -> Account:
    """The account whose credentials the request carries; raises 401 otherwise."""
    credentials = _basic_credentials(request.headers.get("authorization"))
    if credentials is None:
        raise ApiError.unauthorized()
    username, password = credentials
    store = store_of(request)
    if is_sid(username, "SK"):
        return await _key_account(store, username, password)
    # Constant-time compare, and a copy of the account at most ACCOUNT_CACHE_S old.
    account = (
        await store.accounts.authenticate(username, password) if is_sid(username, "AC") else None
    )
    if account is None:
        raise ApiError.unauthorized()
    return account


async def _key_account(store: Store, key_sid: str, secret: str) -> Account:
    """``ApiKeySid:ApiKeySecret`` (reference §1): the account the key belongs to."""

    key = await store.api_keys.find(key_sid)
    expected = key.secret if key is not None else _NO_TOKEN
    matches = hmac.compare_digest(secret.encode(), expected.encode())
    account = await store.accounts.get(key.account_sid) if key is not None and matches else None
    if account is None or account.status != "active":
        raise ApiError.unauthorized()
    return account


async def path_account(request: Request, account_sid: str) -> Account:
    """The authenticated account, which must be the one the path names."""
    account = await authenticate(request)
    if account.sid != account_sid:
        raise ApiError.unauthorized()
    return account


def _basic_credentials(header: str | None) -> tuple[str, str] | None:
    if header is None:
        return None
    scheme, _, encoded = header.partition(" ")
    if scheme.lower() != "basic":
        return None
    try:
        decoded = base64.b64decode(encoded.strip(), validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        return None
    username, colon, password = decoded.partition(":")
    return (username, password) if colon else None


# Route parameter types: ``account: PathAccount`` authenticates the request for its path.
AuthenticatedAccount = Annotated[Account, Depends(authenticate)]
PathAccount = Annotated[Account, Depends(path_account)]
