"""``<Dial>`` nouns' own attributes against SIPp callees, driven by the official library.

A SIPp caller (440 Hz) calls one of our numbers whose TwiML ``<Dial>``s SIPp callees
through trunks: a ``<Number url>`` whisper is heard by the callee (its 700 Hz tone)
before the bridge brings the caller's tone, and never by the caller; a whisper that
answers ``<Hangup/>`` refuses the call (``DialCallStatus=no-answer``, no bridge) while
the caller hears the ``ringTone="uk"`` ringback;
``sequential`` rings the second number only once the first was busy, and each
``<Number>`` sends only the status callbacks its ``statusCallbackEvent`` asked for;
``<Sip username password>`` answers a callee's digest challenge; ``referUrl`` decides
what a callee's REFER does.
"""

from __future__ import annotations

import numpy as np
import pytest
from twilio.rest import Client

from .audio import dominant_frequency, level_dbfs, sine, ulaw_decode
from .conftest import require
from .harness import CallswitchServer, free_port
from .media_checks import PCMU
from .rtp import RtpSink
from .sipp import find_sipp, run_sipp
from .test_outbound_calls import CARRIER_TONE_HZ, heard, start_carrier, tone_dir
from .test_voice_webhooks import LocalHttpClient, credentials, wav_bytes
from .webhook_app import WebhookApp, twiml

CALLER_TONE_HZ = 440.0
WHISPER_HZ = 700.0
DIAL_NUMBER = "+15005550010"


@pytest.fixture
def app():
    with WebhookApp() as application:
        yield application


def trunks(port_a: int, port_b: int) -> tuple[str, ...]:
    return (
        "--trunk",
        f"a=sip:127.0.0.1:{port_a};prefix=+1555010",
        "--trunk",
        f"b=sip:127.0.0.1:{port_b};prefix=+1555020",
    )


def client_of(server) -> Client:
    sid, token = credentials(server)
    return Client(sid, token, http_client=LocalHttpClient(f"http://127.0.0.1:{server.http_port}"))


def call_in(tmp_path, server, sink: RtpSink):
    """The SIPp caller: calls our number with a 440 Hz tone, waits for our BYE."""
    return run_sipp(
        "uac_tone_wait_bye.xml",
        server.sip_target,
        workdir=tmp_path / "caller",
        cwd=tone_dir(tmp_path / "caller-cwd", CALLER_TONE_HZ),
        sipp=find_sipp(),
        service=DIAL_NUMBER.lstrip("+"),
        keys={"sink_port": sink.port},
        calls=1,
        timeout=40,
        trace_msg=True,
    )


def tone_windows(sink: RtpSink) -> list[float]:
    """The dominant frequency of each audible quarter second that reached ``sink``."""
    audio = ulaw_decode(b"".join(p.payload for p in sink.packets() if p.payload_type == PCMU))
    windows = [audio[i : i + 2000] for i in range(0, len(audio) - 2000, 2000)]
    return [dominant_frequency(w) if level_dbfs(w) > -30 else 0.0 for w in windows]


def first(windows: list[float], hz: float) -> int | None:
    return next((i for i, f in enumerate(windows) if abs(f - hz) < 10), None)


def test_a_whisper_plays_to_the_callee_before_the_bridge_and_not_to_the_caller(tmp_path, app):
    require(find_sipp() is not None, "sipp is not installed (Debian package sip-tester)")
    port_a = free_port()
    with RtpSink() as callee_sink, RtpSink() as caller_sink:
        callee = start_carrier(tmp_path / "a", port_a, callee_sink.port, "uas_answer_bye.xml")
        server = CallswitchServer.start(tmp_path / "server", extra_args=trunks(port_a, 9))
        try:
            client = client_of(server)
            whisper_wav = wav_bytes(sine(WHISPER_HZ, 1.0, amplitude=0.4))
            app.routes["/whisper.wav"] = lambda r: (200, "audio/wav", whisper_wav)
            app.routes["/voice"] = lambda r: twiml(
                '<Dial action="/after" timeout="15">'
                '<Number url="/whisper">+15550101111</Number></Dial>'
            )
            app.routes["/whisper"] = lambda r: twiml(f"<Play>{app.url('/whisper.wav')}</Play>")
            app.routes["/after"] = lambda r: twiml("<Hangup/>")
            client.incoming_phone_numbers.create(
                phone_number=DIAL_NUMBER, voice_url=app.url("/voice")
            )
            caller = call_in(tmp_path, server, caller_sink)
            answered = callee.wait(15)
            assert caller.ok(1), f"{caller.describe()}\n{server.tail()}"
            assert answered.ok(1), f"{answered.describe()}\n{server.tail()}"
            [whispered] = app.wait_for("/whisper")
            [after] = app.wait_for("/after")
        finally:
            problems = server.stop()
        assert not problems, problems

        # The whisper is the child call's request.
        assert whispered.field("CallSid") == after.field("DialCallSid")
        assert whispered.field("ParentCallSid") == after.field("CallSid")
        assert whispered.field("Direction") == "outbound-dial"
        assert whispered.field("CallStatus") == "in-progress"
        assert after.field("DialCallStatus") == "completed"
        assert after.field("DialBridged") == "true"
        # The callee heard the whisper, then (bridged) the caller; the caller never
        # heard the whisper, and heard the callee once bridged.
        windows = tone_windows(callee_sink)
        whisper_at, caller_at = first(windows, WHISPER_HZ), first(windows, CALLER_TONE_HZ)
        assert whisper_at is not None, windows
        assert caller_at is not None and caller_at > whisper_at, windows
        assert not heard(caller_sink, WHISPER_HZ), "the caller heard the whisper"
        assert heard(caller_sink, CARRIER_TONE_HZ), "the caller did not hear the callee"


