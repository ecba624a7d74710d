"""Persistent state of the control plane: one database, a small class per resource.

``Store`` opens the database and holds the resources: ``store.accounts``,
``store.numbers``, ``store.calls``, ``store.outbox`` (webhooks), ``store.credential_lists``
and ``store.sip_credentials``, ``store.recordings``, ``store.conferences`` and
``store.participants``, ``store.api_keys``, ``store.applications``, ``store.messages``,
``store.nodes``, ``store.billing``, ``store.queues`` and ``store.queue_members``, and the
SIP domains' ``store.sip_domains``, ``store.ip_access_control_lists``, ``store.ip_addresses``
and ``store.domain_mappings``, and the call logs' ``store.notifications`` and
``store.call_events``; verified caller IDs' ``store.caller_ids`` and messages' media,
``store.message_media``.
"""

from control_api.store.accounts import Account, AccountStore
from control_api.store.api_keys import ApiKey, ApiKeyStore
from control_api.store.applications import APPLICATION_FIELDS, Application, ApplicationStore
from control_api.store.billing import BillingStore, UsageItem, UsageSum, UsageTriggerRecord
from control_api.store.call_logs import (
    CallEvent,
    CallEventStore,
    NotificationRecord,
    NotificationStore,
)
from control_api.store.caller_ids import CallerId, CallerIdStore
from control_api.store.calls import CallRecord, CallStore
from control_api.store.conferences import (
    ConferenceRecord,
    ConferenceStore,
    ParticipantRecord,
    ParticipantStore,
)
from control_api.store.e164 import format_number, normalize_e164
from control_api.store.ip_access_control import (
    IpAccessControlList,
    IpAccessControlListStore,
    IpAddressStore,
    NoSuchIpAccessControlList,
    SipIpAddress,
)
from control_api.store.message_media import MediaRecord, MessageMediaStore
from control_api.store.messages import MessageRecord, MessageStore
from control_api.store.nodes import LIVE_STATUSES, LostCall, NodeRecord, NodeStore
from control_api.store.numbers import (
    NUMBER_FIELDS,
    NUMBER_TYPES,
    NumberStore,
    NumberTaken,
    PhoneNumber,
)
from control_api.store.outbox import OutboxItem, OutboxOutcome, OutboxStore
from control_api.store.queues import (
    QueueMember,
    QueueMemberStore,
    QueueNameTaken,
    QueueRecord,
    QueueStore,
)
from control_api.store.recordings import RecordingRecord, RecordingStore
from control_api.store.rows import MAX_FRIENDLY_NAME, TextTooLong
from control_api.store.sip_credentials import (
    CredentialListNameTaken,
    CredentialListStore,
    NoSuchCredentialList,
    SipCredential,
    SipCredentialList,
    SipCredentialStore,
    UsernameTaken,
    check_sip_password,
    check_sip_username,
)
from control_api.store.sip_domain_mappings import (
    DomainMapping,
    DomainMappingStore,
    MappingExists,
    NoSuchMappedList,
)
from control_api.store.sip_domains import (
    SIP_DOMAIN_FIELDS,
    DomainNameTaken,
    SipDomain,
    SipDomainStore,
    check_domain_name,
)
from control_api.store.store import Store, StoreUnavailable
from control_api.store.transcriptions import TranscriptionRecord, TranscriptionStore

__all__ = [
    "APPLICATION_FIELDS",
    "LIVE_STATUSES",
    "MAX_FRIENDLY_NAME",
    "NUMBER_FIELDS",
    "NUMBER_TYPES",
    "SIP_DOMAIN_FIELDS",
    "Account",
    "AccountStore",
    "ApiKey",
    "ApiKeyStore",
    "Application",
    "ApplicationStore",
    "BillingStore",
    "CallEvent",
    "CallEventStore",
    "CallRecord",
    "CallStore",
    "CallerId",
    "CallerIdStore",
    "ConferenceRecord",
    "ConferenceStore",
    "CredentialListNameTaken",
    "CredentialListStore",
    "DomainMapping",
    "DomainMappingStore",
    "DomainNameTaken",
    "IpAccessControlList",
    "IpAccessControlListStore",
    "IpAddressStore",
    "LostCall",
    "MappingExists",
    "MediaRecord",
    "MessageMediaStore",
    "MessageRecord",
    "MessageStore",
    "NoSuchCredentialList",
    "NoSuchIpAccessControlList",
    "NoSuchMappedList",
    "NodeRecord",
    "NodeStore",
    "NotificationRecord",
    "NotificationStore",
    "NumberStore",
    "NumberTaken",
    "OutboxItem",
    "OutboxOutcome",
    "OutboxStore",
    "ParticipantRecord",
    "ParticipantStore",
    "PhoneNumber",
    "QueueMember",
    "QueueMemberStore",
    "QueueNameTaken",
    "QueueRecord",
    "QueueStore",
    "RecordingRecord",
    "RecordingStore",
    "SipCredential",
    "SipCredentialList",
    "SipCredentialStore",
    "SipDomain",
    "SipDomainStore",
    "SipIpAddress",
    "Store",
    "StoreUnavailable",
    "TextTooLong",
    "TranscriptionRecord",
    "TranscriptionStore",
    "UsageItem",
    "UsageSum",
    "UsageTriggerRecord",
    "UsernameTaken",
    "check_domain_name",
    "check_sip_password",
    "check_sip_username",
    "format_number",
    "normalize_e164",
]
