"""Transcriptions through the official twilio library: the account's and a recording's."""

from __future__ import annotations

import pytest
from twilio.base.exceptions import TwilioRestException

from control_api.sids import new_sid
from control_api.store import RecordingRecord, TranscriptionRecord
from tests.control_api.api.routing_server import FakeLiveConferences, serve_api


@pytest.fixture(scope="module")
def api(store_url, tmp_path_factory):
    with serve_api(
        store_url,
        live_conferences=FakeLiveConferences(),
        recordings_dir=tmp_path_factory.mktemp("recordings"),
    ) as running:
        yield running


def recording(api, account) -> RecordingRecord:
    record = RecordingRecord(sid=new_sid("RE"), account_sid=account.sid, status="completed")
    return api.run(api.store.recordings.insert(record))


def transcription(api, account, recording_sid: str, at, **fields) -> TranscriptionRecord:
    fields.setdefault("date_created", at())
    fields.setdefault("date_updated", fields["date_created"])
    record = TranscriptionRecord(
        sid=new_sid("TR"), account_sid=account.sid, recording_sid=recording_sid, **fields
    )
    return api.run(api.store.transcriptions.insert(record))


def test_fetch_list_and_delete_as_twilio_shows_them(client, api, account, other, at):
    first, second = recording(api, account), recording(api, account)
    done = transcription(
        api,
        account,
        first.sid,
        at,
        status="completed",
        transcription_text="please call me back",
        duration=7,
        price="-0.05000",
    )
    older = transcription(api, account, second.sid, at, date_created=at(days=-1), status="failed")
    transcription(api, other, recording(api, other).sid, at)

    fetched = client.transcriptions(done.sid).fetch()
    assert (fetched.sid, fetched.recording_sid, fetched.status) == (
        done.sid,
        first.sid,
        "completed",
    )
    assert fetched.transcription_text == "please call me back"
    assert (fetched.duration, float(fetched.price), fetched.price_unit) == ("7", -0.05, "USD")
    assert (fetched.type, fetched.api_version) == ("fast", "2010-04-01")
    assert fetched.uri == f"/2010-04-01/Accounts/{account.sid}/Transcriptions/{done.sid}.json"
    assert [t.sid for t in client.transcriptions.list()] == [done.sid, older.sid]
    assert [t.sid for t in client.recordings(first.sid).transcriptions.list()] == [done.sid]
    assert client.recordings(first.sid).transcriptions(done.sid).fetch().sid == done.sid

    for missing in (
        lambda: client.recordings(second.sid).transcriptions(done.sid).fetch(),  # not its own
        lambda: client.transcriptions(new_sid("TR")).fetch(),
    ):
        with pytest.raises(TwilioRestException) as caught:
            missing()
        assert (caught.value.status, caught.value.code) == (404, 20404)
    nowhere = f"/2010-04-01/Accounts/{account.sid}/Recordings/{new_sid('RE')}/Transcriptions.json"
    answer = api.http.get(nowhere, auth=(account.sid, account.auth_token))
    assert (answer.status_code, answer.json()["code"]) == (404, 20404)

    assert client.recordings(second.sid).transcriptions(older.sid).delete()
    assert client.transcriptions(done.sid).delete()
    assert client.transcriptions.list() == []
