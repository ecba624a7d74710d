"""SIDs, RFC 2822 dates and E.164 numbers."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest
from hypothesis import given
from hypothesis import strategies as st

from control_api.sids import is_sid, new_sid, rfc2822, utcnow
from control_api.store import format_number, normalize_e164


def test_new_sid_is_prefix_and_32_lowercase_hex():
    sid = new_sid("CA")
    assert len(sid) == 34
    assert sid.startswith("CA")
    assert all(ch in "0123456789abcdef" for ch in sid[2:])
    assert new_sid("CA") != sid
    for bad in ("C", "ca", "CAX", "1A"):
        with pytest.raises(ValueError):
            new_sid(bad)


def test_is_sid():
    sid = new_sid("PN")
    assert is_sid(sid, "PN")
    assert not is_sid(sid, "CA")
    assert not is_sid(sid.upper(), "PN")
    assert not is_sid(sid[:-1], "PN")
    assert not is_sid(sid + "0", "PN")
    assert not is_sid(sid[:-1] + "g", "PN")
    assert not is_sid(None, "PN")
    assert not is_sid("PN" + "0" * 31 + "\n", "PN")


def test_rfc2822():
    assert (
        rfc2822(datetime(2026, 11, 24, 10, 0, 0, tzinfo=UTC)) == "Tue, 24 Nov 2026 10:00:00 +0000"
    )
    assert rfc2822(datetime(2026, 1, 4, 9, 5, 7, 999999)) == "Sun, 04 Jan 2026 09:05:07 +0000"
    east = datetime(2026, 11, 24, 1, 30, tzinfo=timezone(timedelta(hours=2)))
    assert rfc2822(east) == "Mon, 23 Nov 2026 23:30:00 +0000"


# The library reads two-digit years the e-mail way; no call is that old.
@given(st.datetimes(min_value=datetime(1000, 1, 1), timezones=st.just(UTC)))
def test_rfc2822_reads_back_with_the_library(dt):
    from twilio.base.deserialize import rfc2822_datetime

    assert rfc2822_datetime(rfc2822(dt)) == dt.replace(microsecond=0)


def test_utcnow_is_aware_utc():
    assert utcnow().utcoffset() == timedelta(0)


@pytest.mark.parametrize(
    ("given_", "expected"),
    [
        ("+14155550100", "+14155550100"),
        ("14155550100", "+14155550100"),
        (" 14155550100", "+14155550100"),  # a form-decoded '+'
        ("+1 (415) 555-0100", "+14155550100"),
        ("+44.20.7183.8750", "+442071838750"),
        ("+0155550100", None),
        ("+1000", "+1000"),
        ("1000", "+1000"),
        ("+12", None),
        ("+1234567890123456", None),
        ("sip:alice@example.com", None),
        ("client:alice", None),
        ("", None),
        ("+", None),
        ("++14155550100", None),
    ],
)
def test_normalize_e164(given_, expected):
    assert normalize_e164(given_) == expected


def test_format_number():
    assert format_number("+14155550100") == "(415) 555-0100"
    assert format_number("+15550948774") == "(555) 094-8774"  # any exchange, as Twilio
    assert format_number("+442071838750") == "+442071838750"
    assert format_number("client:alice") == "client:alice"
