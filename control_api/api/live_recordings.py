"""Recording calls and conferences while they go on (Twilio's 2010-04-01 operations
CreateCallRecording, UpdateCallRecording, FetchConferenceRecording,
UpdateConferenceRecording and DeleteConferenceRecording).

``POST Calls/{CallSid}/Recordings.json`` starts recording a call in progress
(``RecordingChannels`` mono|dual, ``RecordingTrack`` inbound|outbound|both, ``Trim``,
``RecordingStatusCallback``/``Method``/``Event``); ``POST Calls/{CallSid}/Recordings/
{Sid}.json`` (``Sid`` may be ``Twilio.CURRENT``) sets ``Status`` paused, in-progress or
stopped, with ``PauseBehavior`` skip or silence. The call is reached through the
voice runtime's ``LiveCalls`` port (on another node, the cluster forwards it); the
conference's recording through ``LiveConferences.update_recording``. Lists, fetches
and deletes of call recordings are in api/recordings.py.
"""

from __future__ import annotations

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse

from control_api.api.auth import PathAccount
from control_api.api.calls import call_form, start_on_call
from control_api.api.conferences import LiveConferences
from control_api.api.params import Params, form_params, parse_method, parse_url
from control_api.api.recordings import base_url, recording_json, remove_recording
from control_api.api.state import live_calls_of, store_of
from control_api.errors import (
    CALL_METHOD_INVALID,
    CALL_NOT_IN_PROGRESS,
    CALL_URL_INVALID,
    ApiError,
)
from control_api.sids import is_sid
from control_api.store import RecordingRecord
from control_api.voice.live_recording import CURRENT, PAUSE_BEHAVIORS, STATUSES, TRACKS
from control_api.voice.port import LiveCalls, NewRecording

__all__ = ["new_recording_from", "router"]

ACCOUNT = "/2010-04-01/Accounts/{account_sid}"
CALL_LIST = ACCOUNT + "/Calls/{call_sid}/Recordings.json"
CALL_INSTANCE = ACCOUNT + "/Calls/{call_sid}/Recordings/{sid}.json"
CONFERENCE_INSTANCE = ACCOUNT + "/Conferences/{conference_sid}/Recordings/{sid}.json"

CHANNELS = ("mono", "dual")
TRIMS = ("trim-silence", "do-not-trim")
EVENTS = ("in-progress", "completed", "absent")

router = APIRouter()


def _choice(params: Params, name: str, allowed: tuple[str, ...], default: str) -> str:
    value = params.get(name) or default
    if value not in allowed:
        raise ApiError.bad_parameter(f"{name} must be one of {', '.join(allowed)}")
    return value


def _events(params: Params) -> tuple[str, ...]:
    """``RecordingStatusCallbackEvent``: repeated, or space-separated in one value."""
    events: list[str] = []
    for value in params.getlist("RecordingStatusCallbackEvent"):
        for event in value.replace(",", " ").split():
            if event not in EVENTS:
                raise ApiError.bad_parameter(
                    f"RecordingStatusCallbackEvent must be among {', '.join(EVENTS)}"
                )
            if event not in events:
                events.append(event)
    return tuple(events) or ("completed",)


def new_recording_from(params: Params) -> NewRecording:
    """The checked parameters of ``POST Calls/{CallSid}/Recordings.json``."""
    return NewRecording(
        channels=_choice(params, "RecordingChannels", CHANNELS, "mono"),
        track=_choice(params, "RecordingTrack", TRACKS, "both"),
        trim=_choice(params, "Trim", TRIMS, "do-not-trim"),
        status_callback=parse_url(
            "RecordingStatusCallback", params.get("RecordingStatusCallback") or "", CALL_URL_INVALID
        ),
        status_callback_method=parse_method(
            "RecordingStatusCallbackMethod",
            params.get("RecordingStatusCallbackMethod", ""),
            CALL_METHOD_INVALID,
        ),
        status_callback_events=_events(params),
    )


def _update_from(params: Params) -> tuple[str, str]:
    status = params.get("Status") or ""
    if status not in STATUSES:
        raise ApiError.bad_parameter(f"Status must be one of {', '.join(STATUSES)}")
    return status, _choice(params, "PauseBehavior", PAUSE_BEHAVIORS, "silence")


