"""Outbound calls through a SIP trunk that demands digest authentication.

SIPp plays the carrier: it challenges our INVITE with a 401, checks the
credentials of the retry (403 when wrong), rings and answers. The official
`twilio` library places the call with `calls.create`; the status callbacks
must report the whole lifecycle, signed, and the TwiML must run once the
callee answers (its audio is checked where the carrier's SDP points).
"""

from __future__ import annotations

import io
import time
import wave
from pathlib import Path

import httpx
import numpy as np
import pytest
from twilio.request_validator import RequestValidator
from twilio.rest import Client

from .audio import dominant_frequency, level_dbfs, sine, tone_purity_db, ulaw_decode, ulaw_encode
from .conftest import require
from .harness import CallswitchServer, free_port
from .media_checks import PCMU
from .rtp import RtpSink
from .sipp import SippBackground, find_sipp, run_sipp
from .test_voice_webhooks import LocalHttpClient, credentials, wav_bytes
from .webhook_app import WebhookApp, twiml

CARRIER_TONE_HZ = 1000.0
PLAY_HZ = 440.0


def start_carrier(workdir: Path, port: int, sink_port: int, scenario: str) -> SippBackground:
    sipp = find_sipp()
    require(sipp is not None, "sipp is not installed (Debian package sip-tester)")
    carrier = SippBackground(
        scenario,
        None,
        workdir=workdir,
        sipp=sipp,
        local_port=port,
        calls=1,
        timeout=60,
        trace_msg=True,
        keys={"sink_port": sink_port},
        files={"tone.ulaw": ulaw_encode(sine(CARRIER_TONE_HZ, 1.0, amplitude=0.3))},
    )
    return carrier


@pytest.fixture
def app():
    with WebhookApp() as application:
        yield application


def test_calls_create_reaches_a_carrier_that_demands_digest(tmp_path, app):
    carrier_port = free_port()
    with RtpSink() as sink:
        carrier = start_carrier(
            tmp_path / "carrier", carrier_port, sink.port, "uas_carrier_auth.xml"
        )
        server = CallswitchServer.start(
            tmp_path / "server",
            extra_args=(
                "--trunk",
                f"carrier=sip:trunkuser:trunkpass@127.0.0.1:{carrier_port};prefix=+1555",
            ),
        )
        try:
            sid, token = credentials(server)
            client = Client(
                sid, token, http_client=LocalHttpClient(f"http://127.0.0.1:{server.http_port}")
            )
            tone_wav = wav_bytes(sine(PLAY_HZ, 2.0, amplitude=0.4))
            app.routes["/tone.wav"] = lambda r: (200, "audio/wav", tone_wav)
            app.routes["/answer"] = lambda r: twiml(f"<Play>{app.url('/tone.wav')}</Play>")
            app.routes["/status"] = lambda r: (204, "text/plain", b"")
            call = client.calls.create(
                to="+15550001234",
                from_="+15005550006",
                url=app.url("/answer"),
                status_callback=app.url("/status"),
                status_callback_event=["initiated", "ringing", "answered", "completed"],
                record=True,
            )
            assert call.status == "queued" and call.direction == "outbound-api"
            result = carrier.wait(30)
            assert result.ok(1), f"{result.describe()}\n{server.tail()}"
            statuses = app.wait_for("/status", 4)
            [answer] = app.to("/answer")
            deadline = time.monotonic() + 5
            while client.calls(call.sid).fetch().status != "completed":
                assert time.monotonic() < deadline, client.calls(call.sid).fetch().status
                time.sleep(0.1)
            record = client.calls(call.sid).fetch()
            [recording] = client.recordings.list(call_sid=call.sid)
            wav = httpx.get(
                f"http://127.0.0.1:{server.http_port}{recording.uri[: -len('.json')]}.wav"
            ).content
        finally:
            problems = server.stop()
        assert not problems, problems

        validator = RequestValidator(token)
        for request in [answer, *statuses]:
            assert validator.validate(
                request.url, request.form_dict, request.headers["X-Twilio-Signature"]
            ), request.path
        assert answer.field("Direction") == "outbound-api"
        assert answer.field("CallStatus") == "in-progress"
        assert answer.field("To") == "+15550001234"
        events = sorted((int(s.field("SequenceNumber")), s.field("CallStatus")) for s in statuses)
        assert events == [(0, "initiated"), (1, "ringing"), (2, "in-progress"), (3, "completed")]
        assert record.direction == "outbound-api" and int(record.duration) >= 2

        # Record=true: the whole call, both sides mixed: our 440 Hz and the carrier's 1 kHz.
        assert recording.source == "OutboundAPI" and recording.status == "completed"
        [completed] = [s for s in statuses if s.field("CallStatus") == "completed"]
        assert completed.field("RecordingSid") == recording.sid
        with wave.open(io.BytesIO(wav)) as recorded:
            mixed = np.frombuffer(recorded.readframes(recorded.getnframes()), dtype="<i2")
        assert len(mixed) >= 2 * 8000
        assert tone_purity_db(mixed, PLAY_HZ) > -10 and tone_purity_db(mixed, CARRIER_TONE_HZ) > -10

        # The carrier heard the <Play>: 440 Hz at a sane level.
        audio = ulaw_decode(b"".join(p.payload for p in sink.packets() if p.payload_type == PCMU))
        assert len(audio) >= 8000, len(audio)
        middle = audio[4000:12000]
        assert abs(dominant_frequency(middle) - PLAY_HZ) < 10
        assert -20 < level_dbfs(middle) < -3


