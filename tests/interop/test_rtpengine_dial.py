"""``hangupOnStar`` and ``record`` on a ``<Dial>`` bridged by a real rtpengine, and
the instance drained by the operator.

The session's rtpengine (test_rtpengine.py) sends its DTMF log both to a UDP
port (``--dtmf-log-dest``) the server binds with ``--rtpengine-dtmf-log
HOST:PORT`` and to the clients of its ng TCP port (``--dtmf-log-ng-tcp``), which
a server with ``--rtpengine-dtmf-log ng-tcp`` connects to: ``*`` is tested both
ways.

- A SIPp caller ``<Dial>``s a SIPp callee with ``hangupOnStar``: both are moved
  onto rtpengine, then the caller keys ``*`` (RFC 4733, SIPp's pcap) to
  rtpengine's port. rtpengine reports it on its DTMF log, the dial ends (the
  callee gets a BYE), the ``action`` URL hears ``DialCallStatus=completed`` and
  the caller, moved back, hears the TwiML after ``<Dial>`` from callswitch.
- ``<Dial record="record-from-answer-dual">``: the bridge still goes to
  rtpengine; the recording is fed by rtpengine's copies of both parties and holds
  the caller's tone on channel 0 and the callee's on channel 1; its status
  callback comes as in process.
- Drained by ``callswitch rtpengine enable HOST:PORT 0`` (``/admin/rtpengine``)
  while it carries a bridge: that bridge
  keeps its audio through rtpengine, and the next call's bridge stays in process.

rtpengine's ``list`` is empty after each hang-up.
"""

from __future__ import annotations

import io
import json
import time
import wave
from pathlib import Path

import httpx
import numpy as np
import pytest

from callswitch.cli import main

from .audio import dominant_frequency, level_dbfs, sine, ulaw_decode
from .harness import CallswitchServer, free_port
from .media_checks import PCMU
from .rtp import RtpSink
from .test_dial_nouns import DIAL_NUMBER, client_of, trunks
from .test_outbound_calls import CARRIER_TONE_HZ, start_carrier
from .test_rtpengine import (  # noqa: F401 - fixtures
    AFTER_HZ,
    CALLER_TONE_HZ,
    CallIn,
    heard,
    rtpengine,
    rtpengine_bin,
    scrape,
    windows_from,
)
from .test_voice_webhooks import wav_bytes
from .webhook_app import WebhookApp, twiml


@pytest.fixture
def app():
    with WebhookApp() as application:
        application.routes["/status"] = lambda r: (204, "text/plain", b"")
        yield application


def engine_server(tmp_path: Path, port_a: int, engine, dtmf_log: str = "udp") -> CallswitchServer:
    return CallswitchServer.start(
        tmp_path / "server",
        extra_args=(
            *trunks(port_a, 9),
            "--rtpengine",
            engine.spec,
            "--rtpengine-dtmf-log",
            engine.dtmf_log if dtmf_log == "udp" else dtmf_log,
        ),
    )


@pytest.mark.parametrize("dtmf_log", ["udp", "ng-tcp"])
def test_star_ends_a_dial_bridged_on_rtpengine_and_the_twiml_goes_on(
    tmp_path,
    app,
    rtpengine,  # noqa: F811
    dtmf_log,
):
    after_wav = wav_bytes(sine(AFTER_HZ, 1.5, amplitude=0.4))
    app.routes["/after.wav"] = lambda r: (200, "audio/wav", after_wav)
    app.routes["/voice"] = lambda r: twiml(
        '<Dial action="/after" hangupOnStar="true" timeout="15">'
        "<Number>+15550101111</Number></Dial>"
    )
    app.routes["/after"] = lambda r: twiml(f"<Play>{app.url('/after.wav')}</Play><Hangup/>")
    port_a = free_port()
    with RtpSink() as callee_sink, RtpSink() as caller_sink:
        callee = start_carrier(
            tmp_path / "a", port_a, callee_sink.port, "uas_answer_tone_reinvite_wait_bye.xml"
        )
        server = engine_server(tmp_path, port_a, rtpengine, dtmf_log)
        try:
            client_of(server).incoming_phone_numbers.create(
                phone_number=DIAL_NUMBER, voice_url=app.url("/voice")
            )
            caller = CallIn(tmp_path, server, caller_sink, "uac_reinvite_star_wait_bye.xml")
            [bridged] = server.wait_events("rtpengine.bridged", 20)
            during = rtpengine.calls()
            [digit] = server.wait_events("rtpengine.dtmf", 10)
            answered = callee.wait(20)
            called = caller.wait()
            after = rtpengine.wait_calls(lambda calls: calls == [], 5)
            [dialed] = app.wait_for("/after")
            assert called is not None and called.ok(1), (
                f"{called and called.describe()}\n{server.tail()}"
            )
            assert answered.ok(1), f"{answered.describe()}\n{server.tail()}"
            moved_back = server.wait_events("rtpengine.moved_back", 5)
            metrics = scrape(server)
        finally:
            problems = server.stop()
        assert not problems, problems
    assert bridged["codecs"] == "PCMU/PCMU" and during, (bridged, during)
    assert digit["digit"] == "*" and digit["side"] == "0", digit
    assert dialed.field("DialCallStatus") == "completed"
    assert dialed.field("DialBridged") == "true"
    assert len(moved_back) == 1, moved_back
    assert metrics["callswitch_rtpengine_dtmf_events_total"] >= 1.0
    assert metrics[f'callswitch_rtpengine_drained{{instance="{rtpengine.spec}"}}'] == 0.0
    assert after == [], f"rtpengine still holds {after} after the hang-up"
    # The callee was heard through rtpengine, the TwiML after <Dial> from callswitch.
    assert heard(windows_from(caller_sink, rtpengine.ports), CARRIER_TONE_HZ)
    assert heard(windows_from(caller_sink, server.rtp_ports), AFTER_HZ)


