"""The Streams resource of a call: start and stop a one-way Media Stream (a fork).

``POST Calls/{CallSid}/Streams.json`` starts what ``<Start><Stream>`` starts;
``POST Calls/{CallSid}/Streams/{Sid or Name}.json`` with ``Status=stopped`` stops
it (reference §6). Streams live only as long as their call, in the memory of the
node that holds the call: they are not stored, so there is no fetch or list.
"""

from __future__ import annotations

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse

from control_api.api.auth import PathAccount
from control_api.api.calls import live_resource_json, start_on_call, stop_on_call
from control_api.api.params import Params, parse_choice, parse_method, parse_url
from control_api.errors import (
    CALL_METHOD_INVALID,
    CALL_URL_INVALID,
    INVALID_PARAMETER,
    ApiError,
)
from control_api.voice.port import NewStream, StreamInfo

__all__ = ["TRACKS", "new_stream_from", "router", "stream_json"]

LIST = "/2010-04-01/Accounts/{account_sid}/Calls/{call_sid}/Streams.json"
INSTANCE = "/2010-04-01/Accounts/{account_sid}/Calls/{call_sid}/Streams/{sid}.json"
TRACKS = ("inbound_track", "outbound_track", "both_tracks")
MAX_PARAMETERS = 99  # Parameter1 … Parameter99, as the twilio library sends them

router = APIRouter()


def new_stream_from(params: Params) -> NewStream:
    """The checked parameters of ``POST Calls/{CallSid}/Streams.json``."""
    url = _stream_url(params.get("Url") or "")
    track = parse_choice("Track", params.get("Track"), TRACKS) or "inbound_track"
    callback = params.get("StatusCallback") or ""
    parameters = []
    for n in range(1, MAX_PARAMETERS + 1):
        name = params.get(f"Parameter{n}.Name")
        if name:
            parameters.append((name, params.get(f"Parameter{n}.Value") or ""))
    return NewStream(
        url=url,
        name=params.get("Name") or None,
        track=track,
        status_callback=parse_url("StatusCallback", callback, CALL_URL_INVALID),
        status_callback_method=parse_method(
            "StatusCallbackMethod", params.get("StatusCallbackMethod", ""), CALL_METHOD_INVALID
        ),
        parameters=tuple(parameters),
    )


def _stream_url(value: str) -> str:
    if not value:
        raise ApiError.bad_parameter("Url is required")
    url = parse_url("Url", value, INVALID_PARAMETER, ("ws", "wss"), "a ws:// or wss:// URL")
    assert url is not None  # parse_url gives None only for an empty value
    return url


def stream_json(account_sid: str, call_sid: str, found: StreamInfo) -> dict[str, object]:
    return live_resource_json(account_sid, call_sid, found, "Streams")


@router.post(LIST)
async def create_stream(request: Request, call_sid: str, account: PathAccount) -> Response:
    # start_stream raises ValueError for a name already taken, or too many streams
    stream = await start_on_call(
        request,
        account,
        call_sid,
        new_stream_from,
        lambda live, new: live.start_stream(account.sid, call_sid, new),
        "stream",
    )
    return JSONResponse(stream_json(account.sid, call_sid, stream))  # 200, as the spec says


@router.post(INSTANCE)
async def update_stream(
    request: Request, call_sid: str, sid: str, account: PathAccount
) -> Response:
    """``Status=stopped`` stops the stream named by its MZ sid or its name."""
    stream = await stop_on_call(
        request,
        account,
        call_sid,
        lambda live: live.stop_stream(account.sid, call_sid, sid),
        "stream",
    )
    return JSONResponse(stream_json(account.sid, call_sid, stream))
