"""``POST Conferences/{CF or FriendlyName}/Participants.json`` through the official twilio
library: the engine's own rooms (voice/conference.py) and placing code
(voice/participants.py), with a fake dialer that stores the call as the engine does."""

from __future__ import annotations

import time
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field

import httpx
import pytest
from twilio.base.exceptions import TwilioRestException

from control_api.api import create_app
from control_api.sids import new_sid
from control_api.voice import participants
from control_api.voice.conference import Conferences
from control_api.voice.live import LiveCallTable
from control_api.voice.port import Unroutable
from tests.control_api.api.conftest import Api, FakeLiveCalls, serve


@dataclass
class PlacingLiveCalls(FakeLiveCalls):
    """Places calls as FakeLiveCalls does (stored as queued; none ever rings), and
    dials participants in through the engine's own code."""

    conferences: Conferences | None = None
    table: LiveCallTable = field(default_factory=LiveCallTable)
    unroutable: bool = False
    refused: bool = False  # a dial guard turns the To away (--dial-deny)

    async def create(self, account_sid: str, new_call):
        if self.unroutable or self.refused:
            raise Unroutable(f"{new_call.to} is not registered", refused=self.refused)
        return await super().create(account_sid, new_call)

    async def add_participant(self, account_sid: str, conference: str, participant):
        assert self.conferences is not None
        return await participants.add_participant(
            self.conferences, self.table, self.create, account_sid, conference, participant
        )


@pytest.fixture(scope="module")
def api(store_url):
    live_calls = PlacingLiveCalls()

    def make_app(store):
        live_calls.store = store
        live_calls.conferences = Conferences(store, clock=None)
        return create_app(store, live_calls, live_conferences=live_calls.conferences)

    with (
        serve(store_url, make_app) as (base_url, store, _),
        httpx.Client(base_url=base_url, timeout=10) as http,
    ):
        yield Api(base_url, store, live_calls, http)
        # The rows of calls that never ring are written by the server's loop once its
        # followers give up: let them finish before the store closes.
        deadline = time.monotonic() + 10
        while live_calls.conferences is not None and len(live_calls.conferences.tasks):
            assert time.monotonic() < deadline, "participants still followed"
            time.sleep(0.1)
        time.sleep(0.5)


@pytest.fixture(autouse=True)
def fresh(api):
    api.live_calls.unroutable = api.live_calls.refused = False
    api.live_calls.asked.clear()
    yield


def rest_error(call) -> TwilioRestException:
    with pytest.raises(TwilioRestException) as caught:
        call()
    return caught.value


def placed_twiml(api) -> ET.Element:
    [(_, _, new_call)] = [a for a in api.live_calls.asked if a[0] == "create"]
    assert new_call.url is None
    return ET.fromstring(new_call.twiml).find("Dial/Conference")


def test_a_friendly_name_not_running_makes_the_conference(client, api, account):
    participant = client.conferences("standup").participants.create(
        from_="+15005550006",
        to="sip:alice@example.test",
        label="customer",
        beep="onEnter",
        muted=True,
        start_conference_on_enter=False,
        end_conference_on_exit=True,
        wait_url="https://app.test/wait",
        status_callback="https://app.test/call-events",
        status_callback_event=["ringing", "answered"],
        conference_status_callback="https://app.test/room-events",
        conference_status_callback_event=["join", "leave", "end"],
        timeout=20,
        caller_id="+15005550007",
    )
    assert participant.status == "queued"
    assert participant.call_sid.startswith("CA") and participant.label == "customer"
    assert participant.muted is True and participant.hold is False
    assert participant.start_conference_on_enter is False
    assert participant.end_conference_on_exit is True
    assert participant.coaching is False and participant.call_sid_to_coach is None
    [room] = client.conferences.list(friendly_name="standup")
    assert room.sid == participant.conference_sid and room.status == "init"
    call = client.calls(participant.call_sid).fetch()
    assert (call.to, call._from, call.status) == (
        "sip:alice@example.test",
        "+15005550006",
        "queued",
    )
    [(_, _, new_call)] = [a for a in api.live_calls.asked if a[0] == "create"]
    assert new_call.timeout == 20 and new_call.caller_id == "+15005550007"
    assert new_call.status_callback == "https://app.test/call-events"
    assert new_call.status_callback_events == frozenset({"ringing", "answered"})
    conference = placed_twiml(api)
    assert conference.text == "standup"
    assert conference.attrib == {
        "beep": "onEnter",
        "muted": "true",
        "startConferenceOnEnter": "false",
        "endConferenceOnExit": "true",
        "waitMethod": "POST",
        "maxParticipants": "250",
        "participantLabel": "customer",
        "waitUrl": "https://app.test/wait",
        "statusCallback": "https://app.test/room-events",
        "statusCallbackMethod": "POST",
        "statusCallbackEvent": "join leave end",
    }
    by_label = client.conferences(room.sid).participants("customer").fetch()
    assert by_label.call_sid == participant.call_sid
    listed = client.conferences(room.sid).participants.list()
    assert [p.call_sid for p in listed] == [participant.call_sid]


