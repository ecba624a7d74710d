"""The Calls resource: list, fetch, update (hang up, cancel, redirect) and delete.

Calls are written to the store by the call engine; this module reads them, and asks the
engine to act on live ones through ``LiveCalls``. Creating a call through the API
(``POST Calls.json``) checks its parameters as Twilio does and hands them to the engine,
which stores the call as queued and places it.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import replace
from datetime import datetime
from typing import Protocol, TypeVar

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse

from control_api.api.accounts import API_VERSION, account_uri
from control_api.api.auth import PathAccount
from control_api.api.balance import require_funds
from control_api.api.caller_ids import require_verified_caller
from control_api.api.filters import Filter, TimeRange, equal, number_text
from control_api.api.params import (
    Params,
    choice_parser,
    form_params,
    parse_method,
    parse_url,
    restore_plus,
)
from control_api.api.placing import places_no_calls, unplaceable
from control_api.api.resource import Resource, json_date
from control_api.api.state import live_calls_of, store_of
from control_api.errors import (
    CALL_METHOD_INVALID,
    CALL_NOT_IN_PROGRESS,
    CALL_URL_INVALID,
    CANNOT_DELETE_UNFINISHED,
    FROM_INVALID,
    FROM_REQUIRED,
    SERVICE_UNAVAILABLE,
    TO_INVALID,
    TO_REQUIRED,
    ApiError,
    error_response,
)
from control_api.sids import rfc2822
from control_api.store import Account, CallRecord, format_number, normalize_e164
from control_api.voice.port import LiveCalls, NewCall, NewMachineDetection, NewTwiml, Unroutable

__all__ = [
    "CALL_STATUSES",
    "FINISHED_STATUSES",
    "LiveCalls",
    "call_form",
    "call_json",
    "check_new_call",
    "check_parties",
    "existing_call",
    "live_resource_json",
    "places_no_calls",
    "router",
    "start_on_call",
    "stop_on_call",
    "unplaceable",
]

N = TypeVar("N")  # what a subresource is started with
T = TypeVar("T")  # what it is once started


class LiveResource(Protocol):
    """A stream or transcription of a live call, as its resource shows it."""

    @property
    def sid(self) -> str: ...
    @property
    def name(self) -> str | None: ...
    @property
    def status(self) -> str: ...
    @property
    def date_updated(self) -> datetime: ...


CALL_STATUSES = frozenset(
    {"queued", "ringing", "in-progress", "completed", "busy", "failed", "no-answer", "canceled"}
)
FINISHED_STATUSES = frozenset({"completed", "busy", "failed", "no-answer", "canceled"})

FILTERS: dict[str, Filter] = {
    "To": equal("to", number_text),
    "From": equal("from_", number_text),
    "Status": equal("status", choice_parser(sorted(CALL_STATUSES))),
    "ParentCallSid": equal("parent_call_sid"),
    "StartTime": TimeRange.filter("start_time"),
    "EndTime": TimeRange.filter("end_time"),
}

INSTANCE = "/2010-04-01/Accounts/{account_sid}/Calls/{sid}.json"

router = APIRouter()


def call_uri(account_sid: str, sid: str) -> str:
    return f"{account_uri(account_sid)}/Calls/{sid}"


def call_json(call: CallRecord) -> dict:
    base = call_uri(call.account_sid, call.sid)
    return {
        "account_sid": call.account_sid,
        "answered_by": call.answered_by,
        "api_version": API_VERSION,
        "caller_name": call.caller_name,
        "date_created": json_date(call.date_created),
        "date_updated": json_date(call.date_updated),
        "direction": call.direction,
        "duration": None if call.duration is None else str(call.duration),
        "end_time": json_date(call.end_time),
        "forwarded_from": call.forwarded_from,
        "from": call.from_,
        "from_formatted": format_number(call.from_),
        "group_sid": None,
        "parent_call_sid": call.parent_call_sid,
        "phone_number_sid": call.phone_number_sid,
        "price": call.price,
        "price_unit": call.price_unit,
        "queue_time": "0",
        "sid": call.sid,
        "start_time": json_date(call.start_time),
        "status": call.status,
        # Twilio's entries for the subresources built here (not payments, siprec,
        # user_defined_message(_subscription)s).
        "subresource_uris": {
            "events": f"{base}/Events.json",
            "notifications": f"{base}/Notifications.json",
            "recordings": f"{base}/Recordings.json",
            "streams": f"{base}/Streams.json",
            "transcriptions": f"{base}/Transcriptions.json",
        },
        "to": call.to,
        "to_formatted": format_number(call.to),
        "trunk_sid": None,
        "uri": f"{base}.json",
    }


async def _refuse_unfinished(request: Request, call: CallRecord) -> None:
    if call.status not in FINISHED_STATUSES:
        raise ApiError.bad_parameter(
            "Cannot delete a call that has not ended", CANNOT_DELETE_UNFINISHED
        )


CALLS = Resource(INSTANCE, ("CA",), lambda r: store_of(r).calls, call_json, FILTERS)
CALLS.add_routes(router, refuse_delete=_refuse_unfinished)


async def existing_call(request: Request, account: Account, sid: str) -> CallRecord:
    """The account's call ``sid`` (its subresources' too); else 404."""
    return await CALLS.existing(request, account.sid, sid)


async def call_form(request: Request, account: Account, sid: str) -> Params:
    """The form a request to the account's call ``sid`` (or one of its subresources)
    sends, once the call is found; else 404."""
    params = await form_params(request)
    await existing_call(request, account, sid)
    return params


async def start_on_call(
    request: Request,
    account: Account,
    call_sid: str,
    parse: Callable[[Params], N],
    start: Callable[[LiveCalls, N], Awaitable[T | None]],
    what: str,
) -> T:
    """Start ``what`` (a recording, a stream) on the account's call ``call_sid``: the
    form parsed by ``parse`` once the call is found (404 first), then ``start``ed on the
    live calls. A ``ValueError`` of ``start`` (a limit reached, a name taken) is a 400;
    nothing started (None) means the call is not in progress (21220)."""
    new = parse(await call_form(request, account, call_sid))
    try:
        started = await start(live_calls_of(request), new)
    except ValueError as exc:
        raise ApiError.bad_parameter(str(exc)) from None
    if started is None:
        raise ApiError.bad_parameter(
            f"Call is not in-progress. Cannot start a {what}.", CALL_NOT_IN_PROGRESS
        )
    return started


async def stop_on_call(
    request: Request,
    account: Account,
    call_sid: str,
    stop: Callable[[LiveCalls], Awaitable[T | None]],
    what: str,
) -> T:
    """``Status=stopped`` on ``what`` (a stream, a transcription) of the account's call
    ``call_sid``: ``stop`` raises ``LookupError`` for none of that sid or name (404) and
    gives None when the call is not in progress (21220)."""
    params = await call_form(request, account, call_sid)
    if params.get("Status") != "stopped":
        raise ApiError.bad_parameter("Status must be stopped")
    try:
        stopped = await stop(live_calls_of(request))
    except LookupError:
        raise ApiError.not_found(request.url.path) from None
    if stopped is None:
        raise ApiError.bad_parameter(
            f"Call is not in-progress. Cannot stop a {what}.", CALL_NOT_IN_PROGRESS
        )
    return stopped


def live_resource_json(
    account_sid: str, call_sid: str, found: LiveResource, collection: str
) -> dict[str, object]:
    """A call's ``Streams`` or ``Transcriptions`` resource, as the spec shows both."""
    return {
        "sid": found.sid,
        "account_sid": account_sid,
        "call_sid": call_sid,
        "name": found.name,
        "status": found.status,
        "date_updated": rfc2822(found.date_updated),
        "uri": f"{call_uri(account_sid, call_sid)}/{collection}/{found.sid}.json",
    }


