"""Persistent state of the control plane: accounts, numbers, calls, the webhook outbox."""

from control_api.store.e164 import format_number, normalize_e164
from control_api.store.store import (
    NUMBER_FIELDS,
    Account,
    CallRecord,
    NumberTaken,
    OutboxItem,
    PhoneNumber,
    Store,
)

__all__ = [
    "NUMBER_FIELDS",
    "Account",
    "CallRecord",
    "NumberTaken",
    "OutboxItem",
    "PhoneNumber",
    "Store",
    "format_number",
    "normalize_e164",
]
