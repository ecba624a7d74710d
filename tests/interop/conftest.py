"""Fixtures for the interop suite: a real callswitch process and real SIPp.

`server` is a `callswitch serve` process on free loopback ports, started for
the test (with the options of a `callswitch` marker, e.g.
`@pytest.mark.callswitch(rtp_size=2000)`) and stopped with SIGTERM after it.
The test fails if the server died or printed a traceback during it, or did
not exit 0 within 5 s of SIGTERM. Starting one takes a second or two, so tests
that need no fresh state can carry `callswitch_shared`: they then share one
process per module, each still failing if it died or printed a traceback
during that test; the SIGTERM check runs once, at the end of the module.

`sipp` runs SIPp against that server. Without SIPp the tests skip, except
under CI=true, where they fail.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.peers import in_ci, require  # noqa: F401 - imported from here by the tests

from .harness import CallswitchServer, ServerPool
from .rtp import RtpSink
from .sipp import SippResult, find_sipp, run_sipp


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "callswitch(**options): options for the interop server fixture"
    )
    config.addinivalue_line(
        "markers",
        "callswitch_shared: tests may share one server process per module (no fresh state)",
    )


@pytest.fixture(scope="session")
def sipp_bin() -> str:
    path = find_sipp()
    require(path is not None, "sipp is not installed (Debian package sip-tester)")
    assert path is not None
    return path


@pytest.fixture
def raw_sockets(request: pytest.FixtureRequest) -> None:
    """SIPp's play_pcap_audio writes UDP headers itself through a raw socket."""
    require(os.geteuid() == 0, "play_pcap_audio needs raw sockets (run as root)")


@pytest.fixture(scope="module")
def _server_pool(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerPool]:
    pool = ServerPool(tmp_path_factory.mktemp("callswitch"))
    yield pool
    problems = pool.close()
    if problems:
        pytest.fail("callswitch (shared by this module): " + "; ".join(problems), pytrace=False)


@pytest.fixture
def server(
    request: pytest.FixtureRequest, tmp_path: Path, _server_pool: ServerPool
) -> Iterator[CallswitchServer]:
    """A running callswitch of the test's own, stopped and judged at the end
    of the test; with the `callswitch_shared` marker (and no `callswitch`
    marker), one process shared by the module's tests."""
    marker = request.node.get_closest_marker("callswitch")
    shared = request.node.get_closest_marker("callswitch_shared") is not None
    if marker is None and shared:
        srv = _server_pool.acquire()
        first_line = len(srv.lines())
        yield srv
        problems = _server_pool.release(srv, first_line)
        if problems:
            pytest.fail("callswitch: " + "; ".join(problems) + f"\n{srv.tail(200)}", pytrace=False)
        return
    srv = CallswitchServer.start(tmp_path / "server", **(marker.kwargs if marker else {}))
    try:
        yield srv
    finally:
        problems = srv.stop()
        if problems:
            pytest.fail(
                "callswitch: " + "; ".join(problems) + f"\n{srv.tail(200)}",
                pytrace=False,
            )


@pytest.fixture
def rtp_sink() -> Iterator[RtpSink]:
    with RtpSink() as sink:
        yield sink


SippRunner = Callable[..., SippResult]


@pytest.fixture
def sipp(sipp_bin: str, server: CallswitchServer, tmp_path: Path) -> SippRunner:
    """`sipp(scenario, **options)` runs SIPp against the test's server.

    Options are those of `sipp.run_sipp` (transport="u1"/"t1", service,
    calls, rate, limit, keys, pause_ms, lost, timeout, cwd, ...). Small runs
    trace every message so a failure can show them.
    """

    def run(scenario: str | Path, **options) -> SippResult:
        options.setdefault("sipp", sipp_bin)
        options.setdefault("trace_msg", (options.get("calls") or 1) <= 20)
        return run_sipp(scenario, server.sip_target, workdir=tmp_path / "sipp", **options)

    return run


def wait_status(client, sid: str, wanted: set[str], timeout: float = 10.0) -> str:
    """The call's status once it is one of `wanted` (a call's end is stored a moment
    after its BYE is answered: the phone may know before the REST API does)."""
    deadline = time.monotonic() + timeout
    while (status := client.calls(sid).fetch().status) not in wanted:
        assert time.monotonic() < deadline, status
        time.sleep(0.05)
    return status


def sipp_failure(result: SippResult, server: CallswitchServer, what: str) -> str:
    """An assertion message with SIPp's logs and the server's last lines."""
    return f"{what}\n{result.describe()}\n{server.tail()}"
