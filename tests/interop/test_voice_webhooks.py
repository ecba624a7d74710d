"""A number with a TwiML app, called by SIPp and managed with the official `twilio` library.

The application is a plain http.server in the test; callswitch fetches its
TwiML, speaks, plays a WAV, gathers an RFC 4733 digit sent by SIPp, posts it
to the action URL and hangs up. Every request it makes must pass the library's
`RequestValidator`, and the Calls resource must show the call completed.
"""

from __future__ import annotations

import io
import time
import wave

import numpy as np
import pytest
from twilio.base.exceptions import TwilioRestException
from twilio.http.http_client import TwilioHttpClient
from twilio.request_validator import RequestValidator
from twilio.rest import Client
from twilio.twiml.voice_response import Gather, VoiceResponse

from .audio import dominant_frequency, level_dbfs, sine, tone_purity_db, ulaw_decode
from .conftest import sipp_failure, wait_status
from .media_checks import PCMU
from .sipp import SippBackground
from .webhook_app import WebhookApp, twiml

NUMBER = "+15005550006"  # each test has its own number: the server is shared by the module
FALLBACK_NUMBER = "+15005550007"
BAD_TWIML_NUMBER = "+15005550008"
PLAY_HZ = 440.0
PAUSE_MS = 5000  # SIPp listens this long after the answer before it sends the digit


class LocalHttpClient(TwilioHttpClient):
    """Sends the library's requests to the local server (reference §11)."""

    def __init__(self, base: str) -> None:
        super().__init__()
        self.base = base

    def request(self, method, url, *args, **kwargs):
        url = url.replace("https://api.twilio.com", self.base)
        return super().request(method, url, *args, **kwargs)


def credentials(server) -> tuple[str, str]:
    [created] = server.events("account.created")
    return created["account_sid"], created["auth_token"]


def rest_client(server, sid: str | None = None, token: str | None = None) -> Client:
    """The official library aimed at ``server``, with the account it created (or, for
    a server restarted on the same store, the ``sid`` and ``token`` known from before)."""
    if sid is None or token is None:
        sid, token = credentials(server)
    cert = getattr(server, "https_cert", None)  # a node serving HTTPS (--http-tls-cert)
    scheme = "https" if cert is not None else "http"
    base = f"{scheme}://127.0.0.1:{server.http_port}"
    client = Client(sid, token, http_client=LocalHttpClient(base))
    if cert is not None:
        assert client.http_client.session is not None
        client.http_client.session.trust_env = False  # REQUESTS_CA_BUNDLE would win over verify
        client.http_client.session.verify = str(cert)
    return client


def wav_bytes(samples: np.ndarray, rate: int = 8000) -> bytes:
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(rate)
        out.writeframes(samples.astype("<i2").tobytes())
    return buffer.getvalue()


@pytest.fixture
def app():
    with WebhookApp() as application:
        yield application


@pytest.fixture
def client(server) -> Client:
    sid, token = credentials(server)
    return Client(sid, token, http_client=LocalHttpClient(f"http://127.0.0.1:{server.http_port}"))


def windows(packets, seconds: float = 0.5):
    """Decoded audio in consecutive windows of the received stream."""
    audio = ulaw_decode(b"".join(p.payload for p in packets))
    step = int(8000 * seconds)
    return [audio[i : i + step] for i in range(0, len(audio) - step + 1, step)]