async def unavailable(_request: Request, exc: Exception) -> JSONResponse:
    """Calls cannot be placed or reached here now (the node drains, or the node that
    holds the call did not answer): Twilio's 20503, so a client retries elsewhere."""
    return error_response(ApiError(503, SERVICE_UNAVAILABLE, str(exc)))


@router.post(CALLS.list_path)
async def create_call(request: Request, account: PathAccount) -> Response:
    params = await form_params(request)
    check_new_call(params)
    new_call = new_call_from(params)
    if request.client is not None:  # who asked: the dial policy logs it with a refusal
        new_call = replace(new_call, source_ip=request.client.host)
    await require_verified_caller(request, account.sid, new_call.from_)
    await require_funds(request, account.sid)
    try:
        record = await live_calls_of(request).create(account.sid, new_call)
    except Unroutable as exc:
        raise unplaceable(exc) from None
    if record is None:
        raise places_no_calls()
    return JSONResponse(call_json(record), status_code=201)


STATUS_EVENTS = frozenset({"initiated", "ringing", "answered", "completed"})


def new_call_from(params: Params) -> NewCall:
    """The checked parameters of ``POST Calls.json`` (reference §2)."""
    events = frozenset(
        event.strip().lower()
        for value in params.getlist("StatusCallbackEvent")
        for event in value.split()
    )
    unknown = events - STATUS_EVENTS
    if unknown:
        raise ApiError.bad_parameter(
            f"StatusCallbackEvent must be among {', '.join(sorted(STATUS_EVENTS))}"
        )
    digits = params.get("SendDigits") or None
    if digits and not all(c in "0123456789*#ABCDabcdw" for c in digits):
        raise ApiError.bad_parameter("SendDigits may hold only 0-9, *, #, A-D and w")
    return NewCall(
        to=restore_plus(params["To"]),
        from_=restore_plus(params["From"]),
        url=params.get("Url") or None,
        method=_method(params, "Method"),
        twiml=params.get("Twiml") or None,
        fallback_url=params.get("FallbackUrl") or None,
        fallback_method=_method(params, "FallbackMethod"),
        status_callback=params.get("StatusCallback") or None,
        status_callback_method=_method(params, "StatusCallbackMethod"),
        status_callback_events=events or frozenset({"completed"}),
        send_digits=digits,
        timeout=_bounded(params, "Timeout", 60, 1, 600),
        time_limit=_bounded(params, "TimeLimit", 14400, 1, 86400),
        record=(params.get("Record") or "").lower() == "true",
        recording_status_callback=params.get("RecordingStatusCallback") or None,
        caller_id=params.get("CallerId") or None,
        sip_auth_username=params.get("SipAuthUsername") or None,
        sip_auth_password=params.get("SipAuthPassword") or None,
        machine_detection=None if digits else machine_detection_from(params),
    )


