"""Transcriptions (TR…) of recordings: ``GET``/``DELETE`` of the account's and of a
recording's, as the 2010-04-01 API shows them.

``GET Transcriptions.json``, ``GET|DELETE Transcriptions/{TR}.json``,
``GET Recordings/{RE}/Transcriptions.json`` and
``GET|DELETE Recordings/{RE}/Transcriptions/{TR}.json``, newest first. The voice
runtime writes them (control_api/voice/transcription.py); there is no ``POST``, as
on Twilio: ``<Record transcribe>`` makes them.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from fastapi import APIRouter

from control_api.api.accounts import API_VERSION, account_uri
from control_api.api.resource import Resource, stored_dates
from control_api.api.state import store_of
from control_api.store import TranscriptionRecord, TranscriptionStore

__all__ = ["router", "transcription_json"]

router = APIRouter()

ACCOUNT = "/2010-04-01/Accounts/{account_sid}"
INSTANCE = ACCOUNT + "/Transcriptions/{sid}.json"
RECORDING_INSTANCE = ACCOUNT + "/Recordings/{recording_sid}/Transcriptions/{sid}.json"


def transcription_json(record: TranscriptionRecord) -> dict:
    """Twilio's Transcription; its ``uri`` is the account-wide one."""
    created, updated = stored_dates(record)
    return {
        "account_sid": record.account_sid,
        "api_version": API_VERSION,
        "date_created": created,
        "date_updated": updated,
        "duration": None if record.duration is None else str(record.duration),
        "price": None if record.price is None else float(record.price),  # a number in the spec
        "price_unit": record.price_unit,
        "recording_sid": record.recording_sid,
        "sid": record.sid,
        "status": record.status,
        "transcription_text": record.transcription_text,
        "type": record.type,
        "uri": f"{account_uri(record.account_sid)}/Transcriptions/{record.sid}.json",
    }


class OfRecording:
    """The transcriptions of one recording: the store's, narrowed to it."""

    def __init__(self, store: TranscriptionStore) -> None:
        self.store = store

    async def get(self, account_sid: str, recording_sid: str, sid: str):
        row = await self.store.get(account_sid, sid)
        return row if row is not None and row.recording_sid == recording_sid else None

    async def delete(self, account_sid: str, recording_sid: str, sid: str) -> bool:
        return await self.get(account_sid, recording_sid, sid) is not None and (
            await self.store.delete(account_sid, sid)
        )

    async def page(
        self, account_sid: str, recording_sid: str, **query: Any
    ) -> Sequence[TranscriptionRecord]:
        return await self.store.page(account_sid, recording_sid=recording_sid, **query)


TRANSCRIPTIONS = Resource(
    INSTANCE, ("TR",), lambda r: store_of(r).transcriptions, transcription_json
)


# The recording a nested list is under: it must exist (404 otherwise); only looked up.
RECORDING = Resource(
    ACCOUNT + "/Recordings/{sid}.json", ("RE",), lambda r: store_of(r).recordings, lambda _: {}
)


OF_RECORDING = Resource(
    RECORDING_INSTANCE,
    ("RE", "TR"),
    lambda r: OfRecording(store_of(r).transcriptions),
    transcription_json,
    key="transcriptions",
    parent=RECORDING,
)
TRANSCRIPTIONS.add_routes(router)
OF_RECORDING.add_routes(router)
