"""Call queues over SIP with the official `twilio` library.

A SIPp caller sending a 1000 Hz tone is `<Enqueue>`d without a `waitUrl`: it
hears the local hold music (media/hold_music.py) on its RTP, and the Queues and
Members resources show it. An agent (SIPp, 1700 Hz) whose TwiML is
`<Dial><Queue url=...>` takes it: the whisper document is fetched for the
caller, then each hears the other's tone. A second caller is dequeued through
`POST Members/Front` with a `Url`: its `<Enqueue action>` is told
`QueueResult=redirected` and the new TwiML plays its own tone to it.
"""

from __future__ import annotations

import time

import numpy as np
from twilio.rest import Client

from media.hold_music import HOLD_MUSIC_CHORDS

from .audio import level_dbfs, sine, ulaw_decode, ulaw_encode
from .conftest import require
from .media_checks import PCMU
from .rtp import RtpSink
from .sipp import SippBackground, find_sipp
from .test_conference import band_level
from .test_voice_webhooks import LocalHttpClient, credentials, wav_bytes
from .webhook_app import WebhookApp, twiml

CALLER_NUMBER = "+15005550060"
AGENT_NUMBER = "+15005550061"
CALLER_HZ, AGENT_HZ, REDIRECT_HZ = 1000.0, 1700.0, 600.0
LOUD, QUIET = 2000.0, 300.0  # tones are sent at 0.2 of full scale (about 6500)


def hold_music_hz() -> list[float]:
    """Every note of the hold music (the arpeggio an octave up)."""
    notes = {
        n for bass, tones in HOLD_MUSIC_CHORDS for n in (bass, *tones, *(t + 12 for t in tones))
    }
    return sorted(440.0 * 2 ** ((n - 69) / 12) for n in notes)


def audio_between(sink: RtpSink, start: float, end: float) -> np.ndarray:
    packets = [p for p in sink.packets() if p.payload_type == PCMU and start <= p.arrival < end]
    return ulaw_decode(b"".join(p.payload for p in packets))


def caller(server, tmp_path, name: str, number: str, hz: float, sink: RtpSink) -> SippBackground:
    return SippBackground(
        "uac_tone_wait_bye.xml",
        server.sip_target,
        workdir=tmp_path / name,
        sipp=find_sipp(),
        service=number.lstrip("+"),
        keys={"sink_port": sink.port},
        calls=1,
        timeout=40,
        trace_msg=True,
        files={"tone.ulaw": ulaw_encode(sine(hz, 1.0, amplitude=0.2))},
    )


def wait_until(condition, what: str, server, timeout: float = 10.0):
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        assert time.monotonic() < deadline, f"no {what}\n{server.tail()}"
        time.sleep(0.2)


