"""The Keys resource: API keys (SK…) that sign browser clients' access tokens.

``POST Keys.json`` (``FriendlyName``) makes a key and answers, once only, with its
``secret`` (201); ``GET Keys.json`` lists the account's keys and ``GET``/``POST``/
``DELETE Keys/{Sid}.json`` fetch, rename and delete one; neither shows the secret
again. Deleting a key makes every token it signed invalid at once.
"""

from __future__ import annotations

from functools import partial

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse

from control_api.api.auth import PathAccount
from control_api.api.paging import page_response
from control_api.api.params import form_params, parse_friendly_name
from control_api.api.resource import deleted, found, path_sid
from control_api.api.state import store_of
from control_api.sids import rfc2822
from control_api.store import Account, ApiKey

__all__ = ["key_json", "router"]

router = APIRouter()

LIST = "/2010-04-01/Accounts/{account_sid}/Keys.json"
INSTANCE = "/2010-04-01/Accounts/{account_sid}/Keys/{sid}.json"


def key_json(key: ApiKey, *, with_secret: bool = False) -> dict:
    body = {
        "sid": key.sid,
        "friendly_name": key.friendly_name,
        "date_created": rfc2822(key.date_created),
        "date_updated": rfc2822(key.date_updated),
    }
    if with_secret:
        body["secret"] = key.secret
    return body


def _friendly_name(value: str | None) -> str:
    return parse_friendly_name("FriendlyName", value or "")


async def _existing(request: Request, account: Account, sid: str) -> ApiKey:
    path_sid(request, sid, "SK")
    return found(request, await store_of(request).api_keys.get(account.sid, sid))


@router.post(LIST)
async def create_key(request: Request, account: PathAccount) -> Response:
    params = await form_params(request)
    name = _friendly_name(params.get("FriendlyName"))
    key = await store_of(request).api_keys.create(account.sid, name)
    return JSONResponse(key_json(key, with_secret=True), status_code=201)


@router.get(LIST)
async def list_keys(request: Request, account: PathAccount) -> Response:
    keys = partial(store_of(request).api_keys.page, account.sid)
    return await page_response(request, "keys", keys, key_json)


@router.get(INSTANCE)
async def fetch_key(request: Request, sid: str, account: PathAccount) -> Response:
    return JSONResponse(key_json(await _existing(request, account, sid)))


@router.post(INSTANCE)
async def update_key(request: Request, sid: str, account: PathAccount) -> Response:
    params = await form_params(request)
    key = await _existing(request, account, sid)
    if "FriendlyName" in params:
        name = _friendly_name(params.get("FriendlyName"))
        key = await store_of(request).api_keys.update(account.sid, sid, name) or key
    return JSONResponse(key_json(key))


@router.delete(INSTANCE)
async def delete_key(request: Request, sid: str, account: PathAccount) -> Response:
    path_sid(request, sid, "SK")
    return deleted(request, await store_of(request).api_keys.delete(account.sid, sid))