@pytest.mark.usefixtures("raw_sockets")
def test_say_play_gather_against_a_twiml_app(server, sipp, rtp_sink, app, client):
    response = VoiceResponse()
    response.say("Welcome to the test.")
    response.play(app.url("/tone.wav"))
    gather = Gather(num_digits=1, action="/gathered", timeout=8)
    response.append(gather)
    response.say("No digits received.")
    app.routes["/voice"] = lambda r: (200, "text/xml", str(response).encode())
    tone_wav = wav_bytes(sine(PLAY_HZ, 1.5, amplitude=0.4))
    app.routes["/tone.wav"] = lambda r: (200, "audio/wav", tone_wav)
    app.routes["/gathered"] = lambda r: twiml("<Hangup/>")
    app.routes["/status"] = lambda r: (204, "text/plain", b"")

    number = client.incoming_phone_numbers.create(
        phone_number=NUMBER, voice_url=app.url("/voice"), status_callback=app.url("/status")
    )
    assert number.sid.startswith("PN") and number.phone_number == NUMBER

    result = sipp(
        "uac_dtmf_server_bye.xml",
        service=NUMBER.lstrip("+"),
        keys={"sink_port": rtp_sink.port},
        pause_ms=PAUSE_MS,
        calls=1,
        timeout=30,
    )
    assert result.ok(1), sipp_failure(result, server, "the call did not end with our BYE")

    # The application saw the call's webhooks, each signed as Twilio signs them.
    _, token = credentials(server)
    validator = RequestValidator(token)
    [voice] = app.to("/voice")
    assert voice.field("CallStatus") == "ringing" and voice.field("Direction") == "inbound"
    assert voice.field("To") == NUMBER and voice.field("ApiVersion") == "2010-04-01"
    call_sid = voice.field("CallSid")
    [gathered] = app.wait_for("/gathered")
    assert gathered.field("Digits") == "1", gathered.form
    assert gathered.field("CallSid") == call_sid
    statuses = app.wait_for("/status", 4)
    for request in [voice, gathered, *statuses]:
        assert validator.validate(
            request.url, request.form_dict, request.headers["X-Twilio-Signature"]
        ), request.path
    # Delivery order is not guaranteed (as on Twilio): SequenceNumber orders them.
    events = sorted((int(s.field("SequenceNumber")), s.field("CallStatus")) for s in statuses)
    assert events == [(0, "initiated"), (1, "ringing"), (2, "in-progress"), (3, "completed")]

    # What SIPp heard: speech first, then the 440 Hz WAV.
    packets = [p for p in rtp_sink.packets() if p.payload_type == PCMU]
    chunks = windows(packets)
    assert level_dbfs(chunks[0]) > -40, "no speech energy at the start"
    assert tone_purity_db(chunks[0], PLAY_HZ) < 0, "the start is the tone, not speech"
    tone_at = [
        i
        for i, c in enumerate(chunks)
        if abs(dominant_frequency(c) - PLAY_HZ) < 10
        and tone_purity_db(c, PLAY_HZ) > 10
        and level_dbfs(c) > -20
    ]
    assert tone_at and tone_at[0] >= 1, f"no 440 Hz after the speech: {len(chunks)} windows"

    # The Calls resource shows it completed, with the duration the media lasted.
    wait_status(client, call_sid, {"completed"})
    call = client.calls(call_sid).fetch()
    # Answered when the speech began; hung up right after the action's <Hangup/>.
    truth = gathered.at - packets[0].arrival
    assert call.status == "completed" and call.direction == "inbound"
    assert abs(int(call.duration) - truth) <= 1.0, (call.duration, truth)
    [completed] = [s for s in statuses if s.field("CallStatus") == "completed"]
    assert int(completed.field("CallDuration")) == int(call.duration)
    assert call_sid in [c.sid for c in client.calls.list(status="completed")]


def test_unknown_number_gets_404_and_no_webhook(server, sipp, app):
    result = sipp("uac_404.xml", service="15005550099", keys={"sink_port": 9}, calls=1, timeout=15)
    assert result.ok(1), sipp_failure(result, server, "expected 404 for a number nobody owns")
    assert app.requests == []


