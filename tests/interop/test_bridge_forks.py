"""``<Start><Stream>`` then ``<Dial>``: the fork hears both sides of the bridge.

A SIPp caller (tone A, 440 Hz) calls a number whose TwiML starts a
``both_tracks`` fork to a Media Streams application (plain ``websockets``) and
``<Dial>``s a SIPp callee (tone B, 1 kHz) through a trunk. While the two talk,
the application gets ``media`` on both tracks: ``inbound`` decodes to tone A,
``outbound`` (what the caller hears) to tone B, at the level they were sent; and
the caller still hears tone B through the bridge.

In process, the bridge stays a relay (the fork is fed the relayed packets). With
``--rtpengine`` the bridge runs on a real rtpengine and the fork is fed by
rtpengine's ``subscribe request``/``subscribe answer`` to callswitch's own RTP
ports; rtpengine holds no call after the hang-up.
"""

from __future__ import annotations

import time

import numpy as np
import pytest

from .audio import dominant_frequency, level_dbfs, sine
from .conftest import require
from .harness import CallswitchServer, free_port
from .rtp import RtpSink
from .sipp import SippBackground, find_sipp
from .test_dial_nouns import DIAL_NUMBER, client_of, trunks
from .test_media_streams import StreamBot, listen, track_audio
from .test_outbound_calls import CARRIER_TONE_HZ, start_carrier
from .test_rtpengine import (  # noqa: F401 - fixtures
    CALLER_TONE_HZ,
    CallIn,
    alaw_encode,
    heard,
    rtpengine,
    rtpengine_bin,
    windows_from,
)
from .webhook_app import WebhookApp, twiml

TONE_DBFS = -13.5  # the SIPp tones: a sine of amplitude 0.3


@pytest.fixture
def app():
    with WebhookApp() as application:
        application.routes["/status"] = lambda r: (204, "text/plain", b"")
        yield application


def fork_and_dial(app: WebhookApp, bot: StreamBot) -> None:
    app.routes["/voice"] = lambda r: twiml(
        f'<Start><Stream url="{bot.url}" track="both_tracks"/></Start>'
        '<Dial action="/after" timeout="15"><Number>+15550101111</Number></Dial>'
    )
    app.routes["/after"] = lambda r: twiml("<Hangup/>")


def assert_tone(audio: np.ndarray, hz: float, what: str) -> None:
    """Most quarter seconds of ``audio`` hold the tone ``hz`` at the level sent."""
    windows = [audio[i : i + 2000] for i in range(0, len(audio) - 2000, 2000)]
    toned = [
        w
        for w in windows
        if abs(dominant_frequency(w) - hz) < 10 and abs(level_dbfs(w) - TONE_DBFS) < 3
    ]
    assert len(toned) >= 8, (
        f"{what}: {len(toned)} of {len(windows)} quarter seconds hold {hz} Hz at "
        f"{TONE_DBFS} dBFS: {[round(dominant_frequency(w)) for w in windows]} "
        f"{[round(level_dbfs(w), 1) for w in windows]}"
    )


