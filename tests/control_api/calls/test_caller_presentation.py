"""How calls we place show their caller (control_api/calls/caller_presentation.py)."""

from __future__ import annotations

from control_api.calls.caller_presentation import present_caller
from control_api.calls.trunks import parse_trunk

HOST = "203.0.113.1:5060"
UK_PAI = parse_trunk("uk=sip:192.0.2.20;country_code=44;national_prefix=0;pai")
BARE_PAI = parse_trunk("bare=sip:192.0.2.30;pai;strip_plus")
PLAIN = parse_trunk("plain=sip:192.0.2.40")


def test_pai_asserts_the_callers_number_in_e164():
    shown = present_caller("+15550100", None, BARE_PAI, HOST)
    assert shown.from_user == "+15550100"  # strip_plus is about the number dialled
    assert shown.headers == (("P-Asserted-Identity", f"<sip:+15550100@{HOST}>"),)


def test_a_caller_of_the_trunks_country_is_shown_nationally():
    shown = present_caller("+442071234567", "Front desk", UK_PAI, HOST)
    assert (shown.from_user, shown.from_display) == ("02071234567", "Front desk")
    assert shown.headers == (("P-Asserted-Identity", f"<sip:+442071234567@{HOST}>"),)
    assert present_caller("+15550100", None, UK_PAI, HOST).from_user == "+15550100"


def test_no_pai_without_the_flag_or_a_number():
    assert present_caller("+15550100", None, PLAIN, HOST).headers == ()
    shown = present_caller("alice", None, UK_PAI, HOST)
    assert (shown.from_user, shown.headers) == ("alice", ())
    assert present_caller("+15550100", None, None, HOST).from_user == "+15550100"


def test_a_withheld_caller_goes_out_anonymous_with_privacy_id():
    for caller in ("+266696687", "anonymous", "+7378742833"):
        for trunk in (UK_PAI, PLAIN, None):
            shown = present_caller(caller, None, trunk, HOST)
            assert (shown.from_user, shown.from_display) == ("anonymous", "Anonymous")
            assert shown.headers == (("Privacy", "id"),)
