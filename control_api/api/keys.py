"""The Keys resource: API keys (SK…) that sign browser clients' access tokens.

``POST Keys.json`` (``FriendlyName``) makes a key and answers, once only, with its
``secret`` (201); ``GET Keys.json`` lists the account's keys and ``GET``/``POST``/
``DELETE Keys/{Sid}.json`` fetch, rename and delete one; neither shows the secret
again. Deleting a key makes every token it signed invalid at once.
"""

from __future__ import annotations

from collections.abc import Callable

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse

from control_api.api.auth import PathAccount
from control_api.api.params import form_params, parse_friendly_name
from control_api.api.resource import Resource
from control_api.api.state import store_of
from control_api.sids import rfc2822
from control_api.store import ApiKey, ApiKeyStore

__all__ = ["add_key_routes", "key_json", "router"]

router = APIRouter()

ACCOUNT = "/2010-04-01/Accounts/{account_sid}"


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


def add_key_routes(
    router: APIRouter, name: str, keys: Callable[[Request], ApiKeyStore]
) -> Resource[ApiKey]:
    """Route a list of API keys, ``Keys`` or ``SigningKeys`` (``name``), over the
    request's ``keys``, on ``router``: create, list, fetch, rename and delete."""
    resource = Resource(f"{ACCOUNT}/{name}/{{sid}}.json", ("SK",), keys, key_json)

    async def create_key(request: Request, account: PathAccount) -> Response:
        params = await form_params(request)
        key = await keys(request).create(account.sid, _friendly_name(params.get("FriendlyName")))
        return JSONResponse(key_json(key, with_secret=True), status_code=201)

    async def update_key(request: Request, sid: str, account: PathAccount) -> Response:
        params = await form_params(request)
        key = await resource.existing(request, account.sid, sid)
        if "FriendlyName" in params:
            friendly_name = _friendly_name(params.get("FriendlyName"))
            key = await keys(request).update(account.sid, sid, friendly_name) or key
        return JSONResponse(key_json(key))

    router.add_api_route(resource.list_path, create_key, methods=["POST"])
    router.add_api_route(resource.path, update_key, methods=["POST"])
    resource.add_routes(router)
    return resource


KEYS = add_key_routes(router, "Keys", lambda r: store_of(r).api_keys)
