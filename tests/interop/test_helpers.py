"""The interop suite's own tools, checked without a server."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

from .audio import dominant_frequency, level_dbfs, sine, ulaw_decode, ulaw_encode
from .conftest import require
from .harness import parse_logfmt
from .media_checks import (
    echo_problems,
    echo_report,
    echo_signal,
    rtp_stream_problems,
    write_echo_pcap,
)
from .pcap import read_pcap, write_pcap
from .rtp import RtpPacket
from .sipp import _last_screen, _last_stats_row


def _audioop():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        try:
            import audioop
        except ImportError:  # gone in Python 3.13
            require(False, "audioop is not available (Python 3.13+)")
    return audioop


def test_ulaw_matches_audioop():
    audioop = _audioop()
    codes = bytes(range(256))
    assert np.array_equal(ulaw_decode(codes), np.frombuffer(audioop.ulaw2lin(codes, 2), np.int16))
    pcm = np.arange(-32768, 32768, dtype=np.int16)
    assert ulaw_encode(pcm) == audioop.lin2ulaw(pcm.tobytes(), 2)


def test_frequency_and_level():
    tone = sine(1000, 1.0, amplitude=0.5)
    assert abs(dominant_frequency(ulaw_decode(ulaw_encode(tone))) - 1000) < 0.5
    assert abs(level_dbfs(tone) - (20 * np.log10(0.5) - 3.01)) < 0.1
    assert abs(dominant_frequency(sine(733.3, 0.1)) - 733.3) < 1


def test_logfmt():
    line = 'ts=1 event=ready sip_udp=127.0.0.1:5060 msg="hello world" flag'
    assert parse_logfmt(line) == {
        "ts": "1",
        "event": "ready",
        "sip_udp": "127.0.0.1:5060",
        "msg": "hello world",
        "flag": "",
    }


def test_rtp_roundtrip():
    pkt = RtpPacket(0, 65535, 2**32 - 1, 0xDEADBEEF, b"\xff" * 160, marker=True)
    assert RtpPacket.parse(pkt.serialize()) == pkt


def test_pcap_roundtrip(tmp_path):
    path = tmp_path / "x.pcap"
    payloads = [(i * 0.02, bytes([i]) * (i + 1)) for i in range(10)]
    assert write_pcap(path, payloads) == 10
    back = read_pcap(path)
    assert [p for _, p in back] == [p for _, p in payloads]
    assert back[1][0] - back[0][0] == pytest.approx(0.02, abs=1e-6)


def test_echo_signal_checks_pass_on_itself(tmp_path):
    frames = echo_signal()
    write_echo_pcap(tmp_path / "e.pcap", frames)
    packets = [RtpPacket.parse(d, t) for t, d in read_pcap(tmp_path / "e.pcap")]
    report = echo_report(frames, packets)
    assert echo_problems(report) == []
    assert rtp_stream_problems(packets) == []
    assert echo_problems(echo_report(frames, packets[::-1]))  # reversed order is caught
    assert echo_problems(echo_report(frames, packets[:30]))  # a short return is caught


def test_sipp_stats_and_screen_parsing(tmp_path):
    stats = tmp_path / "s.csv"
    stats.write_text("A;SuccessfulCall(P);SuccessfulCall(C);\n1;0;0;\n2;3;7;\n")
    assert _last_stats_row(stats)["SuccessfulCall(C)"] == "7"
    dump = "x\n----- Scenario Screen -------- [1-9]: Change Screen --\n  INVITE 1\n"
    assert "INVITE 1" in _last_screen(dump)