def test_enqueue_hold_music_agent_bridge_and_rest_dequeue(server, tmp_path):
    require(find_sipp() is not None, "sipp is not installed (Debian package sip-tester)")
    sid, token = credentials(server)
    client = Client(sid, token, http_client=LocalHttpClient(f"http://127.0.0.1:{server.http_port}"))
    with (
        WebhookApp() as app,
        RtpSink() as caller_sink,
        RtpSink() as agent_sink,
        RtpSink() as second_sink,
    ):
        app.routes["/caller"] = lambda r: twiml('<Enqueue action="/after">support</Enqueue>')
        app.routes["/after"] = lambda r: twiml("<Hangup/>")
        app.routes["/agent"] = lambda r: twiml('<Dial><Queue url="/whisper">support</Queue></Dial>')
        app.routes["/whisper"] = lambda r: twiml('<Pause length="1"/>')
        tone = wav_bytes(sine(REDIRECT_HZ, 2.0, amplitude=0.3))
        app.routes["/tone.wav"] = lambda r: (200, "audio/wav", tone)
        app.routes["/redirected"] = lambda r: twiml(f"<Play>{app.url('/tone.wav')}</Play><Hangup/>")
        client.incoming_phone_numbers.create(
            phone_number=CALLER_NUMBER, voice_url=app.url("/caller")
        )
        client.incoming_phone_numbers.create(phone_number=AGENT_NUMBER, voice_url=app.url("/agent"))
        calls = []
        try:
            # The caller waits, hearing the hold music; the resources show it.
            calls.append(caller(server, tmp_path, "caller", CALLER_NUMBER, CALLER_HZ, caller_sink))
            queue = wait_until(lambda: next(iter(client.queues.list()), None), "queue", server)
            members = wait_until(lambda: client.queues(queue.sid).members.list(), "member", server)
            [member] = members
            [waiting_call] = client.calls.list(to=CALLER_NUMBER)
            assert member.call_sid == waiting_call.sid and member.position == 1
            fetched = client.queues(queue.sid).fetch()
            assert (fetched.friendly_name, fetched.current_size) == ("support", 1)
            hold_start = time.monotonic()
            time.sleep(3)
            hold_end = time.monotonic()
            assert client.queues(queue.sid).fetch().average_wait_time >= 2

            # The agent takes it: the whisper, then both ways.
            calls.append(caller(server, tmp_path, "agent", AGENT_NUMBER, AGENT_HZ, agent_sink))
            [whisper] = app.wait_for("/whisper", timeout=10)
            assert whisper.field("CallSid") == waiting_call.sid
            assert whisper.field("QueueSid") == queue.sid
            [agent_call] = client.calls.list(to=AGENT_NUMBER)
            assert whisper.field("DequeingCallSid") == agent_call.sid
            time.sleep(1.5)  # the one-second whisper, then the bridge
            talk_start = time.monotonic()
            time.sleep(2.5)
            talk_end = time.monotonic()
            assert client.queues(queue.sid).fetch().current_size == 0
            client.calls(agent_call.sid).update(status="completed")
            [after] = app.wait_for("/after", timeout=10)
            assert after.field("QueueResult") == "bridged"
            assert after.field("QueueSid") == queue.sid
            for call in calls:
                result = call.wait(15)
                assert result.ok(1), f"{result.describe()}\n{server.tail()}"

            # A second caller is dequeued through the REST API with a Url.
            calls.append(caller(server, tmp_path, "second", CALLER_NUMBER, CALLER_HZ, second_sink))
            wait_until(lambda: client.queues(queue.sid).members.list(), "second member", server)
            dequeued = (
                client.queues(queue.sid)
                .members("Front")
                .update(url=app.url("/redirected"), method="POST")
            )
            redirected_at = time.monotonic()
            [redirected] = app.wait_for("/redirected", timeout=10)
            assert redirected.field("CallSid") == dequeued.call_sid
            afters = app.wait_for("/after", count=2, timeout=10)
            assert afters[1].field("QueueResult") == "redirected"
            assert afters[1].field("CallSid") == dequeued.call_sid
            result = calls[-1].wait(15)
            assert result.ok(1), f"{result.describe()}\n{server.tail()}"
            assert client.queues(queue.sid).members.list() == []
        finally:
            for call in calls:
                call.kill()

    held = audio_between(caller_sink, hold_start, hold_end)
    assert len(held) >= 2 * 8000, len(held)
    assert level_dbfs(held) > -35, level_dbfs(held)
    music = max(band_level(held, hz) for hz in hold_music_hz())
    assert music > 400, music
    assert band_level(held, AGENT_HZ) < QUIET

    heard_by_caller = audio_between(caller_sink, talk_start, talk_end)
    heard_by_agent = audio_between(agent_sink, talk_start, talk_end)
    assert band_level(heard_by_caller, AGENT_HZ) > LOUD, band_level(heard_by_caller, AGENT_HZ)
    assert band_level(heard_by_agent, CALLER_HZ) > LOUD, band_level(heard_by_agent, CALLER_HZ)
    assert band_level(heard_by_caller, CALLER_HZ) < QUIET  # not its own voice back
    assert max(band_level(heard_by_caller, hz) for hz in hold_music_hz()) < QUIET  # no music

    after_redirect = audio_between(second_sink, redirected_at, redirected_at + 10)
    assert band_level(after_redirect, REDIRECT_HZ) > LOUD / 2, band_level(
        after_redirect, REDIRECT_HZ
    )
