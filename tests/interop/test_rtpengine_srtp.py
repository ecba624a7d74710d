"""SDES-SRTP on one side, plain RTP on the other, bridged by a real rtpengine.

The SRTP party is a carrier of the test's own over SIP/TLS (srtp_peer.py: ssl,
sockets, pylibsrtp; none of callswitch's SIP or SRTP code), behind a trunk with
``srtp=mandatory``; the plain party is SIPp. When ``<Dial>`` bridges them,
callswitch tells rtpengine each party's key and codec and re-INVITEs the carrier
with rtpengine's address and key (it keeps its own, as baresip does) and SIPp
with rtpengine's plain address. rtpengine then decrypts what the carrier sends for
SIPp and encrypts what SIPp sends for the carrier: each hears the other's tone
from rtpengine's ports, the carrier decrypting it under the key rtpengine offered.
Both ways: the SRTP carrier called by ``<Dial>`` from a SIPp caller, and the
SRTP carrier called by the REST API whose TwiML ``<Dial>``s a SIPp callee. rtpengine
holds no call after the hang-up.
"""

from __future__ import annotations

import math
import re

import numpy as np

from .audio import dominant_frequency, level_dbfs, sine, ulaw_decode
from .harness import CallswitchServer, free_port, make_tls_cert
from .rtp import RtpSink
from .rtpengine import RtpEngineProcess
from .srtp_peer import RekeyingCarrier
from .test_dial_nouns import DIAL_NUMBER, client_of
from .test_outbound_calls import CARRIER_TONE_HZ, start_carrier
from .test_rtpengine import (
    AFTER_HZ,
    CALLER_TONE_HZ,
    CallIn,
    app,
    heard,
    rtpengine,
    rtpengine_bin,
    windows_from,
)
from .test_voice_webhooks import wav_bytes
from .webhook_app import twiml

__all__ = ["app", "rtpengine", "rtpengine_bin"]  # the fixtures, shared with test_rtpengine

SECURE_NUMBER = "+15551230000"  # the SRTP carrier's subscriber


def secure_trunk(carrier: RekeyingCarrier) -> tuple[str, ...]:
    return (
        "--trunk",
        f"carrier=sips:127.0.0.1:{carrier.port};prefix=+1555123;strip_plus;srtp=mandatory",
    )


def carrier_heard(carrier: RekeyingCarrier, engine: RtpEngineProcess, since: float) -> np.ndarray:
    """What the carrier decrypted from rtpengine's ports after ``since``."""
    low, high = engine.ports
    payloads = [
        payload
        for (moment, payload), (_, port) in zip(carrier.heard, carrier.heard_from, strict=True)
        if moment >= since and low <= port <= high
    ]
    return ulaw_decode(b"".join(payloads))


def assert_moved_onto(carrier: RekeyingCarrier, engine: RtpEngineProcess) -> float:
    """The carrier was re-INVITEd onto rtpengine with SRTP: when."""
    assert carrier.moves, "the SRTP carrier was never moved"
    moved_at, sdp = carrier.moves[0]
    port = int(re.search(r"^m=audio (\d+) RTP/SAVP ", sdp, re.M).group(1))  # type: ignore[union-attr]
    assert engine.ports[0] <= port <= engine.ports[1], sdp
    assert "a=crypto:" in sdp, sdp
    return moved_at


