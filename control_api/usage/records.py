"""Usage records (reference §8): categories, the periods of each subresource, rollups.

Pure: the store gives sums per stored (narrowest) category, these functions roll them
up into Twilio's categories and cut a date range into the periods of ``Daily``,
``Monthly``, ``Yearly`` or one period for the other views.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal

__all__ = [
    "CATEGORIES",
    "Category",
    "Period",
    "category_total",
    "current_period",
    "periods",
    "view_range",
]


@dataclass(frozen=True, slots=True)
class Category:
    """A usage category of Twilio's (reference §8) and the stored ones it sums."""

    name: str
    description: str
    parts: tuple[str, ...]  # the stored categories it sums
    usage_unit: str
    count_unit: str


_CALLS = ("calls-inbound", "calls-outbound", "calls-client", "calls-sip")
_SMS = ("sms-inbound", "sms-outbound")

CATEGORIES: dict[str, Category] = {
    c.name: c
    for c in (
        Category("calls", "Voice Minutes", _CALLS, "minutes", "calls"),
        Category("calls-inbound", "Inbound Voice Minutes", ("calls-inbound",), "minutes", "calls"),
        Category(
            "calls-outbound", "Outbound Voice Minutes", ("calls-outbound",), "minutes", "calls"
        ),
        Category("calls-client", "Client Calls", ("calls-client",), "minutes", "calls"),
        Category("calls-sip", "SIP Calls", ("calls-sip",), "minutes", "calls"),
        Category("sms", "SMS Messages", _SMS, "segments", "messages"),
        Category("sms-inbound", "Inbound SMS Messages", ("sms-inbound",), "segments", "messages"),
        Category(
            "sms-outbound", "Outbound SMS Messages", ("sms-outbound",), "segments", "messages"
        ),
        Category("recordings", "Recordings", (), "minutes", "recordings"),
        Category(
            "transcriptions",
            "Voice Minutes Transcribed",
            ("transcriptions",),
            "minutes",
            "transcriptions",
        ),
        Category("totalprice", "Total Price", _CALLS + _SMS + ("transcriptions",), "usd", ""),
    )
}


@dataclass(frozen=True, slots=True)
class Period:
    """``[start, end]`` in whole days (both inclusive, as Twilio shows them)."""

    start: date
    end: date

    @property
    def start_at(self) -> datetime:
        return datetime.combine(self.start, time(), UTC)

    @property
    def end_before(self) -> datetime:
        return datetime.combine(self.end + timedelta(days=1), time(), UTC)


def category_total(category: Category, sums: dict) -> tuple[int, Decimal, Decimal]:
    """(count, usage, price) of ``category`` from per-stored-category sums."""
    count = 0
    usage = Decimal(0)
    price = Decimal(0)
    for part in category.parts:
        found = sums.get(part)
        if found is None:
            continue
        count += found.count
        usage += found.usage
        price += found.price
    if category.name == "totalprice":
        usage = price
    return count, usage, price


def _month_start(day: date) -> date:
    return day.replace(day=1)


def _next_month(day: date) -> date:
    return (day.replace(day=28) + timedelta(days=4)).replace(day=1)


def view_range(view: str | None, today: date, first: date | None) -> Period:
    """The default range of a view (None is the plain list: all time)."""
    first = min(first or today, today)
    if view == "Today":
        return Period(today, today)
    if view == "Yesterday":
        yesterday = today - timedelta(days=1)
        return Period(yesterday, yesterday)
    if view == "ThisMonth":
        return Period(_month_start(today), today)
    if view == "LastMonth":
        end = _month_start(today) - timedelta(days=1)
        return Period(_month_start(end), end)
    if view == "Daily":
        return Period(max(first, today - timedelta(days=30)), today)
    if view == "Monthly":
        return Period(_month_start(first), today)
    if view == "Yearly":
        return Period(first.replace(month=1, day=1), today)
    return Period(first, today)  # AllTime and the plain list


def periods(view: str | None, span: Period) -> list[Period]:
    """``span`` cut into the view's periods, newest first (one period for the others)."""
    if view not in ("Daily", "Monthly", "Yearly"):
        return [span]
    out: list[Period] = []
    start = span.start
    while start <= span.end:
        if view == "Daily":
            end = start
        elif view == "Monthly":
            end = _next_month(start) - timedelta(days=1)
        else:
            end = start.replace(month=12, day=31)
        out.append(Period(start, min(end, span.end)))
        start = end + timedelta(days=1)
    out.reverse()
    return out


def current_period(recurring: str | None, now: datetime) -> tuple[str, Period | None]:
    """The key and range of a trigger's period at ``now``; None for all time.

    A trigger that does not recur (or recurs ``alltime``) has one period, forever.
    """
    today = now.astimezone(UTC).date()
    if recurring == "daily":
        return today.isoformat(), Period(today, today)
    if recurring == "monthly":
        return today.strftime("%Y-%m"), Period(_month_start(today), today)
    if recurring == "yearly":
        return str(today.year), Period(today.replace(month=1, day=1), today)
    return "alltime", None
