"""Whatever parameters a client sends, the answer is never a 500, and errors keep Twilio's shape."""

from __future__ import annotations

from urllib.parse import quote, urlencode

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

FORM = {"Content-Type": "application/x-www-form-urlencoded"}

fuzz = settings(
    max_examples=60,
    deadline=None,
    # The server, the account and its number are meant to outlive the examples.
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)

KNOWN_NAMES = [
    "PhoneNumber",
    "AreaCode",
    "FriendlyName",
    "VoiceUrl",
    "VoiceMethod",
    "VoiceFallbackUrl",
    "VoiceFallbackMethod",
    "StatusCallback",
    "StatusCallbackMethod",
    "SmsUrl",
    "SmsMethod",
    "SmsFallbackUrl",
    "SmsFallbackMethod",
    "VoiceApplicationSid",
    "SmsApplicationSid",
    "AccountSid",
    "To",
    "From",
    "Url",
    "Method",
    "Twiml",
    "Status",
    "ParentCallSid",
    "StartTime",
    "StartTime<",
    "StartTime>",
    "EndTime",
    "EndTime<",
    "EndTime>",
    "Page",
    "PageSize",
    "PageToken",
]
NAMES = st.sampled_from(KNOWN_NAMES) | st.text(max_size=12)
VALUES = (
    st.text(max_size=60)
    | st.sampled_from(
        [
            "",
            "GET",
            "post",
            "completed",
            "canceled",
            "https://example.com/x",
            "http://[::1]:0/",
            "+14155550100",
            "client:alice",
            "sip:bob@example.com",
            "PT3",
            "AP" + "0" * 32,
        ]
    )
    | st.integers(min_value=-(10**20), max_value=10**20).map(str)
    | st.dates().map(str)
    | st.datetimes().map(lambda d: d.isoformat() + "Z")
)
PAIRS = st.lists(st.tuples(NAMES, VALUES), max_size=8)


def assert_answer(response, allowed: set[int]) -> None:
    assert response.status_code in allowed, response.text
    if response.status_code >= 400:
        body = response.json()
        assert set(body) == {"code", "message", "more_info", "status"}
        assert body["status"] == response.status_code


def post_form(api, path, auth, pairs):
    return api.http.post(path, content=urlencode(pairs).encode(), headers=FORM, auth=auth)


@fuzz
@given(pairs=PAIRS)
def test_number_update(api, auth, number_path, pairs):
    assert_answer(post_form(api, number_path, auth, pairs), {200, 400})


@fuzz
@given(pairs=PAIRS, phone=VALUES)
def test_number_create(api, account, auth, pairs, phone):
    path = f"/2010-04-01/Accounts/{account.sid}/IncomingPhoneNumbers.json"
    response = post_form(api, path, auth, [("PhoneNumber", phone), *pairs])
    assert_answer(response, {201, 400})
    if response.status_code == 201:
        api.http.delete(response.json()["uri"], auth=auth)


@fuzz
@given(pairs=PAIRS)
@pytest.mark.parametrize("resource", ["IncomingPhoneNumbers", "Calls"])
def test_lists(api, account, auth, resource, pairs):
    path = f"/2010-04-01/Accounts/{account.sid}/{resource}.json"
    assert_answer(api.http.get(path, params=pairs, auth=auth), {200, 400})


@fuzz
@given(pairs=PAIRS)
def test_call_update_and_create(api, account, auth, pairs):
    call = api.insert_call(account, status="in-progress")
    api.live_calls.live.add(call.sid)
    try:
        path = f"/2010-04-01/Accounts/{account.sid}/Calls/{call.sid}.json"
        assert_answer(post_form(api, path, auth, pairs), {200, 400})
    finally:
        api.live_calls.live.discard(call.sid)
    path = f"/2010-04-01/Accounts/{account.sid}/Calls.json"
    assert_answer(post_form(api, path, auth, pairs), {400, 501})


@fuzz
@given(
    body=st.binary(max_size=300), content_type=st.sampled_from([FORM["Content-Type"], "", "x/y"])
)
def test_raw_bodies(api, auth, number_path, body, content_type):
    headers = {"Content-Type": content_type} if content_type else {}
    response = api.http.post(number_path, content=body, headers=headers, auth=auth)
    assert_answer(response, {200, 400})


@fuzz
@given(
    segments=st.lists(
        st.text(min_size=1, max_size=20),
        max_size=4,
    ),
    method=st.sampled_from(["GET", "POST", "DELETE", "PUT", "PATCH"]),
)
def test_paths(api, account, auth, segments, method):
    path = f"/2010-04-01/Accounts/{account.sid}/" + "/".join(quote(s, safe="") for s in segments)
    response = api.http.request(method, path, auth=auth)
    assert_answer(response, {200, 201, 204, 400, 401, 404, 405, 501})
