"""Numbers from and to carriers (control_api/calls/numbers.py)."""

from __future__ import annotations

from hypothesis import assume, given
from hypothesis import strategies as st

from control_api.calls.numbers import (
    ANONYMOUS,
    carrier_number,
    dialled_number,
    international_prefix,
    is_withheld,
    presented_number,
    withheld_caller,
)
from control_api.calls.trunks import parse_trunk

UK = parse_trunk("uk=sip:192.0.2.20;country_code=44;national_prefix=0")
UK_BARE = parse_trunk("ukb=sip:192.0.2.20;country_code=44;national_prefix=0;strip_plus")
US = parse_trunk("us=sip:192.0.2.10;country_code=1;national_prefix=1;strip_plus")
PLAIN = parse_trunk("plain=sip:192.0.2.30;strip_plus")


def test_without_a_trunk_a_plus_is_put_in_front():
    assert carrier_number("15551234567") == "+15551234567"
    assert carrier_number("+442071234567") == "+442071234567"
    assert carrier_number("02071234567") == "+02071234567"  # today's rule
    assert carrier_number("1000") == "+1000"
    assert carrier_number("alice") is None
    assert carrier_number("12") is None
    assert carrier_number("+1234567890123456") is None  # 16 digits: not E.164


def test_a_trunk_with_a_country_reads_national_and_international_forms():
    assert carrier_number("02071234567", UK) == "+442071234567"
    assert carrier_number("442071234567", UK) == "+442071234567"
    assert carrier_number("0033123456789", UK) == "+33123456789"
    assert carrier_number("2071234567", UK) == "+442071234567"
    assert carrier_number("+15551234567", UK) == "+15551234567"
    assert carrier_number("5551234567", US) == "+15551234567"
    assert carrier_number("15551234567", US) == "+15551234567"
    assert carrier_number("011442071234567", US) == "+442071234567"
    assert carrier_number("020-7123 4567", UK) == "+442071234567"  # visual separators
    assert carrier_number("%2B442071234567", UK) == "+442071234567"  # escaped
    assert carrier_number("02071234567;phone-context=example.com", UK) == "+442071234567"
    assert carrier_number("anonymous", UK) is None
    assert carrier_number("00", UK) is None


def test_a_trunk_without_a_country_keeps_todays_rule():
    assert carrier_number("02071234567", PLAIN) == "+02071234567"


def test_numbers_are_dialled_nationally_in_the_trunks_country():
    assert dialled_number("+442071234567", UK) == "02071234567"
    assert dialled_number("+33123456789", UK) == "+33123456789"
    assert dialled_number("+33123456789", UK_BARE) == "0033123456789"
    assert dialled_number("+15551234567", US) == "15551234567"
    assert dialled_number("+442071234567", US) == "011442071234567"
    assert dialled_number("+442071234567", PLAIN) == "442071234567"
    assert dialled_number("+442071234567", parse_trunk("x=sip:h")) == "+442071234567"


def test_the_caller_is_presented_nationally_in_the_trunks_country():
    assert presented_number("+442071234567", UK) == "02071234567"
    assert presented_number("+15551234567", UK) == "+15551234567"
    assert presented_number("+442071234567", PLAIN) == "+442071234567"  # strip_plus: dialling only


def test_withheld_callers_are_twilios_keypad_digits():
    assert withheld_caller("Anonymous") == ANONYMOUS == "+266696687"
    assert withheld_caller("RESTRICTED") == "+7378742833"
    assert withheld_caller("unavailable") == "+86282452253"
    assert withheld_caller("alice") is None
    assert is_withheld("+266696687") and is_withheld("anonymous") and is_withheld("+8656696")
    assert not is_withheld("+15551234567")


def test_access_codes():
    assert international_prefix("44") == "00"
    assert international_prefix("1") == "011"
    assert international_prefix("61") == "0011"


@given(st.text(max_size=40), st.sampled_from([None, UK, US, PLAIN]))
def test_anything_a_carrier_writes_is_a_number_or_none(text, trunk):
    number = carrier_number(text, trunk)
    assert number is None or (number.startswith("+") and number[1:].isdigit())
    if number is not None:
        assert 3 <= len(number) - 1 <= 15


@given(st.from_regex(r"\+[1-9][0-9]{6,13}", fullmatch=True), st.sampled_from([UK, US, PLAIN]))
def test_what_we_dial_reads_back_as_the_same_number(number, trunk):
    # No national significant number starts with its country's national prefix.
    code, prefix = trunk.country_code or "", trunk.national_prefix or ""
    assume(not (code and number.startswith(f"+{code}{prefix}")))
    assert carrier_number(dialled_number(number, trunk), trunk) == number
