"""The store's tables, in SQLAlchemy Core.

Portable SQL only: the same tables run on SQLite (one process) and PostgreSQL (several
nodes). Every timestamp is a timezone-aware UTC datetime in Python; ``UTCDateTime`` keeps
it so on SQLite, which has no time zones. Column names avoid SQL keywords (``to``,
``from``) so hand-written SQL stays easy.

The migrations in ``migrations/versions`` create these tables; a test checks that the two
agree.
"""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Column,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
    false,
)
from sqlalchemy.types import TypeDecorator

__all__ = [
    "account_balances",
    "accounts",
    "api_keys",
    "applications",
    "call_events",
    "calls",
    "conference_participants",
    "conferences",
    "message_media",
    "messages",
    "metadata",
    "nodes",
    "notifications",
    "outgoing_caller_ids",
    "phone_numbers",
    "queue_members",
    "queues",
    "recordings",
    "sip_credential_lists",
    "sip_credentials",
    "sip_domain_mappings",
    "sip_domains",
    "sip_ip_access_control_lists",
    "sip_ip_addresses",
    "transcriptions",
    "usage_items",
    "usage_trigger_firings",
    "usage_triggers",
    "webhook_outbox",
]


class UTCDateTime(TypeDecorator):
    """A ``TIMESTAMP WITH TIME ZONE`` that always hands back aware UTC datetimes.

    PostgreSQL stores the instant; SQLite stores text, so values are converted to UTC and
    written without an offset (text order is then time order) and read back as UTC.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("the store only takes timezone-aware datetimes")
        value = value.astimezone(UTC)
        if dialect.name == "sqlite":
            return value.replace(tzinfo=None)
        return value

    def process_result_value(self, value: datetime | None, dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)


SID = String(34)
METHOD = String(8)
URL = Text

# Constraint names spelled out so that migrations can refer to them on every engine.
metadata = MetaData(
    naming_convention={
        "ix": "ix_%(table_name)s_%(column_0_N_name)s",
        "uq": "uq_%(table_name)s_%(column_0_N_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    }
)

# Column groups that several tables share. Each call makes new Column objects (a
# Column belongs to one table); the columns come out in the order written here.


def _owned(*, indexed: bool = False) -> tuple[Column, Column]:
    """A resource's ``sid`` and the account that owns it."""
    return (
        Column("sid", SID, primary_key=True),
        Column(
            "account_sid",
            SID,
            ForeignKey("accounts.sid"),
            nullable=False,
            index=indexed or None,
        ),
    )


def _dated() -> tuple[Column, Column]:
    """When a row was created and last changed."""
    return (
        Column("date_created", UTCDateTime, nullable=False),
        Column("date_updated", UTCDateTime, nullable=False),
    )


def _listed() -> tuple[Column | Index, ...]:
    """``_dated``, and the index by which an account's REST list pages through them."""
    return (*_dated(), Index(None, "account_sid", "date_created"))


def _webhook(url: str, method: str) -> tuple[Column, Column]:
    """A webhook a resource names: its URL (none: not set) and its HTTP method."""
    return Column(url, URL), Column(method, METHOD, nullable=False)


def _voice_webhooks() -> tuple[Column, ...]:
    """Where a number's or an application's calls get their TwiML, and their status."""
    return (
        *_webhook("voice_url", "voice_method"),
        *_webhook("voice_fallback_url", "voice_fallback_method"),
        *_webhook("status_callback", "status_callback_method"),
    )


def _list_entry(list_column: str, lists: str, *, fk_name: str | None = None) -> tuple[Column, ...]:
    """An entry of an account's list: its ``sid``, the list it is in (indexed: a
    list's entries are read and deleted together) and the account that owns it."""
    return (
        Column("sid", SID, primary_key=True),
        Column(
            list_column,
            SID,
            ForeignKey(f"{lists}.sid", name=fk_name),
            nullable=False,
            index=True,
        ),
        Column("account_sid", SID, ForeignKey("accounts.sid"), nullable=False),
    )


def _priced() -> tuple[Column, Column]:
    """A price as text, so "-0.01300" comes back exactly as it was written (None:
    not priced yet), and its currency."""
    return Column("price", String(32)), Column("price_unit", String(8), nullable=False)


def _serial_id() -> Column:
    """BIGINT on PostgreSQL; INTEGER on SQLite, where only INTEGER PRIMARY KEY
    autoincrements."""
    return Column(
        "id",
        BigInteger().with_variant(Integer, "sqlite"),
        primary_key=True,
        autoincrement=True,
    )


