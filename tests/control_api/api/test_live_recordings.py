"""Recording live calls and conferences through the official twilio library:
``Calls/{CA}/Recordings`` (create, update) and ``Conferences/{CF}/Recordings/{RE}``
(fetch, update, delete), against fakes of the voice runtime's ports."""

from __future__ import annotations

from dataclasses import dataclass, field

import pytest
from twilio.base.exceptions import TwilioRestException

from control_api.api import create_app
from control_api.sids import new_sid, utcnow
from control_api.store import ConferenceRecord, RecordingRecord
from tests.control_api.api.conftest import FakeLiveCalls, serve

# api.v2010.account.call.call_recording and .conference.conference_recording in the
# 2010-04-01 spec: each property and its JSON types (nullable ones may be None).
NULL = type(None)
SPEC_FIELDS = {
    "account_sid": (str,),
    "api_version": (str,),
    "call_sid": (str,),
    "conference_sid": (str, NULL),
    "date_created": (str,),
    "date_updated": (str,),
    "start_time": (str,),
    "duration": (str,),
    "sid": (str,),
    "price": (float, int, str, NULL),
    "uri": (str,),
    "encryption_details": (dict, NULL),
    "price_unit": (str, NULL),
    "status": (str,),
    "channels": (int,),
    "source": (str,),
    "error_code": (int, NULL),
}
CALL_ONLY = {"track": (str,)}


def assert_spec_shape(body: dict, schema: dict) -> None:
    for name, kinds in schema.items():
        assert isinstance(body.get(name, ...), kinds), (name, body.get(name, "missing"))


def rest_error(call) -> TwilioRestException:
    with pytest.raises(TwilioRestException) as caught:
        call()
    return caught.value


def stored(api, account, **fields) -> RecordingRecord:
    stamp = utcnow()
    fields.setdefault("status", "in-progress")
    fields.setdefault("source", "StartCallRecordingAPI")
    record = RecordingRecord(
        sid=new_sid("RE"),
        account_sid=account.sid,
        start_time=stamp,
        date_created=stamp,
        date_updated=stamp,
        **fields,
    )
    return api.run(api.store.insert_recording(record))


@pytest.fixture
def live_call(api, account):
    call = api.insert_call(account, status="in-progress")
    api.live_calls.live.add(call.sid)
    yield call
    api.live_calls.live.discard(call.sid)


def test_start_pause_resume_stop(api, client, account, live_call):
    row = stored(api, account, call_sid=live_call.sid, channels=2, track="inbound")
    api.live_calls.recordings[live_call.sid] = row.sid
    recording = client.calls(live_call.sid).recordings.create(
        recording_channels="dual",
        recording_track="inbound",
        trim="trim-silence",
        recording_status_callback="https://app.example.com/rec",
        recording_status_callback_method="GET",
        recording_status_callback_event=["in-progress", "completed"],
    )
    assert recording.sid == row.sid and recording.call_sid == live_call.sid
    assert recording.status == "in-progress" and recording.source == "StartCallRecordingAPI"
    assert recording.channels == 2 and recording.track == "inbound"
    assert recording.start_time is not None
    assert recording.uri == (
        f"/2010-04-01/Accounts/{account.sid}/Calls/{live_call.sid}/Recordings/{row.sid}.json"
    )
    asked = api.live_calls.asked[-1]
    assert asked[:3] == ("start_recording", account.sid, live_call.sid)
    new = asked[3]
    assert (new.channels, new.track, new.trim) == ("dual", "inbound", "trim-silence")
    assert new.status_callback == "https://app.example.com/rec"
    assert new.status_callback_method == "GET"
    assert new.status_callback_events == ("in-progress", "completed")

    api.run(api.store.update_recording(row.sid, status="paused"))
    paused = (
        client.calls(live_call.sid)
        .recordings("Twilio.CURRENT")
        .update(status="paused", pause_behavior="skip")
    )
    assert paused.sid == row.sid and paused.status == "paused"
    assert api.live_calls.asked[-1] == (
        "update_recording",
        account.sid,
        live_call.sid,
        "Twilio.CURRENT",
        "paused",
        "skip",
    )
    client.calls(live_call.sid).recordings(row.sid).update(status="in-progress")
    assert api.live_calls.asked[-1][3:] == (row.sid, "in-progress", "silence")  # the default
    client.calls(live_call.sid).recordings(row.sid).update(status="stopped")
    assert api.live_calls.asked[-1][4] == "stopped"


