"""The server's audio, received on a socket the test owns and measured.

SIPp's SDP names the test's RTP sink as the caller's media address, so the
RTP that callswitch sends to the caller arrives here, where it is decoded
with the suite's own G.711 code and checked.
"""

from __future__ import annotations

import time
import warnings

import numpy as np
import pytest

from .audio import dominant_frequency
from .conftest import sipp_failure
from .media_checks import (
    PCMU,
    echo_problems,
    echo_report,
    echo_signal,
    rtp_stream_problems,
    tone_report,
    write_echo_pcap,
)

# No test here needs fresh server state: share one process per module.
pytestmark = pytest.mark.callswitch_shared

TRANSPORTS = [pytest.param("u1", id="udp"), pytest.param("t1", id="tcp")]

TONE_HZ = 1000.0
PAUSE_MS = 1500  # tone recorded before SIPp sends the digit


@pytest.mark.usefixtures("raw_sockets")
@pytest.mark.parametrize("transport", TRANSPORTS)
def test_tone_is_1khz_and_dtmf_ends_the_call(sipp, server, rtp_sink, transport):
    """`tone` plays 1 kHz PCMU; an RFC 4733 digit makes it send BYE."""
    started = time.monotonic()
    result = sipp(
        "uac_dtmf_server_bye.xml",
        transport=transport,
        service="tone",
        keys={"sink_port": rtp_sink.port},
        pause_ms=PAUSE_MS,
        calls=1,
        timeout=20,
    )
    elapsed = time.monotonic() - started
    packets = rtp_sink.packets()
    problems = []
    if not result.ok(1):
        problems.append("SIPp's call failed: the server's BYE after the DTMF digit did not come")
    # BYE within a few seconds of the digit (the pause is the call's first part).
    if elapsed > PAUSE_MS / 1000 + 4.0:
        problems.append(f"the call took {elapsed:.1f} s: BYE came more than 4 s after the digit")
    stream = [p for p in packets if p.payload_type == PCMU]
    problems += rtp_stream_problems(stream)
    report = tone_report(stream)
    if abs(report.frequency - TONE_HZ) > 10:
        problems.append(f"tone peak at {report.frequency:.1f} Hz, expected {TONE_HZ:.0f} +- 10")
    if not -20.0 <= report.level_dbfs <= -3.0:
        problems.append(f"tone level {report.level_dbfs:.1f} dBFS, expected -20 to -3")
    if report.seconds < 0.9:
        problems.append(f"only {report.seconds:.2f} s of tone to measure")
    time.sleep(0.3)
    before = rtp_sink.count()
    time.sleep(1.0)
    if rtp_sink.count() != before:
        problems.append(f"{rtp_sink.count() - before} RTP packets after the server's BYE")
    assert not problems, sipp_failure(result, server, "; ".join(problems) + f"\ntone: {report}")


@pytest.mark.usefixtures("raw_sockets")
@pytest.mark.parametrize("transport", TRANSPORTS)
def test_echo_returns_the_callers_audio(sipp, server, rtp_sink, transport, tmp_path):
    """`echo` sends back what SIPp plays: 730 Hz then 1330 Hz, frame for frame."""
    frames = echo_signal()
    workdir = tmp_path / "echo-media"
    workdir.mkdir()
    write_echo_pcap(workdir / "echo_signal.pcap", frames)
    result = sipp(
        "uac_echo_pcap.xml",
        transport=transport,
        service="echo",
        keys={"sink_port": rtp_sink.port},
        pause_ms=3000,  # 2 s of signal plus room for a jitter buffer
        calls=1,
        timeout=20,
        cwd=workdir,
    )
    assert result.ok(1), sipp_failure(result, server, "echo call with a played pcap failed")
    rtp_sink.wait_quiet(0.5, 3.0)
    packets = rtp_sink.packets()
    report = echo_report(frames, packets)
    problems = echo_problems(report) + rtp_stream_problems(
        [p for p in packets if p.payload_type == PCMU]
    )
    assert not problems, sipp_failure(result, server, "; ".join(problems) + f"\necho: {report}")


def test_delayed_offer_is_answered_in_the_ack(sipp, server, rtp_sink):
    """INVITE without SDP: the 200 OK offers, the ACK answers PCMA, the tone flows in PCMA."""
    result = sipp(
        "uac_late_offer.xml",
        service="tone",
        keys={"sink_port": rtp_sink.port},
        pause_ms=1500,
        calls=1,
        timeout=20,
    )
    assert result.ok(1), sipp_failure(result, server, "the delayed-offer call failed")
    packets = [p for p in rtp_sink.packets() if p.payload_type == 8]
    assert len(packets) >= 50, f"{len(packets)} PCMA packets"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        import audioop

    samples = np.frombuffer(
        audioop.alaw2lin(b"".join(p.payload for p in packets[5:55]), 2), dtype="<i2"
    )
    assert abs(dominant_frequency(samples) - TONE_HZ) <= 10
