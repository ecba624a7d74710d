"""The form parsers every router shares: tables of fields, and Twilio's codes for each."""

from __future__ import annotations

import pytest

from control_api.api.params import (
    Params,
    method_parser,
    parse_boolean,
    parse_choice,
    parse_fields,
    parse_friendly_name,
    settings,
    snake_case,
    url_parser,
)
from control_api.errors import INVALID_FRIENDLY_NAME, INVALID_PARAMETER, ApiError

SETTINGS = {
    "FriendlyName": ("friendly_name", parse_friendly_name),
    "VoiceUrl": ("voice_url", url_parser(21402)),
    "VoiceMethod": ("voice_method", method_parser(21403)),
}


def refusal(call) -> tuple[int, int, str]:
    with pytest.raises(ApiError) as raised:
        call()
    return raised.value.status, raised.value.code, raised.value.message


def test_only_the_parameters_given_set_fields():
    assert parse_fields(Params(), SETTINGS) == {}
    fields = parse_fields(Params([("VoiceUrl", ""), ("VoiceMethod", "get")]), SETTINGS)
    assert fields == {"voice_url": None, "voice_method": "GET"}  # empty clears a URL


def test_each_parser_refuses_with_its_code_in_the_table_s_order():
    params = Params([("VoiceMethod", "PUT"), ("VoiceUrl", "ftp://example.com/")])
    status, code, message = refusal(lambda: parse_fields(params, SETTINGS))
    assert (status, code) == (400, 21402)
    assert message.startswith("VoiceUrl is not a valid URL")
    status, code, _ = refusal(lambda: parse_fields(Params([("VoiceMethod", "PUT")]), SETTINGS))
    assert (status, code) == (400, 21403)


def test_a_friendly_name_has_at_most_64_characters():
    assert parse_friendly_name("FriendlyName", "") == ""
    assert parse_friendly_name("FriendlyName", "x" * 64) == "x" * 64
    assert refusal(lambda: parse_friendly_name("FriendlyName", "x" * 65)) == (
        400,
        INVALID_FRIENDLY_NAME,
        "FriendlyName must have at most 64 characters",
    )


def test_a_choice_lists_the_choices_in_their_order():
    assert parse_choice("Track", "", ("b", "a")) is None
    assert parse_choice("Track", "a", ("b", "a")) == "a"
    assert refusal(lambda: parse_choice("Track", "c", ("b", "a"))) == (
        400,
        INVALID_PARAMETER,
        "Track must be one of b, a",
    )


@pytest.mark.parametrize(
    ("value", "expected"), [(None, None), ("", None), ("TRUE", True), ("false", False)]
)
def test_a_boolean_is_true_or_false_in_any_case(value, expected):
    assert parse_boolean("Muted", value) is expected


def test_a_boolean_refuses_anything_else():
    assert refusal(lambda: parse_boolean("Muted", "yes")) == (
        400,
        INVALID_PARAMETER,
        "Muted must be true or false",
    )


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("VoiceUrl", "voice_url"),
        ("StatusCallbackMethod", "status_callback_method"),
        ("IncomingPhoneNumbers", "incoming_phone_numbers"),
        ("IpAccessControlLists", "ip_access_control_lists"),
        ("Secure", "secure"),
    ],
)
def test_a_twilio_name_in_snake_case(name, expected):
    assert snake_case(name) == expected


def test_settings_set_the_field_of_each_name_with_one_parser():
    url = url_parser(21402)
    table = settings(url, "VoiceUrl", "StatusCallback")
    assert table == {"VoiceUrl": ("voice_url", url), "StatusCallback": ("status_callback", url)}
    assert list(table) == ["VoiceUrl", "StatusCallback"]  # checked in the order given