def test_a_second_participant_joins_the_same_room_by_sid(client, api, account):
    first = client.conferences("sales").participants.create(from_="+15005550006", to="client:bob")
    second = client.conferences(first.conference_sid).participants.create(
        from_="+15005550006", to="+15005550009", coaching=True, call_sid_to_coach=first.call_sid
    )
    assert second.conference_sid == first.conference_sid
    assert second.coaching is True and second.call_sid_to_coach == first.call_sid
    coach = [a[2] for a in api.live_calls.asked if a[0] == "create"][-1]
    assert ET.fromstring(coach.twiml).find("Dial/Conference").get("coach") == first.call_sid


def test_a_call_never_answered_fails_and_its_room_ends(client, api, account):
    participant = client.conferences("nobody-home").participants.create(
        from_="+15005550006", to="+15005550009"
    )
    handle = client.conferences(participant.conference_sid)
    deadline = time.monotonic() + 10
    while handle.participants(participant.call_sid).fetch().status != "failed":
        assert time.monotonic() < deadline
        time.sleep(0.1)
    assert handle.fetch().status == "completed"


def test_refusals(client, api, account):
    create = client.conferences("room").participants.create
    assert rest_error(lambda: create(from_="+15005550006", to="")).code == 21201
    assert rest_error(lambda: create(from_="", to="+15005550009")).code == 21213
    assert rest_error(lambda: create(from_="+15005550006", to="nowhere")).code == 21211
    for bad in (
        {"beep": "loud"},
        {"coaching": True},
        {"call_sid_to_coach": "CAnot-a-sid"},
        {"conference_status_callback_event": ["start", "lunch"]},
        {"status_callback_event": ["ringing", "lunch"]},
        {"max_participants": 1},
        {"wait_url": "not a url"},
        {"muted": "maybe"},
    ):
        error = rest_error(lambda bad=bad: create(from_="+15005550006", to="+15005550009", **bad))
        assert error.status == 400, bad
    unknown = client.conferences(new_sid("CF")).participants.create
    assert rest_error(lambda: unknown(from_="+15005550006", to="+15005550009")).status == 404
    api.live_calls.unroutable = True
    error = rest_error(
        lambda: client.conferences("gone").participants.create(
            from_="+15005550006", to="+15005550009"
        )
    )
    assert error.code == 21215
    assert client.conferences.list(friendly_name="gone", status="init") == []
    api.live_calls.unroutable, api.live_calls.refused = False, True
    error = rest_error(
        lambda: client.conferences("denied").participants.create(
            from_="+15005550006", to="sip:x@10.0.0.1"
        )
    )
    assert (error.status, error.code) == (403, 21215)
    assert api.live_calls.asked == []  # nothing was placed for a refused request


def test_another_accounts_conference_sid_is_not_found(client, api, account, other):
    mine = client.conferences("private").participants.create(
        from_="+15005550006", to="+15005550009"
    )
    theirs = api.client(other).conferences(mine.conference_sid).participants
    assert rest_error(lambda: theirs.create(from_="+15005550006", to="+15005550009")).status == 404


# From Twilio's 2010-04-01 spec (twilio_api_v2010.json): the participant's properties,
# participant_enum_status and conference_enum_reason_conference_ended.
SPEC_PARTICIPANT_FIELDS = {
    "account_sid",
    "call_sid",
    "label",
    "call_sid_to_coach",
    "coaching",
    "conference_sid",
    "date_created",
    "date_updated",
    "end_conference_on_exit",
    "muted",
    "hold",
    "start_conference_on_enter",
    "status",
    "queue_time",
    "uri",
}
SPEC_PARTICIPANT_STATUSES = {"queued", "connecting", "ringing", "connected", "complete", "failed"}
SPEC_REASONS = {
    "conference-ended-via-api",
    "participant-with-end-conference-on-exit-left",
    "participant-with-end-conference-on-exit-kicked",
    "last-participant-kicked",
    "last-participant-left",
}


def test_the_answer_has_the_spec_fields_and_enums(api, account):
    from control_api.voice.conference_events import REASON_TEXT

    answer = api.http.post(
        f"/2010-04-01/Accounts/{account.sid}/Conferences/spec/Participants.json",
        data={"From": "+15005550006", "To": "+15005550009", "Label": "x"},
        auth=(account.sid, account.auth_token),
    )
    assert answer.status_code == 201
    body = answer.json()
    assert set(body) == SPEC_PARTICIPANT_FIELDS
    assert body["status"] in SPEC_PARTICIPANT_STATUSES
    assert isinstance(body["queue_time"], str) and isinstance(body["coaching"], bool)
    assert body["uri"].endswith(f"/Participants/{body['call_sid']}.json")
    assert set(REASON_TEXT) == SPEC_REASONS
