"""Start-up and shutdown of the real process, with calls in progress."""

from __future__ import annotations

import json
import os
import signal
import time
import urllib.error
import urllib.request

import pytest

from .harness import STOP_GRACE
from .sipp import SippBackground, run_sipp

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


def _get(server, path: str) -> tuple[int, dict]:
    url = f"http://127.0.0.1:{server.http_port}{path}"
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


def test_health_and_readiness_answer(server):
    assert _get(server, "/health") == (200, {"status": "ok"})
    assert _get(server, "/ready") == (200, {"status": "ready", "live_calls": 0})


@pytest.mark.callswitch(extra_args=("--drain-timeout", "20"))
def test_sigterm_drains_new_calls_refused_current_ones_finish(server, sipp_bin, rtp_sink, tmp_path):
    """With --drain-timeout, SIGTERM turns new calls away (503, Retry-After) and
    readiness to 503, lets the current call run to its end, then exits by itself."""
    caller = SippBackground(
        "uac_bye.xml",
        server.sip_target,
        workdir=tmp_path / "current",
        sipp=sipp_bin,
        service="echo",
        keys={"sink_port": rtp_sink.port},
        pause_ms=3000,
        calls=1,
        timeout=30,
        trace_msg=True,
    )
    try:
        assert _wait_answered(server, 1, 10) == 1, server.tail()
        os.kill(server.pid, signal.SIGTERM)
        for _ in range(50):
            if server.events("draining"):
                break
            time.sleep(0.05)
        status, body = _get(server, "/ready")
        assert (status, body["status"], body["live_calls"]) == (503, "draining", 1)
        refused = run_sipp(
            "uac_503.xml", server.sip_target, workdir=tmp_path / "new", sipp=sipp_bin,
            service="echo", keys={"sink_port": rtp_sink.port}, calls=1, timeout=10,
            trace_msg=True,
        )  # fmt: skip
        assert refused.ok(1), f"a new call was not refused with 503\n{refused.describe()}"
        result = caller.wait(15)
    finally:
        caller.stop()
    assert result.ok(1), f"the current call did not finish normally\n{result.describe()}"
    started = time.monotonic()
    server.stopped_rc = server.proc.wait(10)  # it exits by itself once the call is over
    assert server.stopped_rc == 0
    assert time.monotonic() - started < 5
    assert not server.events("call.answered")[1:]  # the refused call was never answered


@pytest.mark.callswitch(extra_args=("--drain-timeout", "60"))
def test_a_second_sigterm_ends_a_drain_at_once(server, sipp_bin, rtp_sink, tmp_path):
    caller = SippBackground(
        "uac_wait_bye.xml",
        server.sip_target,
        workdir=tmp_path / "sipp",
        sipp=sipp_bin,
        service="echo",
        keys={"sink_port": rtp_sink.port},
        calls=1,
        timeout=40,
        trace_msg=True,
    )
    try:
        assert _wait_answered(server, 1, 10) == 1, server.tail()
        time.sleep(0.3)
        os.kill(server.pid, signal.SIGTERM)
        time.sleep(1.0)
        assert server.proc.poll() is None  # draining: the call holds it up
        os.kill(server.pid, signal.SIGTERM)
        server.stopped_rc = server.proc.wait(10)
        assert server.stopped_rc == 0
        result = caller.wait(15)
    finally:
        caller.stop()
    assert result.ok(1), f"the caller did not get its BYE\n{result.describe()}"
