"""A call's Transcriptions resource (real-time transcription) through the official
twilio library (FakeLiveCalls)."""

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


def test_create_with_every_parameter_then_stop_by_name(api, client, account, live_call):
    found = client.calls(live_call.sid).transcriptions.create(
        name="notes",
        track="both_tracks",
        status_callback_url="https://app.example.com/rtt",
        status_callback_method="GET",
        inbound_track_label="customer",
        outbound_track_label="agent",
        partial_results=True,
        language_code="en-GB",
        transcription_engine="google",
        profanity_filter=False,
        speech_model="telephony",
        hints="callswitch, refund",
        enable_automatic_punctuation=False,
        intelligence_service="GA" + "a" * 32,  # accepted, no effect
        enable_provider_data=False,
    )
    assert found.sid.startswith("GT") and len(found.sid) == 34
    assert found.account_sid == account.sid and found.call_sid == live_call.sid
    assert found.name == "notes" and found.status == "in-progress"
    assert found.date_updated is not None  # parsed from RFC 2822 by the library
    assert found.uri == (
        f"/2010-04-01/Accounts/{account.sid}/Calls/{live_call.sid}/Transcriptions/{found.sid}.json"
    )
    asked = api.live_calls.asked[-1]
    assert asked[:3] == ("start_transcription", account.sid, live_call.sid)
    new = asked[3]
    assert new.track == "both_tracks" and new.name == "notes"
    assert new.status_callback_url == "https://app.example.com/rtt"
    assert new.status_callback_method == "GET"
    assert (new.inbound_track_label, new.outbound_track_label) == ("customer", "agent")
    assert new.partial_results is True and new.language_code == "en-GB"
    assert new.transcription_engine == "google" and new.speech_model == "telephony"
    assert new.profanity_filter is False and new.enable_automatic_punctuation is False
    assert new.hints == "callswitch, refund"

    stopped = client.calls(live_call.sid).transcriptions("notes").update(status="stopped")
    assert stopped.sid == found.sid and stopped.status == "stopped"
    assert api.live_calls.asked[-1] == ("stop_transcription", account.sid, live_call.sid, "notes")
    by_sid = client.calls(live_call.sid).transcriptions(found.sid).update(status="stopped")
    assert by_sid.sid == found.sid and by_sid.name == "notes"


def test_defaults(api, client, live_call):
    found = client.calls(live_call.sid).transcriptions.create()
    assert found.name is None and found.status == "in-progress"
    new = api.live_calls.asked[-1][3]
    assert new.track == "inbound_track" and new.language_code == "en-US"
    assert new.status_callback_url is None and new.status_callback_method == "POST"
    assert new.partial_results is False and new.profanity_filter is True


def test_an_ended_call_answers_21220(api, client, account):
    ended = api.insert_call(account, status="completed")
    error = rest_error(lambda: client.calls(ended.sid).transcriptions.create())
    assert error.status == 400 and error.code == 21220
    error = rest_error(
        lambda: client.calls(ended.sid).transcriptions("notes").update(status="stopped")
    )
    assert error.status == 400 and error.code == 21220


def test_unknown_transcription_and_unknown_call_are_404(api, auth, client, account, live_call):
    error = rest_error(
        lambda: client.calls(live_call.sid).transcriptions("nope").update(status="stopped")
    )
    assert error.status == 404 and error.code == 20404
    missing = new_sid("CA")
    error = rest_error(lambda: client.calls(missing).transcriptions.create())
    assert error.status == 404 and error.code == 20404
    path = f"/2010-04-01/Accounts/{account.sid}/Calls/{missing}/Transcriptions.json"
    body = api.http.post(path, auth=auth).json()
    assert body["status"] == 404 and body["code"] == 20404 and body["more_info"]


@pytest.mark.parametrize(
    "fields",
    [
        {"Track": "sideways"},
        {"StatusCallbackMethod": "PUT"},
        {"StatusCallbackUrl": "ftp://x"},
        {"PartialResults": "maybe"},
        {"LanguageCode": "en US; drop"},
        {"Name": "n" * 2000},
    ],
)
def test_bad_parameters_are_400(api, auth, account, live_call, fields):
    path = f"/2010-04-01/Accounts/{account.sid}/Calls/{live_call.sid}/Transcriptions.json"
    response = api.http.post(path, data=fields, auth=auth)
    assert response.status_code == 400
    assert response.json()["status"] == 400


def test_a_name_taken_is_400_and_stop_needs_status_stopped(api, auth, client, account, live_call):
    client.calls(live_call.sid).transcriptions.create(name="twice")
    error = rest_error(lambda: client.calls(live_call.sid).transcriptions.create(name="twice"))
    assert error.status == 400
    path = f"/2010-04-01/Accounts/{account.sid}/Calls/{live_call.sid}/Transcriptions/twice.json"
    assert api.http.post(path, data={"Status": "paused"}, auth=auth).status_code == 400


def test_another_accounts_call_is_404(api, other, live_call):
    client = api.client(other)
    error = rest_error(lambda: client.calls(live_call.sid).transcriptions.create())
    assert error.status == 404


def test_the_call_names_its_transcriptions(client, account, live_call):
    call = client.calls(live_call.sid).fetch()
    assert call.subresource_uris["transcriptions"] == (
        f"/2010-04-01/Accounts/{account.sid}/Calls/{live_call.sid}/Transcriptions.json"
    )
