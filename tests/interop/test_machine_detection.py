"""Answering-machine detection on REST calls, with the official `twilio` library.

Each call goes to one of our own numbers (it loops back in as an inbound call),
whose TwiML plays the part of who answers: eSpeak NG reading a voicemail
greeting, a person's "Hello?" and a wait, or a fax machine's calling tone.
The calling side's TwiML request must carry Twilio's ``AnsweredBy``.
"""

from __future__ import annotations

import shutil
import time

import numpy as np
import pytest

from .conftest import require
from .harness import CallswitchServer
from .test_call_logs import notifications_of
from .test_voice_webhooks import rest_client, wav_bytes
from .webhook_app import WebhookApp, twiml

GREETING = (
    "Hi, you have reached the voicemail of Jordan Smith. I am not available to take "
    "your call right now. Please leave your name, number and a short message after the tone."
)
CALLER = "+15550007000"
ANSWERERS = {  # our number → (the TwiML of who answers it, AnsweredBy expected)
    "+15550007001": (f"<Say>{GREETING}</Say><Pause length='20'/>", "machine_start"),
    "+15550007002": ("<Pause length='1'/><Say>Hello?</Say><Pause length='20'/>", "human"),
    "+15550007003": ("<Play loop='4'>{cng}</Play>", "fax"),
}


def cng(rate: int = 8000) -> np.ndarray:
    """A fax machine's calling tone: 1100 Hz for half a second, three seconds off."""
    t = np.arange(rate // 2) / rate
    burst = 0.3 * 32767 * np.sin(2 * np.pi * 1100 * t)
    return np.concatenate([burst, np.zeros(3 * rate)]).astype(np.int16)


@pytest.fixture
def app():
    with WebhookApp() as application:
        yield application


def test_answered_by_reaches_the_twiml_and_the_async_callback(tmp_path, app):
    require_espeak()
    server = CallswitchServer.start(tmp_path / "server")
    try:
        client = rest_client(server)
        app.routes["/cng.wav"] = lambda r: (200, "audio/wav", wav_bytes(cng()))
        for number, (body, _) in ANSWERERS.items():
            path = f"/answerer{number[-1]}"
            document = body.format(cng=app.url("/cng.wav"))
            app.routes[path] = lambda r, document=document: twiml(document)
            client.incoming_phone_numbers.create(phone_number=number, voice_url=app.url(path))
        app.routes["/caller"] = lambda r: twiml("<Pause length='1'/><Hangup/>")
        placed = {
            number: client.calls.create(
                to=number, from_=CALLER, url=app.url("/caller"), machine_detection="Enable"
            ).sid
            for number in ANSWERERS
        }
        asks = app.wait_for("/caller", count=len(ANSWERERS), timeout=60)
        answered_by = {r.field("CallSid"): r.field("AnsweredBy") for r in asks}
        durations = {r.field("CallSid"): r.field("MachineDetectionDuration") for r in asks}
        for number, (_, expected) in ANSWERERS.items():
            sid = placed[number]
            assert answered_by.get(sid) == expected, (number, answered_by)
            assert 0 < int(durations[sid]) < 30_000
        human = placed["+15550007002"]
        assert int(durations[human]) <= 4_000  # "Hello?" then 1.2 s of silence
        assert client.calls(human).fetch().answered_by == "human"

        # AsyncAmd: the TwiML runs at once, the decision goes to the callback.
        app.routes["/async"] = lambda r: twiml("<Pause length='30'/><Hangup/>")
        app.routes["/amd"] = lambda r: (204, "text/plain", b"")
        sid = client.calls.create(
            to="+15550007001",
            from_=CALLER,
            url=app.url("/async"),
            machine_detection="DetectMessageEnd",
            async_amd="true",
            async_amd_status_callback=app.url("/amd"),
        ).sid
        [first] = app.wait_for("/async", timeout=30)
        assert first.field("CallSid") == sid and first.field("AnsweredBy") is None
        [decided] = app.wait_for("/amd", timeout=60)
        assert decided.field("CallSid") == sid
        assert decided.field("AnsweredBy") == "machine_end_silence"
        assert decided.field("AccountSid") and int(decided.field("MachineDetectionDuration")) > 0
        assert decided.headers.get("X-Twilio-Signature")
    finally:
        server.stop()


def require_espeak() -> None:
    require(shutil.which("espeak-ng") is not None, "espeak-ng is not installed")


def test_participants_detect_the_asynchronous_way_and_warn_without_a_callback(tmp_path, app):
    """``Participants.create(machine_detection=…)``: the participant joins at once; the
    decision goes to ``AmdStatusCallback``, or, without one, only to the call's
    ``answered_by`` with Twilio's warning 21262 among the call's notifications."""
    require_espeak()
    server = CallswitchServer.start(tmp_path / "server")
    try:
        client = rest_client(server)
        machine, person = "+15550007101", "+15550007102"
        for number, body in (
            (machine, f"<Say>{GREETING}</Say><Pause length='20'/>"),
            (person, "<Pause length='1'/><Say>Hello?</Say><Pause length='20'/>"),
        ):
            path = f"/answerer{number[-1]}"
            app.routes[path] = lambda r, body=body: twiml(body)
            client.incoming_phone_numbers.create(phone_number=number, voice_url=app.url(path))
        app.routes["/amd"] = lambda r: (204, "text/plain", b"")
        room = client.conferences("amd-room")
        voicemail = room.participants.create(
            from_=CALLER,
            to=machine,
            beep="false",
            machine_detection="Enable",
            amd_status_callback=app.url("/amd"),
        )
        human = room.participants.create(
            from_=CALLER, to=person, beep="false", machine_detection="Enable"
        )
        [decided] = app.wait_for("/amd", timeout=60)
        assert decided.field("CallSid") == voicemail.call_sid
        assert decided.field("AnsweredBy") == "machine_start"
        assert int(decided.field("MachineDetectionDuration")) > 0
        assert decided.headers.get("X-Twilio-Signature")
        # Joined at once, as <Number machineDetection> is bridged: not held for the decision.
        joined = client.conferences(voicemail.conference_sid).participants(voicemail.call_sid)
        assert joined.fetch().status == "connected"
        deadline = time.monotonic() + 30
        while client.calls(human.call_sid).fetch().answered_by is None:
            assert time.monotonic() < deadline, server.tail()
            time.sleep(0.1)
        assert client.calls(human.call_sid).fetch().answered_by == "human"
        assert client.calls(voicemail.call_sid).fetch().answered_by == "machine_start"
        warned = [n.error_code for n in notifications_of(client, human.call_sid)]
        assert "21262" in warned, warned
        assert "21262" not in [
            n.error_code for n in client.calls(voicemail.call_sid).notifications.list()
        ]
    finally:
        server.stop()
