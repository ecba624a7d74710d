"""The Recordings resource: list, fetch and delete recordings, and serve their audio.

The call engine writes the rows and the WAV files (under the recordings directory); this
module reads them. ``GET Recordings.json`` (filters ``CallSid``, ``ConferenceSid``,
``DateCreated`` with ``<``/``>``), ``GET Calls/{CA}/Recordings.json``,
``GET Conferences/{CF}/Recordings.json``, ``GET``/``DELETE Recordings/{RE}.json``
(delete removes the audio too).

The audio is at ``Recordings/{RE}`` (WAV), ``.wav`` and ``.mp3``. As with Twilio's
default, it is served without authentication: knowing both SIDs is what lets a client
fetch it. HTTP Basic credentials may be sent; if they are, they must be right. The MP3
is made from the WAV on its first request and kept next to it.
"""

from __future__ import annotations

import asyncio
import inspect
import secrets
from functools import partial
from pathlib import Path
from typing import Any

from fastapi import APIRouter, Request, Response
from fastapi.responses import FileResponse, JSONResponse

from control_api.api.accounts import API_VERSION, account_uri
from control_api.api.auth import PathAccount, authenticate
from control_api.api.filters import DateRange, Filter, equal
from control_api.api.paging import page_response
from control_api.api.resource import deleted, found, json_date, path_sid
from control_api.api.state import store_of
from control_api.errors import METHOD_NOT_ALLOWED, ApiError
from control_api.store import Account, RecordingRecord

__all__ = ["base_url", "recording_json", "remove_recording", "router"]

router = APIRouter()

ACCOUNT = "/2010-04-01/Accounts/{account_sid}"
LIST = ACCOUNT + "/Recordings.json"
INSTANCE = ACCOUNT + "/Recordings/{sid}.json"
CALL_LIST = ACCOUNT + "/Calls/{call_sid}/Recordings.json"
CALL_INSTANCE = ACCOUNT + "/Calls/{call_sid}/Recordings/{sid}.json"
CONFERENCE_LIST = ACCOUNT + "/Conferences/{conference_sid}/Recordings.json"
MEDIA_WAV = ACCOUNT + "/Recordings/{sid}.wav"
MEDIA_MP3 = ACCOUNT + "/Recordings/{sid}.mp3"
MEDIA = ACCOUNT + "/Recordings/{sid}"

FILTERS: dict[str, Filter] = {
    "CallSid": equal("call_sid"),
    "ConferenceSid": equal("conference_sid"),
    "DateCreated": DateRange.filter("date_created"),
}

WAV_TYPE = "audio/x-wav"
MP3_TYPE = "audio/mpeg"


def recording_uri(account_sid: str, sid: str) -> str:
    """The recording's path without extension: its media URL, and with ``.json`` its uri."""
    return f"{account_uri(account_sid)}/Recordings/{sid}"


def recording_json(recording: RecordingRecord, base_url: str, scope: str = "account") -> dict:
    """Twilio's Recording; ``base_url`` (scheme and host) makes ``media_url`` absolute.

    ``duration`` is "-1" while the recording is still going, as Twilio shows it.
    ``scope`` is where it is shown, as in Twilio's spec: "account" (``Recordings``) has
    ``media_url`` and ``subresource_uris`` (its transcriptions; add-on results are not
    built); "call" (``Calls/{CA}/Recordings``) has neither but ``track``, and its
    ``uri`` is under the call; "conference" has neither, and its ``uri`` is under the
    conference.
    """
    path = recording_uri(recording.account_sid, recording.sid)
    body: dict[str, object] = {
        "account_sid": recording.account_sid,
        "api_version": API_VERSION,
        "call_sid": recording.call_sid,
        "channels": recording.channels,
        "conference_sid": recording.conference_sid,
        "date_created": json_date(recording.date_created),
        "date_updated": json_date(recording.date_updated),
        "duration": "-1" if recording.duration is None else str(recording.duration),
        "encryption_details": None,
        "error_code": recording.error_code,
        "price": recording.price,
        "price_unit": recording.price_unit,
        "sid": recording.sid,
        "source": recording.source,
        "start_time": json_date(recording.start_time),
        "status": recording.status,
        "uri": f"{path}.json",
    }
    if scope == "account":
        body["media_url"] = base_url.rstrip("/") + path
        body["subresource_uris"] = {"transcriptions": f"{path}/Transcriptions.json"}
    elif scope == "call" and recording.call_sid is not None:
        body["track"] = recording.track
        body["uri"] = (
            f"{account_uri(recording.account_sid)}/Calls/{recording.call_sid}"
            f"/Recordings/{recording.sid}.json"
        )
    elif scope == "conference" and recording.conference_sid is not None:
        body["uri"] = (
            f"{account_uri(recording.account_sid)}/Conferences/{recording.conference_sid}"
            f"/Recordings/{recording.sid}.json"
        )
    return body


def _recordings_dir(request: Request) -> Path | None:
    return getattr(request.app.state, "recordings_dir", None)


def base_url(request: Request) -> str:
    return str(request.base_url)


async def _existing(
    request: Request, account_sid: str, sid: str, call_sid: str | None = None
) -> RecordingRecord:
    """The account's recording ``sid``; with ``call_sid``, only if it is that call's."""
    path_sid(request, sid, "RE")
    recording = found(request, await store_of(request).recordings.get(account_sid, sid))
    if call_sid is not None and recording.call_sid != call_sid:
        raise ApiError.not_found(request.url.path)
    return recording