def test_a_whisper_hangup_refuses_the_call_and_the_dial_goes_on(tmp_path, app):
    require(find_sipp() is not None, "sipp is not installed (Debian package sip-tester)")
    port_a = free_port()
    with RtpSink() as callee_sink, RtpSink() as caller_sink:
        callee = start_carrier(tmp_path / "a", port_a, callee_sink.port, "uas_answer_wait_bye.xml")
        server = CallswitchServer.start(tmp_path / "server", extra_args=trunks(port_a, 9))
        try:
            client = client_of(server)
            app.routes["/voice"] = lambda r: twiml(
                '<Dial action="/after" timeout="15" ringTone="uk">'
                '<Number url="/screen">+15550101111</Number></Dial>'
            )
            app.routes["/screen"] = lambda r: twiml("<Hangup/>")
            app.routes["/after"] = lambda r: twiml("<Hangup/>")
            client.incoming_phone_numbers.create(
                phone_number=DIAL_NUMBER, voice_url=app.url("/voice")
            )
            caller = call_in(tmp_path, server, caller_sink)
            refused = callee.wait(15)
            assert caller.ok(1), f"{caller.describe()}\n{server.tail()}"
            assert refused.ok(1), f"{refused.describe()}\n{server.tail()}"  # got our BYE
            [after] = app.wait_for("/after")
            child = client.calls(after.field("DialCallSid")).fetch()
        finally:
            problems = server.stop()
        assert not problems, problems

        assert after.field("DialCallStatus") == "no-answer"
        assert after.field("DialBridged") == "false"
        assert child.parent_call_sid == after.field("CallSid")
        assert child.status == "completed"  # the callee did answer, and was hung up
        assert not heard(caller_sink, CARRIER_TONE_HZ), "the refused callee was bridged"
        # While the callee rang, the caller heard the British ringback (400 + 450 Hz).
        windows = tone_windows(caller_sink)
        assert any(first([f], hz) == 0 for f in windows for hz in (400.0, 450.0)), windows
        assert first(windows, 480.0) is None, windows  # not the US one


def test_sequential_rings_the_second_after_the_first_with_only_the_callbacks_asked(tmp_path, app):
    require(find_sipp() is not None, "sipp is not installed (Debian package sip-tester)")
    port_a, port_b = free_port(), free_port()
    with RtpSink() as callee_sink, RtpSink() as caller_sink:
        busy = start_carrier(tmp_path / "a", port_a, 9, "uas_ring_busy.xml")
        answers = start_carrier(tmp_path / "b", port_b, callee_sink.port, "uas_answer_bye.xml")
        server = CallswitchServer.start(tmp_path / "server", extra_args=trunks(port_a, port_b))
        try:
            client = client_of(server)
            app.routes["/voice"] = lambda r: twiml(
                '<Dial action="/after" timeout="15" sequential="true">'
                f'<Number statusCallback="{app.url("/first")}" statusCallbackEvent="initiated">'
                "+15550101111</Number>"
                f'<Number statusCallback="{app.url("/second")}" '
                'statusCallbackEvent="initiated ringing answered">+15550202222</Number>'
                "</Dial>"
            )
            app.routes["/after"] = lambda r: twiml("<Hangup/>")
            for path in ("/first", "/second"):
                app.routes[path] = lambda r: (204, "text/plain", b"")
            client.incoming_phone_numbers.create(
                phone_number=DIAL_NUMBER, voice_url=app.url("/voice")
            )
            caller = call_in(tmp_path, server, caller_sink)
            was_busy = busy.wait(15)
            answered = answers.wait(15)
            assert caller.ok(1), f"{caller.describe()}\n{server.tail()}"
            assert was_busy.ok(1), f"{was_busy.describe()}\n{server.tail()}"
            assert answered.ok(1), f"{answered.describe()}\n{server.tail()}"
            [after] = app.wait_for("/after")
            second = app.wait_for("/second", 3)
            [first_initiated] = app.wait_for("/first")
        finally:
            problems = server.stop()
        assert not problems, problems

        assert after.field("DialCallStatus") == "completed"
        assert after.field("DialBridged") == "true"
        # Only the events asked for: the first number's completed (busy) was not.
        assert first_initiated.field("CallStatus") == "initiated"
        assert len(app.to("/first")) == 1
        assert [s.field("CallStatus") for s in second] == ["initiated", "ringing", "in-progress"]
        assert len(app.to("/second")) == 3  # no completed callback either
        assert {s.field("CallSid") for s in second} == {after.field("DialCallSid")}
        # The second was placed only once the first had rung its 2 s and was busy.
        assert second[0].at - first_initiated.at >= 1.5
        assert heard(caller_sink, CARRIER_TONE_HZ), "the caller did not hear the second"