accounts = Table(
    "accounts",
    metadata,
    Column("sid", SID, primary_key=True),
    Column("friendly_name", String(64), nullable=False),
    Column("auth_token", String(64), nullable=False),
    Column("status", String(16), nullable=False),
    *_dated(),
)

phone_numbers = Table(
    "phone_numbers",
    metadata,
    *_owned(),
    # Unique across accounts: an inbound call to a number must find exactly one owner.
    Column("phone_number", String(16), nullable=False, unique=True),
    Column("friendly_name", String(64), nullable=False),
    *_voice_webhooks(),
    *_webhook("sms_url", "sms_method"),
    *_webhook("sms_fallback_url", "sms_fallback_method"),
    Column("voice_application_sid", SID),
    Column("sms_application_sid", SID),
    *_listed(),
    # Twilio's type: local, mobile or toll-free.
    Column("number_type", String(16), nullable=False, server_default="local"),
    # VoiceCallerIdLookup: its calls' webhooks carry CallerName.
    Column("voice_caller_id_lookup", Boolean, nullable=False, server_default=false()),
)

calls = Table(
    "calls",
    metadata,
    *_owned(),
    Column("parent_call_sid", SID, index=True),
    # E.164 numbers, client:alice or sip: URIs.
    Column("to_address", Text, nullable=False),
    Column("from_address", Text, nullable=False),
    Column("phone_number_sid", SID),
    Column("status", String(16), nullable=False),
    Column("direction", String(16), nullable=False),
    Column("start_time", UTCDateTime),
    Column("end_time", UTCDateTime),
    Column("duration", Integer),
    *_priced(),
    Column("answered_by", String(32)),
    Column("forwarded_from", Text),
    Column("caller_name", Text),
    Column("sip_call_id", Text),
    *_listed(),
    # The node (--node-id) whose process holds the call while it is live (0005_nodes).
    Column("node_id", String(64)),
    # The final status callback the call's application asked for, and the call's
    # webhook parameters (a JSON list of pairs): sent by whichever node ends the call
    # when the one holding it is lost (0008_call_final_callbacks).
    Column("final_callback", URL),
    Column("final_callback_method", METHOD),
    Column("callback_params", JSON),
    Index(None, "node_id", "status"),
)

