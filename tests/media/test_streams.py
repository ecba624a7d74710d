"""The Media Streams protocol core (reference §6): messages out, events in, playback."""

from __future__ import annotations

import base64
import binascii
import json

import numpy as np
import orjson
from hypothesis import given
from hypothesis import strategies as st

from media.g711 import ulaw_decode, ulaw_encode
from media.streams import (
    FRAME_BYTES,
    ClearReceived,
    MarkReceived,
    MediaReceived,
    MediaStream,
    Playback,
    ProtocolError,
    StreamAudio,
)

ACCOUNT = "AC" + "1" * 32
CALL = "CA" + "2" * 32
STREAM = "MZ" + "3" * 32


def stream(**kwargs) -> MediaStream:
    return MediaStream(ACCOUNT, CALL, STREAM, {"k": "v"}, **kwargs)


def test_connected_is_exactly_twilios():
    assert json.loads(stream().connected()) == {
        "event": "connected",
        "protocol": "Call",
        "version": "1.0.0",
    }


def test_the_message_sequence_and_fields():
    s = stream()
    s.connected()
    start = json.loads(s.start())
    first = json.loads(s.media(b"\x01" * 160))
    second = json.loads(s.media(b"\x02" * 160))
    dtmf = json.loads(s.dtmf("5"))
    mark = json.loads(s.mark("m1"))
    stop = json.loads(s.stop())
    assert start == {
        "event": "start",
        "sequenceNumber": "1",
        "start": {
            "accountSid": ACCOUNT,
            "streamSid": STREAM,
            "callSid": CALL,
            "tracks": ["inbound"],
            "customParameters": {"k": "v"},
            "mediaFormat": {"encoding": "audio/x-mulaw", "sampleRate": 8000, "channels": 1},
        },
        "streamSid": STREAM,
    }
    assert first == {
        "event": "media",
        "sequenceNumber": "2",
        "media": {
            "track": "inbound",
            "chunk": "1",
            "timestamp": "0",
            "payload": base64.b64encode(b"\x01" * 160).decode(),
        },
        "streamSid": STREAM,
    }
    assert second["sequenceNumber"] == "3"
    assert second["media"]["chunk"] == "2" and second["media"]["timestamp"] == "20"
    assert base64.b64decode(second["media"]["payload"]) == b"\x02" * 160
    assert dtmf == {
        "event": "dtmf",
        "sequenceNumber": "4",
        "dtmf": {"track": "inbound_track", "digit": "5"},
        "streamSid": STREAM,
    }
    assert mark == {
        "event": "mark",
        "sequenceNumber": "5",
        "mark": {"name": "m1"},
        "streamSid": STREAM,
    }
    assert stop == {
        "event": "stop",
        "sequenceNumber": "6",
        "stop": {"accountSid": ACCOUNT, "callSid": CALL},
        "streamSid": STREAM,
    }


def test_chunks_count_per_track_and_timestamp_follows_the_media_timeline():
    s = stream(tracks=("inbound", "outbound"))
    assert json.loads(s.start())["start"]["tracks"] == ["inbound", "outbound"]
    s.media(b"a", track="inbound")
    out = json.loads(s.media(b"b", track="outbound"))
    later = json.loads(s.media(b"c", track="inbound", timestamp=1000))
    assert out["media"]["chunk"] == "1" and out["media"]["track"] == "outbound"
    assert later["media"]["chunk"] == "2" and later["media"]["timestamp"] == "1000"
    assert later["sequenceNumber"] == "4"


def test_receive_media_mark_clear():
    s = stream()
    payload = bytes(range(160))
    media = {
        "event": "media",
        "streamSid": STREAM,
        "media": {"payload": base64.b64encode(payload).decode()},
    }
    assert s.receive(json.dumps(media)) == MediaReceived(payload)
    assert s.receive(json.dumps({"event": "mark", "mark": {"name": "x"}})) == MarkReceived("x")
    assert s.receive(b'{"event": "clear", "streamSid": "MZ"}') == ClearReceived()
    assert s.receive('{"event": "somethingNew"}') is None


def test_receive_reports_malformed_messages():
    s = stream()
    for text in (
        "not json",
        "[1, 2]",
        '{"media": {}}',
        '{"event": "media"}',
        '{"event": "media", "media": {"payload": 5}}',
        '{"event": "media", "media": {"payload": "***"}}',
        '{"event": "mark", "mark": "x"}',
        '{"event": "mark", "mark": {"name": null}}',
        b"\xff\xfe",
    ):
        assert isinstance(s.receive(text), ProtocolError), text


_json = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(),
    lambda children: st.lists(children) | st.dictionaries(st.text(), children),
    max_leaves=20,
)


