"""Two rtpengine instances under load, one killed mid-call (docs/rtpengine.md).

callswitch is given two real rtpengines (``--rtpengine`` twice; each its own ng and
CLI ports and port range). Several concurrent SIPp ``<Dial>`` calls (a 440 Hz
caller, a 1000 Hz callee through a trunk) are spread over both. One instance is
killed by its PID while every call is up: the calls it held end cleanly (a BYE to
both parties, ``rtpengine.lost``), the calls on the other keep their audio both
ways (tones checked per call after the kill), the dead instance is shown down in
``/metrics``, and the calls that come next all go to the live one.
"""

from __future__ import annotations

import threading
import time
from pathlib import Path

from .audio import dominant_frequency, level_dbfs, sine, ulaw_decode, ulaw_encode
from .conftest import require
from .harness import CallswitchServer, free_port
from .media_checks import PCMU
from .rtp import RtpSink
from .rtpengine import RtpEngineProcess
from .sipp import SippBackground, find_sipp, run_sipp
from .test_dial_nouns import DIAL_NUMBER, client_of, trunks
from .test_outbound_calls import CARRIER_TONE_HZ, tone_dir
from .test_rtpengine import CALLER_TONE_HZ, app, rtpengine_bin, scrape
from .webhook_app import twiml

__all__ = ["app", "rtpengine_bin"]  # the fixtures, shared with test_rtpengine

FIRST = 10  # concurrent calls spread over both (all on one: 2 in 1024)
NEXT = 3  # calls made after one instance died
TIME_LIMIT_S = 14


class Callers:
    """``calls`` SIPp callers (440 Hz) at once, in a thread, each waiting for our BYE."""

    def __init__(self, workdir: Path, server: CallswitchServer, sink: RtpSink, calls: int):
        require(find_sipp() is not None, "sipp is not installed (Debian package sip-tester)")
        self.calls = calls
        self.result = None
        self._thread = threading.Thread(target=self._run, args=(workdir, server, sink))
        self._thread.start()

    def _run(self, workdir: Path, server: CallswitchServer, sink: RtpSink) -> None:
        self.result = run_sipp(
            "uac_tone_reinvite_wait_bye.xml",
            server.sip_target,
            workdir=workdir / "callers",
            cwd=tone_dir(workdir / "callers-cwd", CALLER_TONE_HZ),
            sipp=find_sipp(),
            service=DIAL_NUMBER.lstrip("+"),
            keys={"sink_port": sink.port},
            calls=self.calls,
            rate=10,
            timeout=60,
        )

    def wait(self, timeout: float = 70.0):
        self._thread.join(timeout)
        return self.result


def callees(workdir: Path, port: int, sink: RtpSink, calls: int) -> SippBackground:
    return SippBackground(
        "uas_answer_tone_reinvite_wait_bye.xml",
        None,
        workdir=workdir,
        sipp=find_sipp(),
        local_port=port,
        calls=calls,
        timeout=70,
        keys={"sink_port": sink.port},
        files={"tone.ulaw": ulaw_encode(sine(CARRIER_TONE_HZ, 1.0, amplitude=0.3))},
    )


def streams_with(
    sink: RtpSink, engine: RtpEngineProcess, hz: float, since: float
) -> dict[int, bool]:
    """Per rtpengine source port (one per party), whether ``hz`` is heard from it in
    what ``sink`` got after ``since`` (monotonic)."""
    low, high = engine.ports
    by_port: dict[int, list[bytes]] = {}
    for (arrival, _, addr), packet in zip(sink.datagrams(), sink.packets(), strict=True):
        if arrival >= since and low <= addr[1] <= high and packet.payload_type == PCMU:
            by_port.setdefault(addr[1], []).append(packet.payload)
    heard = {}
    for port, payloads in by_port.items():
        audio = ulaw_decode(b"".join(payloads))
        windows = [audio[i : i + 2000] for i in range(0, len(audio) - 2000, 2000)]
        tones = [w for w in windows if level_dbfs(w) > -30 and abs(dominant_frequency(w) - hz) < 10]
        heard[port] = len(tones) >= 4  # a second of the tone or more
    return heard


