"""The reserve of descriptors: a flood of connections from many hosts, none past
its per-host cap, against a node whose open-file limit is low (1024, set with
``prlimit`` on the server process). SIP over TCP takes only its share of the
descriptors, past it new connections are closed at once
(``sip.connections_total``), and calls over UDP, RTP ports and ``/health`` keep
working."""

from __future__ import annotations

import shutil
import sys

import pytest

from tests.interop.conftest import require
from tests.interop.harness import SERVER_CMD_ENV, CallswitchServer
from tests.interop.sipclient import udp_options

from .flood import Flood
from .node import health, metric, refused_events
from .test_connections import a_real_call

pytestmark = pytest.mark.solo  # load-sensitive: run alone, after the parallel run

LIMIT = 1024
RTP_PORTS = 200
RELAY_PORTS = 100
# callswitch/descriptors.py: 512 + the port ranges kept back, at least a quarter
# of the limit for connections, half of that for SIP.
SIP_SHARE = max(LIMIT - 512 - RTP_PORTS - RELAY_PORTS, LIMIT // 4) // 2
# More connections than the process may open at all, none past its host's cap
# (--max-connections-per-ip 100): without the reserve the node would run out.
SOURCES = [f"127.0.0.{i}" for i in range(2, 14)]
PER_SOURCE = 90


@pytest.fixture
def server(tmp_path, monkeypatch):
    prlimit = shutil.which("prlimit")
    require(prlimit is not None, "prlimit (util-linux) is not installed")
    monkeypatch.setenv(
        SERVER_CMD_ENV, f"{prlimit} --nofile={LIMIT}:{LIMIT} {sys.executable} -m callswitch"
    )
    srv = CallswitchServer.start(tmp_path / "server", rtp_size=RTP_PORTS, relay_size=RELAY_PORTS)
    try:
        yield srv
    finally:
        problems = srv.stop()
        if problems:
            pytest.fail("callswitch: " + "; ".join(problems) + f"\n{srv.tail(200)}")


def test_a_flood_from_many_hosts_leaves_descriptors_for_calls_and_health(server, sipp, rtp_sink):
    (budget,) = server.events("descriptors")
    assert (int(budget["limit"]), int(budget["sip_connections"])) == (LIMIT, SIP_SHARE)
    with Flood() as flood:
        for source in SOURCES:
            flood.open(server.sip_addr, source, PER_SOURCE)
        total = len(SOURCES) * PER_SOURCE
        assert flood.wait_until_open(SIP_SHARE, 15), f"{flood.open_count} of {total} open"
        flood.watch(1.0)
        assert flood.open_count == SIP_SHARE
        # UDP SIP, a call with its RTP ports, and the health check still work.
        assert udp_options(server.sip_addr) is not None
        for _ in range(3):
            a_real_call(sipp, server, rtp_sink)
        assert health(server) == 200
        assert metric(server, "callswitch_connections", listener="sip") == SIP_SHARE
        assert metric(server, "callswitch_connections_limit", listener="sip") == SIP_SHARE
        refused = total - SIP_SHARE
        assert metric(server, "callswitch_refusals_total", reason="sip.connections_total") == (
            refused
        )
    assert refused_events(server, "sip.connections") == []
    assert {e["source_ip"] for e in refused_events(server, "sip.connections_total")} <= set(SOURCES)
    assert not [line for line in server.lines() if "Too many open files" in line]
