"""Dialling participants into a conference, and what the Participants resource can change.

- ``POST Conferences/{CF or FriendlyName}/Participants.json`` places a call (``From``,
  ``To``: a number, ``sip:`` URI or ``client:``; ``StatusCallback``…, ``Timeout``,
  ``CallerId``, ``Record``, ``SipAuth*``, as ``POST Calls.json``) that joins the
  conference with ``Label``, ``Beep``, ``Muted``, ``StartConferenceOnEnter``,
  ``EndConferenceOnExit``, ``WaitUrl``/``WaitMethod``, ``MaxParticipants``,
  ``Coaching``/``CallSidToCoach``, ``ConferenceStatusCallback``/``…Method``/``…Event``
  and ``ConferenceRecord``; it answers 201 with the participant (status ``queued``).
  A friendly name that is not running yet makes the conference; a CF sid must be live.
  ``MachineDetection`` (and its tuning, as on ``Calls``) listens to the participant
  the asynchronous way, as ``<Number machineDetection>`` does: it joins at once and
  ``AmdStatusCallback``/``…Method`` get the decision (voice/machine_detection.py,
  which warns 21262 without a callback and 21263 for ``AsyncAmd…`` parameters).
- :func:`participant_changes`: what ``POST Participants/{CallSid or Label}.json`` may
  change besides ``Muted`` and ``Hold`` (``HoldUrl``/``HoldMethod``,
  ``AnnounceUrl``/``AnnounceMethod``, ``Coaching``/``CallSidToCoach``,
  ``EndConferenceOnExit``, ``BeepOnExit``), for control_api/api/conferences.py.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse

from control_api.api.auth import PathAccount
from control_api.api.balance import require_funds
from control_api.api.calls import check_parties, machine_detection_from, new_call_from
from control_api.api.conferences import participant_json
from control_api.api.params import Params, form_boolean, form_params, parse_method, parse_url
from control_api.api.placing import places_no_calls, unplaceable
from control_api.errors import (
    CALL_METHOD_INVALID,
    CALL_URL_INVALID,
    ApiError,
)
from control_api.sids import is_sid
from control_api.voice.conference_events import EVENT_FILTERS
from control_api.voice.port import LiveCalls, NewMachineDetection, NewParticipant, Unroutable

__all__ = ["participant_changes", "router"]

PARTICIPANTS = "/2010-04-01/Accounts/{account_sid}/Conferences/{sid}/Participants.json"
MAX_LABEL = 128
MAX_NAME = 128
BEEPS = ("true", "false", "onEnter", "onExit")
CONFERENCE_EVENTS = frozenset(EVENT_FILTERS.values())
RECORD_CHOICES = {"true": "record-from-start", "record-from-start": "record-from-start"}
CALLS_ONLY_AMD = ("AsyncAmd", "AsyncAmdStatusCallback", "AsyncAmdStatusCallbackMethod")

router = APIRouter()


def _url(params: Params, name: str) -> str | None:
    value = params.get(name)
    return parse_url(name, value, CALL_URL_INVALID) if value else None


def _method(params: Params, name: str, default: str = "POST") -> str:
    value = params.get(name)
    return parse_method(name, value, CALL_METHOD_INVALID) if value else default


def _coach(params: Params) -> str | None:
    """``CallSidToCoach`` (``Coaching=true`` requires it); None: not coaching."""
    coaching = form_boolean(params, "Coaching")
    coached = params.get("CallSidToCoach") or None
    if coached is not None and not is_sid(coached, "CA"):
        raise ApiError.bad_parameter("CallSidToCoach must be a call SID (CA…)")
    if coaching and coached is None:
        raise ApiError.bad_parameter("CallSidToCoach is required when Coaching is true")
    return None if coaching is False else coached


def participant_changes(params: Params) -> dict[str, Any]:
    """The checked changes of a participant update besides Muted and Hold."""
    changes: dict[str, Any] = {}
    if params.get("HoldUrl"):
        changes["hold_url"] = _url(params, "HoldUrl")
        changes["hold_method"] = _method(params, "HoldMethod", "GET")
    if params.get("AnnounceUrl"):
        changes["announce_url"] = _url(params, "AnnounceUrl")
        changes["announce_method"] = _method(params, "AnnounceMethod")
    if params.get("Coaching") or params.get("CallSidToCoach"):
        coached = _coach(params)
        changes["coaching"] = coached is not None
        changes["call_sid_to_coach"] = coached
    for name, key in (
        ("EndConferenceOnExit", "end_conference_on_exit"),
        ("BeepOnExit", "beep_on_exit"),
    ):
        value = form_boolean(params, name)
        if value is not None:
            changes[key] = value
    return changes


def participant_machine_detection(params: Params) -> NewMachineDetection | None:
    """A participant's ``MachineDetection``: checked and tuned as on ``Calls``, always
    asynchronous, its decision to ``AmdStatusCallback`` (``AmdStatusCallbackMethod``)."""
    asked = machine_detection_from(params)
    if asked is None:
        return None
    return replace(
        asked,
        asynchronous=True,
        callback=_url(params, "AmdStatusCallback"),
        callback_method=_method(params, "AmdStatusCallbackMethod"),
        misplaced_async=any(params.get(name) for name in CALLS_ONLY_AMD),
    )


def _events(params: Params, name: str, allowed: frozenset[str]) -> tuple[str, ...]:
    events = tuple(
        event.strip() for value in params.getlist(name) for event in value.replace(",", " ").split()
    )
    unknown = set(events) - allowed
    if unknown:
        raise ApiError.bad_parameter(f"{name} must be among {', '.join(sorted(allowed))}")
    return events


def new_participant_from(params: Params) -> NewParticipant:
    """The checked parameters of ``POST Participants.json``."""
    check_parties(params)
    for name in ("StatusCallback", "ConferenceStatusCallback", "WaitUrl"):
        _url(params, name)
    call = new_call_from(params)
    if call.send_digits is None:  # SendDigits turns detection off, as on Calls
        call = replace(call, machine_detection=participant_machine_detection(params))
    label = params.get("Label") or None
    if label is not None and len(label) > MAX_LABEL:
        raise ApiError.bad_parameter(f"Label is longer than {MAX_LABEL} characters")
    beep = params.get("Beep") or "true"
    if beep not in BEEPS:
        raise ApiError.bad_parameter(f"Beep must be one of {', '.join(BEEPS)}")
    record = (params.get("ConferenceRecord") or "").strip()
    timeout = call.timeout
    return NewParticipant(
        call=replace(call, timeout=max(5, timeout)),
        label=label,
        beep=beep,
        muted=bool(form_boolean(params, "Muted")),
        start_conference_on_enter=form_boolean(params, "StartConferenceOnEnter") is not False,
        end_conference_on_exit=bool(form_boolean(params, "EndConferenceOnExit")),
        wait_url=params.get("WaitUrl") if "WaitUrl" in params else None,
        wait_method=_method(params, "WaitMethod"),
        max_participants=_max_participants(params),
        early_media=form_boolean(params, "EarlyMedia") is not False,
        coaching=_coach(params) is not None,
        call_sid_to_coach=_coach(params),
        conference_record=RECORD_CHOICES.get(record),
        conference_status_callback=_url(params, "ConferenceStatusCallback"),
        conference_status_callback_method=_method(params, "ConferenceStatusCallbackMethod"),
        conference_status_callback_events=_events(
            params, "ConferenceStatusCallbackEvent", CONFERENCE_EVENTS
        ),
    )


def _max_participants(params: Params) -> int:
    text = params.get("MaxParticipants")
    if not text:
        return 250
    try:
        value = int(text)
    except ValueError:
        raise ApiError.bad_parameter("MaxParticipants must be a whole number") from None
    if not 2 <= value <= 250:
        raise ApiError.bad_parameter("MaxParticipants must be from 2 to 250")
    return value


@router.post(PARTICIPANTS)
async def create_participant(request: Request, sid: str, account: PathAccount) -> Response:
    """Dial a participant into the conference ``sid`` (a CF sid or a friendly name)."""
    params = await form_params(request)
    if not sid or len(sid) > MAX_NAME or any(ord(ch) < 32 for ch in sid):
        raise ApiError.not_found(request.url.path)
    new = new_participant_from(params)
    if request.client is not None:  # who asked: the dial policy logs it with a refusal
        new = replace(new, call=replace(new.call, source_ip=request.client.host))
    await require_funds(request, account.sid)
    live: LiveCalls = request.app.state.live_calls
    try:
        participant = await live.add_participant(account.sid, sid, new)
    except LookupError:
        raise ApiError.not_found(request.url.path) from None
    except Unroutable as exc:
        raise unplaceable(exc) from None
    if participant is None:
        raise places_no_calls()
    return JSONResponse(participant_json(participant), status_code=201)
