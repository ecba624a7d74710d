"""`<Record>` against a SIPp caller that streams 1 kHz: the Recordings resource
lists the recording and its WAV holds that tone for the length recorded."""

from __future__ import annotations

import io
import wave

import httpx
import numpy as np
import pytest
from twilio.rest import Client

from .audio import dominant_frequency, level_dbfs
from .conftest import sipp_failure
from .test_outbound_calls import tone_dir
from .test_voice_webhooks import LocalHttpClient, credentials
from .webhook_app import WebhookApp, twiml

NUMBER = "+15005550030"
TONE_HZ = 1000.0


@pytest.fixture
def app():
    with WebhookApp() as application:
        yield application


def test_record_verb_keeps_the_callers_audio(server, sipp, rtp_sink, app, tmp_path):
    sid, token = credentials(server)
    base = f"http://127.0.0.1:{server.http_port}"
    client = Client(sid, token, http_client=LocalHttpClient(base))
    app.routes["/voice"] = lambda r: twiml(
        '<Record maxLength="3" timeout="0" playBeep="false" action="/recorded"/>'
    )
    app.routes["/recorded"] = lambda r: twiml("<Hangup/>")
    client.incoming_phone_numbers.create(phone_number=NUMBER, voice_url=app.url("/voice"))
    result = sipp(
        "uac_tone_wait_bye.xml",
        service=NUMBER.lstrip("+"),
        keys={"sink_port": rtp_sink.port},
        cwd=tone_dir(tmp_path / "tone", TONE_HZ),
        calls=1,
        timeout=20,
    )
    assert result.ok(1), sipp_failure(result, server, "the call did not end after <Record>")
    [recorded] = app.wait_for("/recorded")
    call_sid = recorded.field("CallSid")
    assert recorded.field("RecordingSid").startswith("RE")
    assert recorded.field("Digits") == ""
    assert 2 <= int(recorded.field("RecordingDuration")) <= 3

    [listed] = client.calls(call_sid).recordings.list()
    assert listed.sid == recorded.field("RecordingSid")
    recording = client.recordings(listed.sid).fetch()
    assert recording.status == "completed" and recording.source == "RecordVerb"
    url = recorded.field("RecordingUrl")
    assert url.endswith(listed.sid)
    wav_bytes = httpx.get(url + ".wav", timeout=10).content
    with wave.open(io.BytesIO(wav_bytes)) as wav:
        assert wav.getframerate() == 8000 and wav.getnchannels() == 1
        audio = np.frombuffer(wav.readframes(wav.getnframes()), dtype="<i2")
    seconds = len(audio) / 8000
    assert 2.7 <= seconds <= 3.2, seconds
    steady = audio[2000:-2000]
    assert abs(dominant_frequency(steady) - TONE_HZ) < 10
    assert -20 < level_dbfs(steady) < -5
    mp3 = httpx.get(url + ".mp3", timeout=20)
    assert mp3.status_code == 200 and mp3.headers["content-type"] == "audio/mpeg"
    assert len(mp3.content) > 1000
