"""Phone numbers (IncomingPhoneNumbers): the numbers the platform answers and where
their calls and messages go. A number belongs to one account in the whole store."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import insert, select
from sqlalchemy.exc import IntegrityError

from control_api.sids import utcnow
from control_api.store.e164 import format_number, is_toll_free, normalize_e164
from control_api.store.engine import Database
from control_api.store.rows import Listing, Owned, Rows, as_row, created, fit, friendly_name, reader
from control_api.store.schema import phone_numbers
from control_api.store.webhooks import VOICE_WEBHOOK_DEFAULTS, VoiceWebhooks

__all__ = ["NUMBER_FIELDS", "NUMBER_TYPES", "NumberStore", "NumberTaken", "PhoneNumber"]


class NumberTaken(Exception):
    """The phone number already belongs to an account (numbers are unique across accounts)."""

    def __init__(self, phone_number: str) -> None:
        super().__init__(f"{phone_number} is already provisioned")
        self.phone_number = phone_number


@dataclass(slots=True)
class PhoneNumber(VoiceWebhooks):
    """An IncomingPhoneNumber: a number the platform answers and where its calls go."""

    sid: str
    account_sid: str
    phone_number: str
    friendly_name: str
    sms_url: str | None
    sms_method: str
    sms_fallback_url: str | None
    sms_fallback_method: str
    voice_application_sid: str | None
    sms_application_sid: str | None
    date_created: datetime
    date_updated: datetime
    number_type: str = "local"  # Twilio's type: local, mobile or toll-free
    voice_caller_id_lookup: bool = False  # its calls' webhooks carry CallerName


NUMBER_TYPES = ("local", "mobile", "toll-free")

# What create and update take besides the number itself, with defaults.
NUMBER_FIELDS: dict[str, str | bool | None] = {
    "friendly_name": None,  # None: the number, formatted
    **VOICE_WEBHOOK_DEFAULTS,
    "sms_url": None,
    "sms_method": "POST",
    "sms_fallback_url": None,
    "sms_fallback_method": "POST",
    "voice_application_sid": None,
    "sms_application_sid": None,
    "number_type": None,  # None: "toll-free" for a North American toll-free number, else "local"
    "voice_caller_id_lookup": False,
}


_number = reader(PhoneNumber)


def _like_pattern(value: str) -> str:
    escaped = value.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return "%" + escaped.replace("*", "_") + "%"


_LISTING = Listing(
    order_by=(phone_numbers.c.date_created, phone_numbers.c.sid),
    equal={
        "friendly_name": phone_numbers.c.friendly_name,
        "number_type": phone_numbers.c.number_type,
    },
    custom={
        "phone_number": lambda part: phone_numbers.c.phone_number.like(_like_pattern(part), "\\")
    },
)


class NumberStore(Owned[PhoneNumber]):
    """The accounts' phone numbers, oldest first. ``page`` and ``count`` filters:
    phone_number matches any part of the number, with '*' standing for any one
    character (Twilio's filter); friendly_name matches exactly."""

    listing = _LISTING

    def __init__(self, db: Database) -> None:
        self.rows = Rows(db, phone_numbers, _number)

    async def create(self, account_sid: str, phone_number: str, **fields: Any) -> PhoneNumber:
        """Provision ``phone_number`` (E.164, '+' optional) for the account.

        ``fields`` are keys of ``NUMBER_FIELDS``. Raises ``NumberTaken`` if any account
        has the number already, ``ValueError`` for a number that is not E.164 or a
        friendly name that is not 1 to 64 characters.
        """
        e164 = normalize_e164(phone_number)
        if e164 is None:
            raise ValueError(f"not an E.164 phone number: {phone_number!r}")
        values: dict[str, Any] = {**NUMBER_FIELDS, **_number_fields(fields)}
        values["friendly_name"] = friendly_name(values["friendly_name"] or format_number(e164))
        if values["number_type"] is None:
            values["number_type"] = "toll-free" if is_toll_free(e164) else "local"
        elif values["number_type"] not in NUMBER_TYPES:
            raise ValueError(f"not a number type: {values['number_type']!r}")
        number = created(PhoneNumber, "PN", account_sid=account_sid, phone_number=e164, **values)
        statement = insert(phone_numbers).values(**fit(phone_numbers, as_row(number)))
        try:
            await self.rows.run(lambda c: c.execute(statement))
        except IntegrityError:
            if await self.find(e164) is not None:
                raise NumberTaken(e164) from None
            raise
        return number

    async def find(self, phone: str) -> PhoneNumber | None:
        """The number an inbound call is for, in any account; ``phone`` with or without '+'."""
        e164 = normalize_e164(phone)
        if e164 is None:
            return None
        return await self.rows.one(phone_numbers.c.phone_number == e164)

    async def find_many(self, phones: Iterable[str]) -> dict[str, PhoneNumber | None]:
        """``find`` for many numbers in one query: each given number (as given) to its
        PhoneNumber, or None."""
        wanted = {phone: normalize_e164(phone) for phone in phones}
        e164s = sorted({e for e in wanted.values() if e is not None})
        found: dict[str, PhoneNumber] = {}
        if e164s:
            query = select(phone_numbers).where(phone_numbers.c.phone_number.in_(e164s))
            found = {number.phone_number: number for number in await self.rows.all(query)}
        return {phone: found.get(e164) if e164 else None for phone, e164 in wanted.items()}

    async def count(self, account_sid: str, **filters: Any) -> int:
        owner = phone_numbers.c.account_sid == account_sid
        return await self.rows.count(owner, *_LISTING.where(filters))

    async def update(self, account_sid: str, sid: str, **fields: Any) -> PhoneNumber | None:
        """Change ``fields`` (keys of ``NUMBER_FIELDS``); None if the account has no such number."""
        values = _number_fields(fields)
        if "friendly_name" in values:
            values["friendly_name"] = friendly_name(values["friendly_name"] or "")
        values = fit(phone_numbers, values)
        values["date_updated"] = utcnow()
        return await self.rows.update_one(self.owned(account_sid, sid), values)


def _number_fields(given: dict[str, Any]) -> dict[str, Any]:
    unknown = set(given) - set(NUMBER_FIELDS)
    if unknown:
        raise TypeError(f"not a phone number field: {sorted(unknown)}")
    return dict(given)
