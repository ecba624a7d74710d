"""The store: one database shared by the control plane's resources, each a small class
of its own module (accounts, numbers, calls, the webhook outbox, ...).

SQLAlchemy Core behind coroutines: SQLite for one process, PostgreSQL when several nodes
share state. Every query is portable SQL, written as a function of a connection and run
in one transaction by ``engine.Database``. Opening the store upgrades the schema to the
newest migration, keeping the data.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import DBAPIError

from control_api.store.accounts import AccountStore
from control_api.store.api_keys import ApiKeyStore
from control_api.store.applications import ApplicationStore
from control_api.store.billing import BillingStore
from control_api.store.call_logs import CallEventStore, NotificationStore
from control_api.store.caller_ids import CallerIdStore
from control_api.store.calls import CallRecord, CallStore
from control_api.store.conferences import (
    ConferenceRecord,
    ConferenceStore,
    ParticipantRecord,
    ParticipantStore,
)
from control_api.store.engine import Database
from control_api.store.group import close_group
from control_api.store.ip_access_control import IpAccessControlListStore, IpAddressStore
from control_api.store.message_media import MessageMediaStore
from control_api.store.messages import MessageStore
from control_api.store.migrate import upgrade_to_head
from control_api.store.nodes import NodeStore
from control_api.store.numbers import NumberStore, PhoneNumber
from control_api.store.outbox import OutboxStore
from control_api.store.queues import QueueMemberStore, QueueStore
from control_api.store.recordings import RecordingRecord, RecordingStore
from control_api.store.sip_credentials import CredentialListStore, SipCredentialStore
from control_api.store.sip_domain_mappings import DomainMappingStore
from control_api.store.sip_domains import SipDomainStore
from control_api.store.transcriptions import TranscriptionStore

__all__ = ["Store", "StoreUnavailable"]


class StoreUnavailable(Exception):
    """The database cannot be reached or opened (refused, no such database or role, a
    wrong password, a failed migration); the message names the URL without its password."""

    def __init__(self, url: URL, error: BaseException) -> None:
        reason = error.orig if isinstance(error, DBAPIError) and error.orig else error
        where = url.render_as_string(hide_password=True)
        super().__init__(f"cannot open the store at {where}: {reason}")


class Store:
    """Persistent state of the control plane. Open with ``await Store.open(url)``.

    Each resource is an attribute (``store.calls.get(account_sid, sid)``); every method
    of a resource is one transaction, and those that take an account SID only ever see
    that account's rows.
    """

    def __init__(self, db: Database) -> None:
        self.db = db
        self.accounts = AccountStore(db)
        self.numbers = NumberStore(db)
        self.calls = CallStore(db)
        self.outbox = OutboxStore(db)
        self.credential_lists = CredentialListStore(db)
        self.sip_credentials = SipCredentialStore(db)
        self.recordings = RecordingStore(db)
        self.conferences = ConferenceStore(db)
        self.participants = ParticipantStore(db)
        self.api_keys = ApiKeyStore(db)
        self.signing_keys = ApiKeyStore(db, kind="signing")
        self.applications = ApplicationStore(db)
        self.messages = MessageStore(db)
        self.nodes = NodeStore(db)
        self.billing = BillingStore(db)
        self.queues = QueueStore(db)
        self.queue_members = QueueMemberStore(db)
        # SIP domains and who may call or register to them.
        self.sip_domains = SipDomainStore(db)
        self.ip_access_control_lists = IpAccessControlListStore(db)
        self.ip_addresses = IpAddressStore(db)
        self.domain_mappings = DomainMappingStore(db)
        # Call logs: the errors and warnings calls met, the webhook requests they made.
        self.notifications = NotificationStore(db)
        self.call_events = CallEventStore(db)
        # Verified caller IDs; messages' media (migration 0015).
        self.caller_ids = CallerIdStore(db)
        self.message_media = MessageMediaStore(db)
        # Transcriptions of recordings (migration 0017).
        self.transcriptions = TranscriptionStore(db)

    @classmethod
    async def open(cls, url: str, *, pooled: bool = True) -> Store:
        """Connect to ``url`` and upgrade the schema to the newest migration.

        ``sqlite+aiosqlite:///path/callswitch.db`` (the directory is created; WAL
        journal and a busy timeout so that readers and the writer share the file) or
        ``postgresql://user:pass@host/db`` (asyncpg, a pool of connections). See
        ``engine.Database`` for how the work is run and for ``pooled``.
        """
        parsed = make_url(url)
        if parsed.get_backend_name() == "sqlite" and parsed.database not in (None, "", ":memory:"):
            Path(parsed.database).expanduser().parent.mkdir(parents=True, exist_ok=True)
        db = Database(parsed, pooled=pooled)
        try:
            await db.run(upgrade_to_head)
        except (DBAPIError, OSError) as exc:
            await db.dispose()
            raise StoreUnavailable(parsed, exc) from exc
        except BaseException:
            await db.dispose()
            raise
        return cls(db)

    async def close(self) -> None:
        await asyncio.to_thread(close_group, self.db)
        await self.db.dispose()

    # The call engine's writes under their former names, for control_api/voice until
    # it moves to the resources above.

    async def auth_token(self, sid: str) -> str | None:
        return await self.accounts.auth_token(sid)

    async def find_number(self, phone: str) -> PhoneNumber | None:
        return await self.numbers.find(phone)

    async def insert_call(self, record: CallRecord) -> CallRecord:
        return await self.calls.insert(record)

    async def update_call(self, sid: str, **fields: object) -> bool:
        return await self.calls.update(sid, **fields)

    async def insert_recording(self, record: RecordingRecord) -> RecordingRecord:
        return await self.recordings.insert(record)

    async def update_recording(self, sid: str, **fields: object) -> RecordingRecord | None:
        return await self.recordings.update(sid, **fields)

    async def insert_conference(self, record: ConferenceRecord) -> ConferenceRecord:
        return await self.conferences.insert(record)

    async def update_conference(self, sid: str, **fields: object) -> ConferenceRecord | None:
        return await self.conferences.update(sid, **fields)

    async def insert_participant(self, record: ParticipantRecord) -> ParticipantRecord:
        return await self.participants.insert(record)

    async def update_participant(
        self, conference_sid: str, call_sid: str, **fields: object
    ) -> ParticipantRecord | None:
        return await self.participants.update(conference_sid, call_sid, **fields)
