"""The price list: per started minute for calls, per segment for messages.

One entry per category, optionally narrowed to the numbers of a prefix (the far end:
``To`` of an outbound call or message, ``From`` of an inbound one). On the command
line (``--price``, repeatable; ``CALLSWITCH_PRICE`` comma-separated; ``price = [...]``
in callswitch.toml) an entry is ``CATEGORY[:PREFIX]=AMOUNT``::

    --price calls-outbound=0.013 --price calls-outbound:+44=0.02 --price sms-outbound=0.0079

The longest matching prefix wins; without one the category's own price applies, and
a category nobody priced takes the default below (US list prices in USD). Calls are
billed per started minute (a 61-second call is two minutes; a call never answered
costs nothing), messages per segment (reference §8).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation

__all__ = [
    "CALL_CATEGORIES",
    "DEFAULT_PRICES",
    "MESSAGE_CATEGORIES",
    "PriceEntry",
    "PriceList",
    "billable_minutes",
    "call_category",
    "parse_price",
]

CALL_CATEGORIES = ("calls-inbound", "calls-outbound", "calls-client", "calls-sip")
MESSAGE_CATEGORIES = ("sms-inbound", "sms-outbound")
DEFAULT_PRICES: dict[str, Decimal] = {
    "calls-inbound": Decimal("0.0085"),
    "calls-outbound": Decimal("0.013"),
    "calls-client": Decimal("0.004"),
    "calls-sip": Decimal("0.004"),
    "sms-inbound": Decimal("0.0079"),
    "sms-outbound": Decimal("0.0079"),
    "transcriptions": Decimal("0.05"),  # per started minute of audio
}
_ENTRY = re.compile(r"(?P<category>[a-z-]+)(?::(?P<prefix>\+?[0-9]{1,15}))?=(?P<amount>[0-9.]+)")


@dataclass(frozen=True, slots=True)
class PriceEntry:
    """One ``--price`` entry: a unit price for a category, maybe for a prefix."""

    category: str
    prefix: str  # digits without '+'; empty for the category's own price
    amount: Decimal


def parse_price(value: str) -> PriceEntry:
    """``CATEGORY[:PREFIX]=AMOUNT``; ValueError says what is wrong."""
    match = _ENTRY.fullmatch(str(value).strip())
    if match is None:
        raise ValueError("expected CATEGORY[:PREFIX]=AMOUNT, e.g. sms-outbound:+44=0.04")
    category = match["category"]
    if category not in DEFAULT_PRICES:
        raise ValueError(f"unknown category {category}; choose from {', '.join(DEFAULT_PRICES)}")
    try:
        amount = Decimal(match["amount"])
    except InvalidOperation:
        raise ValueError(f"{match['amount']} is not an amount") from None
    return PriceEntry(category, (match["prefix"] or "").lstrip("+"), amount)


@dataclass(frozen=True, slots=True)
class PriceList:
    """Unit prices by category and far-end prefix."""

    entries: tuple[PriceEntry, ...] = field(default=())

    def unit_price(self, category: str, number: str) -> Decimal:
        digits = number.lstrip("+")
        best: PriceEntry | None = None
        for entry in self.entries:
            if entry.category != category or not digits.startswith(entry.prefix):
                continue
            if best is None or len(entry.prefix) > len(best.prefix):
                best = entry
        return best.amount if best is not None else DEFAULT_PRICES[category]


def billable_minutes(duration_s: float) -> int:
    """Started minutes: 0 s is nothing, 1-60 s one minute, 61 s two."""
    seconds = max(round(duration_s), 0)
    return -(-seconds // 60)


def call_category(direction: str, to: str, from_: str = "") -> str:
    """The usage category of a call: inbound, or outbound to a number, client or SIP URI.
    A call a browser tab placed (inbound From ``client:``) is a client call too."""
    if direction == "inbound":
        return "calls-client" if from_.startswith("client:") else "calls-inbound"
    if to.startswith("client:"):
        return "calls-client"
    if to.lower().startswith(("sip:", "sips:")):
        return "calls-sip"
    return "calls-outbound"
