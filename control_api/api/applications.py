"""The Applications resource: TwiML applications (AP…) for browser clients' calls.

A browser's access token names an application in its outgoing voice grant; a call
the browser places fetches TwiML from the application's ``VoiceUrl`` with
``VoiceMethod`` (``From=client:<identity>``) and reports to its ``StatusCallback``.
``POST Applications.json`` creates (201); ``GET`` lists (filter ``FriendlyName``);
``GET``/``POST``/``DELETE Applications/{Sid}.json`` fetch, update and delete one.
"""

from __future__ import annotations

from functools import partial
from typing import Any

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse

from control_api.api.accounts import API_VERSION, account_uri
from control_api.api.auth import PathAccount
from control_api.api.filters import Filter
from control_api.api.paging import page_response
from control_api.api.params import (
    Params,
    Parser,
    form_params,
    method_parser,
    parse_fields,
    parse_friendly_name,
    url_parser,
)
from control_api.api.resource import deleted, found, path_sid
from control_api.api.state import store_of
from control_api.errors import (
    NUMBER_METHOD_INVALID,
    NUMBER_URL_INVALID,
)
from control_api.sids import rfc2822
from control_api.store import Account, Application

__all__ = ["application_json", "router"]

router = APIRouter()

LIST = "/2010-04-01/Accounts/{account_sid}/Applications.json"
INSTANCE = "/2010-04-01/Accounts/{account_sid}/Applications/{sid}.json"

_url = url_parser(NUMBER_URL_INVALID)  # 21402/21403 as for numbers
_method = method_parser(NUMBER_METHOD_INVALID)

# Request parameter -> (store field, parser), in the order they are checked.
SETTINGS: dict[str, tuple[str, Parser]] = {
    "FriendlyName": ("friendly_name", parse_friendly_name),
    "VoiceUrl": ("voice_url", _url),
    "VoiceFallbackUrl": ("voice_fallback_url", _url),
    "StatusCallback": ("status_callback", _url),
    "VoiceMethod": ("voice_method", _method),
    "VoiceFallbackMethod": ("voice_fallback_method", _method),
    "StatusCallbackMethod": ("status_callback_method", _method),
}


def _friendly_name_filter(params: Params, name: str) -> dict[str, Any]:
    """The name as given, empty too (an application may be unnamed)."""
    return {"friendly_name": params.get(name)}


FILTERS: dict[str, Filter] = {"FriendlyName": _friendly_name_filter}


def application_json(application: Application) -> dict:
    return {
        "account_sid": application.account_sid,
        "api_version": API_VERSION,
        "date_created": rfc2822(application.date_created),
        "date_updated": rfc2822(application.date_updated),
        "friendly_name": application.friendly_name,
        "message_status_callback": None,
        "public_application_connect_enabled": False,
        "sid": application.sid,
        "sms_fallback_method": "POST",
        "sms_fallback_url": None,
        "sms_method": "POST",
        "sms_status_callback": None,
        "sms_url": None,
        "status_callback": application.status_callback,
        "status_callback_method": application.status_callback_method,
        "uri": f"{account_uri(application.account_sid)}/Applications/{application.sid}.json",
        "voice_caller_id_lookup": False,
        "voice_fallback_method": application.voice_fallback_method,
        "voice_fallback_url": application.voice_fallback_url,
        "voice_method": application.voice_method,
        "voice_url": application.voice_url,
    }


async def _existing(request: Request, account: Account, sid: str) -> Application:
    path_sid(request, sid, "AP")
    return found(request, await store_of(request).applications.get(account.sid, sid))


@router.post(LIST)
async def create(request: Request, account: PathAccount) -> Response:
    fields = parse_fields(await form_params(request), SETTINGS)
    application = await store_of(request).applications.create(account.sid, **fields)
    return JSONResponse(application_json(application), status_code=201)


@router.get(LIST)
async def list_all(request: Request, account: PathAccount) -> Response:
    applications = partial(store_of(request).applications.page, account.sid)
    return await page_response(request, "applications", applications, application_json, FILTERS)


@router.get(INSTANCE)
async def fetch(request: Request, sid: str, account: PathAccount) -> Response:
    return JSONResponse(application_json(await _existing(request, account, sid)))


@router.post(INSTANCE)
async def update(request: Request, sid: str, account: PathAccount) -> Response:
    fields = parse_fields(await form_params(request), SETTINGS)
    application = await _existing(request, account, sid)
    if fields:
        updated = await store_of(request).applications.update(account.sid, sid, **fields)
        application = updated or application
    return JSONResponse(application_json(application))


@router.delete(INSTANCE)
async def delete(request: Request, sid: str, account: PathAccount) -> Response:
    path_sid(request, sid, "AP")
    return deleted(request, await store_of(request).applications.delete(account.sid, sid))