def channel_windows(audio: np.ndarray) -> list[float]:
    """The dominant frequency of each audible quarter second of one channel."""
    windows = [audio[i : i + 2000] for i in range(0, len(audio) - 2000, 2000)]
    return [dominant_frequency(w) if level_dbfs(w) > -30 else 0.0 for w in windows]


def test_a_dial_recording_on_rtpengine_holds_both_parties(tmp_path, app, rtpengine):  # noqa: F811
    app.routes["/voice"] = lambda r: twiml(
        f'<Dial record="record-from-answer-dual" recordingStatusCallback="{app.url("/recorded")}" '
        'timeout="15"><Number>+15550101111</Number></Dial><Hangup/>'
    )
    app.routes["/recorded"] = lambda r: (204, "text/plain", b"")
    port_a = free_port()
    with RtpSink() as callee_sink, RtpSink() as caller_sink:
        callee = start_carrier(
            tmp_path / "a", port_a, callee_sink.port, "uas_answer_tone_reinvite_bye.xml"
        )
        server = engine_server(tmp_path, port_a, rtpengine)
        try:
            client_of(server).incoming_phone_numbers.create(
                phone_number=DIAL_NUMBER, voice_url=app.url("/voice")
            )
            caller = CallIn(tmp_path, server, caller_sink)
            [bridged] = server.wait_events("rtpengine.bridged", 20)
            [subscribed] = server.wait_events("rtpengine.forks_subscribed", 5)
            answered = callee.wait(25)
            called = caller.wait()
            after = rtpengine.wait_calls(lambda calls: calls == [], 5)
            [recorded] = app.wait_for("/recorded", timeout=10)
            assert called is not None and called.ok(1), server.tail()
            assert answered.ok(1), f"{answered.describe()}\n{server.tail()}"
            recording = client_of(server).recordings(recorded.field("RecordingSid")).fetch()
            audio = httpx.get(recorded.field("RecordingUrl") + ".wav", timeout=10).content
        finally:
            problems = server.stop()
        assert not problems, problems
    assert bridged["codecs"] == "PCMU/PCMU" and subscribed["tracks"] == "2"
    assert after == [], f"rtpengine still holds {after} after the hang-up"
    assert recorded.field("RecordingStatus") == "completed"
    assert recorded.field("RecordingSource") == "DialVerb"
    assert recorded.field("RecordingChannels") == "2"
    assert recording.status == "completed" and recording.channels == 2
    with wave.open(io.BytesIO(audio)) as wav:
        assert wav.getnchannels() == 2 and wav.getframerate() == 8000
        frames = np.frombuffer(wav.readframes(wav.getnframes()), dtype="<i2").reshape(-1, 2)
    caller_side, callee_side = channel_windows(frames[:, 0]), channel_windows(frames[:, 1])
    # The bridge ran on rtpengine for seconds: its copies made the recording.
    assert heard(caller_side, CALLER_TONE_HZ, 8), caller_side
    assert heard(callee_side, CARRIER_TONE_HZ, 8), callee_side
    assert not heard(caller_side, CARRIER_TONE_HZ, 1), caller_side
    assert not heard(callee_side, CALLER_TONE_HZ, 1), callee_side
    assert heard(windows_from(caller_sink, rtpengine.ports), CARRIER_TONE_HZ, 8)


