"""Recording a live call through ``Calls/{CallSid}/Recordings`` with the official
`twilio` library, against a SIPp caller.

The caller streams six tones, three seconds each (A B C D E F), while its TwiML
waits. One recording is started in B and stopped in B: its WAV holds B for the
length of that window, and neither A nor C. A second is started in C, paused
(``PauseBehavior=skip``) through D, resumed in E and stopped in E: it holds C and E
for the two windows' length, and no D: the paused stretch is left out. Both end
``completed`` with their ``RecordingStatusCallback`` posted. A call bridged by
``<Dial>`` is recorded both ways, one party per channel.
"""

from __future__ import annotations

import io
import time
import wave

import httpx
import numpy as np
from twilio.rest import Client

from .audio import sine, ulaw_encode
from .conftest import require
from .harness import CallswitchServer, free_port
from .rtp import RtpSink
from .sipp import SippBackground, find_sipp
from .test_conference import band_level
from .test_voice_webhooks import LocalHttpClient, credentials
from .webhook_app import WebhookApp, twiml

NUMBER = "+15005550070"
DIAL_NUMBER = "+15005550071"
ROOM_NUMBER = "+15005550072"
CALLER_HZ, CALLEE_HZ = 440.0, 1000.0
SEGMENT_S = 3.0
TONES = {"A": 400.0, "B": 1000.0, "C": 1500.0, "D": 700.0, "E": 1900.0, "F": 2300.0}


def tone_file() -> bytes:
    """A, B, C, D, E, F: three seconds each, at a fifth of full scale."""
    return b"".join(ulaw_encode(sine(hz, SEGMENT_S, amplitude=0.2)) for hz in TONES.values())


def at(t0: float, segment: str, into: float) -> None:
    """Sleep until ``into`` seconds into ``segment`` of the caller's stream."""
    index = list(TONES).index(segment)
    delay = t0 + index * SEGMENT_S + into - time.monotonic()
    assert delay > 0, f"running late by {-delay:.2f} s"
    time.sleep(delay)


def wav_of(base: str, account_sid: str, recording_sid: str) -> np.ndarray:
    url = f"{base}/2010-04-01/Accounts/{account_sid}/Recordings/{recording_sid}.wav"
    response = httpx.get(url, timeout=10)
    assert response.status_code == 200, response.text
    with wave.open(io.BytesIO(response.content)) as wav:
        assert wav.getframerate() == 8000 and wav.getnchannels() == 1
        return np.frombuffer(wav.readframes(wav.getnframes()), dtype="<i2")


def heard(audio: np.ndarray) -> set[str]:
    """The tones clearly present in ``audio`` (a tenth of the level sent, or more)."""
    return {name for name, hz in TONES.items() if band_level(audio, hz) > 600}


