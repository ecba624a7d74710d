"""Recordings through the official twilio library; their audio through plain HTTP."""

from __future__ import annotations

import io
import sys
import types
import wave
from datetime import timedelta
from pathlib import Path

import pytest
from twilio.base.exceptions import TwilioRestException

from control_api.sids import new_sid
from control_api.store import ConferenceRecord, RecordingRecord
from tests.control_api.api.routing_server import FakeLiveConferences, serve_api


@pytest.fixture(scope="module")
def recordings_dir(tmp_path_factory):
    return tmp_path_factory.mktemp("recordings")


@pytest.fixture(scope="module")
def api(store_url, recordings_dir):
    with serve_api(
        store_url,
        live_conferences=FakeLiveConferences(),
        recordings_dir=recordings_dir,
    ) as running:
        yield running


def wav_bytes(seconds: float = 0.25, rate: int = 8000) -> bytes:
    """A mono 16-bit WAV of a rising ramp (not silence, so bytes differ by content)."""
    frames = int(seconds * rate)
    samples = b"".join(
        ((i * 37) % 65536 - 32768).to_bytes(2, "little", signed=True) for i in range(frames)
    )
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(rate)
        out.writeframes(samples)
    return buffer.getvalue()


@pytest.fixture
def add_recording(api, recordings_dir):
    """``add_recording(account, with_file=True, **fields)``: a stored recording (and WAV)."""

    def make(account, *, with_file: bool = True, **fields) -> RecordingRecord:
        sid = new_sid("RE")
        if with_file:
            relative = f"{account.sid}/{sid}.wav"
            (recordings_dir / account.sid).mkdir(exist_ok=True)
            (recordings_dir / relative).write_bytes(wav_bytes())
            fields.setdefault("file_path", relative)
        fields.setdefault("status", "completed")
        fields.setdefault("duration", 7)
        record = RecordingRecord(sid=sid, account_sid=account.sid, **fields)
        return api.run(api.store.recordings.insert(record))

    return make


def rest_error(call) -> TwilioRestException:
    with pytest.raises(TwilioRestException) as caught:
        call()
    return caught.value


def test_fetch_has_twilios_fields(client, api, account, add_recording, at):
    call = api.insert_call(account, status="completed")
    recording = add_recording(
        account,
        call_sid=call.sid,
        source="DialVerb",
        channels=2,
        duration=42,
        start_time=at(),
        price="-0.00250",
        track="inbound",
        date_created=at(seconds=1),
    )
    fetched = client.recordings(recording.sid).fetch()
    assert fetched.sid == recording.sid
    assert fetched.account_sid == account.sid
    assert fetched.call_sid == call.sid
    assert fetched.conference_sid is None
    assert fetched.status == "completed"
    assert fetched.source == "DialVerb"
    assert fetched.channels == 2
    assert fetched.duration == "42"
    assert fetched.price == "-0.00250"
    assert fetched.price_unit == "USD"
    assert fetched.api_version == "2010-04-01"
    assert fetched.start_time == at()
    assert fetched.date_created == at(seconds=1)
    assert fetched.encryption_details is None
    path = f"/2010-04-01/Accounts/{account.sid}/Recordings/{recording.sid}"
    assert fetched.uri == path + ".json"
    assert fetched.media_url == api.base_url + path
    assert fetched.subresource_uris == {"transcriptions": path + "/Transcriptions.json"}
    body = api.http.get(path + ".json", auth=(account.sid, account.auth_token)).json()
    assert "track" not in body  # the spec has it on a call's recordings only
    assert body["duration"] == "42" and body["error_code"] is None
    assert client.calls(call.sid).recordings(recording.sid).fetch().track == "inbound"


def test_in_progress_recording_has_duration_minus_one(client, account, add_recording):
    recording = add_recording(account, status="in-progress", duration=None, with_file=False)
    fetched = client.recordings(recording.sid).fetch()
    assert (fetched.status, fetched.duration) == ("in-progress", "-1")