def _scoped(recording: RecordingRecord, request: Request, scope: str) -> dict:
    """The recording as the call- or conference-scoped resource shows it."""
    return recording_json(recording, base_url(request), scope)


async def _stored(request: Request, account_sid: str, sid: str) -> RecordingRecord | None:
    if not is_sid(sid, "RE"):
        return None
    found: RecordingRecord | None = await store_of(request).recordings.get(account_sid, sid)
    return found


@router.post(CALL_LIST)
async def start_call_recording(request: Request, call_sid: str, account: PathAccount) -> Response:

    async def start(live: LiveCalls, new: NewRecording) -> RecordingRecord | None:
        # ValueError: as many recordings in progress as a call may have
        sid = await live.start_recording(account.sid, call_sid, new)
        return await _stored(request, account.sid, sid) if sid else None

    recording = await start_on_call(
        request, account, call_sid, new_recording_from, start, "recording"
    )
    body = _scoped(recording, request, "call")
    return JSONResponse(body, status_code=201)


@router.post(CALL_INSTANCE)
async def update_call_recording(
    request: Request, call_sid: str, sid: str, account: PathAccount
) -> Response:
    params = await call_form(request, account, call_sid)
    status, pause_behavior = _update_from(params)
    stored = None
    if sid != CURRENT:
        stored = await _stored(request, account.sid, sid)
        if stored is None or stored.call_sid != call_sid:
            raise ApiError.not_found(request.url.path)
    try:
        found = await live_calls_of(request).update_recording(
            account.sid, call_sid, sid, status, pause_behavior
        )
    except LookupError:
        found = None
        if stored is None:  # Twilio.CURRENT with no recording running
            raise ApiError.not_found(request.url.path) from None
    recording = await _stored(request, account.sid, found) if found else None
    if recording is None:
        recording = _finished_or_refuse(stored, status, "Call")
    return JSONResponse(_scoped(recording, request, "call"))


def _finished_or_refuse(
    stored: RecordingRecord | None, status: str, parent: str
) -> RecordingRecord:
    """A recording that is no longer running: stopping it again shows it; anything else
    is refused (21220)."""
    if stored is not None and status == "stopped" and stored.status not in STATUSES:
        return stored
    raise ApiError.bad_parameter(
        f"{parent} recording is not in-progress. Cannot update it.", CALL_NOT_IN_PROGRESS
    )


async def _conference_recording(
    request: Request, account_sid: str, conference_sid: str, sid: str
) -> RecordingRecord:
    found = await _stored(request, account_sid, sid)
    if found is None or found.conference_sid != conference_sid:
        raise ApiError.not_found(request.url.path)
    return found


@router.get(CONFERENCE_INSTANCE)
async def fetch_conference_recording(
    request: Request, conference_sid: str, sid: str, account: PathAccount
) -> Response:
    recording = await _conference_recording(request, account.sid, conference_sid, sid)
    return JSONResponse(_scoped(recording, request, "conference"))


@router.delete(CONFERENCE_INSTANCE)
async def delete_conference_recording(
    request: Request, conference_sid: str, sid: str, account: PathAccount
) -> Response:
    recording = await _conference_recording(request, account.sid, conference_sid, sid)
    await remove_recording(request, recording)
    return Response(status_code=204)


@router.post(CONFERENCE_INSTANCE)
async def update_conference_recording(
    request: Request, conference_sid: str, sid: str, account: PathAccount
) -> Response:
    params = await form_params(request)
    status, pause_behavior = _update_from(params)
    stored = None
    if sid != CURRENT:
        stored = await _conference_recording(request, account.sid, conference_sid, sid)
    live: LiveConferences | None = request.app.state.live_conferences
    found = None
    if live is not None:
        try:
            found = await live.update_recording(
                account.sid, conference_sid, sid, status, pause_behavior
            )
        except LookupError:
            if stored is None:
                raise ApiError.not_found(request.url.path) from None
    elif stored is None:
        raise ApiError.not_found(request.url.path)
    recording = await _stored(request, account.sid, found) if found else None
    if recording is None:
        recording = _finished_or_refuse(stored, status, "Conference")
    return JSONResponse(_scoped(recording, request, "conference"))
