"""``--rtpengine``: ``<Dial>`` bridges handed to a real rtpengine (docs/rtpengine.md).

A SIPp caller (440 Hz) calls one of our numbers whose TwiML ``<Dial>``s a SIPp
callee (1000 Hz) through a trunk. With ``--rtpengine`` both parties are moved
onto rtpengine by re-INVITE: each hears the other's tone, sent from rtpengine's
ports (not callswitch's); rtpengine's ``list`` shows the call while it is up.
When the callee hangs up, the caller is moved back and hears the TwiML after
``<Dial>`` (700 Hz) from callswitch itself, and rtpengine holds no call after
the hang-up. A PCMA callee and a PCMU caller are transcoded by rtpengine. A
``<Dial><Sip>`` to our own echo service returns the caller's tone through
rtpengine. Killing rtpengine mid-call ends the call (BYE to both), and the next
call falls back to the in-process relay.

rtpengine-daemon (Debian) is started once per session in userspace on
loopback; without it the tests skip.
"""

from __future__ import annotations

import threading
import urllib.request
import warnings
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from .audio import dominant_frequency, level_dbfs, sine, ulaw_decode
from .conftest import require
from .harness import CallswitchServer, free_port
from .media_checks import PCMU
from .rtp import RtpSink
from .rtpengine import RtpEngineProcess, find_rtpengine
from .sipp import SippBackground, find_sipp, run_sipp
from .test_dial_nouns import DIAL_NUMBER, client_of, trunks
from .test_outbound_calls import CARRIER_TONE_HZ, start_carrier, tone_dir
from .test_voice_webhooks import wav_bytes
from .webhook_app import WebhookApp, twiml

CALLER_TONE_HZ = 440.0
AFTER_HZ = 700.0


@pytest.fixture(scope="session")
def rtpengine_bin() -> str:
    binary = find_rtpengine()
    require(binary is not None, "rtpengine is not installed (Debian package rtpengine-daemon)")
    assert binary is not None
    return binary


