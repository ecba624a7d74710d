"""Recordings as the REST API shows them; the call engine writes each as it records."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from control_api.store.engine import Database
from control_api.store.rows import Listing, Owned, Rows, reader, updatable
from control_api.store.schema import recordings

__all__ = ["RecordingRecord", "RecordingStore"]


@dataclass
class RecordingRecord:
    """A recording as the REST API shows it; the call engine writes it as it records.

    ``file_path`` is the WAV file relative to the recordings directory.
    """

    sid: str
    account_sid: str
    call_sid: str | None = None
    conference_sid: str | None = None
    status: str = "in-progress"  # in-progress, processing, completed, absent, failed
    source: str = "RecordVerb"  # RecordVerb, DialVerb, OutboundAPI, Conference, ...
    channels: int = 1
    duration: int | None = None  # whole seconds; None while recording
    start_time: datetime | None = None
    price: str | None = None
    price_unit: str = "USD"
    error_code: int | None = None
    track: str = "both"
    file_path: str | None = None
    date_created: datetime | None = None  # None: set on insert
    date_updated: datetime | None = None  # None: set on insert and on every update


_UPDATABLE = updatable(RecordingRecord, "sid", "account_sid", "date_created")


_LISTING = Listing(
    order_by=(recordings.c.date_created.desc(), recordings.c.sid.desc()),
    equal={"call_sid": recordings.c.call_sid, "conference_sid": recordings.c.conference_sid},
    ranges={"date_created": recordings.c.date_created},
)


_recording = reader(RecordingRecord)


class RecordingStore(Owned[RecordingRecord]):
    """The accounts' recordings: their rows (deleting one leaves its file to the caller).

    ``page`` filters: call_sid, conference_sid, date_created_after (inclusive),
    date_created_before (exclusive); newest first.
    """

    listing = _LISTING

    def __init__(self, db: Database) -> None:
        self.rows = Rows(db, recordings, _recording)

    async def insert(self, record: RecordingRecord) -> RecordingRecord:
        """Store a new recording; fills in ``date_created``/``date_updated`` if they are None."""
        return await self.rows.insert(record)

    async def update(self, sid: str, **fields: Any) -> RecordingRecord | None:
        """Change ``fields`` (RecordingRecord attributes); None if there is no such
        recording. ``date_updated`` is set to now unless given."""
        return await self.rows.change(
            "update_recording", _UPDATABLE, fields, recordings.c.sid == sid
        )