def test_a_recording_holds_only_its_window_and_skips_its_pause(server, tmp_path):
    require(find_sipp() is not None, "sipp is not installed (Debian package sip-tester)")
    sid, token = credentials(server)
    base = f"http://127.0.0.1:{server.http_port}"
    client = Client(sid, token, http_client=LocalHttpClient(base))
    answered: list[float] = []
    with WebhookApp() as app, RtpSink() as sink:

        def voice(request):
            answered.append(time.monotonic())  # the answer, and SIPp's stream, follow at once
            # <Play> answers at once (a leading <Pause> would delay the answer).
            return twiml('<Play digits="w"/><Pause length="40"/>')

        app.routes["/voice"] = voice
        app.routes["/recording"] = lambda r: (204, "text/plain", b"")
        client.incoming_phone_numbers.create(phone_number=NUMBER, voice_url=app.url("/voice"))
        caller = SippBackground(
            "uac_tone_wait_bye.xml",
            server.sip_target,
            workdir=tmp_path / "caller",
            sipp=find_sipp(),
            service=NUMBER.lstrip("+"),
            keys={"sink_port": sink.port},
            calls=1,
            timeout=60,
            files={"tone.ulaw": tone_file()},
        )
        try:
            app.wait_for("/voice", timeout=10)
            t0 = answered[0]
            [call] = client.calls.list(to=NUMBER)
            recordings = client.calls(call.sid).recordings

            # One window, inside B.
            at(t0, "B", 0.7)
            first = recordings.create(
                recording_status_callback=app.url("/recording"),
                recording_status_callback_event=["in-progress", "completed"],
            )
            started = time.monotonic()
            assert first.status == "in-progress" and first.source == "StartCallRecordingAPI"
            assert first.call_sid == call.sid and first.channels == 1 and first.track == "both"
            assert client.calls(call.sid).recordings(first.sid).fetch().duration == "-1"
            at(t0, "B", 2.3)
            stopped = recordings(first.sid).update(status="stopped")
            window = time.monotonic() - started
            assert stopped.status == "completed"

            # C, paused (skip) through D, then E.
            at(t0, "C", 0.7)
            second = recordings.create()
            c_start = time.monotonic()
            at(t0, "C", 2.3)
            paused = recordings("Twilio.CURRENT").update(status="paused", pause_behavior="skip")
            c_window = time.monotonic() - c_start
            assert paused.sid == second.sid and paused.status == "paused"
            at(t0, "E", 0.7)
            resumed = recordings("Twilio.CURRENT").update(status="in-progress")
            e_start = time.monotonic()
            assert resumed.status == "in-progress"
            at(t0, "E", 2.3)
            recordings(second.sid).update(status="stopped")
            e_window = time.monotonic() - e_start
            client.calls(call.sid).update(status="completed")
            result = caller.wait(15)
            assert result.ok(1), f"{result.describe()}\n{server.tail()}"
        finally:
            caller.stop()

        audio = wav_of(base, sid, first.sid)
        assert abs(len(audio) / 8000 - window) < 0.4, (len(audio) / 8000, window)
        assert heard(audio) == {"B"}, {n: band_level(audio, hz) for n, hz in TONES.items()}

        audio = wav_of(base, sid, second.sid)
        expected = c_window + e_window  # about 3.2 s; the paused 4.4 s are not there
        assert abs(len(audio) / 8000 - expected) < 0.5, (len(audio) / 8000, expected)
        assert heard(audio) == {"C", "E"}, {n: band_level(audio, hz) for n, hz in TONES.items()}
        split = int(c_window * 8000)  # C until the pause, E from the resume
        assert heard(audio[: split - 1600]) == {"C"} and heard(audio[split + 1600 :]) == {"E"}

        listed = {each.sid: each for each in client.calls(call.sid).recordings.list()}
        assert set(listed) == {first.sid, second.sid}
        assert all(each.status == "completed" for each in listed.values())
        assert listed[first.sid].duration == str(round(len(wav_of(base, sid, first.sid)) / 8000))
        callbacks = app.wait_for("/recording", count=2)
        assert [c.field("RecordingStatus") for c in callbacks] == ["in-progress", "completed"]
        done = callbacks[1]
        assert done.field("RecordingSid") == first.sid
        assert done.field("RecordingSource") == "StartCallRecordingAPI"
        assert done.field("CallSid") == call.sid
        assert {name.lower() for name in done.headers} >= {"x-twilio-signature"}


def test_a_dial_bridge_is_recorded_both_ways_in_two_channels(tmp_path):
    """A recording started while ``<Dial>`` bridges the caller (440 Hz) to a callee
    on a trunk (1000 Hz; SIPp answers at once, talks three seconds and hangs up):
    the bridge stops relaying packets while it listens, and the dual-channel WAV has
    the caller on channel 1 and the callee on channel 2."""
    require(find_sipp() is not None, "sipp is not installed (Debian package sip-tester)")
    callee_port = free_port()
    with WebhookApp() as app, RtpSink() as caller_sink, RtpSink() as callee_sink:
        callee = SippBackground(
            "uas_answer_tone_bye.xml",
            None,
            workdir=tmp_path / "callee",
            sipp=find_sipp(),
            local_port=callee_port,
            calls=1,
            timeout=30,
            keys={"sink_port": callee_sink.port},
            files={"tone.ulaw": ulaw_encode(sine(CALLEE_HZ, 1.0, amplitude=0.2))},
        )
        server = CallswitchServer.start(
            tmp_path / "server",
            extra_args=("--trunk", f"b=sip:127.0.0.1:{callee_port};prefix=+1555050"),
        )
        caller = None
        try:
            sid, token = credentials(server)
            base = f"http://127.0.0.1:{server.http_port}"
            client = Client(sid, token, http_client=LocalHttpClient(base))
            app.routes["/voice"] = lambda r: twiml("<Dial><Number>+15550501111</Number></Dial>")
            client.incoming_phone_numbers.create(
                phone_number=DIAL_NUMBER, voice_url=app.url("/voice")
            )
            caller = SippBackground(
                "uac_tone_wait_bye.xml",
                server.sip_target,
                workdir=tmp_path / "caller",
                sipp=find_sipp(),
                service=DIAL_NUMBER.lstrip("+"),
                keys={"sink_port": caller_sink.port},
                calls=1,
                timeout=30,
                files={"tone.ulaw": ulaw_encode(sine(CALLER_HZ, 1.0, amplitude=0.2))},
            )
            deadline = time.monotonic() + 10
            parent = None
            while time.monotonic() < deadline:
                parent = next(iter(client.calls.list(to=DIAL_NUMBER)), None)
                children = client.calls.list(parent_call_sid=parent.sid) if parent else []
                if any(child.status == "in-progress" for child in children):
                    break
                time.sleep(0.05)
            assert parent is not None, server.tail()
            time.sleep(0.3)  # well inside the callee's three seconds
            recording = client.calls(parent.sid).recordings.create(recording_channels="dual")
            assert recording.channels == 2
            time.sleep(1.5)
            client.calls(parent.sid).recordings("Twilio.CURRENT").update(status="stopped")
            assert callee.wait(10).ok(1), server.tail()
            assert caller.wait(10).ok(1), server.tail()
            url = f"{base}/2010-04-01/Accounts/{sid}/Recordings/{recording.sid}.wav"
            response = httpx.get(url, timeout=10)
        finally:
            if caller is not None:
                caller.stop()
            callee.stop()
            server.stop()
        with wave.open(io.BytesIO(response.content)) as wav:
            assert wav.getnchannels() == 2
            audio = np.frombuffer(wav.readframes(wav.getnframes()), dtype="<i2").reshape(-1, 2)
        assert 1.2 < len(audio) / 8000 < 2.2, len(audio) / 8000
        caller_side, callee_side = audio[:, 0], audio[:, 1]
        assert band_level(caller_side, CALLER_HZ) > 2000, band_level(caller_side, CALLER_HZ)
        assert band_level(caller_side, CALLEE_HZ) < 300
        assert band_level(callee_side, CALLEE_HZ) > 2000, band_level(callee_side, CALLEE_HZ)
        assert band_level(callee_side, CALLER_HZ) < 300


