"""The Streams resource of a call through the official twilio library (FakeLiveCalls)."""

from __future__ import annotations

import pytest
from twilio.base.exceptions import TwilioRestException

from control_api.sids import new_sid


def rest_error(call) -> TwilioRestException:
    with pytest.raises(TwilioRestException) as caught:
        call()
    return caught.value


@pytest.fixture
def live_call(api, account):
    call = api.insert_call(account, status="in-progress")
    api.live_calls.live.add(call.sid)
    yield call
    api.live_calls.live.discard(call.sid)


def test_create_then_stop_by_name(api, client, account, live_call):
    stream = client.calls(live_call.sid).streams.create(
        url="wss://bot.example.com/fork",
        name="bot",
        track="both_tracks",
        status_callback="https://app.example.com/streams",
        status_callback_method="GET",
        parameter1_name="k",
        parameter1_value="v",
        parameter2_name="who",
        parameter2_value="alice",
    )
    assert stream.sid.startswith("MZ") and len(stream.sid) == 34
    assert stream.account_sid == account.sid and stream.call_sid == live_call.sid
    assert stream.name == "bot" and stream.status == "in-progress"
    assert stream.date_updated is not None  # parsed from RFC 2822 by the library
    assert stream.uri == (
        f"/2010-04-01/Accounts/{account.sid}/Calls/{live_call.sid}/Streams/{stream.sid}.json"
    )
    asked = api.live_calls.asked[-1]
    assert asked[:3] == ("start_stream", account.sid, live_call.sid)
    new = asked[3]
    assert new.url == "wss://bot.example.com/fork" and new.track == "both_tracks"
    assert new.status_callback == "https://app.example.com/streams"
    assert new.status_callback_method == "GET"
    assert new.parameters == (("k", "v"), ("who", "alice"))

    stopped = client.calls(live_call.sid).streams("bot").update(status="stopped")
    assert stopped.sid == stream.sid and stopped.status == "stopped"
    assert api.live_calls.asked[-1] == ("stop_stream", account.sid, live_call.sid, "bot")

    by_sid = client.calls(live_call.sid).streams(stream.sid).update(status="stopped")
    assert by_sid.sid == stream.sid and by_sid.status == "stopped"


def test_defaults(api, client, live_call):
    stream = client.calls(live_call.sid).streams.create(url="ws://127.0.0.1:9/")
    assert stream.name is None and stream.status == "in-progress"
    new = api.live_calls.asked[-1][3]
    assert new.track == "inbound_track" and new.parameters == ()
    assert new.status_callback is None and new.status_callback_method == "POST"


def test_a_call_that_is_not_live_answers_21220(api, client, account):
    ended = api.insert_call(account, status="completed")
    error = rest_error(lambda: client.calls(ended.sid).streams.create(url="wss://x.example/"))
    assert error.status == 400 and error.code == 21220
    error = rest_error(lambda: client.calls(ended.sid).streams("bot").update(status="stopped"))
    assert error.status == 400 and error.code == 21220


def test_unknown_stream_and_unknown_call_are_404(client, account, live_call):
    error = rest_error(lambda: client.calls(live_call.sid).streams("nope").update(status="stopped"))
    assert error.status == 404 and error.code == 20404
    missing = new_sid("CA")
    error = rest_error(lambda: client.calls(missing).streams.create(url="wss://x.example/"))
    assert error.status == 404


@pytest.mark.parametrize(
    "fields",
    [
        {},  # no Url
        {"Url": "https://not-a-websocket.example/"},
        {"Url": "wss://x.example/", "Track": "sideways"},
        {"Url": "wss://x.example/", "StatusCallbackMethod": "PUT"},
        {"Url": "wss://x.example/", "StatusCallback": "ftp://x"},
    ],
)
def test_bad_parameters_are_400(api, auth, account, live_call, fields):
    path = f"/2010-04-01/Accounts/{account.sid}/Calls/{live_call.sid}/Streams.json"
    response = api.http.post(path, data=fields, auth=auth)
    assert response.status_code == 400
    assert response.json()["status"] == 400


def test_a_name_taken_is_400_and_stop_needs_status_stopped(api, auth, client, account, live_call):
    client.calls(live_call.sid).streams.create(url="wss://x.example/", name="twice")
    error = rest_error(
        lambda: client.calls(live_call.sid).streams.create(url="wss://x.example/", name="twice")
    )
    assert error.status == 400
    path = f"/2010-04-01/Accounts/{account.sid}/Calls/{live_call.sid}/Streams/twice.json"
    assert api.http.post(path, data={"Status": "paused"}, auth=auth).status_code == 400


def test_another_accounts_call_is_404(api, other, live_call):
    client = api.client(other)
    error = rest_error(lambda: client.calls(live_call.sid).streams.create(url="wss://x.example/"))
    assert error.status == 404
