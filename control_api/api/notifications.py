"""Call logs: the Notifications resources and a call's Events.

``GET Notifications.json`` (the account's, filters ``Log`` 0 error / 1 warning and
``MessageDate`` with ``<``/``>``), ``GET Notifications/{NO}.json``,
``GET Calls/{CA}/Notifications.json`` (the same filters, the call's) and
``GET Calls/{CA}/Notifications/{NO}.json``, newest first; ``GET Calls/{CA}/Events.json``,
the webhook requests the call made and their answers, oldest first.

A list shows what Twilio's list shows (no request variables, response headers or
body); a fetch shows them too. The voice runtime writes the rows
(control_api/call_log.py).
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse

from control_api.api.accounts import API_VERSION, account_uri
from control_api.api.auth import PathAccount
from control_api.api.filters import DateRange, Filter, equal
from control_api.api.paging import page_response
from control_api.api.params import choice_parser
from control_api.api.resource import found, json_date, path_sid
from control_api.api.state import store_of
from control_api.call_log import more_info
from control_api.store import Account, CallEvent, NotificationRecord

__all__ = ["event_json", "notification_json", "router"]

router = APIRouter()

ACCOUNT = "/2010-04-01/Accounts/{account_sid}"
LIST = ACCOUNT + "/Notifications.json"
INSTANCE = ACCOUNT + "/Notifications/{sid}.json"
CALL_LIST = ACCOUNT + "/Calls/{call_sid}/Notifications.json"
CALL_INSTANCE = ACCOUNT + "/Calls/{call_sid}/Notifications/{sid}.json"
EVENTS = ACCOUNT + "/Calls/{call_sid}/Events.json"

_LOG = choice_parser(("0", "1"))

FILTERS: dict[str, Filter] = {
    "Log": equal("log", lambda name, value: int(_LOG(name, value) or 0)),
    "MessageDate": DateRange.filter("message_date"),
}


def notification_json(record: NotificationRecord, *, scope: str = "account", full: bool) -> dict:
    """Twilio's Notification; ``full`` (a fetch) adds the request variables and the
    response's headers and body. ``scope`` "call" makes its ``uri`` the call's."""
    base = account_uri(record.account_sid)
    if scope == "call" and record.call_sid:
        base += f"/Calls/{record.call_sid}"
    body: dict[str, Any] = {
        "account_sid": record.account_sid,
        "api_version": API_VERSION,
        "call_sid": record.call_sid,
        "date_created": json_date(record.date_created),
        "date_updated": json_date(record.date_updated),
        "error_code": record.error_code,
        "log": str(record.log),
        "message_date": json_date(record.message_date),
        "message_text": record.message_text,
        "more_info": more_info(record.error_code),
        "request_method": record.request_method,
        "request_url": record.request_url or "",
        "sid": record.sid,
        "uri": f"{base}/Notifications/{record.sid}.json",
    }
    if full:
        body["request_variables"] = record.request_variables or ""
        body["response_body"] = record.response_body or ""
        body["response_headers"] = record.response_headers or ""
    return body


def event_json(event: CallEvent) -> dict:
    """Twilio's call Event: the request (method, url, parameters) and the response
    (None when there was none)."""
    parameters: dict[str, str] = {}
    for name, value in event.request_parameters:
        parameters.setdefault(name, value)
    response = None
    if event.response_code is not None:
        response = {
            "response_code": event.response_code,
            "request_duration": event.request_duration,
            "content_type": event.content_type,
            "response_body": event.response_body,
            "date_created": json_date(event.date_created),
        }
    return {
        "request": {
            "method": event.request_method,
            "url": event.request_url,
            "parameters": parameters,
            "date_created": json_date(event.date_created),
            "error": event.error,
        },
        "response": response,
    }


async def _call(request: Request, account: Account, call_sid: str) -> str:
    path_sid(request, call_sid, "CA")
    found(request, await store_of(request).calls.get(account.sid, call_sid))
    return call_sid


async def _list(request: Request, account: Account, call_sid: str | None = None) -> Response:
    notifications = store_of(request).notifications
    scope = "account" if call_sid is None else "call"

    async def fetch(**query: Any) -> list[NotificationRecord]:
        if call_sid is not None:
            query["call_sid"] = call_sid
        return await notifications.page(account.sid, **query)

    def render(record: NotificationRecord) -> dict:
        return notification_json(record, scope=scope, full=False)

    return await page_response(request, "notifications", fetch, render, FILTERS)


async def _fetch(request: Request, account: Account, sid: str, call_sid: str | None = None):
    path_sid(request, sid, "NO")
    record = found(request, await store_of(request).notifications.get(account.sid, sid))
    if call_sid is not None and record.call_sid != call_sid:
        found(request, None)
    scope = "account" if call_sid is None else "call"
    return JSONResponse(notification_json(record, scope=scope, full=True))


@router.get(LIST)
async def list_notifications(request: Request, account: PathAccount) -> Response:
    return await _list(request, account)


@router.get(INSTANCE)
async def fetch_notification(request: Request, sid: str, account: PathAccount) -> Response:
    return await _fetch(request, account, sid)


@router.get(CALL_LIST)
async def list_call_notifications(
    request: Request, call_sid: str, account: PathAccount
) -> Response:
    return await _list(request, account, await _call(request, account, call_sid))


@router.get(CALL_INSTANCE)
async def fetch_call_notification(
    request: Request, call_sid: str, sid: str, account: PathAccount
) -> Response:
    return await _fetch(request, account, sid, await _call(request, account, call_sid))


@router.get(EVENTS)
async def list_call_events(request: Request, call_sid: str, account: PathAccount) -> Response:
    await _call(request, account, call_sid)
    events = store_of(request).call_events

    async def fetch(*, offset: int, limit: int) -> list[CallEvent]:
        return await events.page(account.sid, call_sid, offset=offset, limit=limit)

    return await page_response(request, "events", fetch, event_json)