@given(st.one_of(st.text(), st.binary()))
def test_receive_never_raises_on_random_text(text):
    event = stream().receive(text)
    assert event is None or isinstance(
        event, (MediaReceived, MarkReceived, ClearReceived, ProtocolError)
    )


@given(
    st.sampled_from(["media", "mark", "clear", "stop", 1, None]),
    st.dictionaries(st.sampled_from(["media", "mark", "payload", "name"]), _json),
    _json,
)
def test_receive_never_raises_on_random_json(event, fields, inner):
    message = {"event": event, **fields}
    if isinstance(fields.get("media"), dict):
        message["media"]["payload"] = inner
    result = stream().receive(json.dumps(message))
    assert result is None or isinstance(
        result, (MediaReceived, MarkReceived, ClearReceived, ProtocolError)
    )


# -- playback


def test_playback_joins_and_splits_into_frames():
    playback = Playback()
    playback.push(b"a" * 100)
    assert playback.pop() is None  # not a whole frame yet
    playback.push(b"b" * 300)  # 400 bytes: two frames, 80 left over
    assert playback.pop() == b"a" * 100 + b"b" * 60
    assert playback.pop() == b"b" * 160
    assert playback.pop() is None
    playback.push(b"c" * 80)
    assert playback.pop() == b"b" * 80 + b"c" * 80


def test_marks_are_reached_in_order_after_the_audio_before_them():
    playback = Playback()
    playback.push(b"1" * 320)
    playback.push_mark("one")
    playback.push(b"2" * 160)
    playback.push_mark("two")
    playback.push_mark("three")
    assert playback.pop() == b"1" * 160 and playback.take_marks() == []
    assert playback.pop() == b"1" * 160 and playback.take_marks() == ["one"]
    assert playback.pop() == b"2" * 160 and playback.take_marks() == ["two", "three"]
    assert playback.pop() is None and playback.take_marks() == []


def test_a_mark_with_nothing_queued_is_reached_at_the_next_tick():
    playback = Playback()
    playback.push_mark("now")
    assert playback.pop() is None
    assert playback.take_marks() == ["now"]


def test_a_partial_frame_before_a_mark_is_padded_with_silence():
    playback = Playback()
    playback.push(b"x" * 100)
    playback.push_mark("m")
    assert playback.pop() == b"x" * 100 + b"\xff" * 60
    assert playback.take_marks() == ["m"]


def test_clear_drops_audio_and_returns_pending_marks():
    playback = Playback()
    playback.push(b"1" * 1600)
    playback.push_mark("a")
    playback.push(b"2" * 1600)
    playback.push_mark("b")
    playback.push(b"3" * 50)
    playback.pop()
    assert playback.clear() == ["a", "b"]
    assert playback.queued_frames == 0
    assert playback.pop() is None and playback.take_marks() == []
    playback.push(b"4" * 160)  # the dropped partial frame does not come back
    assert playback.pop() == b"4" * 160


def test_playback_is_bounded():
    playback = Playback(max_frames=10)
    playback.push(b"z" * FRAME_BYTES * 15)
    assert playback.queued_frames == 10
    assert playback.overflow == 5 * FRAME_BYTES
    assert sum(playback.pop() is not None for _ in range(20)) == 10


@given(st.lists(st.one_of(st.binary(max_size=500), st.text(max_size=3)), max_size=30))
def test_playback_plays_every_byte_in_order_and_every_mark(items):
    playback = Playback()
    expected = bytearray()  # the audio, each mark padding it to a whole frame with silence
    for item in items:
        if isinstance(item, bytes):
            playback.push(item)
            expected += item
        else:
            playback.push_mark(item)
            expected += b"\xff" * (-len(expected) % FRAME_BYTES)
    played, marks = b"", []
    for _ in range(200):
        frame = playback.pop()
        marks += playback.take_marks()
        if frame is not None:
            assert len(frame) == FRAME_BYTES
            played += frame
    assert marks == [i for i in items if isinstance(i, str)]
    assert played == expected[: len(expected) - len(expected) % FRAME_BYTES]


# -- codecs


def test_pcmu_legs_pass_payloads_untouched():
    audio = StreamAudio("PCMU")
    payload = bytes(range(160))
    assert audio.passthrough
    assert audio.to_stream(payload) is payload
    assert audio.to_leg(payload) is payload


def test_pcma_legs_are_transcoded_both_ways():
    from media.g711 import alaw_decode, alaw_encode

    tone = (8000 * np.sin(2 * np.pi * 1000 * np.arange(160) / 8000)).astype(np.int16)
    audio = StreamAudio("PCMA")
    assert not audio.passthrough
    ulaw = audio.to_stream(alaw_encode(tone))
    assert len(ulaw) == 160
    assert np.max(np.abs(ulaw_decode(ulaw).astype(int) - tone)) < 400
    alaw = audio.to_leg(ulaw_encode(tone))
    assert np.max(np.abs(alaw_decode(alaw).astype(int) - tone)) < 400


