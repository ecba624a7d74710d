"""Who is calling, from a carrier's INVITE headers (control_api/calls/caller_identity.py)."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from control_api.calls.caller_identity import UNKNOWN, caller_identity
from control_api.calls.trunks import parse_trunk

UK = parse_trunk("uk=sip:192.0.2.20;country_code=44;national_prefix=0")
FROM = ("From", '"Front desk" <sip:+15550001111@carrier.example>;tag=1')


def test_from_alone_is_the_caller():
    who = caller_identity([FROM])
    assert who.caller == "+15550001111" and who.caller_name == "Front desk"
    assert who.forwarded_from == "" and not who.withheld
    assert who.params() == [("ForwardedFrom", ""), ("CallerName", "Front desk")]


def test_asserted_identity_wins_over_from():
    pai = ("P-Asserted-Identity", '"Alice Smith" <sip:+442071234567@carrier.example;user=phone>')
    who = caller_identity([FROM, pai])
    assert who.caller == "+442071234567" and who.caller_name == "Alice Smith"


def test_a_tel_identity_and_national_numbers_with_the_trunks_rules():
    headers = [
        ("From", "<sip:02070000000@carrier.example>;tag=1"),
        ("P-Asserted-Identity", "<sip:carrier.example>, <tel:02071234567>"),
    ]
    assert caller_identity(headers, UK).caller == "+442071234567"
    assert caller_identity(headers[:1], UK).caller == "+442070000000"
    assert caller_identity(headers[:1]).caller == "+02070000000"  # no trunk: today's rule


def test_privacy_id_shows_twilios_anonymous_caller():
    headers = [
        FROM,
        ("P-Asserted-Identity", '"Alice" <sip:+442071234567@carrier.example>'),
        ("Privacy", "id"),
    ]
    who = caller_identity(headers)
    assert who.caller == "+266696687" and who.caller_name == "" and who.withheld
    for value in ("user", "header", "header;id", "none;user"):
        assert caller_identity([FROM, ("Privacy", value)]).caller == "+266696687"
    assert not caller_identity([FROM, ("Privacy", "none")]).withheld


def test_an_anonymous_from_is_anonymous_whatever_else_is_said():
    anonymous = ("From", '"Anonymous" <sip:anonymous@anonymous.invalid>;tag=9')
    pai = ("P-Asserted-Identity", "<sip:+442071234567@carrier.example>")
    assert caller_identity([anonymous]).caller == "+266696687"
    assert caller_identity([anonymous, pai]).withheld
    restricted = ("From", "<sip:Restricted@carrier.example>;tag=9")
    assert caller_identity([restricted]).caller == "+7378742833"


def test_diversion_is_the_number_forwarded_from():
    headers = [
        FROM,
        ("Diversion", "<sip:02079460000@carrier.example>;reason=unconditional;counter=1"),
        ("Diversion", "<sip:+15559990000@carrier.example>;reason=user-busy"),
    ]
    assert caller_identity(headers, UK).forwarded_from == "+442079460000"
    assert (
        caller_identity([FROM, ("Diversion", "<tel:+15557770000>;reason=no-answer")]).forwarded_from
        == "+15557770000"
    )


def test_history_info_gives_the_retargeted_number():
    entries = (
        "<sip:+15551110000@carrier.example?Reason=SIP%3Bcause%3D302>;index=1,"
        "<sip:+15552220000@us.example>;index=1.1;rc=1"
    )
    assert caller_identity([FROM, ("History-Info", entries)]).forwarded_from == "+15551110000"
    plain = "<sip:+15551110000@carrier.example>;index=1, <sip:+15552220000@us.example>;index=1.1"
    assert caller_identity([FROM, ("History-Info", plain)]).forwarded_from == "+15551110000"
    only = "<sip:+15552220000@us.example>;index=1"
    assert caller_identity([FROM, ("History-Info", only)]).forwarded_from == ""


def test_sip_callers_and_garbage_fall_back():
    assert (
        caller_identity([("From", "<sip:alice@pbx.example>;tag=1")]).caller
        == "sip:alice@pbx.example"
    )
    bad_pai = ("P-Asserted-Identity", '"unterminated <sip:+1555@x')
    assert caller_identity([FROM, bad_pai]).caller == "+15550001111"
    assert caller_identity([]).caller == UNKNOWN
    assert caller_identity([("From", "<<<>>>")]).caller == UNKNOWN
    control = ("From", '"Evil\\\x01Name" <sip:+15550001111@x>;tag=1')
    assert "\x01" not in caller_identity([control]).caller_name


NAMES = st.sampled_from(
    ["From", "P-Asserted-Identity", "Privacy", "Diversion", "History-Info", "X-Other"]
)
VALUES = st.one_of(
    st.text(max_size=120),
    st.from_regex(
        r'("[^"]{0,10}" )?<(sip|tel|sips|http):[+0-9a-z@.;=?%&]{0,30}>'
        r"(;[a-z]{1,5}(=[^,;]{0,8})?){0,3}",
        fullmatch=True,
    ),
)


@given(st.lists(st.tuples(NAMES, VALUES), max_size=8), st.sampled_from([None, UK]))
def test_garbage_headers_never_raise_and_fall_back_to_from(headers, trunk):
    who = caller_identity(headers, trunk)
    assert isinstance(who.caller, str) and who.caller
    assert who.forwarded_from == "" or who.forwarded_from.startswith("+")
    assert len(who.caller_name) <= 64
    if who.withheld:
        assert who.caller_name == ""


@given(st.text(max_size=60))
def test_a_good_from_survives_any_identity_header(value):
    who = caller_identity([FROM, ("P-Asserted-Identity", value)])
    assert who.caller.startswith(("+", "sip:"))
