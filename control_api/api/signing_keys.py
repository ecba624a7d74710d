"""The SigningKeys resource: signing keys (SK…), Twilio's other list of API keys.

A signing key is made, listed, renamed and deleted as a key of ``Keys.json`` is
(api/keys.py), in a list of its own: ``POST SigningKeys.json`` (``FriendlyName``)
answers, once only, with its ``secret`` (201); ``GET SigningKeys.json`` lists the
account's signing keys and ``GET``/``POST``/``DELETE SigningKeys/{Sid}.json`` fetch,
rename and delete one, never showing the secret again. As the spec says of the secret,
it signs access tokens and authenticates REST requests (``SKxxx:secret``) as a key's
does; deleting the key invalidates both at once.
"""

from __future__ import annotations

from functools import partial

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse

from control_api.api.auth import PathAccount
from control_api.api.keys import key_json
from control_api.api.paging import page_response
from control_api.api.params import form_params, parse_friendly_name
from control_api.api.resource import deleted, found, path_sid
from control_api.api.state import store_of
from control_api.store import Account, ApiKey

__all__ = ["router"]

router = APIRouter()

LIST = "/2010-04-01/Accounts/{account_sid}/SigningKeys.json"
INSTANCE = "/2010-04-01/Accounts/{account_sid}/SigningKeys/{sid}.json"


async def _existing(request: Request, account: Account, sid: str) -> ApiKey:
    path_sid(request, sid, "SK")
    return found(request, await store_of(request).signing_keys.get(account.sid, sid))


@router.post(LIST)
async def create_signing_key(request: Request, account: PathAccount) -> Response:
    params = await form_params(request)
    name = parse_friendly_name("FriendlyName", params.get("FriendlyName") or "")
    key = await store_of(request).signing_keys.create(account.sid, name)
    return JSONResponse(key_json(key, with_secret=True), status_code=201)


@router.get(LIST)
async def list_signing_keys(request: Request, account: PathAccount) -> Response:
    keys = partial(store_of(request).signing_keys.page, account.sid)
    return await page_response(request, "signing_keys", keys, key_json)


@router.get(INSTANCE)
async def fetch_signing_key(request: Request, sid: str, account: PathAccount) -> Response:
    return JSONResponse(key_json(await _existing(request, account, sid)))


@router.post(INSTANCE)
async def update_signing_key(request: Request, sid: str, account: PathAccount) -> Response:
    params = await form_params(request)
    key = await _existing(request, account, sid)
    if "FriendlyName" in params:
        name = parse_friendly_name("FriendlyName", params.get("FriendlyName") or "")
        key = await store_of(request).signing_keys.update(account.sid, sid, name) or key
    return JSONResponse(key_json(key))


@router.delete(INSTANCE)
async def delete_signing_key(request: Request, sid: str, account: PathAccount) -> Response:
    path_sid(request, sid, "SK")
    return deleted(request, await store_of(request).signing_keys.delete(account.sid, sid))