MACHINE_DETECTION = {"enable": False, "detectmessageend": True}


def machine_detection_from(params: Params) -> NewMachineDetection | None:
    """``MachineDetection`` and its tuning; None when not asked for (or ``none``).
    Numbers outside Twilio's ranges are brought into them, as ``Timeout`` is."""
    mode = (params.get("MachineDetection") or "").strip().lower()
    if mode in ("", "none"):
        return None
    if mode not in MACHINE_DETECTION:
        raise ApiError.bad_parameter("MachineDetection must be Enable or DetectMessageEnd")
    return NewMachineDetection(
        detect_message_end=MACHINE_DETECTION[mode],
        timeout_s=_bounded(params, "MachineDetectionTimeout", 30, 3, 59),
        speech_threshold_ms=_bounded(params, "MachineDetectionSpeechThreshold", 2400, 1000, 6000),
        speech_end_threshold_ms=_bounded(
            params, "MachineDetectionSpeechEndThreshold", 1200, 500, 5000
        ),
        silence_timeout_ms=_bounded(params, "MachineDetectionSilenceTimeout", 5000, 2000, 10000),
        asynchronous=(params.get("AsyncAmd") or "").lower() == "true",
        callback=params.get("AsyncAmdStatusCallback") or None,
        callback_method=_method(params, "AsyncAmdStatusCallbackMethod"),
    )