# -- the short paths: media messages in and out, whole frames queued


def _reference_receive(text):
    """What receive() gave before its media short path (2026-12-06): the oracle."""
    try:
        message = orjson.loads(text)
    except (ValueError, TypeError):
        return ProtocolError("not a JSON text message")
    if not isinstance(message, dict):
        return ProtocolError("not a JSON object")
    event = message.get("event")
    if not isinstance(event, str):
        return ProtocolError("no event name")
    if event == "media":
        media = message.get("media")
        payload = media.get("payload") if isinstance(media, dict) else None
        if not isinstance(payload, str):
            return ProtocolError("media without a media.payload string")
        try:
            return MediaReceived(binascii.a2b_base64(payload, strict_mode=True))
        except (binascii.Error, ValueError):
            return ProtocolError("media.payload is not base64")
    if event == "mark":
        mark = message.get("mark")
        name = mark.get("name") if isinstance(mark, dict) else None
        if not isinstance(name, str):
            return ProtocolError("mark without a mark.name string")
        return MarkReceived(name)
    return ClearReceived() if event == "clear" else None


_payloads = st.one_of(
    st.binary(max_size=400).map(lambda b: base64.b64encode(b).decode()),
    st.text(alphabet="ABCDabcd0189+/=\n -_", max_size=20),  # near-base64 and not
    _json,
)


@given(
    st.one_of(st.sampled_from(["media", "mark", "clear", "stop", "Media"]), _json),
    _payloads,
    st.dictionaries(st.sampled_from(["media", "mark", "streamSid", "name"]), _json),
    st.booleans(),
)
def test_receive_gives_what_the_general_parser_gives(event, payload, fields, media_dict):
    message = {"event": event, **fields}
    if media_dict:
        message["media"] = {"track": "outbound", "payload": payload}
    text = json.dumps(message).encode()
    expected = _reference_receive(text)
    assert stream().receive(text) == expected
    short = stream().receive_payload(text)
    assert short == (expected.payload if isinstance(expected, MediaReceived) else expected)


@given(st.one_of(st.text(max_size=50), st.binary(max_size=50)))
def test_receive_gives_what_the_general_parser_gives_on_any_text(text):
    assert stream().receive(text) == _reference_receive(text)


def test_inbound_media_continues_the_inbound_track_of_media():
    ours, theirs = stream(tracks=("inbound", "outbound")), stream(tracks=("inbound", "outbound"))
    frame = bytes(range(160))
    for n, track in enumerate(["inbound", "outbound", "inbound", "inbound", "outbound"]):
        if track == "inbound":
            assert ours.inbound_media(frame, 20 * n) == theirs.media(frame, track, 20 * n)
        else:
            assert ours.media(frame, track, 20 * n) == theirs.media(frame, track, 20 * n)
    last = json.loads(ours.inbound_media(frame, 200))
    assert (last["sequenceNumber"], last["media"]["chunk"]) == ("6", "4")


@given(
    st.lists(
        st.one_of(
            st.binary(min_size=FRAME_BYTES, max_size=FRAME_BYTES),  # the short path
            st.binary(max_size=500),
            st.text(max_size=3),  # a mark
            st.none(),  # a tick
        ),
        max_size=60,
    ),
    st.integers(1, 30),
)
def test_whole_frames_queue_as_the_general_path_queues_them(items, max_frames):
    """The same audio pushed as bytes (whole frames take the short path) and as
    bytearrays (always the general path): the same frames, marks and drops."""
    short, general = Playback(max_frames=max_frames), Playback(max_frames=max_frames)
    for item in items:
        if isinstance(item, bytes):
            short.push(item)
            general.push(bytearray(item))
        elif isinstance(item, str):
            short.push_mark(item)
            general.push_mark(item)
        else:
            assert short.pop() == general.pop()
            assert short.take_marks() == general.take_marks()
        assert (short.queued_frames, short.overflow, short.dropped_frames, short.full) == (
            general.queued_frames,
            general.overflow,
            general.dropped_frames,
            general.full,
        )
    assert short.clear() == general.clear()


def test_a_pushed_bytearray_is_copied_not_kept():
    playback = Playback()
    frame = bytearray(b"\x01" * FRAME_BYTES)
    playback.push(frame)
    frame[:] = b"\x02" * FRAME_BYTES
    assert playback.pop() == b"\x01" * FRAME_BYTES
