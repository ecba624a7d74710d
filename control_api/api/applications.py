"""The Applications resource: TwiML applications (AP…) for browser clients' calls.

A browser's access token names an application in its outgoing voice grant; a call
the browser places fetches TwiML from the application's ``VoiceUrl`` with
``VoiceMethod`` (``From=client:<identity>``) and reports to its ``StatusCallback``.
``POST Applications.json`` creates (201); ``GET`` lists (filter ``FriendlyName``);
``GET``/``POST``/``DELETE Applications/{Sid}.json`` fetch, update and delete one.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse

from control_api.api.accounts import API_VERSION, account_uri
from control_api.api.auth import PathAccount
from control_api.api.filters import Filter
from control_api.api.params import (
    Params,
    Parser,
    form_params,
    method_parser,
    parse_fields,
    parse_friendly_name,
    settings,
    url_parser,
)
from control_api.api.resource import Resource
from control_api.api.state import store_of
from control_api.errors import (
    NUMBER_METHOD_INVALID,
    NUMBER_URL_INVALID,
)
from control_api.sids import rfc2822
from control_api.store import Application

__all__ = ["application_json", "router"]

router = APIRouter()

INSTANCE = "/2010-04-01/Accounts/{account_sid}/Applications/{sid}.json"

# Request parameter -> (store field, parser), in the order they are checked; URLs and
# methods are refused with 21402/21403, as for numbers.
SETTINGS: dict[str, tuple[str, Parser]] = {
    **settings(parse_friendly_name, "FriendlyName"),
    **settings(url_parser(NUMBER_URL_INVALID), "VoiceUrl", "VoiceFallbackUrl", "StatusCallback"),
    **settings(
        method_parser(NUMBER_METHOD_INVALID),
        "VoiceMethod",
        "VoiceFallbackMethod",
        "StatusCallbackMethod",
    ),
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


APPLICATIONS = Resource(
    INSTANCE, ("AP",), lambda r: store_of(r).applications, application_json, FILTERS
)
APPLICATIONS.add_routes(router)


@router.post(APPLICATIONS.list_path)
async def create(request: Request, account: PathAccount) -> Response:
    fields = parse_fields(await form_params(request), SETTINGS)
    application = await store_of(request).applications.create(account.sid, **fields)
    return JSONResponse(application_json(application), status_code=201)


@router.post(INSTANCE)
async def update(request: Request, sid: str, account: PathAccount) -> Response:
    fields = parse_fields(await form_params(request), SETTINGS)
    application = await APPLICATIONS.existing(request, account.sid, sid)
    if fields:
        updated = await store_of(request).applications.update(account.sid, sid, **fields)
        application = updated or application
    return JSONResponse(application_json(application))
