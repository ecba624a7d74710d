"""The Transcriptions resource of a call: start and stop a real-time transcription.

``POST Calls/{CallSid}/Transcriptions.json`` starts what ``<Start><Transcription>``
starts (control_api/voice/live_transcription.py: the same status callbacks to
``StatusCallbackUrl``); ``POST Calls/{CallSid}/Transcriptions/{Sid or Name}.json``
with ``Status=stopped`` stops it. Like streams, live transcriptions (``GT…``) live
only as long as their call, in the memory of the node that holds it: there is no
fetch or list. ``IntelligenceService``, ``ConversationConfiguration``,
``ConversationId``, ``ConfigurationId`` and ``EnableProviderData`` are accepted and
have no effect (there is no Voice Intelligence here).
"""

from __future__ import annotations

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse

from control_api.api.auth import PathAccount
from control_api.api.calls import live_resource_json, start_on_call, stop_on_call
from control_api.api.params import Params, form_boolean, parse_choice, parse_method, parse_url
from control_api.errors import (
    CALL_METHOD_INVALID,
    CALL_URL_INVALID,
    ApiError,
)
from control_api.voice.port import NewTranscription, TranscriptionInfo

__all__ = ["new_transcription_from", "router", "transcription_json"]

LIST = "/2010-04-01/Accounts/{account_sid}/Calls/{call_sid}/Transcriptions.json"
INSTANCE = "/2010-04-01/Accounts/{account_sid}/Calls/{call_sid}/Transcriptions/{sid}.json"
TRACKS = ("inbound_track", "outbound_track", "both_tracks")
MAX_TEXT = 1024  # a name, a label, the hints: bounded like every other stored text

router = APIRouter()


def _text(params: Params, name: str) -> str | None:
    value = params.get(name) or None
    if value is not None and len(value) > MAX_TEXT:
        raise ApiError.bad_parameter(f"{name} is longer than {MAX_TEXT} characters")
    return value


def new_transcription_from(params: Params) -> NewTranscription:
    """The checked parameters of ``POST Calls/{CallSid}/Transcriptions.json``."""
    callback = params.get("StatusCallbackUrl") or ""
    language = params.get("LanguageCode") or "en-US"
    if len(language) > 35 or not all(ch.isalnum() or ch == "-" for ch in language):
        raise ApiError.bad_parameter("LanguageCode must be a BCP-47 language tag")
    return NewTranscription(
        name=_text(params, "Name"),
        track=parse_choice("Track", params.get("Track"), TRACKS) or "inbound_track",
        status_callback_url=parse_url("StatusCallbackUrl", callback, CALL_URL_INVALID),
        status_callback_method=parse_method(
            "StatusCallbackMethod", params.get("StatusCallbackMethod", ""), CALL_METHOD_INVALID
        ),
        language_code=language,
        partial_results=bool(form_boolean(params, "PartialResults")),
        hints=_text(params, "Hints"),
        inbound_track_label=_text(params, "InboundTrackLabel"),
        outbound_track_label=_text(params, "OutboundTrackLabel"),
        transcription_engine=_text(params, "TranscriptionEngine"),
        speech_model=_text(params, "SpeechModel"),
        profanity_filter=form_boolean(params, "ProfanityFilter") is not False,
        enable_automatic_punctuation=form_boolean(params, "EnableAutomaticPunctuation")
        is not False,
    )


def transcription_json(
    account_sid: str, call_sid: str, found: TranscriptionInfo
) -> dict[str, object]:
    return live_resource_json(account_sid, call_sid, found, "Transcriptions")


@router.post(LIST)
async def create_transcription(request: Request, call_sid: str, account: PathAccount) -> Response:
    # start_transcription raises ValueError for a name already taken, or too many
    found = await start_on_call(
        request,
        account,
        call_sid,
        new_transcription_from,
        lambda live, new: live.start_transcription(account.sid, call_sid, new),
        "transcription",
    )
    return JSONResponse(transcription_json(account.sid, call_sid, found))  # 200, as the spec


@router.post(INSTANCE)
async def update_transcription(
    request: Request, call_sid: str, sid: str, account: PathAccount
) -> Response:
    """``Status=stopped`` stops the transcription named by its GT sid or its name."""
    found = await stop_on_call(
        request,
        account,
        call_sid,
        lambda live: live.stop_transcription(account.sid, call_sid, sid),
        "transcription",
    )
    return JSONResponse(transcription_json(account.sid, call_sid, found))