def test_calls_on_a_killed_instance_end_and_the_others_keep_their_audio(
    tmp_path, app, rtpengine_bin
):
    engines = [RtpEngineProcess.start(rtpengine_bin, tmp_path / f"rtpengine{n}") for n in (1, 2)]
    port_a = free_port()
    server = None
    try:
        with RtpSink() as callee_sink, RtpSink() as caller_sink:
            callee = callees(tmp_path / "callees", port_a, callee_sink, FIRST)
            args = [arg for e in engines for arg in ("--rtpengine", e.spec)]
            server = CallswitchServer.start(
                tmp_path / "server", extra_args=(*trunks(port_a, 9), *args)
            )
            client_of(server).incoming_phone_numbers.create(
                phone_number=DIAL_NUMBER, voice_url=app.url("/voice")
            )
            app.routes["/voice"] = lambda r: twiml(
                f'<Dial timeLimit="{TIME_LIMIT_S}"><Number>+15550101111</Number></Dial><Hangup/>'
            )
            callers = Callers(tmp_path / "first", server, caller_sink, FIRST)
            bridged = server.wait_events("rtpengine.bridged", 30, count=FIRST)
            assert len(bridged) == FIRST, server.tail()
            held = [e.calls() or [] for e in engines]
            assert sum(map(len, held)) == FIRST, held
            assert all(held), f"the calls were not spread over both instances: {held}"
            time.sleep(1.5)  # some audio through both before the kill
            dead, live = engines[1], engines[0]
            on_dead, on_live = len(held[1]), len(held[0])
            dead.kill()
            killed_at = time.monotonic()
            lost = server.wait_events("rtpengine.lost", 15, count=on_dead)
            assert len(lost) == on_dead, server.tail()
            # The survivors go on for a while after the calls on the dead one ended.
            assert live.calls() is not None and len(live.calls() or []) == on_live
            time.sleep(3)
            metrics = scrape(server)
            called = callers.wait()
            answered = callee.wait(30)
            after_first = live.wait_calls(lambda calls: calls == [], 5)
            assert called is not None and called.ok(FIRST), called and called.describe()
            assert answered.ok(FIRST), answered.describe()
            # Each caller and callee on the live instance heard the other after the kill.
            from_live_to_callers = streams_with(caller_sink, live, CARRIER_TONE_HZ, killed_at)
            from_live_to_callees = streams_with(callee_sink, live, CALLER_TONE_HZ, killed_at)

        # New calls: the dead instance is disabled, they all go to the live one.
        with RtpSink() as callee_sink2, RtpSink() as caller_sink2:
            callee2 = callees(tmp_path / "callees2", port_a, callee_sink2, NEXT)
            next_at = time.monotonic()
            callers2 = Callers(tmp_path / "next", server, caller_sink2, NEXT)
            bridged2 = server.wait_events("rtpengine.bridged", 30, count=FIRST + NEXT)
            during = live.wait_calls(lambda calls: len(calls or []) == NEXT, 10)
            called2, answered2 = callers2.wait(), callee2.wait(30)
            after_next = live.wait_calls(lambda calls: calls == [], 5)
            assert called2 is not None and called2.ok(NEXT), called2 and called2.describe()
            assert answered2.ok(NEXT), answered2.describe()
            next_to_callers = streams_with(caller_sink2, live, CARRIER_TONE_HZ, next_at)
        fallbacks = server.events("rtpengine.fallback")
    finally:
        problems = server.stop() if server is not None else []
        for engine in engines:
            engine.stop()
    assert not problems, problems
    assert len(bridged2) == FIRST + NEXT and not fallbacks, (bridged2, fallbacks)
    assert during is not None and len(during) == NEXT, during
    assert after_first == [] and after_next == [], (after_first, after_next)
    assert metrics[f'callswitch_rtpengine_up{{instance="{dead.spec}"}}'] == 0.0
    assert metrics[f'callswitch_rtpengine_up{{instance="{live.spec}"}}'] == 1.0
    assert len(from_live_to_callers) == on_live and all(from_live_to_callers.values()), (
        from_live_to_callers
    )
    assert len(from_live_to_callees) == on_live and all(from_live_to_callees.values()), (
        from_live_to_callees
    )
    assert len(next_to_callers) == NEXT and all(next_to_callers.values()), next_to_callers