def test_sip_username_and_password_answer_the_callee_digest_challenge(tmp_path, app):
    require(find_sipp() is not None, "sipp is not installed (Debian package sip-tester)")
    port = free_port()
    with RtpSink() as callee_sink, RtpSink() as caller_sink:
        callee = start_carrier(tmp_path / "pbx", port, callee_sink.port, "uas_carrier_auth.xml")
        server = CallswitchServer.start(tmp_path / "server")
        try:
            client = client_of(server)
            app.routes["/voice"] = lambda r: twiml(
                '<Dial action="/after" timeLimit="3">'
                '<Sip username="trunkuser" password="trunkpass">'
                f"sip:callee@127.0.0.1:{port}</Sip></Dial>"
            )
            app.routes["/after"] = lambda r: twiml("<Hangup/>")
            client.incoming_phone_numbers.create(
                phone_number=DIAL_NUMBER, voice_url=app.url("/voice")
            )
            caller = call_in(tmp_path, server, caller_sink)
            authenticated = callee.wait(20)
            assert caller.ok(1), f"{caller.describe()}\n{server.tail()}"
            assert authenticated.ok(1), f"{authenticated.describe()}\n{server.tail()}"
            [after] = app.wait_for("/after")
        finally:
            problems = server.stop()
        assert not problems, problems

        assert after.field("DialCallStatus") == "completed"
        assert after.field("DialBridged") == "true"
        assert heard(caller_sink, CARRIER_TONE_HZ), "the caller did not hear the callee"
        windows = tone_windows(callee_sink)
        assert first(windows, CALLER_TONE_HZ) is not None, windows
        assert np.isfinite(windows).all()


def test_refer_url_decides_what_a_callee_refer_does(tmp_path, app):
    """The callee sends REFER (to a number on a trunk's host: transfer policy still
    applies first); ``referUrl`` is asked with ``ReferTransferTarget`` and its
    ``<Dial>`` connects the caller to that target; the referrer gets 202 and NOTIFY 200."""
    from .test_midcall import background

    referrer_port, target_port = free_port(), free_port()
    target_uri = f"sip:+15550402222@127.0.0.1:{target_port}"
    with RtpSink() as caller_sink, RtpSink() as referrer_sink, RtpSink() as target_sink:
        referrer = background(
            "uas_refer_blind.xml",
            tmp_path / "referrer",
            referrer_port,
            {"sink_port": referrer_sink.port, "target": target_uri},
        )
        target = background(
            "uas_answer_tone_bye.xml",
            tmp_path / "target",
            target_port,
            {"sink_port": target_sink.port},
            hz=CARRIER_TONE_HZ,
        )
        server = CallswitchServer.start(
            tmp_path / "server",
            extra_args=(
                "--trunk",
                f"b=sip:127.0.0.1:{referrer_port};prefix=+1555030",
                "--trunk",
                f"c=sip:127.0.0.1:{target_port};prefix=+1555040",
            ),
        )
        try:
            client = client_of(server)
            app.routes["/voice"] = lambda r: twiml(
                '<Dial referUrl="/refer" action="/after"><Number>+15550301111</Number></Dial>'
            )
            app.routes["/refer"] = lambda r: twiml("<Dial>+15550402222</Dial>")
            app.routes["/after"] = lambda r: twiml("<Hangup/>")
            client.incoming_phone_numbers.create(
                phone_number=DIAL_NUMBER, voice_url=app.url("/voice")
            )
            caller = call_in(tmp_path, server, caller_sink)
            referred = referrer.wait(15)
            answered = target.wait(15)
            assert caller.ok(1), f"{caller.describe()}\n{server.tail()}"
            assert referred.ok(1), f"{referred.describe()}\n{server.tail()}"
            assert answered.ok(1), f"{answered.describe()}\n{server.tail()}"
            [asked] = app.wait_for("/refer")
        finally:
            problems = server.stop()
        assert not problems, problems

        assert asked.field("ReferTransferTarget") == f"<{target_uri}>"
        assert asked.field("Direction") == "inbound"  # the caller's own request
        assert not app.to("/after")  # the referUrl's TwiML ran in place of the action
        assert heard(caller_sink, CARRIER_TONE_HZ), "the caller did not reach the target"
