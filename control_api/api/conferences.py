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

from collections.abc import Awaitable, Callable
from datetime import datetime
from functools import partial
from typing import Any, Protocol

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse

from control_api.api.accounts import API_VERSION, account_uri
from control_api.api.auth import PathAccount
from control_api.api.filters import DateRange, Filter, equal
from control_api.api.paging import page_response
from control_api.api.params import (
    choice_parser,
    form_boolean,
    form_params,
    parse_boolean,
    parse_method,
    parse_url,
)
from control_api.api.resource import found, path_sid
from control_api.api.state import store_of
from control_api.errors import CALL_URL_INVALID, ApiError
from control_api.sids import is_sid, rfc2822
from control_api.store import Account, ConferenceRecord, ParticipantRecord

__all__ = [
    "CONFERENCE_STATUSES",
    "LiveConferences",
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

FILTERS: dict[str, Filter] = {
    "Status": equal("status", choice_parser(sorted(CONFERENCE_STATUSES))),
    "FriendlyName": equal("friendly_name"),
    "DateCreated": DateRange.filter("date_created"),
    "DateUpdated": DateRange.filter("date_updated"),
}
PARTICIPANT_FILTERS: dict[str, Filter] = {
    "Muted": equal("muted", parse_boolean),
    "Hold": equal("hold", parse_boolean),
    "Coaching": equal("coaching", parse_boolean),
}

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
        self, account_sid: str, conference_sid: str, call_sid: str, **changes: Any
    ) -> bool:
        """Mute or unmute (``muted``), hold or unhold (``hold``) a participant, and the
        rest of control_api/api/participants.py's ``participant_changes``; None leaves a
        thing as it is."""
        ...

    async def announce(
        self, account_sid: str, conference_sid: str, url: str, method: str = "POST"
    ) -> bool:
        """``AnnounceUrl``: play it into the conference, heard by every participant."""
        ...

    async def update_recording(
        self, account_sid: str, conference_sid: str, sid: str, status: str, pause_behavior: str
    ) -> str | None:
        """Pause, resume or stop the room's recording ``sid`` (or ``Twilio.CURRENT``): its
        RE sid; None when the conference is not live here; LookupError when it has no
        such recording running."""
        ...

    async def kick(self, account_sid: str, conference_sid: str, call_sid: str) -> bool:
        """Remove the participant from the conference (its call goes on with its TwiML)."""
        ...


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


async def _act(request: Request, action: Callable[[LiveConferences], Awaitable[bool]]) -> None:
    """Have the call engine do ``action``; 404 when it did not (the conference or the
    participant is not live) or there is no engine (none is live)."""
    live: LiveConferences | None = getattr(request.app.state, "live_conferences", None)
    if live is None or not await action(live):
        raise ApiError.not_found(request.url.path)


async def _existing(request: Request, account: Account, sid: str) -> ConferenceRecord:
    path_sid(request, sid, "CF")
    return found(request, await store_of(request).conferences.get(account.sid, sid))


async def _existing_participant(
    request: Request, account: Account, sid: str, call_sid: str
) -> ParticipantRecord:
    """By its call SID or its label."""
    path_sid(request, sid, "CF")
    participants = store_of(request).participants
    if is_sid(call_sid, "CA"):
        return found(request, await participants.get(account.sid, sid, call_sid))
    if not 0 < len(call_sid) <= MAX_LABEL:
        raise ApiError.not_found(request.url.path)
    return found(request, await participants.by_label(account.sid, sid, call_sid))


# Conferences


@router.get(LIST)
async def list_conferences(request: Request, account: PathAccount) -> Response:
    conferences = partial(store_of(request).conferences.page, account.sid)
    return await page_response(request, "conferences", conferences, conference_json, FILTERS)


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
        url = parse_url("AnnounceUrl", announce, CALL_URL_INVALID) or ""
        method = parse_method("AnnounceMethod", params.get("AnnounceMethod", ""), 21209)
        await _act(request, lambda live: live.announce(account.sid, sid, url, method))
    status = params.get("Status")
    if status:
        if status != "completed":
            raise ApiError.bad_parameter("Status can only be completed")
        await _act(request, lambda live: live.end(account.sid, sid))
    return await fetch_conference(request, sid, account)  # as the engine left it


# Participants


@router.get(PARTICIPANTS)
async def list_participants(request: Request, sid: str, account: PathAccount) -> Response:
    participants = store_of(request).participants

    async def fetch(**query: Any) -> list[ParticipantRecord]:
        await _existing(request, account, sid)  # after the query: a bad filter is a 400 first
        return await participants.page(account.sid, sid, **query)

    return await page_response(
        request, "participants", fetch, participant_json, PARTICIPANT_FILTERS
    )


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
    changes = {
        name: value
        for name, value in (
            ("muted", form_boolean(params, "Muted")),
            ("hold", form_boolean(params, "Hold")),
        )
        if value is not None
    } | participant_changes(params)
    call_sid = (await _existing_participant(request, account, sid, call_sid)).call_sid
    if changes:
        await _act(
            request, lambda live: live.update_participant(account.sid, sid, call_sid, **changes)
        )
    return await fetch_participant(request, sid, call_sid, account)  # as the engine left it


@router.delete(PARTICIPANT)
async def delete_participant(
    request: Request, sid: str, call_sid: str, account: PathAccount
) -> Response:
    call_sid = (await _existing_participant(request, account, sid, call_sid)).call_sid
    await _act(request, lambda live: live.kick(account.sid, sid, call_sid))
    return Response(status_code=204)
