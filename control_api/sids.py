"""Twilio-shaped identifiers and timestamps.

A SID is two uppercase letters naming the resource type (AC account, CA call, PN phone
number, ...) followed by 32 lowercase hex digits. Dates in REST responses are RFC 2822
strings in UTC.
"""

from __future__ import annotations

import re
import secrets
from datetime import UTC, datetime

__all__ = ["is_sid", "new_sid", "rfc2822", "utcnow"]

_SID_BODY = re.compile(r"[0-9a-f]{32}")
_PREFIX = re.compile(r"[A-Z]{2}")
_WEEKDAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")


def new_sid(prefix: str) -> str:
    """A fresh random SID with a two-letter type prefix, e.g. ``new_sid("CA")``."""
    if _PREFIX.fullmatch(prefix) is None:
        raise ValueError(f"a SID prefix is two uppercase letters, not {prefix!r}")
    return prefix + secrets.token_hex(16)


def is_sid(value: object, prefix: str) -> bool:
    """True if ``value`` is a SID of the type ``prefix`` (exact case, 34 characters)."""
    return (
        isinstance(value, str)
        and len(value) == 34
        and value.startswith(prefix)
        and _SID_BODY.fullmatch(value, 2) is not None
    )


def utcnow() -> datetime:
    """The current time as a timezone-aware UTC datetime."""
    return datetime.now(UTC)


def rfc2822(dt: datetime) -> str:
    """``Tue, 24 Nov 2026 10:00:00 +0000``: the date format of every Twilio response.

    Naive datetimes are taken to be UTC; aware ones are converted to UTC. Written out by
    hand because ``strftime`` names days and months in the process locale.
    """
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=UTC)
    dt = dt.astimezone(UTC)
    return "%s, %02d %s %04d %02d:%02d:%02d +0000" % (
        _WEEKDAYS[dt.weekday()],
        dt.day,
        _MONTHS[dt.month - 1],
        dt.year,
        dt.hour,
        dt.minute,
        dt.second,
    )