def test_unreachable_voice_url_uses_the_fallback(server, sipp, rtp_sink, app, client):
    app.routes["/fallback"] = lambda r: twiml("<Say>Fallback speaking.</Say><Hangup/>")
    client.incoming_phone_numbers.create(
        phone_number=FALLBACK_NUMBER,
        voice_url="http://127.0.0.1:9/nothing-listens-here",
        voice_fallback_url=app.url("/fallback"),
    )
    started = time.monotonic()
    result = sipp(
        "uac_wait_bye.xml",
        service=FALLBACK_NUMBER.lstrip("+"),
        keys={"sink_port": rtp_sink.port},
        calls=1,
        timeout=20,
    )
    assert result.ok(1), sipp_failure(result, server, "the fallback TwiML did not run")
    [fallback] = app.wait_for("/fallback")
    assert fallback.field("ErrorCode") == "11200"
    assert time.monotonic() - started < 10
    speech = windows([p for p in rtp_sink.packets() if p.payload_type == PCMU])
    assert speech and max(level_dbfs(c) for c in speech) > -40


def test_malformed_twiml_is_an_application_error(server, sipp, rtp_sink, app, client):
    app.routes["/voice"] = lambda r: (200, "text/xml", b"<Response><Say>unclosed</Response>")
    client.incoming_phone_numbers.create(phone_number=BAD_TWIML_NUMBER, voice_url=app.url("/voice"))
    result = sipp(
        "uac_wait_bye.xml",
        service=BAD_TWIML_NUMBER.lstrip("+"),
        keys={"sink_port": rtp_sink.port},
        calls=1,
        timeout=20,
    )
    assert result.ok(1), sipp_failure(result, server, "the call did not end after the error")
    assert server.wait_events("twiml.application_error")
    [voice] = app.to("/voice")
    assert wait_status(client, voice.field("CallSid"), {"completed"}) == "completed"


LIVE_NUMBER = "+15005550009"


@pytest.mark.parametrize("how", ["twiml", "url", "completed"])
def test_rest_update_redirects_or_hangs_up_a_live_call(
    server, sipp_bin, rtp_sink, app, client, tmp_path, how
):
    """While a call waits in a long <Pause>, the library redirects it or hangs it up."""
    number = f"{LIVE_NUMBER}{len(how)}"  # one number per case: the server is shared
    app.routes["/hold"] = lambda r: twiml('<Say>Please hold.</Say><Pause length="30"/>')
    app.routes["/next"] = lambda r: twiml("<Say>Redirected.</Say><Hangup/>")
    client.incoming_phone_numbers.create(phone_number=number, voice_url=app.url("/hold"))
    caller = SippBackground(
        "uac_wait_bye.xml",
        server.sip_target,
        workdir=tmp_path / "sipp",
        sipp=sipp_bin,
        service=number.lstrip("+"),
        keys={"sink_port": rtp_sink.port},
        calls=1,
        timeout=40,
    )
    try:
        [hold] = app.wait_for("/hold")
        sid = hold.field("CallSid")
        deadline = time.monotonic() + 5
        while client.calls(sid).fetch().status != "in-progress" and time.monotonic() < deadline:
            time.sleep(0.05)
        assert client.calls(sid).fetch().status == "in-progress"
        assert sid in [c.sid for c in client.calls.list(status="in-progress")]
        started = time.monotonic()
        if how == "twiml":
            client.calls(sid).update(twiml="<Response><Say>Redirected.</Say><Hangup/></Response>")
        elif how == "url":
            client.calls(sid).update(url=app.url("/next"), method="POST")
        else:
            client.calls(sid).update(status="completed")
        result = caller.wait(15)
    finally:
        caller.stop()
    assert result.ok(1), sipp_failure(result, server, "the caller got no BYE after the update")
    assert time.monotonic() - started < 8  # not the 30 s pause
    if how == "url":
        assert app.wait_for("/next")[0].field("CallSid") == sid
    assert wait_status(client, sid, {"completed"}) == "completed"
    # Once the call is over, it cannot be redirected: Twilio's 21220.
    with pytest.raises(TwilioRestException) as error:
        client.calls(sid).update(url=app.url("/next"))
    assert error.value.code == 21220 and error.value.status == 400
