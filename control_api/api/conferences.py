"""The Conferences resource and its Participants.

The call engine creates conferences and participants in the store as calls join
``<Dial><Conference>``; this module reads them and asks the engine to act on live ones
through ``LiveConferences``:

- ``GET Conferences.json`` (filters ``FriendlyName``, ``Status``, ``DateCreated``,
  ``DateUpdated`` with ``<``/``>``), ``GET Conferences/{CF}.json``;
  ``POST Conferences/{CF}.json`` with ``Status=completed`` ends the conference.
- ``GET Conferences/{CF}/Participants.json`` (filters ``Muted``, ``Hold``, ``Coaching``),
  ``GET Participants/{CA}.json``; ``POST`` with ``Muted``/``Hold`` changes them,
  ``DELETE`` removes the call from the conference.

Participants who have left stay listed, with status ``complete``, until the engine
removes their rows.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Protocol

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse

from control_api.api.accounts import API_VERSION, account_uri
from control_api.api.auth import PathAccount
from control_api.api.paging import PageRequest, page_body
from control_api.api.params import Params, form_params, parse_method, parse_url, query_params
from control_api.api.recordings import DateRange
from control_api.api.state import store_of
from control_api.errors import CALL_URL_INVALID, ApiError
from control_api.sids import is_sid, rfc2822
from control_api.store import Account, ConferenceRecord, ParticipantRecord

__all__ = [
    "CONFERENCE_STATUSES",
    "LiveConferences",
    "NoLiveConferences",
    "conference_json",
    "participant_json",
    "router",
]

CONFERENCE_STATUSES = frozenset({"init", "in-progress", "completed"})
MAX_LABEL = 128

ACCOUNT = "/2010-04-01/Accounts/{account_sid}"
LIST = ACCOUNT + "/Conferences.json"
INSTANCE = ACCOUNT + "/Conferences/{sid}.json"
PARTICIPANTS = ACCOUNT + "/Conferences/{sid}/Participants.json"
PARTICIPANT = ACCOUNT + "/Conferences/{sid}/Participants/{call_sid}.json"

router = APIRouter()


class LiveConferences(Protocol):
    """What the REST API asks of the call engine about conferences in progress.

    Each method answers False when the account has no such live conference (or the call
    is not in it), which the API reports as 404 (20404). Return once the change has been
    made and the store rows updated, so that the row the API answers with is fresh.
    """

    async def end(self, account_sid: str, conference_sid: str) -> bool:
        """``Status=completed``: end the conference, disconnecting every participant."""
        ...

    async def update_participant(
        self,
        account_sid: str,
        conference_sid: str,
        call_sid: str,
        *,
        muted: bool | None = None,
        hold: bool | None = None,
        **changes: Any,
    ) -> bool:
        """Mute or unmute, hold or unhold a participant; None leaves that as it is.
        ``changes``: control_api/api/participants.py's ``participant_changes``."""
        ...

    async def announce(
        self, account_sid: str, conference_sid: str, url: str, method: str = "POST"
    ) -> bool:
        """``AnnounceUrl``: play it into the conference, heard by every participant."""
        ...

    async def kick(self, account_sid: str, conference_sid: str, call_sid: str) -> bool:
        """Remove the participant from the conference (its call goes on with its TwiML)."""
        ...


class NoLiveConferences:
    """A ``LiveConferences`` for an API without a call engine: nothing is live."""

    async def end(self, account_sid: str, conference_sid: str) -> bool:
        return False

    async def update_participant(
        self,
        account_sid: str,
        conference_sid: str,
        call_sid: str,
        *,
        muted: bool | None = None,
        hold: bool | None = None,
        **changes: Any,
    ) -> bool:
        return False

    async def announce(
        self, account_sid: str, conference_sid: str, url: str, method: str = "POST"
    ) -> bool:
        return False

    async def kick(self, account_sid: str, conference_sid: str, call_sid: str) -> bool:
        return False


def conference_uri(account_sid: str, sid: str) -> str:
    return f"{account_uri(account_sid)}/Conferences/{sid}"


def conference_json(conference: ConferenceRecord) -> dict:
    base = conference_uri(conference.account_sid, conference.sid)
    return {
        "account_sid": conference.account_sid,
        "api_version": API_VERSION,
        "call_sid_ending_conference": conference.call_sid_ending_conference,
        "date_created": _date(conference.date_created),
        "date_updated": _date(conference.date_updated),
        "friendly_name": conference.friendly_name,
        "reason_conference_ended": conference.reason_conference_ended,
        "region": conference.region,
        "sid": conference.sid,
        "status": conference.status,
        "subresource_uris": {
            "participants": f"{base}/Participants.json",
            "recordings": f"{base}/Recordings.json",
        },
        "uri": f"{base}.json",
    }


def participant_json(participant: ParticipantRecord) -> dict:
    base = conference_uri(participant.account_sid, participant.conference_sid)
    return {
        "account_sid": participant.account_sid,
        "call_sid": participant.call_sid,
        "call_sid_to_coach": participant.call_sid_to_coach,
        "coaching": participant.coaching,
        "conference_sid": participant.conference_sid,
        "date_created": _date(participant.date_created),
        "date_updated": _date(participant.date_updated),
        "end_conference_on_exit": participant.end_conference_on_exit,
        "hold": participant.hold,
        "label": participant.label,
        "muted": participant.muted,
        "queue_time": "0",
        "start_conference_on_enter": participant.start_conference_on_enter,
        "status": participant.status,
        "uri": f"{base}/Participants/{participant.call_sid}.json",
    }


def _date(value: datetime | None) -> str | None:
    return None if value is None else rfc2822(value)