def test_defaults_and_the_spec_fields(api, client, account, live_call):
    row = stored(api, account, call_sid=live_call.sid, channels=1)
    api.live_calls.recordings[live_call.sid] = row.sid
    response = api.http.post(
        f"/2010-04-01/Accounts/{account.sid}/Calls/{live_call.sid}/Recordings.json",
        auth=(account.sid, account.auth_token),
    )
    assert response.status_code == 201
    body = response.json()
    assert_spec_shape(body, SPEC_FIELDS | CALL_ONLY)
    assert body["duration"] == "-1" and body["status"] == "in-progress"
    new = api.live_calls.asked[-1][3]
    assert (new.channels, new.track, new.trim) == ("mono", "both", "do-not-trim")
    assert new.status_callback is None and new.status_callback_events == ("completed",)
    # The library's list and fetch of the call's recordings show it.
    listed = client.calls(live_call.sid).recordings.list()
    assert [each.sid for each in listed] == [row.sid]
    assert client.calls(live_call.sid).recordings(row.sid).fetch().status == "in-progress"


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("RecordingChannels", "stereo"),
        ("RecordingTrack", "inbound_track"),
        ("Trim", "yes"),
        ("RecordingStatusCallbackEvent", "ringing"),
        ("RecordingStatusCallback", "not a url"),
        ("RecordingStatusCallbackMethod", "PUT"),
    ],
)
def test_bad_parameters_are_400(api, account, live_call, name, value):
    response = api.http.post(
        f"/2010-04-01/Accounts/{account.sid}/Calls/{live_call.sid}/Recordings.json",
        data={name: value},
        auth=(account.sid, account.auth_token),
    )
    assert response.status_code == 400, response.text
    assert response.json()["code"] in (20001, 21205, 21209)


def test_unknown_call_is_404_and_a_call_not_in_progress_21220(api, client, account):
    error = rest_error(lambda: client.calls(new_sid("CA")).recordings.create())
    assert (error.status, error.code) == (404, 20404)
    ended = api.insert_call(account, status="completed")
    error = rest_error(lambda: client.calls(ended.sid).recordings.create())
    assert (error.status, error.code) == (400, 21220)
    error = rest_error(
        lambda: client.calls(ended.sid).recordings("Twilio.CURRENT").update(status="paused")
    )
    assert (error.status, error.code) == (400, 21220)


def test_updates_refused(api, client, account, live_call):
    error = rest_error(
        lambda: client.calls(live_call.sid).recordings(new_sid("RE")).update(status="paused")
    )
    assert error.status == 404  # no such recording of this call
    error = rest_error(
        lambda: client.calls(live_call.sid).recordings("Twilio.CURRENT").update(status="paused")
    )
    assert error.status == 404  # nothing is recording
    response = api.http.post(
        f"/2010-04-01/Accounts/{account.sid}/Calls/{live_call.sid}/Recordings/Twilio.CURRENT.json",
        data={"Status": "completed"},
        auth=(account.sid, account.auth_token),
    )
    assert response.status_code == 400  # not a status an update may ask for
    # A recording already finished: stopping it again shows it, pausing is refused.
    done = stored(api, account, call_sid=live_call.sid, status="completed", duration=3)
    again = client.calls(live_call.sid).recordings(done.sid).update(status="stopped")
    assert again.status == "completed" and again.duration == "3"
    error = rest_error(
        lambda: client.calls(live_call.sid).recordings(done.sid).update(status="paused")
    )
    assert (error.status, error.code) == (400, 21220)


