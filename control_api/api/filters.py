"""A list's query filters, as a table: Twilio's query parameter -> the store's filters.

Every list reads its filters from the query string through one table per list::

    FILTERS = {
        "Status": equal("status", choice_parser(STATUSES)),
        "StartTime": TimeRange.filter("start_time"),
    }

which ``paging.page_response`` reads (``query_filters``) and hands to the store's
``page`` as keywords. A filter the query does not give is None, which the store
leaves out. The filters are read, and refused (400), in the table's order.

The time filters are ``Name``, ``Name<`` and ``Name>`` (``<=``/``>=`` too). ``Name`` is
the whole UTC day of the value; ``Name>`` (the library's ``*_after``) is on or after
the value, ``Name<`` (``*_before``) before it. The library sends ``Name<`` and
``Name>``; a query string written as ``Name>=2026-11-24`` arrives as ``Name>`` (it
splits on the first '='). ``TimeRange`` (``StartTime``, ``EndTime``, ``DateSent``)
takes each value as the exact instant; ``DateRange`` (``DateCreated``,
``DateUpdated``) takes a bare date as its whole day and a date-time to the second,
the resolution of the dates the API shows, so that ``Name<`` includes the value.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from control_api.api.params import Params, Parser, day_after, parse_time, restore_plus

__all__ = [
    "DateRange",
    "Filter",
    "TimeRange",
    "equal",
    "number_text",
    "query_filters",
    "text",
]

# A filter of a list: (the query's parameters, the filter's parameter name) -> the
# store's filters it sets; raises ApiError (400) for a value it refuses.
Filter = Callable[[Params, str], dict[str, Any]]

SUFFIXES = ("", "<", ">", "<=", ">=")


def query_filters(params: Params, filters: Mapping[str, Filter]) -> dict[str, Any]:
    """The store's filters that ``params`` gives, as ``filters`` reads them."""
    found: dict[str, Any] = {}
    for name, read in filters.items():
        found.update(read(params, name))
    return found


def text(name: str, value: str) -> str:
    """The ``Parser`` of a parameter taken as it is."""
    return value


def number_text(name: str, value: str) -> str:
    """The ``Parser`` of a phone number: the value with its '+' restored."""
    return restore_plus(value)


def equal(field: str, parse: Parser = text) -> Filter:
    """The store's ``field`` equals the parameter's value, as ``parse`` reads it; an
    absent or empty parameter filters nothing."""

    def read(params: Params, name: str) -> dict[str, Any]:
        value = params.get(name)
        return {field: parse(name, value) if value else None}

    return read


@dataclass(slots=True)
class TimeRange:
    """One time filter of a list: after <= t < before (None: no bound)."""

    after: datetime | None = None
    before: datetime | None = None

    @classmethod
    def filter(cls, field: str) -> Filter:
        """The ``Filter`` of the store's ``<field>_after`` and ``<field>_before``."""
        return lambda params, name: cls.from_params(params, name).filters(field)

    @classmethod
    def from_params(cls, params: Params, name: str) -> TimeRange:
        bounds = cls()
        for suffix in SUFFIXES:
            value = params.get(name + suffix)
            if not value:
                continue
            instant, bare_date = parse_time(name + suffix, value)
            if suffix == "":
                bounds.narrow(after=_midnight(instant), before=day_after(instant))
                continue
            start, end = cls.span(instant, bare_date)
            if suffix.startswith(">"):
                bounds.narrow(after=start)
            else:
                bounds.narrow(before=end)  # None past the end of the calendar: no bound
        return bounds

    @staticmethod
    def span(instant: datetime, bare_date: bool) -> tuple[datetime, datetime | None]:
        """What a value stands for: ``Name>`` starts at the first, ``Name<`` ends before
        the second."""
        return instant, instant

    def filters(self, field: str) -> dict[str, datetime | None]:
        """The range as the store's filters of ``field``: ``<field>_after``/``_before``."""
        return {f"{field}_after": self.after, f"{field}_before": self.before}

    def narrow(self, after: datetime | None = None, before: datetime | None = None) -> None:
        if after is not None and (self.after is None or after > self.after):
            self.after = after
        if before is not None and (self.before is None or before < self.before):
            self.before = before


class DateRange(TimeRange):
    """A date filter: a bare date is its day, a date-time its second."""

    __slots__ = ()

    @staticmethod
    def span(instant: datetime, bare_date: bool) -> tuple[datetime, datetime | None]:
        if bare_date:
            return _midnight(instant), day_after(instant)
        second = instant.replace(microsecond=0)
        try:
            return second, second + timedelta(seconds=1)
        except OverflowError:
            return second, None


def _midnight(instant: datetime) -> datetime:
    return datetime.combine(instant.date(), datetime.min.time(), instant.tzinfo)
