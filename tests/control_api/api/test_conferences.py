"""Conferences and Participants through the official twilio library, with a fake engine."""

from __future__ import annotations

import pytest
from twilio.base.exceptions import TwilioRestException

from control_api.sids import new_sid
from control_api.store import ConferenceRecord, ParticipantRecord
from tests.control_api.api.routing_server import FakeLiveConferences, serve_api


@pytest.fixture(scope="module")
def live(api) -> FakeLiveConferences:
    return api.live_conferences


@pytest.fixture(scope="module")
def api(tmp_path_factory, store_url):
    root = tmp_path_factory.mktemp("conferences")
    engine = FakeLiveConferences()
    with serve_api(
        store_url, live_conferences=engine, recordings_dir=root / "recordings"
    ) as running:
        running.live_conferences = engine

        async def act_like_the_engine(request: tuple) -> None:
            """Update the store as the call engine does before it answers True."""
            store = running.store
            if request[0] == "end":
                await store.conferences.update(
                    request[2],
                    status="completed",
                    reason_conference_ended="conference-ended-via-api",
                )
            elif request[0] == "update_participant":
                _, _, conference_sid, call_sid, muted, hold = request[:6]
                changes = {
                    name: value
                    for name, value in (("muted", muted), ("hold", hold))
                    if value is not None
                }
                await store.participants.update(conference_sid, call_sid, **changes)
            elif request[0] == "kick":
                await store.participants.update(request[2], request[3], status="complete")

        engine.on_act = act_like_the_engine
        yield running


@pytest.fixture(autouse=True)
def fresh_engine(live):
    live.answer = True
    live.asked.clear()


def rest_error(call) -> TwilioRestException:
    with pytest.raises(TwilioRestException) as caught:
        call()
    return caught.value


def add_conference(api, account, name="room", **fields) -> ConferenceRecord:
    record = ConferenceRecord(
        sid=new_sid("CF"), account_sid=account.sid, friendly_name=name, **fields
    )
    return api.run(api.store.conferences.insert(record))


def add_participant(api, account, conference, **fields) -> ParticipantRecord:
    call = api.insert_call(account, status="in-progress")
    record = ParticipantRecord(
        conference_sid=conference.sid, call_sid=call.sid, account_sid=account.sid, **fields
    )
    return api.run(api.store.participants.insert(record))


def test_fetch_conference_has_twilios_fields(client, api, account, at):
    conference = add_conference(api, account, "standup", status="in-progress", date_created=at())
    fetched = client.conferences(conference.sid).fetch()
    assert fetched.sid == conference.sid
    assert fetched.account_sid == account.sid
    assert fetched.friendly_name == "standup"
    assert fetched.status == "in-progress"
    assert fetched.region == "us1"
    assert fetched.api_version == "2010-04-01"
    assert fetched.date_created == at()
    assert fetched.reason_conference_ended is None
    assert fetched.call_sid_ending_conference is None
    base = f"/2010-04-01/Accounts/{account.sid}/Conferences/{conference.sid}"
    assert fetched.uri == base + ".json"
    assert fetched.subresource_uris == {
        "participants": base + "/Participants.json",
        "recordings": base + "/Recordings.json",
    }


def test_list_conferences_with_filters(client, api, account, other, at):
    done = add_conference(api, account, "a", status="completed", date_created=at(days=-1))
    live = add_conference(api, account, "b", status="in-progress", date_created=at())
    waiting = add_conference(api, account, "a", status="init", date_created=at(days=1))
    add_conference(api, other, "a", status="in-progress", date_created=at())

    def sids(**filters):
        return [c.sid for c in client.conferences.list(**filters)]

    assert sids() == [waiting.sid, live.sid, done.sid]
    assert sids(status="in-progress") == [live.sid]
    assert sids(status="completed") == [done.sid]
    assert sids(friendly_name="a") == [waiting.sid, done.sid]
    assert sids(date_created=at().date()) == [live.sid]
    assert sids(date_created_after=at().date()) == [waiting.sid, live.sid]
    assert sids(date_created_before=at().date()) == [live.sid, done.sid]  # on or before
    assert sids(page_size=2) == [waiting.sid, live.sid, done.sid]
    wrong = api.http.get(
        f"/2010-04-01/Accounts/{account.sid}/Conferences.json",
        params={"Status": "ringing"},
        auth=(account.sid, account.auth_token),
    )
    assert wrong.status_code == 400 and wrong.json()["code"] == 20001