def test_a_call_with_as_many_recordings_as_it_may_have_is_400(api, client, live_call):
    api.live_calls.fail_with = ValueError("A call may have at most 8 recordings in progress")
    try:
        error = rest_error(lambda: client.calls(live_call.sid).recordings.create())
    finally:
        api.live_calls.fail_with = None
    assert (error.status, error.code) == (400, 20001) and "at most 8" in error.msg


def test_another_accounts_call_is_404(api, account, other, live_call):
    response = api.http.post(
        f"/2010-04-01/Accounts/{other.sid}/Calls/{live_call.sid}/Recordings.json",
        auth=(other.sid, other.auth_token),
    )
    assert response.status_code == 404


# -- conferences


@dataclass
class FakeConferenceRecordings:
    """The live conferences' recording port: ``running`` maps a CF to its RE."""

    running: dict[str, str] = field(default_factory=dict)
    asked: list[tuple] = field(default_factory=list)

    async def end(self, account_sid, conference_sid):
        return False

    async def update_participant(self, *args, **kwargs):
        return False

    async def kick(self, *args):
        return False

    async def update_recording(self, account_sid, conference_sid, sid, status, pause_behavior):
        self.asked.append((conference_sid, sid, status, pause_behavior))
        running = self.running.get(conference_sid)
        if running is None:
            return None
        if sid not in (running, "Twilio.CURRENT"):
            raise LookupError(sid)
        return running


@pytest.fixture(scope="module")
def conference_api(store_url):
    from tests.control_api.api.conftest import Api

    live = FakeConferenceRecordings()
    calls = FakeLiveCalls()
    make = lambda store: create_app(store, calls, live_conferences=live)  # noqa: E731
    import httpx

    with (
        serve(store_url, make) as (base_url, store, _),
        httpx.Client(base_url=base_url, timeout=10) as http,
    ):
        yield Api(base_url, store, calls, http), live


def test_conference_recordings(conference_api):
    api, live = conference_api
    account = api.new_account()
    client = api.client(account)
    conference = ConferenceRecord(
        sid=new_sid("CF"), account_sid=account.sid, friendly_name="room", status="in-progress"
    )
    api.run(api.store.insert_conference(conference))
    row = stored(
        api, account, conference_sid=conference.sid, call_sid=new_sid("CA"), source="Conference"
    )
    live.running[conference.sid] = row.sid
    room = client.conferences(conference.sid)
    assert [each.sid for each in room.recordings.list()] == [row.sid]
    fetched = room.recordings(row.sid).fetch()
    assert fetched.conference_sid == conference.sid and fetched.source == "Conference"
    assert fetched.uri == (
        f"/2010-04-01/Accounts/{account.sid}/Conferences/{conference.sid}/Recordings/{row.sid}.json"
    )
    auth = (account.sid, account.auth_token)
    path = f"/2010-04-01/Accounts/{account.sid}/Conferences/{conference.sid}/Recordings"
    assert_spec_shape(api.http.get(f"{path}/{row.sid}.json", auth=auth).json(), SPEC_FIELDS)
    paused = room.recordings("Twilio.CURRENT").update(status="paused", pause_behavior="skip")
    assert paused.sid == row.sid
    assert live.asked[-1] == (conference.sid, "Twilio.CURRENT", "paused", "skip")
    room.recordings(row.sid).update(status="stopped")
    assert live.asked[-1] == (conference.sid, row.sid, "stopped", "silence")
    # Another conference's recording is not this one's.
    error = rest_error(lambda: client.conferences(new_sid("CF")).recordings(row.sid).fetch())
    assert error.status == 404
    del live.running[conference.sid]  # the conference ended
    error = rest_error(lambda: room.recordings("Twilio.CURRENT").update(status="paused"))
    assert (error.status, error.code) == (400, 21220)
    assert room.recordings(row.sid).delete()
    assert room.recordings.list() == []
    error = rest_error(lambda: room.recordings(row.sid).fetch())
    assert error.status == 404
