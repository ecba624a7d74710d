"""Start-up and shutdown of the real process, with calls in progress."""

from __future__ import annotations

import time

import pytest

from .harness import STOP_GRACE
from .sipp import SippBackground

TRANSPORTS = [pytest.param("u1", id="udp"), pytest.param("t1", id="tcp")]
CALLS = 5


def _wait_answered(server, count: int, timeout: float) -> int:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        answered = len(server.events("call.answered"))
        if answered >= count:
            return answered
        time.sleep(0.05)
    return len(server.events("call.answered"))


def test_ready_line_names_the_listeners(server):
    assert server.ready.get("event") == "ready"
    assert server.ready.get("sip_udp") == server.sip_target
    assert server.ready.get("sip_tcp") == server.sip_target


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_sigterm_hangs_up_calls_with_bye(server, sipp_bin, rtp_sink, tmp_path, transport):
    """SIGTERM with calls up: each caller gets a BYE, the process exits 0."""
    caller = SippBackground(
        "uac_wait_bye.xml",
        server.sip_target,
        workdir=tmp_path / "sipp",
        sipp=sipp_bin,
        transport=transport,
        service="echo",
        keys={"sink_port": rtp_sink.port},
        calls=CALLS,
        rate=50,
        limit=CALLS,
        timeout=40,
        trace_msg=True,
    )
    try:
        answered = _wait_answered(server, CALLS, 10)
        assert answered >= CALLS, f"only {answered} of {CALLS} calls answered\n{server.tail()}"
        time.sleep(0.3)  # let the ACKs land
        problems = server.stop()
        assert not problems, "; ".join(problems) + f"\n{server.tail()}"
        result = caller.wait(15)
    finally:
        caller.stop()
    assert result.ok(CALLS), (
        f"callers did not all get a BYE when callswitch stopped\n{result.describe()}\n"
        f"{server.tail()}"
    )


def test_sigterm_with_vanished_peers_still_exits(server, sipp_bin, rtp_sink, tmp_path):
    """Callers that vanished cannot answer the shutdown BYEs; callswitch must
    not wait out Timer F (32 s) for each before it exits."""
    caller = SippBackground(
        "uac_wait_bye.xml",
        server.sip_target,
        workdir=tmp_path / "sipp",
        sipp=sipp_bin,
        transport="u1",
        service="echo",
        keys={"sink_port": rtp_sink.port},
        calls=CALLS,
        rate=50,
        limit=CALLS,
        timeout=40,
    )
    try:
        answered = _wait_answered(server, CALLS, 10)
        assert answered >= CALLS, f"only {answered} of {CALLS} calls answered\n{server.tail()}"
        time.sleep(0.3)
    finally:
        caller.kill()
        caller.stop()
    problems = server.stop()
    assert not problems, (
        "; ".join(problems)
        + f" (SIGTERM with {CALLS} calls whose peer is gone; the harness allows "
        + f"{STOP_GRACE:.0f} s)\n{server.tail()}"
    )