def wait_for_stop(bot: StreamBot, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not bot.events("stop") and time.monotonic() < deadline:
        time.sleep(0.05)


def check_fork(bot: StreamBot) -> None:
    assert bot.events("stop"), "no stop message when the call ended"
    media = bot.events("media")
    _, inbound = track_audio(media, "inbound")
    _, outbound = track_audio(media, "outbound")
    assert_tone(inbound, CALLER_TONE_HZ, "inbound (the caller)")
    assert_tone(outbound, CARRIER_TONE_HZ, "outbound (the callee, as the caller hears it)")
    assert not any(abs(dominant_frequency(w) - CARRIER_TONE_HZ) < 10 for w in _quarters(inbound))
    assert not any(abs(dominant_frequency(w) - CALLER_TONE_HZ) < 10 for w in _quarters(outbound))


def _quarters(audio: np.ndarray) -> list[np.ndarray]:
    windows = [audio[i : i + 2000] for i in range(0, len(audio) - 2000, 2000)]
    return [w for w in windows if level_dbfs(w) > -30]


def test_a_fork_hears_both_sides_of_a_relayed_bridge(tmp_path, app):
    port_a = free_port()
    with RtpSink() as callee_sink, RtpSink() as caller_sink, StreamBot(listen) as bot:
        callee = start_carrier(tmp_path / "a", port_a, callee_sink.port, "uas_answer_tone_bye.xml")
        server = CallswitchServer.start(tmp_path / "server", extra_args=trunks(port_a, 9))
        try:
            client_of(server).incoming_phone_numbers.create(
                phone_number=DIAL_NUMBER, voice_url=app.url("/voice")
            )
            fork_and_dial(app, bot)
            caller = CallIn(tmp_path, server, caller_sink)
            answered = callee.wait(25)
            called = caller.wait()
            wait_for_stop(bot, 5)
            assert called is not None and called.ok(1), server.tail()
            assert answered.ok(1), f"{answered.describe()}\n{server.tail()}"
            [bridged] = server.wait_events("dial.bridged", 5)
        finally:
            problems = server.stop()
        assert not problems, problems
    assert bridged["mode"] == "relay"  # the fork did not take the bridge off its fast path
    check_fork(bot)
    assert heard(windows_from(caller_sink), CARRIER_TONE_HZ, 8)
    assert heard(windows_from(callee_sink), CALLER_TONE_HZ, 8)


def test_a_fork_hears_both_sides_of_a_bridge_on_rtpengine(tmp_path, app, rtpengine):  # noqa: F811
    port_a = free_port()
    with RtpSink() as callee_sink, RtpSink() as caller_sink, StreamBot(listen) as bot:
        callee = start_carrier(
            tmp_path / "a", port_a, callee_sink.port, "uas_answer_tone_reinvite_bye.xml"
        )
        server = CallswitchServer.start(
            tmp_path / "server", extra_args=(*trunks(port_a, 9), "--rtpengine", rtpengine.spec)
        )
        try:
            client_of(server).incoming_phone_numbers.create(
                phone_number=DIAL_NUMBER, voice_url=app.url("/voice")
            )
            fork_and_dial(app, bot)
            caller = CallIn(tmp_path, server, caller_sink)
            assert rtpengine.wait_calls(lambda calls: bool(calls), 15), server.tail()
            [bridged] = server.wait_events("rtpengine.bridged", 10)
            [subscribed] = server.wait_events("rtpengine.forks_subscribed", 10)
            bridged_at = len(bot.events("media"))
            answered = callee.wait(25)
            called = caller.wait()
            wait_for_stop(bot, 5)
            after = rtpengine.wait_calls(lambda calls: calls == [], 5)
            assert called is not None and called.ok(1), server.tail()
            assert answered.ok(1), f"{answered.describe()}\n{server.tail()}"
        finally:
            problems = server.stop()
        assert not problems, problems
    assert after == [], f"rtpengine still holds {after} after the hang-up"
    assert bridged["codecs"] == "PCMU/PCMU" and subscribed["tracks"] == "2"
    # The bridge's seconds on rtpengine reached the fork: 4 s of talk, two tracks.
    assert len(bot.events("media")) - bridged_at > 300
    check_fork(bot)
    assert heard(windows_from(caller_sink, rtpengine.ports), CARRIER_TONE_HZ, 8)
    assert heard(windows_from(callee_sink, rtpengine.ports), CALLER_TONE_HZ, 8)


def test_a_fork_hears_a_pcma_callee_transcoded_by_rtpengine(tmp_path, app, rtpengine):  # noqa: F811
    """The callee speaks PCMA, the caller PCMU: rtpengine transcodes between them,
    and the callee's copy reaches the fork in PCMA, which the fork turns into the
    stream's mu-law."""
    require(find_sipp() is not None, "sipp is not installed (Debian package sip-tester)")
    port_a = free_port()
    with RtpSink() as callee_sink, RtpSink() as caller_sink, StreamBot(listen) as bot:
        callee = SippBackground(
            "uas_answer_pcma_reinvite_bye.xml",
            None,
            workdir=tmp_path / "a",
            sipp=find_sipp(),
            local_port=port_a,
            calls=1,
            timeout=60,
            trace_msg=True,
            keys={"sink_port": callee_sink.port},
            files={"tone.alaw": alaw_encode(sine(CARRIER_TONE_HZ, 1.0, amplitude=0.3))},
        )
        server = CallswitchServer.start(
            tmp_path / "server", extra_args=(*trunks(port_a, 9), "--rtpengine", rtpengine.spec)
        )
        try:
            client_of(server).incoming_phone_numbers.create(
                phone_number=DIAL_NUMBER, voice_url=app.url("/voice")
            )
            fork_and_dial(app, bot)
            caller = CallIn(tmp_path, server, caller_sink)
            answered = callee.wait(25)
            called = caller.wait()
            wait_for_stop(bot, 5)
            after = rtpengine.wait_calls(lambda calls: calls == [], 5)
            assert called is not None and called.ok(1), server.tail()
            assert answered.ok(1), f"{answered.describe()}\n{server.tail()}"
            [bridged] = server.events("rtpengine.bridged")
            [subscribed] = server.events("rtpengine.forks_subscribed")
        finally:
            problems = server.stop()
        assert not problems, problems
    assert after == [], after
    assert bridged["codecs"] == "PCMU/PCMA" and subscribed["tracks"] == "2"
    check_fork(bot)
    assert heard(windows_from(caller_sink, rtpengine.ports), CARRIER_TONE_HZ, 8)