CALLER_TONE_HZ = 440.0
DIAL_NUMBER = "+15005550010"


def tone_dir(path: Path, hz: float) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    (path / "tone.ulaw").write_bytes(ulaw_encode(sine(hz, 1.0, amplitude=0.3)))
    return path


def heard(sink: RtpSink, hz: float) -> bool:
    audio = ulaw_decode(b"".join(p.payload for p in sink.packets() if p.payload_type == PCMU))
    windows = [audio[i : i + 4000] for i in range(0, len(audio) - 4000, 4000)]
    return any(abs(dominant_frequency(w) - hz) < 10 and -25 < level_dbfs(w) < -3 for w in windows)


def test_dial_two_numbers_first_answer_wins_and_the_other_is_cancelled(tmp_path, app):
    require(find_sipp() is not None, "sipp is not installed (Debian package sip-tester)")
    port_a, port_b = free_port(), free_port()
    with RtpSink() as callee_sink, RtpSink() as caller_sink:
        answers = start_carrier(tmp_path / "a", port_a, callee_sink.port, "uas_answer_bye.xml")
        rings = start_carrier(tmp_path / "b", port_b, 9, "uas_ring_cancel.xml")
        server = CallswitchServer.start(
            tmp_path / "server",
            extra_args=(
                "--trunk",
                f"a=sip:127.0.0.1:{port_a};prefix=+1555010",
                "--trunk",
                f"b=sip:127.0.0.1:{port_b};prefix=+1555020",
            ),
        )
        try:
            sid, token = credentials(server)
            client = Client(
                sid, token, http_client=LocalHttpClient(f"http://127.0.0.1:{server.http_port}")
            )
            app.routes["/voice"] = lambda r: twiml(
                '<Dial action="/after" timeout="15">'
                "<Number>+15550101111</Number><Number>+15550202222</Number></Dial>"
            )
            app.routes["/after"] = lambda r: twiml("<Hangup/>")
            client.incoming_phone_numbers.create(
                phone_number=DIAL_NUMBER, voice_url=app.url("/voice")
            )
            caller = run_sipp(
                "uac_tone_wait_bye.xml",
                server.sip_target,
                workdir=tmp_path / "caller",
                cwd=tone_dir(tmp_path / "caller-cwd", CALLER_TONE_HZ),
                sipp=find_sipp(),
                service=DIAL_NUMBER.lstrip("+"),
                keys={"sink_port": caller_sink.port},
                calls=1,
                timeout=30,
                trace_msg=True,
            )
            answered = answers.wait(10)
            cancelled = rings.wait(10)
            assert caller.ok(1), f"{caller.describe()}\n{server.tail()}"
            assert answered.ok(1), f"{answered.describe()}\n{server.tail()}"
            assert cancelled.ok(1), f"{cancelled.describe()}\n{server.tail()}"
            [after] = app.wait_for("/after")
            children = client.calls.list(parent_call_sid=after.field("CallSid"))
        finally:
            problems = server.stop()
        assert not problems, problems

        assert after.field("DialCallStatus") == "completed"
        assert after.field("DialBridged") == "true"
        assert 2 <= int(after.field("DialCallDuration")) <= 5
        by_to = {c.to: c for c in children}
        assert by_to["+15550101111"].sid == after.field("DialCallSid")
        assert by_to["+15550101111"].direction == "outbound-dial"
        assert by_to["+15550101111"].status == "completed"
        assert by_to["+15550202222"].status == "canceled"  # the loser is cancelled, as on Twilio
        # Audio both ways through the bridge.
        assert heard(caller_sink, CARRIER_TONE_HZ), "the caller did not hear the callee's tone"
        assert heard(callee_sink, CALLER_TONE_HZ), "the callee did not hear the caller's tone"
