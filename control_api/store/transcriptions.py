"""Transcriptions of recordings (TR…), as the REST API shows them.

The voice runtime writes one when a ``<Record transcribe>`` recording is done
(``in-progress``) and completes it with the text (or ``failed``).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from control_api.store.engine import Database
from control_api.store.rows import Listing, Owned, Rows, reader, updatable
from control_api.store.schema import transcriptions

__all__ = ["TranscriptionRecord", "TranscriptionStore"]


@dataclass
class TranscriptionRecord:
    sid: str
    account_sid: str
    recording_sid: str
    call_sid: str | None = None
    status: str = "in-progress"  # in-progress, completed, failed
    transcription_text: str | None = None
    duration: int | None = None  # seconds of audio transcribed
    price: str | None = None
    price_unit: str = "USD"
    type: str = "fast"
    date_created: datetime | None = None
    date_updated: datetime | None = None


_UPDATABLE = updatable(TranscriptionRecord, "sid", "account_sid", "recording_sid", "date_created")
_t = transcriptions.c


class TranscriptionStore(Owned[TranscriptionRecord]):
    """The accounts' transcriptions, newest first; ``page`` filters by recording_sid."""

    listing = Listing(
        order_by=(_t.date_created.desc(), _t.sid.desc()),
        equal={"recording_sid": _t.recording_sid},
    )

    def __init__(self, db: Database) -> None:
        self.rows = Rows(db, transcriptions, reader(TranscriptionRecord))

    async def insert(self, record: TranscriptionRecord) -> TranscriptionRecord:
        return await self.rows.insert(record)

    async def update(self, sid: str, **fields: Any) -> TranscriptionRecord | None:
        return await self.rows.change(
            "update_transcription", _UPDATABLE, fields, transcriptions.c.sid == sid
        )