def test_end_a_conference(client, api, account, live):
    conference = add_conference(api, account, status="in-progress")
    ended = client.conferences(conference.sid).update(status="completed")
    assert live.asked == [("end", account.sid, conference.sid)]
    assert ended.status == "completed"  # re-read after the engine wrote it
    assert ended.reason_conference_ended == "conference-ended-via-api"


def test_end_a_conference_that_is_not_live_is_404(client, api, account, live):
    conference = add_conference(api, account, status="completed")
    live.answer = False
    error = rest_error(lambda: client.conferences(conference.sid).update(status="completed"))
    assert (error.status, error.code) == (404, 20404)
    error = rest_error(lambda: client.conferences(conference.sid).update(status="in-progress"))
    assert error.status == 400


def test_participants_list_and_fetch(client, api, account, at):
    conference = add_conference(api, account, status="in-progress")
    first = add_participant(api, account, conference, label="host", date_created=at())
    muted = add_participant(
        api,
        account,
        conference,
        muted=True,
        end_conference_on_exit=True,
        date_created=at(seconds=1),
    )
    held = add_participant(api, account, conference, hold=True, date_created=at(seconds=2))
    participants = client.conferences(conference.sid).participants

    assert [p.call_sid for p in participants.list()] == [
        first.call_sid,
        muted.call_sid,
        held.call_sid,
    ]
    assert [p.call_sid for p in participants.list(muted=True)] == [muted.call_sid]
    assert [p.call_sid for p in participants.list(muted=False)] == [first.call_sid, held.call_sid]
    assert [p.call_sid for p in participants.list(hold=True)] == [held.call_sid]
    assert participants.list(coaching=True) == []

    fetched = participants(first.call_sid).fetch()
    assert fetched.call_sid == first.call_sid
    assert fetched.conference_sid == conference.sid
    assert fetched.account_sid == account.sid
    assert fetched.label == "host"
    assert fetched.status == "connected"
    assert (fetched.muted, fetched.hold, fetched.coaching) == (False, False, False)
    assert fetched.start_conference_on_enter is True
    assert fetched.end_conference_on_exit is False
    assert fetched.call_sid_to_coach is None
    assert fetched.queue_time == "0"
    assert fetched.date_created == at()
    assert fetched.uri == (
        f"/2010-04-01/Accounts/{account.sid}/Conferences/{conference.sid}"
        f"/Participants/{first.call_sid}.json"
    )
    assert participants(muted.call_sid).fetch().end_conference_on_exit is True


def test_mute_unmute_and_hold(client, api, account, live):
    conference = add_conference(api, account, status="in-progress")
    participant = add_participant(api, account, conference)
    handle = client.conferences(conference.sid).participants(participant.call_sid)

    assert handle.update(muted=True).muted is True
    assert handle.update(hold=True).hold is True
    updated = handle.update(muted=False, hold=False)
    assert (updated.muted, updated.hold) == (False, False)
    key = (account.sid, conference.sid, participant.call_sid)
    assert live.asked == [
        ("update_participant", *key, True, None),
        ("update_participant", *key, None, True),
        ("update_participant", *key, False, False),
    ]
    bad = api.http.post(
        updated.uri, data={"Muted": "maybe"}, auth=(account.sid, account.auth_token)
    )
    assert bad.status_code == 400


