"""Calls from SIPp to a real callswitch: signaling over UDP and TCP."""

from __future__ import annotations

import time

import pytest

from .conftest import sipp_failure
from .rtp import RtpSink

# No test here needs fresh server state: share one process per module.
pytestmark = [pytest.mark.callswitch_shared, pytest.mark.solo]  # solo: load-sensitive

TRANSPORTS = [pytest.param("u1", id="udp"), pytest.param("t1", id="tcp")]


def _media_stops(sink: RtpSink, *, settle: float = 0.3, watch: float = 1.0) -> int:
    """RTP packets that still arrive `settle` s after a call ended, over `watch` s."""
    time.sleep(settle)
    before = sink.count()
    time.sleep(watch)
    return sink.count() - before


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_options(sipp, server, transport):
    result = sipp("options.xml", transport=transport, calls=1, timeout=10)
    assert result.ok(1), sipp_failure(result, server, "OPTIONS did not get 200 with Allow: INVITE")


@pytest.mark.parametrize("user", ["echo", "tone"])
@pytest.mark.parametrize("transport", TRANSPORTS)
def test_call_hung_up_by_caller(sipp, server, rtp_sink, transport, user):
    result = sipp(
        "uac_bye.xml",
        transport=transport,
        service=user,
        keys={"sink_port": rtp_sink.port},
        pause_ms=500,
        calls=1,
        timeout=15,
    )
    assert result.ok(1), sipp_failure(result, server, f"call to {user} ended by SIPp's BYE failed")
    late = _media_stops(rtp_sink)
    assert late == 0, f"{late} RTP packets reached the caller more than 0.3 s after its BYE"
    if user == "tone":
        assert rtp_sink.count() >= 10, f"tone sent only {rtp_sink.count()} RTP packets in 0.5 s"


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_cancel_gets_487_and_invite_transaction_ends(sipp, server, rtp_sink, transport):
    result = sipp(
        "uac_cancel.xml",
        transport=transport,
        service="ringing",
        keys={"sink_port": rtp_sink.port},
        calls=1,
        timeout=15,
    )
    assert result.ok(1), sipp_failure(
        result, server, "INVITE to ringing, 180, CANCEL: expected 200 (CANCEL) and 487 (INVITE)"
    )
    if transport == "u1":
        counts = result.message_count("487")
        assert counts is not None, sipp_failure(result, server, "no 487 line on the SIPp screen")
        assert counts[1] == 0, sipp_failure(
            result, server, f"487 was retransmitted {counts[1]} times after SIPp's ACK"
        )
    assert rtp_sink.count() == 0, "a cancelled call sent RTP"


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_unknown_user_gets_404(sipp, server, rtp_sink, transport):
    result = sipp(
        "uac_404.xml",
        transport=transport,
        service="nobody-here",
        keys={"sink_port": rtp_sink.port},
        calls=1,
        timeout=15,
    )
    assert result.ok(1), sipp_failure(result, server, "INVITE to an unknown user: expected 404")
    if transport == "u1":
        counts = result.message_count("404")
        assert counts is not None and counts[1] == 0, sipp_failure(
            result, server, "404 was retransmitted after SIPp's ACK"
        )


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_several_calls_in_parallel(sipp, server, rtp_sink, transport):
    """20 overlapping calls on one SIPp socket: dialogs must not get mixed up."""
    result = sipp(
        "uac_bye.xml",
        transport=transport,
        service="echo",
        keys={"sink_port": rtp_sink.port},
        pause_ms=1000,
        calls=20,
        rate=40,
        limit=20,
        timeout=30,
    )
    assert result.ok(20), sipp_failure(result, server, "20 parallel calls to echo")


# 100 calls/s and 200 at once from one SIPp exceed the per-source defaults (20/s, 100):
# SIPp is a load generator here, a trusted peer.
@pytest.mark.callswitch(rtp_size=2000, extra_args=("--trusted-peer", "127.0.0.1/32"))
def test_1000_calls_with_20_percent_loss(sipp, server, rtp_sink):
    """RFC 3261 retransmissions on both sides must carry every call through
    20% packet loss (SIPp drops a fifth of what it sends and receives).

    SIPp gives up on an INVITE after 1 + max_invite_retrans sends and on a
    BYE after 1 + max_non_invite_retrans. A BYE attempt fails when the BYE or
    its 200 is lost (p = 0.36), an INVITE attempt about when the INVITE is
    lost (p = 0.2; the server retransmits its 200 by itself). With SIPp's
    defaults (5 and 7) a correct server would fail this test one run in four
    (1000 * 0.36**8); with 7 and 12 (13 BYEs span about Timer F, 64*T1)
    one run in several hundred.
    """
    calls = 1000
    result = sipp(
        "uac_bye.xml",
        transport="u1",
        service="echo",
        keys={"sink_port": rtp_sink.port},
        pause_ms=200,
        calls=calls,
        rate=100,
        limit=200,
        lost=20,
        timeout=100,
        trace_msg=False,
        extra=("-max_invite_retrans", "7", "-max_non_invite_retrans", "12"),
    )
    assert result.ok(calls), sipp_failure(
        result, server, f"{calls} calls at 20% loss: expected all to succeed"
    )