def test_a_plain_caller_dials_an_srtp_carrier_through_rtpengine(tmp_path, app, rtpengine):
    cert, key = make_tls_cert(tmp_path / "carrier-tls")
    carrier = RekeyingCarrier(cert, key, CARRIER_TONE_HZ, rekey_after=math.inf)
    server = None
    try:
        with RtpSink() as caller_sink:
            server = CallswitchServer.start(
                tmp_path / "server",
                extra_args=(*secure_trunk(carrier), "--rtpengine", rtpengine.spec),
            )
            client_of(server).incoming_phone_numbers.create(
                phone_number=DIAL_NUMBER, voice_url=app.url("/voice")
            )
            after = wav_bytes(sine(AFTER_HZ, 1.5, amplitude=0.4))
            app.routes["/after.wav"] = lambda r: (200, "audio/wav", after)
            app.routes["/voice"] = lambda r: twiml(
                f'<Dial action="/after" timeLimit="5"><Number>{SECURE_NUMBER}</Number></Dial>'
            )
            app.routes["/after"] = lambda r: twiml(f"<Play>{app.url('/after.wav')}</Play><Hangup/>")
            caller = CallIn(tmp_path, server, caller_sink)
            during = rtpengine.wait_calls(lambda calls: bool(calls), 20)
            called = caller.wait()
            left = rtpengine.wait_calls(lambda calls: calls == [], 5)
            assert called is not None and called.ok(1), f"{carrier.errors}\n{server.tail()}"
            assert carrier.ended.wait(5), server.tail()
            bridged = server.events("rtpengine.bridged")
            moved_back = server.wait_events("rtpengine.moved_back", 5)
    finally:
        carrier.close()
        problems = server.stop() if server is not None else []
    assert not problems, problems
    assert not carrier.errors, carrier.errors
    assert len(bridged) == 1 and len(moved_back) == 1, server.tail()
    assert during and left == [], (during, left)
    moved_at = assert_moved_onto(carrier, rtpengine)
    # rtpengine encrypted the caller's tone for the carrier under the key it offered...
    through = carrier_heard(carrier, rtpengine, moved_at + 0.3)
    assert len(through) > 8000, len(through)
    assert abs(dominant_frequency(through) - CALLER_TONE_HZ) < 10 and level_dbfs(through) > -30
    assert carrier.rejected == 0
    # ...and decrypted the carrier's for the caller, who gets plain PCMU from it.
    assert heard(windows_from(caller_sink, rtpengine.ports), CARRIER_TONE_HZ, 4)
    # Back from rtpengine, the caller hears the TwiML after <Dial> from callswitch.
    assert heard(windows_from(caller_sink, server.rtp_ports), AFTER_HZ)


def test_an_srtp_call_placed_by_rest_dials_a_plain_callee_through_rtpengine(
    tmp_path, app, rtpengine
):
    cert, key = make_tls_cert(tmp_path / "carrier-tls")
    carrier = RekeyingCarrier(cert, key, CALLER_TONE_HZ, rekey_after=math.inf)
    port_a = free_port()
    server = None
    try:
        with RtpSink() as callee_sink:
            callee = start_carrier(
                tmp_path / "callee",
                port_a,
                callee_sink.port,
                "uas_answer_tone_reinvite_wait_bye.xml",
            )
            server = CallswitchServer.start(
                tmp_path / "server",
                extra_args=(
                    *secure_trunk(carrier),
                    "--trunk",
                    f"a=sip:127.0.0.1:{port_a};prefix=+1555010",
                    "--rtpengine",
                    rtpengine.spec,
                ),
            )
            app.routes["/answer"] = lambda r: twiml(
                '<Dial timeLimit="5"><Number>+15550101111</Number></Dial><Hangup/>'
            )
            client_of(server).calls.create(
                to=SECURE_NUMBER, from_="+15005550006", url=app.url("/answer")
            )
            during = rtpengine.wait_calls(lambda calls: bool(calls), 20)
            answered = callee.wait(30)
            assert carrier.ended.wait(10), f"{carrier.errors}\n{server.tail()}"
            left = rtpengine.wait_calls(lambda calls: calls == [], 5)
            assert answered.ok(1), f"{answered.describe()}\n{server.tail()}"
            bridged = server.events("rtpengine.bridged")
    finally:
        carrier.close()
        problems = server.stop() if server is not None else []
    assert not problems, problems
    assert not carrier.errors, carrier.errors
    assert len(bridged) == 1, server.tail()
    assert during and left == [], (during, left)
    moved_at = assert_moved_onto(carrier, rtpengine)
    through = carrier_heard(carrier, rtpengine, moved_at + 0.3)
    assert len(through) > 8000, len(through)
    assert abs(dominant_frequency(through) - CARRIER_TONE_HZ) < 10 and level_dbfs(through) > -30
    assert carrier.rejected == 0
    assert heard(windows_from(callee_sink, rtpengine.ports), CALLER_TONE_HZ, 4)