@pytest.fixture(scope="session")
def rtpengine(
    rtpengine_bin: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[RtpEngineProcess]:
    """One rtpengine for the session's tests."""
    engine = RtpEngineProcess.start(rtpengine_bin, tmp_path_factory.mktemp("rtpengine"))
    try:
        yield engine
    finally:
        engine.stop()


@pytest.fixture
def app():
    with WebhookApp() as application:
        yield application


class CallIn:
    """The SIPp caller, in a thread: it calls, answers our re-INVITEs, waits for BYE
    (`scenario` may do more: key a digit once moved, ...)."""

    def __init__(
        self,
        tmp_path: Path,
        server: CallswitchServer,
        sink: RtpSink,
        scenario: str = "uac_tone_reinvite_wait_bye.xml",
    ) -> None:
        require(find_sipp() is not None, "sipp is not installed (Debian package sip-tester)")
        self.result = None
        self._thread = threading.Thread(target=self._run, args=(tmp_path, server, sink, scenario))
        self._thread.start()

    def _run(self, tmp_path: Path, server: CallswitchServer, sink: RtpSink, scenario: str) -> None:
        self.result = run_sipp(
            scenario,
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

    def wait(self, timeout: float = 45.0):
        self._thread.join(timeout)
        return self.result


def alaw_decode(payload: bytes) -> np.ndarray:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        import audioop
    return np.frombuffer(audioop.alaw2lin(payload, 2), dtype="<i2")


def alaw_encode(samples: np.ndarray) -> bytes:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        import audioop
    return audioop.lin2alaw(samples.astype("<i2").tobytes(), 2)


def windows_from(
    sink: RtpSink, ports: tuple[int, int] | None = None, payload_type: int = PCMU
) -> list[float]:
    """The dominant frequency of each audible quarter second ``sink`` got (only
    from source ports in ``ports``, when given), in PCMU or PCMA (8)."""
    packets = [
        p
        for (_, data, addr), p in zip(sink.datagrams(), sink.packets(), strict=True)
        if p.payload_type == payload_type and (ports is None or ports[0] <= addr[1] <= ports[1])
    ]
    payload = b"".join(p.payload for p in packets)
    audio = ulaw_decode(payload) if payload_type == PCMU else alaw_decode(payload)
    windows = [audio[i : i + 2000] for i in range(0, len(audio) - 2000, 2000)]
    return [dominant_frequency(w) if level_dbfs(w) > -30 else 0.0 for w in windows]


def scrape(server: CallswitchServer) -> dict[str, float]:
    url = f"http://127.0.0.1:{server.http_port}/metrics"
    with urllib.request.urlopen(url, timeout=5) as response:
        text = response.read().decode()
    return {
        name: float(value)
        for name, _, value in (line.rpartition(" ") for line in text.splitlines())
        if name and not name.startswith("#")
    }


def heard(windows: list[float], hz: float, at_least: int = 2) -> bool:
    return sum(1 for f in windows if abs(f - hz) < 10) >= at_least


def dial_app(app: WebhookApp) -> None:
    after = wav_bytes(sine(AFTER_HZ, 1.5, amplitude=0.4))
    app.routes["/after.wav"] = lambda r: (200, "audio/wav", after)
    app.routes["/voice"] = lambda r: twiml(
        '<Dial action="/after" timeout="15"><Number>+15550101111</Number></Dial>'
    )
    app.routes["/after"] = lambda r: twiml(f"<Play>{app.url('/after.wav')}</Play><Hangup/>")


def test_a_dial_bridge_runs_through_rtpengine_and_the_caller_comes_back(tmp_path, app, rtpengine):
    port_a = free_port()
    with RtpSink() as callee_sink, RtpSink() as caller_sink:
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
            dial_app(app)
            caller = CallIn(tmp_path, server, caller_sink)
            during = rtpengine.wait_calls(lambda calls: bool(calls), 15)
            answered = callee.wait(20)
            called = caller.wait()
            after = rtpengine.wait_calls(lambda calls: calls == [], 5)
            assert called is not None and called.ok(1), (
                f"{called and called.describe()}\n{server.tail()}"
            )
            assert answered.ok(1), f"{answered.describe()}\n{server.tail()}"
            [dialed] = app.wait_for("/after")
            [bridged] = server.events("rtpengine.bridged")
            [figures] = server.events("rtpengine.call")
            metrics = scrape(server)
        finally:
            problems = server.stop()
        assert not problems, problems
        assert during, "rtpengine never held the call while it was bridged"
        assert after == [], f"rtpengine still holds {after} after the hang-up"
        assert dialed.field("DialCallStatus") == "completed"
        assert bridged["codecs"] == "PCMU/PCMU"
        assert int(figures["packets"]) > 100, figures
        assert metrics["callswitch_rtpengine_relayed_packets_total"] == float(figures["packets"])
        assert metrics["callswitch_rtpengine_deletes_total"] == 1.0
        assert metrics[f'callswitch_rtpengine_up{{instance="{rtpengine.spec}"}}'] == 1.0
        sources = {addr[1] for _, _, addr in callee_sink.datagrams()}
        sources |= {addr[1] for _, _, addr in caller_sink.datagrams()}
        assert sources & set(range(rtpengine.ports[0], rtpengine.ports[1] + 1)), sources
        # Each party heard the other through rtpengine's ports.
        assert heard(windows_from(callee_sink, rtpengine.ports), CALLER_TONE_HZ)
        assert heard(windows_from(caller_sink, rtpengine.ports), CARRIER_TONE_HZ)
        # Moved back, the caller hears the TwiML after <Dial> from callswitch itself.
        assert heard(windows_from(caller_sink, server.rtp_ports), AFTER_HZ)
        assert not heard(windows_from(caller_sink, rtpengine.ports), AFTER_HZ, 1)


def test_killing_rtpengine_ends_the_call_and_the_next_call_stays_in_process(
    tmp_path, app, rtpengine_bin
):
    engine = RtpEngineProcess.start(rtpengine_bin, tmp_path / "rtpengine")
    port_a = free_port()
    try:
        with RtpSink() as callee_sink, RtpSink() as caller_sink:
            callee = start_carrier(
                tmp_path / "a", port_a, callee_sink.port, "uas_answer_tone_reinvite_wait_bye.xml"
            )
            server = CallswitchServer.start(
                tmp_path / "server", extra_args=(*trunks(port_a, 9), "--rtpengine", engine.spec)
            )
            try:
                client_of(server).incoming_phone_numbers.create(
                    phone_number=DIAL_NUMBER, voice_url=app.url("/voice")
                )
                app.routes["/voice"] = lambda r: twiml(
                    '<Dial timeout="15"><Number>+15550101111</Number></Dial>'
                )
                caller = CallIn(tmp_path / "first", server, caller_sink)
                assert engine.wait_calls(lambda calls: bool(calls), 15), server.tail()
                assert server.wait_events("rtpengine.bridged", 10), server.tail()
                engine.kill()
                called, answered = caller.wait(), callee.wait(20)
                assert called is not None and called.ok(1), f"{called and called.describe()}"
                assert answered.ok(1), f"{answered.describe()}\n{server.tail()}"
                [lost] = server.events("rtpengine.lost")

                # The next call: rtpengine is down, the bridge stays in process.
                with RtpSink() as callee_sink2, RtpSink() as caller_sink2:
                    callee2 = start_carrier(
                        tmp_path / "a2",
                        port_a,
                        callee_sink2.port,
                        "uas_answer_tone_reinvite_bye.xml",
                    )
                    caller2 = CallIn(tmp_path / "second", server, caller_sink2)
                    answered2, called2 = callee2.wait(25), caller2.wait()
                    assert answered2.ok(1), f"{answered2.describe()}\n{server.tail()}"
                    assert called2 is not None and called2.ok(1), server.tail()
                    assert heard(windows_from(caller_sink2, server.rtp_ports), CARRIER_TONE_HZ)
                    assert heard(windows_from(callee_sink2, server.rtp_ports), CALLER_TONE_HZ)
                fallbacks = server.events("rtpengine.fallback")
            finally:
                problems = server.stop()
            assert not problems, problems
            assert lost["reason"]
            assert len(fallbacks) == 1, fallbacks
            assert len(server.events("rtpengine.bridged")) == 1
    finally:
        engine.stop()


def test_the_callers_tone_comes_back_through_rtpengine_from_an_echo(tmp_path, app, rtpengine):
    """``<Dial><Sip>`` to our own echo service: both legs are SIP calls, so the
    bridge goes through rtpengine and the caller hears its own tone from it."""
    with RtpSink() as caller_sink:
        server = CallswitchServer.start(
            tmp_path / "server", extra_args=("--rtpengine", rtpengine.spec)
        )
        try:
            client_of(server).incoming_phone_numbers.create(
                phone_number=DIAL_NUMBER, voice_url=app.url("/voice")
            )
            echo = f"sip:echo@127.0.0.1:{server.sip_port}"
            app.routes["/voice"] = lambda r: twiml(
                f'<Dial timeLimit="4"><Sip>{echo}</Sip></Dial><Hangup/>'
            )
            caller = CallIn(tmp_path, server, caller_sink)
            during = rtpengine.wait_calls(lambda calls: bool(calls), 15)
            called = caller.wait()
            after = rtpengine.wait_calls(lambda calls: calls == [], 5)
            assert called is not None and called.ok(1), server.tail()
            bridged = server.events("rtpengine.bridged")
        finally:
            problems = server.stop()
        assert not problems, problems
        assert during and after == [], (during, after)
        assert len(bridged) == 1, bridged
        assert heard(windows_from(caller_sink, rtpengine.ports), CALLER_TONE_HZ, 4)


def test_a_pcma_callee_and_a_pcmu_caller_are_transcoded_by_rtpengine(tmp_path, app, rtpengine):
    port_a = free_port()
    with RtpSink() as callee_sink, RtpSink() as caller_sink:
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
            dial_app(app)
            caller = CallIn(tmp_path, server, caller_sink)
            answered = callee.wait(25)
            called = caller.wait()
            after = rtpengine.wait_calls(lambda calls: calls == [], 5)
            assert called is not None and called.ok(1), server.tail()
            assert answered.ok(1), f"{answered.describe()}\n{server.tail()}"
            [bridged] = server.events("rtpengine.bridged")
        finally:
            problems = server.stop()
        assert not problems, problems
        assert after == [], after
        assert bridged["codecs"] == "PCMU/PCMA"
        # rtpengine turned each party's tone into the other's codec.
        assert heard(windows_from(caller_sink, rtpengine.ports), CARRIER_TONE_HZ)
        assert heard(windows_from(callee_sink, rtpengine.ports, payload_type=8), CALLER_TONE_HZ)


BEFORE_HZ = 550.0


def tone_times(
    sink: RtpSink, hz: float, ports: tuple[int, int], payload_type: int = PCMU
) -> list[float]:
    """Arrival times of the audible quarter seconds of ``hz`` ``sink`` got from ``ports``."""
    packets = [
        p
        for (_, _, addr), p in zip(sink.datagrams(), sink.packets(), strict=True)
        if p.payload_type == payload_type and ports[0] <= addr[1] <= ports[1]
    ]
    times = []
    for i in range(0, len(packets) - 12, 12):
        window = packets[i : i + 12]
        audio = ulaw_decode(b"".join(p.payload for p in window))
        if level_dbfs(audio) > -30 and abs(dominant_frequency(audio) - hz) < 10:
            times.append(window[0].arrival)
    return times


def runs(times: list[float]) -> list[float]:
    """The windows that have a neighbour a window away: a tone heard, not a stray window."""
    return [t for t in times if any(0 < abs(t - u) < 0.35 for u in times)]


def test_play_then_dial_then_twiml_after_the_bridge(tmp_path, app, rtpengine):
    """``<Play>`` before ``<Dial>`` comes from callswitch, the bridge from rtpengine, and
    the ``<Play>`` after it from callswitch again, in that order; rtpengine holds no
    call after the hang-up."""
    port_a = free_port()
    before = wav_bytes(sine(BEFORE_HZ, 1.5, amplitude=0.4))
    with RtpSink() as callee_sink, RtpSink() as caller_sink:
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
            dial_app(app)
            app.routes["/before.wav"] = lambda r: (200, "audio/wav", before)
            app.routes["/voice"] = lambda r: twiml(
                f"<Play>{app.url('/before.wav')}</Play>"
                '<Dial action="/after" timeout="15"><Number>+15550101111</Number></Dial>'
            )
            caller = CallIn(tmp_path, server, caller_sink)
            answered = callee.wait(30)
            called = caller.wait()
            after = rtpengine.wait_calls(lambda calls: calls == [], 5)
            assert called is not None and called.ok(1), server.tail()
            assert answered.ok(1), f"{answered.describe()}\n{server.tail()}"
            assert server.wait_events("rtpengine.moved_back", 5), server.tail()
            bridged = server.events("rtpengine.bridged")
        finally:
            problems = server.stop()
        assert not problems, problems
        assert after == [], f"rtpengine still holds {after} after the hang-up"
        assert len(bridged) == 1, bridged
        played = tone_times(caller_sink, BEFORE_HZ, server.rtp_ports)
        through = tone_times(caller_sink, CARRIER_TONE_HZ, rtpengine.ports)
        after_bridge = tone_times(caller_sink, AFTER_HZ, server.rtp_ports)
        assert len(played) >= 2 and len(through) >= 2 and len(after_bridge) >= 2, (
            played,
            through,
            after_bridge,
        )
        # The runs of each tone (two windows in a row or more) come one after the other.
        assert runs(played)[-1] < runs(through)[0] and runs(through)[-1] < runs(after_bridge)[0]
        assert not tone_times(caller_sink, BEFORE_HZ, rtpengine.ports)
        assert heard(windows_from(callee_sink, rtpengine.ports), CALLER_TONE_HZ)