def _boolean(params: Params, name: str) -> bool | None:
    """Twilio's ``true``/``false`` (any case); None when absent or empty."""
    value = params.get(name)
    if not value:
        return None
    lowered = value.lower()
    if lowered not in ("true", "false"):
        raise ApiError.bad_parameter(f"{name} must be true or false")
    return lowered == "true"


def _live(request: Request) -> LiveConferences:
    return getattr(request.app.state, "live_conferences", None) or NoLiveConferences()


async def _existing(request: Request, account: Account, sid: str) -> ConferenceRecord:
    # Checking the form first keeps arbitrary path text (NUL, say) away from the database.
    found = await store_of(request).conferences.get(account.sid, sid) if is_sid(sid, "CF") else None
    if found is None:
        raise ApiError.not_found(request.url.path)
    return found


async def _existing_participant(
    request: Request, account: Account, sid: str, call_sid: str
) -> ParticipantRecord:
    """By its call SID or its label."""
    participants = store_of(request).participants
    found = None
    if is_sid(sid, "CF") and is_sid(call_sid, "CA"):
        found = await participants.get(account.sid, sid, call_sid)
    elif is_sid(sid, "CF") and 0 < len(call_sid) <= MAX_LABEL:
        found = await participants.by_label(account.sid, sid, call_sid)
    if found is None:
        raise ApiError.not_found(request.url.path)
    return found


# Conferences


@router.get(LIST)
async def list_conferences(request: Request, account: PathAccount) -> Response:
    params = query_params(request)
    page = PageRequest.from_params(params)
    status = params.get("Status") or None
    if status is not None and status not in CONFERENCE_STATUSES:
        raise ApiError.bad_parameter(
            f"Status must be one of {', '.join(sorted(CONFERENCE_STATUSES))}"
        )
    created = DateRange.from_params(params, "DateCreated")
    updated = DateRange.from_params(params, "DateUpdated")
    found = await store_of(request).conferences.page(
        account.sid,
        friendly_name=params.get("FriendlyName") or None,
        status=status,
        date_created_after=created.after,
        date_created_before=created.before,
        date_updated_after=updated.after,
        date_updated_before=updated.before,
        offset=page.offset,
        limit=page.fetch_limit,
    )
    rows = [conference_json(item) for item in found]
    return JSONResponse(page_body(request, params, "conferences", rows, page))


@router.get(INSTANCE)
async def fetch_conference(request: Request, sid: str, account: PathAccount) -> Response:
    return JSONResponse(conference_json(await _existing(request, account, sid)))


@router.post(INSTANCE)
async def update_conference(request: Request, sid: str, account: PathAccount) -> Response:
    """``Status=completed`` ends the conference; ``AnnounceUrl`` plays into it."""
    params = await form_params(request)
    await _existing(request, account, sid)
    announce = params.get("AnnounceUrl")
    if announce:
        url = parse_url("AnnounceUrl", announce, CALL_URL_INVALID)
        method = parse_method("AnnounceMethod", params.get("AnnounceMethod", ""), 21209)
        if url is None or not await _live(request).announce(account.sid, sid, url, method):
            raise ApiError.not_found(request.url.path)
    status = params.get("Status")
    if status:
        if status != "completed":
            raise ApiError.bad_parameter("Status can only be completed")
        if not await _live(request).end(account.sid, sid):
            raise ApiError.not_found(request.url.path)
    return JSONResponse(conference_json(await _existing(request, account, sid)))


# Participants


@router.get(PARTICIPANTS)
async def list_participants(request: Request, sid: str, account: PathAccount) -> Response:
    params = query_params(request)
    page = PageRequest.from_params(params)
    muted = _boolean(params, "Muted")
    hold = _boolean(params, "Hold")
    coaching = _boolean(params, "Coaching")
    await _existing(request, account, sid)
    found = await store_of(request).participants.page(
        account.sid,
        sid,
        muted=muted,
        hold=hold,
        coaching=coaching,
        offset=page.offset,
        limit=page.fetch_limit,
    )
    rows = [participant_json(item) for item in found]
    return JSONResponse(page_body(request, params, "participants", rows, page))


@router.get(PARTICIPANT)
async def fetch_participant(
    request: Request, sid: str, call_sid: str, account: PathAccount
) -> Response:
    return JSONResponse(
        participant_json(await _existing_participant(request, account, sid, call_sid))
    )


@router.post(PARTICIPANT)
async def update_participant(
    request: Request, sid: str, call_sid: str, account: PathAccount
) -> Response:
    """``Muted``, ``Hold`` and the rest of api/participants.py's ``participant_changes``."""
    from control_api.api.participants import participant_changes

    params = await form_params(request)
    muted = _boolean(params, "Muted")
    hold = _boolean(params, "Hold")
    changes = participant_changes(params)
    call_sid = (await _existing_participant(request, account, sid, call_sid)).call_sid
    if muted is not None or hold is not None or changes:
        acted = await _live(request).update_participant(
            account.sid, sid, call_sid, muted=muted, hold=hold, **changes
        )
        if not acted:
            raise ApiError.not_found(request.url.path)
    return JSONResponse(
        participant_json(await _existing_participant(request, account, sid, call_sid))
    )


@router.delete(PARTICIPANT)
async def delete_participant(
    request: Request, sid: str, call_sid: str, account: PathAccount
) -> Response:
    call_sid = (await _existing_participant(request, account, sid, call_sid)).call_sid
    if not await _live(request).kick(account.sid, sid, call_sid):
        raise ApiError.not_found(request.url.path)
    return Response(status_code=204)
