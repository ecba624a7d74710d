"""Real-time transcription started and stopped through a call's Transcriptions
resource, with the official `twilio` library: SIPp speaks eSpeak NG's words into
the call and the status callback receives them (the same events as
``<Start><Transcription>``)."""

from __future__ import annotations

import json
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
from twilio.base.exceptions import TwilioRestException

from .conftest import sipp_failure
from .test_speech_gather import espeak, speech_pcap
from .test_voice_webhooks import rest_client
from .webhook_app import WebhookApp, twiml


@pytest.fixture
def app():
    with WebhookApp() as application:
        yield application


@pytest.mark.usefixtures("raw_sockets")
def test_rest_transcription_hears_the_caller_and_stops_by_name(
    sipp, server, rtp_sink, app, tmp_path
):
    client = rest_client(server)
    app.routes["/voice"] = lambda r: twiml("<Say>Go ahead.</Say><Pause length='14'/><Hangup/>")
    app.routes["/rtt"] = lambda r: (204, "text/plain", b"")
    number = "+15005550120"
    client.incoming_phone_numbers.create(phone_number=number, voice_url=app.url("/voice"))
    workdir = tmp_path / "caller"
    workdir.mkdir()
    speech_pcap(workdir / "caller.pcap", espeak("hello"), lead_s=0.5, tail_s=3.0)
    with ThreadPoolExecutor(1) as pool:
        caller = pool.submit(
            sipp,
            "uac_speech_pcap.xml",
            service=number.lstrip("+"),
            keys={"sink_port": rtp_sink.port},
            pause_ms=3000,  # the REST request starts the transcription meanwhile
            calls=1,
            timeout=60,
            cwd=workdir,
        )
        [voice] = app.wait_for("/voice", timeout=20)
        call_sid = voice.field("CallSid")
        answered(client, call_sid)  # an inbound call is answered once its TwiML runs
        started = client.calls(call_sid).transcriptions.create(
            name="notes",
            track="inbound_track",
            status_callback_url=app.url("/rtt"),
            inbound_track_label="caller",
            language_code="en-US",
        )
        assert started.sid.startswith("GT") and started.status == "in-progress"
        assert started.name == "notes" and started.call_sid == call_sid
        events = app.wait_for("/rtt", count=2, timeout=40)
        kinds = [e.field("TranscriptionEvent") for e in events]
        assert kinds[:2] == ["transcription-started", "transcription-content"], kinds
        heard = events[1]
        data = json.loads(heard.field("TranscriptionData"))
        assert "hello" in data["transcript"].lower(), data
        assert 0.0 <= data["confidence"] <= 1.0
        assert heard.field("TranscriptionSid") == started.sid
        assert heard.field("TranscriptionName") == "notes"
        assert (heard.field("Track"), heard.field("TrackLabel")) == ("inbound_track", "caller")
        assert heard.headers.get("X-Twilio-Signature")

        stopped = client.calls(call_sid).transcriptions("notes").update(status="stopped")
        assert stopped.sid == started.sid and stopped.status == "stopped"
        events = app.wait_for("/rtt", count=3, timeout=10)
        assert events[-1].field("TranscriptionEvent") == "transcription-stopped"
        with pytest.raises(TwilioRestException) as unknown:
            client.calls(call_sid).transcriptions("notes").update(status="stopped")
        assert unknown.value.status == 404 and unknown.value.code == 20404
        result = caller.result(timeout=90)
    assert result.ok(1), sipp_failure(result, server, "the caller was not hung up on")
    with pytest.raises(TwilioRestException) as ended:
        client.calls(call_sid).transcriptions.create(name="late")
    assert ended.value.status == 400 and ended.value.code == 21220


def answered(client, call_sid: str, timeout: float = 10.0) -> None:
    """Wait (bounded) until the REST API shows the call in progress."""
    deadline = time.monotonic() + timeout
    while client.calls(call_sid).fetch().status != "in-progress":
        assert time.monotonic() < deadline, "the call was not answered"
        time.sleep(0.05)