def test_conference_record_from_start_keeps_the_rooms_mix(server, tmp_path):
    """``<Conference record="record-from-start">`` with two SIPp callers (440 and
    1000 Hz): once the room ends its recording is ``completed`` with ``source``
    Conference, listed under the conference, its callback posted (in-progress and
    completed), and its mono WAV holds both tones; pausing it through the REST API
    leaves the paused stretch out."""
    require(find_sipp() is not None, "sipp is not installed (Debian package sip-tester)")
    sid, token = credentials(server)
    base = f"http://127.0.0.1:{server.http_port}"
    client = Client(sid, token, http_client=LocalHttpClient(base))
    with WebhookApp() as app, RtpSink() as first_sink, RtpSink() as second_sink:
        app.routes["/room"] = lambda r: twiml(
            '<Dial><Conference beep="false" record="record-from-start" trim="do-not-trim"'
            f' recordingStatusCallback="{app.url("/conference-recording")}"'
            ' recordingStatusCallbackEvent="in-progress completed">room</Conference></Dial>'
        )
        app.routes["/conference-recording"] = lambda r: (204, "text/plain", b"")
        client.incoming_phone_numbers.create(phone_number=ROOM_NUMBER, voice_url=app.url("/room"))
        callers = []
        try:
            for index, (hz, sink) in enumerate(((CALLER_HZ, first_sink), (CALLEE_HZ, second_sink))):
                callers.append(
                    SippBackground(
                        "uac_tone_wait_bye.xml",
                        server.sip_target,
                        workdir=tmp_path / f"party{index}",
                        sipp=find_sipp(),
                        service=ROOM_NUMBER.lstrip("+"),
                        keys={"sink_port": sink.port},
                        calls=1,
                        timeout=30,
                        files={"tone.ulaw": ulaw_encode(sine(hz, 1.0, amplitude=0.2))},
                    )
                )
            deadline = time.monotonic() + 10
            while True:
                rooms = client.conferences.list(status="in-progress")
                recorded = rooms[0].recordings.list() if rooms else []
                if recorded and len(rooms[0].participants.list()) == 2:
                    break
                assert time.monotonic() < deadline, server.tail()
                time.sleep(0.1)
            [room] = rooms
            [recording] = recorded
            assert recording.status == "in-progress" and recording.source == "Conference"
            time.sleep(1.5)
            recordings = client.conferences(room.sid).recordings
            paused = recordings("Twilio.CURRENT").update(status="paused", pause_behavior="skip")
            assert paused.status == "paused"
            time.sleep(2.0)
            recordings(recording.sid).update(status="in-progress")
            time.sleep(1.0)
            client.conferences(room.sid).update(status="completed")
            for caller in callers:
                assert caller.wait(15).ok(1), server.tail()
            callbacks = app.wait_for("/conference-recording", count=2, timeout=10)
        finally:
            for caller in callers:
                caller.kill()
        done = recordings(recording.sid).fetch()
        assert done.status == "completed" and done.conference_sid == room.sid
        assert [c.field("RecordingStatus") for c in callbacks] == ["in-progress", "completed"]
        assert callbacks[1].field("ConferenceSid") == room.sid
        assert callbacks[1].field("RecordingSource") == "Conference"
        audio = wav_of(base, sid, recording.sid)
        # About 2.5 s recorded (1.5 before the pause, 1 after), not the 4.5 s the room ran.
        assert 2.0 < len(audio) / 8000 < 3.4, len(audio) / 8000
        assert band_level(audio, CALLER_HZ) > 2000 and band_level(audio, CALLEE_HZ) > 2000