async def _list(request: Request, account: Account, **path: str) -> Response:
    """The account's recordings; ``path`` (the call_sid or conference_sid of the URL)
    filters them in place of the query's parameter of the same."""
    recordings = store_of(request).recordings

    async def fetch(**query: Any) -> list[RecordingRecord]:
        return await recordings.page(account.sid, **(query | path))

    scope = next((name for name in ("call", "conference") if f"{name}_sid" in path), "account")
    render = partial(recording_json, base_url=base_url(request), scope=scope)
    return await page_response(request, "recordings", fetch, render, FILTERS)


@router.get(LIST)
async def list_recordings(request: Request, account: PathAccount) -> Response:
    return await _list(request, account)


@router.get(CALL_LIST)
async def list_call_recordings(request: Request, call_sid: str, account: PathAccount) -> Response:
    path_sid(request, call_sid, "CA")
    found(request, await store_of(request).calls.get(account.sid, call_sid))
    return await _list(request, account, call_sid=call_sid)


@router.get(CONFERENCE_LIST)
async def list_conference_recordings(
    request: Request, conference_sid: str, account: PathAccount
) -> Response:
    path_sid(request, conference_sid, "CF")
    found(request, await store_of(request).conferences.get(account.sid, conference_sid))
    return await _list(request, account, conference_sid=conference_sid)


@router.get(INSTANCE)
async def fetch_recording(request: Request, sid: str, account: PathAccount) -> Response:
    recording = await _existing(request, account.sid, sid)
    return JSONResponse(recording_json(recording, base_url(request)))


@router.get(CALL_INSTANCE)
async def fetch_call_recording(
    request: Request, call_sid: str, sid: str, account: PathAccount
) -> Response:
    recording = await _existing(request, account.sid, sid, call_sid)
    return JSONResponse(recording_json(recording, base_url(request), "call"))


@router.delete(INSTANCE)
async def delete_recording(request: Request, sid: str, account: PathAccount) -> Response:
    return await remove_recording(request, await _existing(request, account.sid, sid))


@router.delete(CALL_INSTANCE)
async def delete_call_recording(
    request: Request, call_sid: str, sid: str, account: PathAccount
) -> Response:
    return await remove_recording(request, await _existing(request, account.sid, sid, call_sid))


async def remove_recording(request: Request, recording: RecordingRecord) -> Response:
    """Delete the row, then the audio files (204)."""
    done = await store_of(request).recordings.delete(recording.account_sid, recording.sid)
    wav = _wav_path(request, recording) if done else None
    if wav is not None:
        for path in (wav, wav.with_suffix(".mp3")):
            path.unlink(missing_ok=True)
    return deleted(request, done)


def _wav_path(request: Request, recording: RecordingRecord) -> Path | None:
    """The recording's WAV file, if it is inside the recordings directory; else None."""
    root = _recordings_dir(request)
    if root is None or not recording.file_path:
        return None
    root = Path(root).resolve()
    path = (root / recording.file_path).resolve()
    if not path.is_relative_to(root) or path == root:
        return None
    return path


async def _media_recording(request: Request, account_sid: str, sid: str) -> RecordingRecord:
    """The recording whose audio is asked for; credentials, if sent, must be right."""
    path_sid(request, account_sid, "AC")
    if request.headers.get("authorization") is not None:
        account = await authenticate(request)
        if account.sid != account_sid:
            raise ApiError.unauthorized()
    return await _existing(request, account_sid, sid)


async def _wav_file(request: Request, account_sid: str, sid: str) -> Path:
    wav = _wav_path(request, await _media_recording(request, account_sid, sid))
    if wav is None or not wav.is_file():
        raise ApiError.not_found(request.url.path)
    return wav


@router.get(MEDIA_WAV)
async def fetch_wav(request: Request, account_sid: str, sid: str) -> Response:
    return FileResponse(await _wav_file(request, account_sid, sid), media_type=WAV_TYPE)


@router.get(MEDIA_MP3)
async def fetch_mp3(request: Request, account_sid: str, sid: str) -> Response:
    wav = await _wav_file(request, account_sid, sid)
    mp3 = wav.with_suffix(".mp3")
    if not mp3.is_file():
        await _convert_to_mp3(wav, mp3)
    return FileResponse(mp3, media_type=MP3_TYPE)


@router.get(MEDIA)
async def fetch_media(request: Request, account_sid: str, sid: str) -> Response:
    """No extension: the WAV, as with Twilio."""
    return FileResponse(await _wav_file(request, account_sid, sid), media_type=WAV_TYPE)


async def _convert_to_mp3(wav: Path, mp3: Path) -> None:
    """Encode ``wav`` to ``mp3`` through a temporary file, so no reader sees half of it."""
    try:
        from media.recorder import wav_to_mp3
    except ImportError:
        raise ApiError(501, METHOD_NOT_ALLOWED, "MP3 recordings are not available") from None
    partial = mp3.with_name(f"{mp3.stem}.{secrets.token_hex(4)}.partial.mp3")
    try:
        if inspect.iscoroutinefunction(wav_to_mp3):
            await wav_to_mp3(wav, partial)
        else:
            await asyncio.to_thread(wav_to_mp3, wav, partial)
        partial.replace(mp3)
    finally:
        partial.unlink(missing_ok=True)