def test_hold_music_announcements_coaching_and_labels(client, api, account, live):
    conference = add_conference(api, account, status="in-progress")
    agent = add_participant(api, account, conference, label="agent")
    coach = add_participant(api, account, conference, label="coach")
    by_label = client.conferences(conference.sid).participants("agent")
    assert by_label.fetch().call_sid == agent.call_sid
    by_label.update(hold=True, hold_url="https://app.test/music")
    coached = (
        client.conferences(conference.sid)
        .participants("coach")
        .update(
            coaching=True,
            call_sid_to_coach=agent.call_sid,
            announce_url="https://app.test/hello",
            end_conference_on_exit=True,
            beep_on_exit=False,
        )
    )
    assert coached.call_sid == coach.call_sid
    client.conferences(conference.sid).update(announce_url="https://app.test/all")
    key = (account.sid, conference.sid)
    assert live.asked == [
        (
            "update_participant",
            *key,
            agent.call_sid,
            None,
            True,
            {"hold_url": "https://app.test/music", "hold_method": "GET"},
        ),
        (
            "update_participant",
            *key,
            coach.call_sid,
            None,
            None,
            {
                "announce_url": "https://app.test/hello",
                "announce_method": "POST",
                "coaching": True,
                "call_sid_to_coach": agent.call_sid,
                "end_conference_on_exit": True,
                "beep_on_exit": False,
            },
        ),
        ("announce", *key, "https://app.test/all", "POST"),
    ]
    handle = client.conferences(conference.sid).participants(coach.call_sid)
    assert rest_error(lambda: handle.update(coaching=True)).status == 400  # whom?
    assert rest_error(lambda: handle.update(hold_url="not a url")).status == 400
    assert rest_error(lambda: client.conferences(conference.sid).participants("nobody").fetch())
    assert client.conferences(conference.sid).participants("coach").delete() is True
    assert live.asked[-1] == ("kick", *key, coach.call_sid)


def test_update_of_a_participant_not_live_is_404(client, api, account, live):
    conference = add_conference(api, account, status="in-progress")
    participant = add_participant(api, account, conference)
    live.answer = False
    handle = client.conferences(conference.sid).participants(participant.call_sid)
    assert rest_error(lambda: handle.update(muted=True)).code == 20404
    assert rest_error(lambda: handle.delete()).code == 20404


def test_kick_a_participant(client, api, account, live):
    conference = add_conference(api, account, status="in-progress")
    participant = add_participant(api, account, conference)
    assert client.conferences(conference.sid).participants(participant.call_sid).delete() is True
    assert live.asked == [("kick", account.sid, conference.sid, participant.call_sid)]


def test_unknown_conference_or_participant_is_404(client, api, account, live):
    conference = add_conference(api, account, status="in-progress")
    for call in (
        lambda: client.conferences(new_sid("CF")).fetch(),
        lambda: client.conferences("CFnot-a-sid").fetch(),
        lambda: client.conferences(new_sid("CF")).update(status="completed"),
        lambda: client.conferences(conference.sid).participants(new_sid("CA")).fetch(),
        lambda: client.conferences(conference.sid).participants(new_sid("CA")).update(muted=True),
        lambda: client.conferences(conference.sid).participants(new_sid("CA")).delete(),
    ):
        assert rest_error(call).status == 404
    assert live.asked == []


def test_another_account_sees_nothing(client, api, account, other, live):
    conference = add_conference(api, account, status="in-progress")
    participant = add_participant(api, account, conference)
    theirs = api.client(other)
    assert theirs.conferences.list() == []
    handle = theirs.conferences(conference.sid)
    for call in (
        lambda: handle.fetch(),
        lambda: handle.update(status="completed"),
        lambda: handle.participants(participant.call_sid).fetch(),
        lambda: handle.participants(participant.call_sid).update(muted=True),
        lambda: handle.participants(participant.call_sid).delete(),
    ):
        assert rest_error(call).status == 404
    listing = api.http.get(
        f"/2010-04-01/Accounts/{other.sid}/Conferences/{conference.sid}/Participants.json",
        auth=(other.sid, other.auth_token),
    )
    assert listing.status_code == 404
    assert live.asked == []
    assert client.conferences(conference.sid).fetch().status == "in-progress"
