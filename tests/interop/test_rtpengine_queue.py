"""``--rtpengine``: a queue's bridge handed to a real rtpengine (docs/rtpengine.md).

A SIPp caller (440 Hz) is ``<Enqueue>``d and hears the hold music from
callswitch; a SIPp agent (1000 Hz) ``<Dial><Queue timeLimit>``s it. Both are
moved onto rtpengine by re-INVITE and each hears the other's tone from
rtpengine's ports (not ours); rtpengine's ``list`` holds the call meanwhile.
When the time limit ends the bridge, both are moved back: the agent's action
hears ``DialCallStatus=completed`` with the queue's fields, the caller's
``<Enqueue action>`` hears ``QueueResult=bridged`` and its TwiML plays a 700 Hz
tone the caller hears from callswitch itself; ``list`` is empty after the
hang-ups. The session's rtpengine is test_rtpengine.py's.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from .audio import dominant_frequency, level_dbfs, sine, ulaw_decode, ulaw_encode
from .conftest import require
from .harness import CallswitchServer
from .media_checks import PCMU
from .rtp import RtpSink
from .sipp import SippBackground, find_sipp
from .test_dial_nouns import client_of
from .test_rtpengine import (  # noqa: F401 - fixtures
    AFTER_HZ,
    CALLER_TONE_HZ,
    app,
    heard,
    rtpengine,
    rtpengine_bin,
    windows_from,
)
from .test_voice_webhooks import wav_bytes
from .webhook_app import twiml

CALLER_NUMBER = "+15005550070"
AGENT_NUMBER = "+15005550071"
AGENT_TONE_HZ = 1000.0


def phone(
    tmp_path: Path, server: CallswitchServer, name: str, number: str, hz: float, sink: RtpSink
) -> SippBackground:
    """A SIPp phone calling ``number`` with a tone; it takes re-INVITEs and waits for BYE."""
    return SippBackground(
        "uac_tone_reinvite_wait_bye.xml",
        server.sip_target,
        workdir=tmp_path / name,
        sipp=find_sipp(),
        service=number.lstrip("+"),
        keys={"sink_port": sink.port},
        calls=1,
        timeout=30,
        trace_msg=True,
        files={"tone.ulaw": ulaw_encode(sine(hz, 1.0, amplitude=0.3))},
    )


def test_a_queue_bridge_runs_through_rtpengine_and_both_come_back(tmp_path, app, rtpengine):  # noqa: F811
    require(find_sipp() is not None, "sipp is not installed (Debian package sip-tester)")
    after = wav_bytes(sine(AFTER_HZ, 1.0, amplitude=0.4))
    app.routes["/after.wav"] = lambda r: (200, "audio/wav", after)
    app.routes["/caller"] = lambda r: twiml('<Enqueue action="/after">support</Enqueue>')
    app.routes["/after"] = lambda r: twiml(f"<Play>{app.url('/after.wav')}</Play><Hangup/>")
    app.routes["/agent"] = lambda r: twiml(
        '<Dial action="/dialed" timeLimit="3"><Queue>support</Queue></Dial>'
    )
    app.routes["/dialed"] = lambda r: twiml("<Hangup/>")
    server = CallswitchServer.start(tmp_path / "server", extra_args=("--rtpengine", rtpengine.spec))
    phones: list[SippBackground] = []
    with RtpSink() as caller_sink, RtpSink() as agent_sink:
        try:
            client = client_of(server)
            client.incoming_phone_numbers.create(
                phone_number=CALLER_NUMBER, voice_url=app.url("/caller")
            )
            client.incoming_phone_numbers.create(
                phone_number=AGENT_NUMBER, voice_url=app.url("/agent")
            )
            phones.append(
                phone(tmp_path, server, "caller", CALLER_NUMBER, CALLER_TONE_HZ, caller_sink)
            )
            [joined] = server.wait_events("queue.joined", 15)
            assert caller_sink.wait_for(25, 10), server.tail()  # half a second of hold music
            phones.append(phone(tmp_path, server, "agent", AGENT_NUMBER, AGENT_TONE_HZ, agent_sink))
            [bridged] = server.wait_events("rtpengine.bridged", 15)
            during = rtpengine.calls()
            [dialed] = app.wait_for("/dialed", timeout=15)
            [left] = app.wait_for("/after", timeout=5)
            results = [p.wait(15) for p in phones]
            gone = rtpengine.wait_calls(lambda calls: calls == [], 5)
            [queue_bridged] = server.events("queue.bridged")
            moved_back = server.wait_events("rtpengine.moved_back", 5, count=2)
        finally:
            for p in phones:
                p.kill()
            problems = server.stop()
        assert not problems, problems
    for result in results:
        assert result.ok(1), f"{result.describe()}\n{server.tail()}"
    assert queue_bridged["mode"] == "rtpengine" and bridged["codecs"] == "PCMU/PCMU"
    assert during, "rtpengine never held the queue's bridge"
    assert gone == [], f"rtpengine still holds {gone} after the hang-ups"
    assert len(moved_back) == 2, moved_back  # the agent's TwiML and the caller's go on
    # The queue's webhooks as in process.
    caller_sid = joined["call_sid"]
    assert left.field("QueueResult") == "bridged" and left.field("CallSid") == caller_sid
    assert int(left.field("QueueTime") or -1) >= 0 and left.field("QueueSid")
    assert dialed.field("DialCallStatus") == "completed" and dialed.field("DialBridged") == "true"
    assert dialed.field("DialCallSid") == caller_sid
    assert dialed.field("QueueSid") == left.field("QueueSid")
    # Each heard the other through rtpengine's ports, not ours.
    assert heard(windows_from(agent_sink, rtpengine.ports), CALLER_TONE_HZ)
    assert heard(windows_from(caller_sink, rtpengine.ports), AGENT_TONE_HZ)
    assert not heard(windows_from(caller_sink, server.rtp_ports), AGENT_TONE_HZ, 3)
    # Hold music from callswitch before the bridge; moved back, the TwiML after it.
    ours = from_ports(caller_sink, server.rtp_ports)
    engine_start = min(t for t, _ in from_ports(caller_sink, rtpengine.ports))
    engine_end = max(t for t, _ in from_ports(caller_sink, rtpengine.ports))
    held = [payload for t, payload in ours if t < engine_start]
    assert len(held) >= 25, len(held)  # the hold music, from callswitch, before the bridge
    assert level_dbfs(ulaw_decode(b"".join(held))) > -35
    # Moved back, the caller hears its TwiML after the bridge from callswitch (only
    # what came after rtpengine's packets: the hold music has a note near 700 Hz).
    after_bridge = ulaw_decode(b"".join(payload for t, payload in ours if t > engine_end))
    assert tone_windows(after_bridge, AFTER_HZ) >= 2, server.tail()


def from_ports(sink: RtpSink, ports: tuple[int, int]) -> list[tuple[float, bytes]]:
    """(arrival, PCMU payload) of each packet ``sink`` got from a source port in ``ports``."""
    return [
        (packet.arrival, packet.payload)
        for (_, _, addr), packet in zip(sink.datagrams(), sink.packets(), strict=True)
        if ports[0] <= addr[1] <= ports[1] and packet.payload_type == PCMU
    ]


def tone_windows(audio: np.ndarray, hz: float) -> int:
    """How many audible quarter seconds of ``audio`` are ``hz``."""
    windows = [audio[i : i + 2000] for i in range(0, len(audio) - 2000, 2000)]
    return sum(1 for w in windows if level_dbfs(w) > -30 and abs(dominant_frequency(w) - hz) < 10)