TOKEN = "drain-token"


def admin(server: CallswitchServer, capsys, where: Path, *command: str) -> dict:
    """``callswitch rtpengine`` (the operator's command) against ``server``: its JSON."""
    url = f"http://127.0.0.1:{server.http_port}"
    args = ["rtpengine", *command, "--url", url, "--admin-token", TOKEN, "--json"]
    capsys.readouterr()
    assert main([*args, "--data-dir", str(where)]) == 0, capsys.readouterr()
    return json.loads(capsys.readouterr().out)


def tones_since(sink: RtpSink, since: float, ports: tuple[int, int]) -> list[float]:
    """The dominant frequency of each audible quarter second ``sink`` got from
    ``ports`` after ``since`` (monotonic)."""
    payload = b"".join(
        data[12:]
        for arrival, data, addr in sink.datagrams()
        if arrival >= since and ports[0] <= addr[1] <= ports[1] and data[1] & 0x7F == PCMU
    )
    audio = ulaw_decode(payload)
    return channel_windows(audio)


def test_a_drained_instance_keeps_its_bridge_and_takes_no_new_one(
    tmp_path,
    app,
    rtpengine,  # noqa: F811
    capsys,
):
    port_a = free_port()
    dials = [
        '<Dial timeout="15"><Number>+15550101111</Number></Dial>',
        '<Dial timeout="15" timeLimit="2"><Number>+15550101111</Number></Dial><Hangup/>',
    ]
    app.routes["/voice"] = lambda r: twiml(dials.pop(0))
    with RtpSink() as callee_sink, RtpSink() as caller_sink, RtpSink() as second_sink:
        callee = start_carrier(
            tmp_path / "a", port_a, callee_sink.port, "uas_answer_tone_reinvite_bye.xml"
        )
        server = CallswitchServer.start(
            tmp_path / "server",
            extra_args=(*trunks(port_a, 9), "--rtpengine", rtpengine.spec, "--admin-token", TOKEN),
        )
        try:
            client_of(server).incoming_phone_numbers.create(
                phone_number=DIAL_NUMBER, voice_url=app.url("/voice")
            )
            caller = CallIn(tmp_path / "first", server, caller_sink)
            server.wait_events("rtpengine.bridged", 20)
            drained = admin(server, capsys, tmp_path, "enable", rtpengine.spec, "0")
            drained_at = time.monotonic()
            answered, called = callee.wait(20), caller.wait()
            # The next call, while the instance is drained.
            callee2 = start_carrier(
                tmp_path / "a2", port_a, callee_sink.port, "uas_answer_tone_reinvite_wait_bye.xml"
            )
            second = CallIn(tmp_path / "second", server, second_sink).wait()
            answered2 = callee2.wait(20)
            [fallback] = server.wait_events("rtpengine.fallback", 5)
            shown = admin(server, capsys, tmp_path)
            after = rtpengine.wait_calls(lambda calls: calls == [], 5)
            assert called is not None and called.ok(1), server.tail()
            assert answered.ok(1), f"{answered.describe()}\n{server.tail()}"
            assert second is not None and second.ok(1), server.tail()
            assert answered2.ok(1), f"{answered2.describe()}\n{server.tail()}"
            bridged = server.events("rtpengine.bridged")
        finally:
            problems = server.stop()
        assert not problems, problems
    [instance] = drained["instances"]
    assert (instance["enabled"], instance["calls"]) == (False, 1)  # its bridge stays
    # The bridge on the drained instance kept its audio through rtpengine.
    assert heard(tones_since(caller_sink, drained_at, rtpengine.ports), CARRIER_TONE_HZ, 6)
    # The next bridge stayed in process: the caller hears the callee from callswitch.
    assert len(bridged) == 1 and fallback["reason"] == "no rtpengine instance is available"
    assert heard(windows_from(second_sink, server.rtp_ports), CARRIER_TONE_HZ, 4)
    assert not any(
        rtpengine.ports[0] <= addr[1] <= rtpengine.ports[1]
        for _, _, addr in second_sink.datagrams()
    )
    assert shown["instances"] == [{**instance, "calls": 0}]
    assert after == [], after
