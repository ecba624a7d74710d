"""Conference rooms and the calls in them; the call engine writes both as participants
come and go."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from control_api.sids import new_sid
from control_api.store.engine import Database
from control_api.store.rows import Listing, Owned, Rows, reader, updatable
from control_api.store.schema import conference_participants, conferences

__all__ = [
    "LIVE_CONFERENCE_STATUSES",
    "ConferenceRecord",
    "ConferenceStore",
    "ParticipantRecord",
    "ParticipantStore",
]

LIVE_CONFERENCE_STATUSES = ("init", "in-progress")


@dataclass
class ConferenceRecord:
    """A conference room; the call engine writes it as participants come and go."""

    sid: str
    account_sid: str
    friendly_name: str
    status: str = "init"  # init, in-progress, completed
    region: str = "us1"
    reason_conference_ended: str | None = None
    call_sid_ending_conference: str | None = None
    date_created: datetime | None = None  # None: set on insert
    date_updated: datetime | None = None  # None: set on insert and on every update


@dataclass
class ParticipantRecord:
    """One call in a conference, keyed by (conference_sid, call_sid)."""

    conference_sid: str
    call_sid: str
    account_sid: str
    label: str | None = None
    muted: bool = False
    hold: bool = False
    coaching: bool = False
    call_sid_to_coach: str | None = None
    status: str = "connected"  # queued, connecting, ringing, connected, complete, failed
    start_conference_on_enter: bool = True
    end_conference_on_exit: bool = False
    date_created: datetime | None = None  # None: set on insert
    date_updated: datetime | None = None  # None: set on insert and on every update


_CONFERENCE_UPDATABLE = updatable(ConferenceRecord, "sid", "account_sid", "date_created")
_PARTICIPANT_UPDATABLE = updatable(
    ParticipantRecord, "conference_sid", "call_sid", "account_sid", "date_created"
)


_CONFERENCES = Listing(
    order_by=(conferences.c.date_created.desc(), conferences.c.sid.desc()),
    equal={"friendly_name": conferences.c.friendly_name, "status": conferences.c.status},
    ranges={"date_created": conferences.c.date_created, "date_updated": conferences.c.date_updated},
)
_PARTICIPANTS = Listing(
    order_by=(conference_participants.c.date_created, conference_participants.c.call_sid),
    equal={
        name: conference_participants.c[name] for name in ("muted", "hold", "coaching", "status")
    },
)


_conference = reader(ConferenceRecord)


_participant = reader(ParticipantRecord)


class ConferenceStore(Owned[ConferenceRecord]):
    """The accounts' conference rooms. ``page`` filters: friendly_name, status,
    date_created_after/_before, date_updated_after/_before; newest first."""

    listing = _CONFERENCES

    def __init__(self, db: Database) -> None:
        self.rows = Rows(db, conferences, _conference)

    async def insert(self, record: ConferenceRecord) -> ConferenceRecord:
        """Store a new conference; fills in ``date_created``/``date_updated`` if None."""
        return await self.rows.insert(record)

    async def create(
        self, account_sid: str, friendly_name: str, *, status: str = "init"
    ) -> ConferenceRecord:
        """A new conference with a fresh CF SID."""
        record = ConferenceRecord(
            sid=new_sid("CF"), account_sid=account_sid, friendly_name=friendly_name, status=status
        )
        return await self.insert(record)

    async def update(self, sid: str, **fields: Any) -> ConferenceRecord | None:
        """Change ``fields`` (ConferenceRecord attributes); None if there is no such
        conference. ``date_updated`` is set to now unless given."""
        where = conferences.c.sid == sid
        return await self.rows.change("update_conference", _CONFERENCE_UPDATABLE, fields, where)

    async def find_live(self, account_sid: str, friendly_name: str) -> ConferenceRecord | None:
        """The account's conference of that name that has not ended (init or in-progress)."""
        t = conferences.c
        return await self.rows.newest(
            t.account_sid == account_sid,
            t.friendly_name == friendly_name,
            t.status.in_(LIVE_CONFERENCE_STATUSES),
            by=(t.date_created, t.sid),
        )


class ParticipantStore:
    """The calls in conferences."""

    def __init__(self, db: Database) -> None:
        self.rows = Rows(db, conference_participants, _participant)

    async def insert(self, record: ParticipantRecord) -> ParticipantRecord:
        """Store a call joining a conference; fills in the dates if they are None."""
        return await self.rows.insert(record)

    async def update(
        self, conference_sid: str, call_sid: str, **fields: Any
    ) -> ParticipantRecord | None:
        """Change ``fields`` (ParticipantRecord attributes); None if there is no such row.
        ``date_updated`` is set to now unless given."""
        t = conference_participants.c
        where = (t.conference_sid == conference_sid, t.call_sid == call_sid)
        return await self.rows.change("update_participant", _PARTICIPANT_UPDATABLE, fields, *where)

    async def get(
        self, account_sid: str, conference_sid: str, call_sid: str
    ) -> ParticipantRecord | None:
        t = conference_participants.c
        return await self.rows.one(
            t.account_sid == account_sid, t.conference_sid == conference_sid, t.call_sid == call_sid
        )

    async def by_label(
        self, account_sid: str, conference_sid: str, label: str
    ) -> ParticipantRecord | None:
        """The conference's newest participant with that label (the Participants API
        fetches, updates and deletes by label as by call SID)."""
        t = conference_participants.c
        return await self.rows.newest(
            t.account_sid == account_sid,
            t.conference_sid == conference_sid,
            t.label == label,
            by=(t.date_created,),
        )

    async def page(
        self,
        account_sid: str,
        conference_sid: str,
        *,
        offset: int = 0,
        limit: int = 50,
        **filters: Any,
    ) -> list[ParticipantRecord]:
        """The conference's participants, in the order they joined; ``filters``:
        muted, hold, coaching, status."""
        t = conference_participants.c
        where = (t.account_sid == account_sid, t.conference_sid == conference_sid)
        return await self.rows.listed(_PARTICIPANTS, filters, offset, limit, *where)

    async def delete(self, conference_sid: str, call_sid: str) -> bool:
        t = conference_participants.c
        return (
            await self.rows.delete(t.conference_sid == conference_sid, t.call_sid == call_sid) > 0
        )