def test_list_newest_first_with_filters(client, api, account, other, add_recording, at):
    call = api.insert_call(account, status="completed")
    conference = api.run(
        api.store.conferences.insert(
            ConferenceRecord(sid=new_sid("CF"), account_sid=account.sid, friendly_name="room")
        )
    )
    old = add_recording(account, call_sid=call.sid, date_created=at(days=-1))
    middle = add_recording(account, conference_sid=conference.sid, date_created=at())
    new = add_recording(account, call_sid=call.sid, date_created=at(days=1, hours=1))
    add_recording(other, date_created=at())

    def sids(**filters):
        return [r.sid for r in client.recordings.list(**filters)]

    assert sids() == [new.sid, middle.sid, old.sid]
    assert sids(call_sid=call.sid) == [new.sid, old.sid]
    assert sids(conference_sid=conference.sid) == [middle.sid]
    assert sids(date_created_after=at()) == [new.sid, middle.sid]
    assert sids(date_created_before=at()) == [middle.sid, old.sid]  # on or before
    assert sids(date_created_before=at(seconds=-1)) == [old.sid]
    assert sids(date_created=at(days=1)) == [new.sid]  # that whole day
    assert sids(page_size=1) == [new.sid, middle.sid, old.sid]  # follows next_page_uri
    assert [r.sid for r in client.calls(call.sid).recordings.list()] == [new.sid, old.sid]
    in_call = client.calls(call.sid).recordings(old.sid).fetch()
    assert in_call.sid == old.sid
    # Shown under the call, as Twilio's spec has it: its path there, the track, no media_url.
    call_path = f"/2010-04-01/Accounts/{account.sid}/Calls/{call.sid}"
    assert in_call.uri == f"{call_path}/Recordings/{old.sid}.json"
    assert in_call.track == "both"
    assert not hasattr(in_call, "media_url")
    conference_list = api.http.get(
        f"/2010-04-01/Accounts/{account.sid}/Conferences/{conference.sid}/Recordings.json",
        auth=(account.sid, account.auth_token),
    ).json()
    assert [r["sid"] for r in conference_list["recordings"]] == [middle.sid]
    assert conference_list["recordings"][0]["uri"] == (
        f"/2010-04-01/Accounts/{account.sid}/Conferences/{conference.sid}"
        f"/Recordings/{middle.sid}.json"
    )
    bad = api.http.get(
        f"/2010-04-01/Accounts/{account.sid}/Recordings.json",
        params={"DateCreated<": "yesterday"},
        auth=(account.sid, account.auth_token),
    )
    assert bad.status_code == 400


def test_delete_removes_the_row_and_the_audio(client, api, account, add_recording, recordings_dir):
    recording = add_recording(account)
    wav = recordings_dir / recording.file_path
    mp3 = wav.with_suffix(".mp3")
    mp3.write_bytes(b"cached")
    assert client.recordings(recording.sid).delete() is True
    assert not wav.exists() and not mp3.exists()
    assert rest_error(lambda: client.recordings(recording.sid).fetch()).status == 404
    assert rest_error(lambda: client.recordings(recording.sid).delete()).status == 404
    media = api.http.get(f"/2010-04-01/Accounts/{account.sid}/Recordings/{recording.sid}.wav")
    assert media.status_code == 404


def test_wav_media_without_auth(api, account, add_recording, recordings_dir):
    recording = add_recording(account)
    expected = (recordings_dir / recording.file_path).read_bytes()
    path = f"/2010-04-01/Accounts/{account.sid}/Recordings/{recording.sid}"
    for url in (path + ".wav", path):
        response = api.http.get(url)
        assert response.status_code == 200
        assert response.headers["content-type"] == "audio/x-wav"
        assert response.content == expected
    with_auth = api.http.get(path + ".wav", auth=(account.sid, account.auth_token))
    assert with_auth.content == expected
    wrong = api.http.get(path + ".wav", auth=(account.sid, "0" * 32))
    assert wrong.status_code == 401 and wrong.json()["code"] == 20003