def _method(params: Params, name: str) -> str:
    if not params.get(name):
        return "POST"
    return parse_method(name, params[name], CALL_METHOD_INVALID)


def _bounded(params: Params, name: str, default: int, low: int, high: int) -> int:
    text = params.get(name)
    if not text:
        return default
    try:
        value = int(text)
    except ValueError:
        raise ApiError.bad_parameter(f"{name} must be a whole number") from None
    return max(low, min(high, value))


def check_new_call(params: Params) -> None:
    """Twilio's checks of ``POST Calls.json``, in Twilio's order of codes."""
    check_parties(params)
    if not (params.get("Url") or params.get("Twiml") or params.get("ApplicationSid")):
        raise ApiError.bad_parameter(
            "One of Url, Twiml or ApplicationSid is required.", CALL_URL_INVALID
        )
    for name in ("Url", "FallbackUrl", "StatusCallback"):
        if params.get(name):
            parse_url(name, params[name], CALL_URL_INVALID)
    for name in ("Method", "FallbackMethod", "StatusCallbackMethod"):
        if name in params:
            parse_method(name, params[name], CALL_METHOD_INVALID)


def check_parties(params: Params) -> None:
    """A call's ``To`` and ``From``: given (21201, 21213), and each a number, a client or
    a SIP URI (21205, 21212)."""
    to = restore_plus(params.get("To"))
    if not to:
        raise ApiError.bad_parameter("A 'To' phone number is required.", TO_REQUIRED)
    from_ = restore_plus(params.get("From"))
    if not from_:
        raise ApiError.bad_parameter("A 'From' phone number is required.", FROM_REQUIRED)
    if not _is_address(to):
        raise ApiError.bad_parameter(f"The 'To' number {to[:64]} is not valid.", TO_INVALID)
    if not _is_address(from_):
        raise ApiError.bad_parameter(f"The 'From' number {from_[:64]} is not valid.", FROM_INVALID)


def _is_address(value: str) -> bool:
    """An E.164 number, ``client:identity`` or a ``sip:``/``sips:`` URI."""
    scheme, colon, rest = value.partition(":")
    if colon and scheme.lower() in ("client", "sip", "sips"):
        return bool(rest.strip())
    return normalize_e164(value) is not None


@router.post(INSTANCE)
async def update_call(request: Request, sid: str, account: PathAccount) -> Response:
    """``Status`` (completed, canceled) ends the call; else ``Twiml`` or ``Url`` redirects it."""
    params = await call_form(request, account, sid)
    live = live_calls_of(request)
    status = params.get("Status")
    twiml = params.get("Twiml")
    url = params.get("Url")
    if status:
        if status == "completed":
            acted = await live.hangup(account.sid, sid)
        elif status == "canceled":
            acted = await live.cancel(account.sid, sid)
        else:
            raise ApiError.bad_parameter("Status must be completed or canceled")
        if not acted:
            raise ApiError.bad_parameter(
                "Call is not in-progress. Cannot update its status.", CALL_NOT_IN_PROGRESS
            )
    elif twiml or url:
        method = parse_method("Method", params.get("Method", ""), CALL_METHOD_INVALID)
        if twiml:
            acted = await live.redirect(account.sid, sid, NewTwiml(twiml=twiml))
        else:
            assert url is not None  # no Twiml: this branch was taken for the Url
            checked = parse_url("Url", url, CALL_URL_INVALID)
            acted = await live.redirect(account.sid, sid, NewTwiml(checked, method))
        if not acted:
            raise ApiError.bad_parameter(
                "Call is not in-progress. Cannot redirect.", CALL_NOT_IN_PROGRESS
            )
    return JSONResponse(call_json(await existing_call(request, account, sid)))