webhook_outbox = Table(
    "webhook_outbox",
    metadata,
    _serial_id(),
    Column("delivery_id", String(64), nullable=False, unique=True),
    Column("account_sid", SID, nullable=False),
    Column("url", URL, nullable=False),
    Column("method", METHOD, nullable=False),
    # A JSON list of [name, value] pairs: order and repeated names survive.
    Column("params", JSON, nullable=False),
    Column("call_sid", SID),
    Column("attempts", Integer, nullable=False),
    Column("next_attempt_at", UTCDateTime, nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    Column("delivered_at", UTCDateTime),
    Column("abandoned_at", UTCDateTime),
    Column("last_error", Text),
    # The node delivering it now and when its lease runs out (0006_outbox_claims).
    Column("claimed_by", String(64)),
    Column("claimed_until", UTCDateTime),
    Index(None, "next_attempt_at"),
    # Pending items by due time: what the outbox claims, without walking every row
    # delivered before (0006_outbox_claims).
    Index(None, "delivered_at", "abandoned_at", "next_attempt_at"),
)


def outbox_row(
    *,
    delivery_id: str,
    account_sid: str,
    url: str,
    method: str,
    params,
    call_sid: str | None,
    now,
) -> dict:
    """A new ``webhook_outbox`` row: a request due at ``now``, not yet tried."""
    return {
        "delivery_id": delivery_id,
        "account_sid": account_sid,
        "url": url,
        "method": method,
        "params": [[name, value] for name, value in params],
        "call_sid": call_sid,
        "attempts": 0,
        "next_attempt_at": now,
        "created_at": now,
    }


sip_credential_lists = Table(
    "sip_credential_lists",
    metadata,
    *_owned(),
    Column("friendly_name", String(64), nullable=False),
    *_dated(),
    # Twilio refuses a second list of the same name in an account; the CLI finds lists by it.
    UniqueConstraint("account_sid", "friendly_name"),
)

sip_credentials = Table(
    "sip_credentials",
    metadata,
    *_list_entry("credential_list_sid", "sip_credential_lists"),
    # Indexed, not unique: two accounts may each have an "alice" (no tenant can squat or
    # probe another's names); the registrar tries each one's digest and the right one verifies.
    Column("username", String(32), nullable=False, index=True),
    # H(username:realm:password) for each digest algorithm (RFC 7616 §3.4.2); never the password.
    Column("ha1_md5", String(32), nullable=False),
    Column("ha1_sha256", String(64), nullable=False),
    *_dated(),
    # Unique within the account: its phones register and are dialled by username.
    UniqueConstraint("account_sid", "username"),
)

recordings = Table(
    "recordings",
    metadata,
    *_owned(),
    # No foreign keys: a recording outlives the call or conference record it came from.
    Column("call_sid", SID, index=True),
    Column("conference_sid", SID, index=True),
    Column("status", String(16), nullable=False),
    Column("source", String(32), nullable=False),
    Column("channels", Integer, nullable=False),
    Column("duration", Integer),  # whole seconds; None while recording
    Column("start_time", UTCDateTime),
    *_priced(),
    Column("error_code", Integer),
    Column("track", String(16), nullable=False),
    # The WAV file, relative to the recordings directory.
    Column("file_path", Text),
    *_listed(),
)

# Transcriptions of recordings (<Record transcribe>; migration 0017_transcriptions).
transcriptions = Table(
    "transcriptions",
    metadata,
    *_owned(),
    Column("recording_sid", SID, nullable=False, index=True),  # outlives its recording
    Column("call_sid", SID),
    Column("status", String(16), nullable=False),  # in-progress, completed, failed
    Column("transcription_text", Text),
    Column("duration", Integer),  # seconds of audio transcribed
    *_priced(),
    Column("type", String(16), nullable=False),
    *_listed(),
)

conferences = Table(
    "conferences",
    metadata,
    *_owned(),
    Column("friendly_name", String(128), nullable=False),
    Column("status", String(16), nullable=False),
    Column("region", String(8), nullable=False),
    Column("reason_conference_ended", String(64)),
    Column("call_sid_ending_conference", SID),
    *_listed(),
    # <Dial><Conference>name</Conference> looks up the room of that name still running.
    Index(None, "account_sid", "friendly_name"),
)

conference_participants = Table(
    "conference_participants",
    metadata,
    Column("conference_sid", SID, ForeignKey("conferences.sid"), primary_key=True),
    Column("call_sid", SID, primary_key=True),
    Column("account_sid", SID, ForeignKey("accounts.sid"), nullable=False),
    Column("label", String(128)),
    Column("muted", Boolean, nullable=False),
    Column("hold", Boolean, nullable=False),
    Column("coaching", Boolean, nullable=False),
    Column("call_sid_to_coach", SID),  # migration 0016_participant_coach
    Column("status", String(16), nullable=False),
    Column("start_conference_on_enter", Boolean, nullable=False),
    Column("end_conference_on_exit", Boolean, nullable=False),
    *_dated(),
)

# SMS and billing (migration 0003_sms).

messages = Table(
    "messages",
    metadata,
    *_owned(),
    Column("to_address", Text, nullable=False),
    Column("from_address", Text, nullable=False),
    Column("messaging_service_sid", SID),
    Column("body", Text, nullable=False),
    Column("status", String(16), nullable=False),
    Column("direction", String(16), nullable=False),
    Column("num_segments", Integer, nullable=False),
    Column("encoding", String(8), nullable=False),
    # A JSON list of URLs, in the order given.
    Column("media_urls", JSON, nullable=False),
    *_priced(),
    Column("error_code", Integer),
    Column("error_message", Text),
    *_webhook("status_callback", "status_callback_method"),
    Column("validity_period", Integer),
    # The send queue: a queued outbound message is due at next_attempt_at; the carrier
    # that took it and the carrier's id for it (an SMPP message_id) match its receipts.
    Column("attempts", Integer, nullable=False),
    Column("next_attempt_at", UTCDateTime),
    Column("carrier", String(64)),
    Column("carrier_message_id", String(128)),
    # Who took a message 'sending' (a node's claimant name) and until when: another
    # node puts it back in the queue only once that lease ran out.
    Column("sending_by", String(64)),
    Column("sending_until", UTCDateTime),
    Column("date_sent", UTCDateTime),
    *_listed(),
    Index(None, "status", "next_attempt_at"),
    Index(None, "carrier", "carrier_message_id"),
)

usage_items = Table(
    "usage_items",
    metadata,
    _serial_id(),
    # The call or message priced: each is priced once, whatever retries or restarts do.
    Column("source_sid", SID, nullable=False, unique=True),
    Column("account_sid", SID, ForeignKey("accounts.sid"), nullable=False),
    # The narrowest category (calls-outbound, sms-inbound, ...); sums roll up from it.
    Column("category", String(32), nullable=False),
    Column("usage", Integer, nullable=False),  # minutes or segments
    Column("price", String(32), nullable=False),  # positive decimal, USD
    Column("occurred_at", UTCDateTime, nullable=False),
    Index(None, "account_sid", "occurred_at"),
)

usage_triggers = Table(
    "usage_triggers",
    metadata,
    *_owned(),
    Column("friendly_name", String(64)),
    Column("callback_url", URL, nullable=False),
    Column("callback_method", METHOD, nullable=False),
    Column("trigger_value", String(32), nullable=False),
    Column("usage_category", String(32), nullable=False),
    Column("recurring", String(16)),
    Column("trigger_by", String(8), nullable=False),
    Column("current_value", String(32), nullable=False),
    Column("date_fired", UTCDateTime),
    *_listed(),
)

usage_trigger_firings = Table(
    "usage_trigger_firings",
    metadata,
    # One row per trigger and period: the key that makes a trigger fire once a period.
    Column("trigger_sid", SID, primary_key=True),
    Column("period", String(16), primary_key=True),
    Column("fired_at", UTCDateTime, nullable=False),
)

account_balances = Table(
    "account_balances",
    metadata,
    Column("account_sid", SID, ForeignKey("accounts.sid"), primary_key=True),
    Column("balance", String(32), nullable=False),  # decimal text, exact
    Column("currency", String(8), nullable=False),
    Column("date_updated", UTCDateTime, nullable=False),
)

# API keys (SK…): the secret is kept, since it is the HMAC key that checks the access
# tokens the key signed (reference §10); it is shown only once, when the key is made.
api_keys = Table(
    "api_keys",
    metadata,
    *_owned(indexed=True),
    Column("friendly_name", String(64), nullable=False),
    Column("secret", String(64), nullable=False),
    *_dated(),
    # "standard" (Keys.json) or "signing" (SigningKeys.json).
    Column("kind", String(16), nullable=False, server_default="standard"),
)

# Applications (AP…): the TwiML a browser client's outgoing call runs.
applications = Table(
    "applications",
    metadata,
    *_owned(indexed=True),
    Column("friendly_name", String(64), nullable=False),
    *_voice_webhooks(),
    *_dated(),
)

# Nodes sharing the store: each heartbeats; a peer whose heartbeat is older than the
# lease is gone, and its live calls are marked failed (control_api/cluster/).
nodes = Table(
    "nodes",
    metadata,
    Column("node_id", String(64), primary_key=True),
    # Where peers reach the node's HTTP server (forwarded REST updates).
    Column("url", Text, nullable=False),
    Column("started_at", UTCDateTime, nullable=False),
    Column("heartbeat_at", UTCDateTime, nullable=False),
)

# Call queues (QU…) and the calls waiting in them now (migration 0011_queues).
queues = Table(
    "queues",
    metadata,
    *_owned(),
    Column("friendly_name", String(64), nullable=False),
    Column("max_size", Integer, nullable=False),
    *_dated(),
    # <Enqueue>name</Enqueue> finds its queue by name; one queue of a name per account.
    UniqueConstraint("account_sid", "friendly_name"),
)

queue_members = Table(
    "queue_members",
    metadata,
    Column("queue_sid", SID, ForeignKey("queues.sid"), primary_key=True),
    Column("call_sid", SID, primary_key=True),
    Column("account_sid", SID, ForeignKey("accounts.sid"), nullable=False),
    # The line's order: when each joined (ties broken by call_sid).
    Column("date_enqueued", UTCDateTime, nullable=False),
    Index(None, "queue_sid", "date_enqueued"),
)

# SIP domains (SD…): a host name whose INVITEs run the domain's voice_url, admitted by the
# IP access control lists (AL…, of IpAddresses IP…) and credential lists mapped to it
# (migration 0010_sip_domains; control_api/store/sip_domains.py).
sip_domains = Table(
    "sip_domains",
    metadata,
    *_owned(indexed=True),
    Column("friendly_name", String(64)),
    # Lower case; unique on the node: an INVITE's Request-URI host picks one domain.
    Column("domain_name", String(253), nullable=False, unique=True),
    *_webhook("voice_url", "voice_method"),
    *_webhook("voice_fallback_url", "voice_fallback_method"),
    *_webhook("voice_status_callback_url", "voice_status_callback_method"),
    Column("sip_registration", Boolean, nullable=False),
    Column("emergency_calling_enabled", Boolean, nullable=False),
    Column("secure", Boolean, nullable=False),
    Column("byoc_trunk_sid", SID),
    Column("emergency_caller_sid", SID),
    *_dated(),
)

sip_ip_access_control_lists = Table(
    "sip_ip_access_control_lists",
    metadata,
    *_owned(indexed=True),
    Column("friendly_name", String(255), nullable=False),
    *_dated(),
)

sip_ip_addresses = Table(
    "sip_ip_addresses",
    metadata,
    *_list_entry(
        "ip_access_control_list_sid",
        "sip_ip_access_control_lists",
        fk_name="fk_sip_ip_addresses_list",
    ),
    Column("friendly_name", String(255), nullable=False),
    Column("ip_address", String(45), nullable=False),
    Column("cidr_prefix_length", Integer, nullable=False),
    *_dated(),
)

# A list mapped to a domain, by ``kind``: ``calls`` or ``registrations`` (Auth/Calls and
# Auth/Registrations) or ``domain`` (the legacy Domains/{SD}/...Mappings, which admit
# calls too); ``sid`` is the mapped list's (CL… or AL…), as Twilio names a mapping.
sip_domain_mappings = Table(
    "sip_domain_mappings",
    metadata,
    Column("domain_sid", SID, ForeignKey("sip_domains.sid"), primary_key=True),
    Column("kind", String(16), primary_key=True),
    Column("sid", SID, primary_key=True),
    Column("account_sid", SID, ForeignKey("accounts.sid"), nullable=False),
    *_dated(),
    Index(None, "sid"),
)

# Call logs (migration 0014_call_logs; control_api/store/call_logs.py): the errors and
# warnings a call met (Notifications, NO…) and the webhook requests it made with their
# answers (Calls/{CA}/Events). What came from the application's server is kept only as
# a bounded excerpt, and a call keeps only so many rows of each (control_api/call_log.py).
notifications = Table(
    "notifications",
    metadata,
    *_owned(),
    Column("call_sid", SID, index=True),
    Column("log", Integer, nullable=False),  # 0 error, 1 warning
    Column("error_code", String(8)),
    Column("message_text", Text, nullable=False),
    Column("request_url", Text),
    Column("request_method", METHOD),
    Column("request_variables", Text),
    Column("response_headers", Text),
    Column("response_body", Text),
    Column("message_date", UTCDateTime, nullable=False),
    *_dated(),
    Index(None, "account_sid", "message_date"),
)

call_events = Table(
    "call_events",
    metadata,
    _serial_id(),
    Column("call_sid", SID, nullable=False, index=True),
    Column("account_sid", SID, ForeignKey("accounts.sid"), nullable=False),
    Column("request_method", METHOD, nullable=False),
    Column("request_url", Text, nullable=False),
    Column("request_parameters", JSON, nullable=False),  # a list of [name, value] pairs
    Column("response_code", Integer),  # None: no answer (connection failed, timed out)
    Column("request_duration", Integer, nullable=False),  # milliseconds
    Column("content_type", Text),
    Column("response_body", Text),
    Column("error", Text),  # why there was no answer
    Column("date_created", UTCDateTime, nullable=False),
)

# Caller IDs verified by a validation call (migration 0015_caller_ids_and_media).
outgoing_caller_ids = Table(
    "outgoing_caller_ids",
    metadata,
    *_owned(),
    Column("phone_number", String(16), nullable=False),
    Column("friendly_name", String(64)),
    *_dated(),
    # One caller ID of a number per account.
    UniqueConstraint("account_sid", "phone_number"),
)

# The media (MMS) of messages: inbound ones as received, outbound ones as fetched.
message_media = Table(
    "message_media",
    metadata,
    *_owned(),
    Column("message_sid", SID, nullable=False),
    Column("content_type", String(128), nullable=False),
    Column("content", LargeBinary, nullable=False),
    *_dated(),
    Index(None, "message_sid", "date_created"),
)