def test_media_is_404_where_there_is_none(api, account, other, add_recording):
    recording = add_recording(account)
    no_file = add_recording(account, with_file=False, status="in-progress")
    escaping = add_recording(account, with_file=False, file_path="../../etc/passwd")
    base = f"/2010-04-01/Accounts/{account.sid}/Recordings"
    assert api.http.get(f"{base}/{no_file.sid}.wav").status_code == 404
    assert api.http.get(f"{base}/{escaping.sid}.wav").status_code == 404
    assert api.http.get(f"{base}/{new_sid('RE')}.wav").status_code == 404
    assert api.http.get(f"{base}/not-a-sid.wav").status_code == 404
    theirs = f"/2010-04-01/Accounts/{other.sid}/Recordings/{recording.sid}.wav"
    assert api.http.get(theirs).status_code == 404
    assert api.http.get(f"/2010-04-01/Accounts/x/Recordings/{recording.sid}").status_code == 404


def test_mp3_media_is_made_once_and_cached(api, account, add_recording, recordings_dir):
    recording = add_recording(account)
    url = f"/2010-04-01/Accounts/{account.sid}/Recordings/{recording.sid}.mp3"
    first = api.http.get(url)
    assert first.status_code == 200
    assert first.headers["content-type"] == "audio/mpeg"
    assert first.content[:3] == b"ID3" or first.content[0] == 0xFF  # tag or frame sync
    cached = (recordings_dir / recording.file_path).with_suffix(".mp3")
    assert cached.read_bytes() == first.content
    assert api.http.get(url).content == first.content


def test_another_account_sees_nothing(client, api, account, other, add_recording):
    call = api.insert_call(account, status="completed")
    recording = add_recording(account, call_sid=call.sid)
    theirs = api.client(other)
    assert theirs.recordings.list() == []
    assert rest_error(lambda: theirs.recordings(recording.sid).fetch()).status == 404
    assert rest_error(lambda: theirs.recordings(recording.sid).delete()).status == 404
    assert (
        rest_error(lambda: theirs.calls(call.sid).recordings(recording.sid).fetch()).status == 404
    )
    listing = api.http.get(
        f"/2010-04-01/Accounts/{other.sid}/Calls/{call.sid}/Recordings.json",
        auth=(other.sid, other.auth_token),
    )
    assert listing.status_code == 404
    assert client.recordings(recording.sid).fetch().sid == recording.sid


def test_store_update_shows_in_the_api(client, api, account, add_recording):
    recording = add_recording(account, status="in-progress", duration=None)
    api.run(api.store.recordings.update(recording.sid, status="completed", duration=3))
    fetched = client.recordings(recording.sid).fetch()
    assert (fetched.status, fetched.duration) == ("completed", "3")
    assert fetched.date_updated >= fetched.date_created - timedelta(seconds=1)


def test_mp3_conversion_runs_once_through_wav_to_mp3(
    api, account, add_recording, recordings_dir, monkeypatch
):
    """The handler's side, with a stand-in converter: called once, result cached, type."""
    converted = []

    def fake_wav_to_mp3(wav_path, mp3_path):
        converted.append(wav_path)
        Path(mp3_path).write_bytes(b"ID3" + Path(wav_path).read_bytes()[:10])

    fake = types.ModuleType("media.recorder")
    fake.wav_to_mp3 = fake_wav_to_mp3
    monkeypatch.setitem(sys.modules, "media.recorder", fake)
    recording = add_recording(account)
    wav = recordings_dir / recording.file_path
    url = f"/2010-04-01/Accounts/{account.sid}/Recordings/{recording.sid}.mp3"
    for _ in range(2):
        response = api.http.get(url)
        assert response.status_code == 200
        assert response.headers["content-type"] == "audio/mpeg"
        assert response.content == b"ID3" + wav.read_bytes()[:10]
    assert converted == [wav]
    assert sorted(p.name for p in wav.parent.glob(f"{recording.sid}*")) == [
        f"{recording.sid}.mp3",
        f"{recording.sid}.wav",
    ]


def test_mp3_without_a_converter_is_501(api, account, add_recording, monkeypatch):
    monkeypatch.setitem(sys.modules, "media.recorder", None)  # import fails
    recording = add_recording(account)
    response = api.http.get(f"/2010-04-01/Accounts/{account.sid}/Recordings/{recording.sid}.mp3")
    assert response.status_code == 501
    assert response.json()["code"] == 20004
