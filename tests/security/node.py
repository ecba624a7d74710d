"""What the attack tests ask of the node: its health, its log, its counters, its size.

Every attack ends with :func:`still_serving`: the node answers SIP OPTIONS over UDP
and ``GET /health``. Refusals are read from the log (``event=security.refused``) or
from ``/metrics`` (``callswitch_refusals_total``), through the interop suite's
scraper.
"""

from __future__ import annotations

import json
import urllib.request

from tests.interop.harness import CallswitchServer
from tests.interop.sipclient import udp_options
from tests.interop.test_metrics import scrape, value

__all__ = [
    "health",
    "metric",
    "refusal_counts",
    "refused_events",
    "refused_sources",
    "rss_kb",
    "still_serving",
    "wait_event",
]


def health(server: CallswitchServer, timeout: float = 5.0) -> int:
    """``GET /health``'s status; its body must say ok."""
    url = f"http://127.0.0.1:{server.http_port}/health"
    with urllib.request.urlopen(url, timeout=timeout) as response:
        assert json.loads(response.read()) == {"status": "ok"}
        return response.status


def still_serving(server: CallswitchServer) -> None:
    answer = udp_options(server.sip_addr)
    assert answer is not None and answer.status == 200, server.tail()
    assert health(server) == 200


def wait_event(server: CallswitchServer, name: str, timeout: float = 10.0) -> list[dict[str, str]]:
    """The server's log events called ``name``, once at least one is there (its log is
    read by a thread, a moment behind the wire); empty after ``timeout``."""
    return server.wait_events(name, timeout)


def refused_events(server: CallswitchServer, reason: str) -> list[dict[str, str]]:
    return [e for e in server.events("security.refused") if e.get("reason") == reason]


def refused_sources(server: CallswitchServer, reason: str) -> set[str]:
    return {e.get("source_ip", "") for e in refused_events(server, reason)}


def metric(server: CallswitchServer, name: str, **labels: str) -> float:
    return value(scrape(server), name, **labels)


def refusal_counts(server: CallswitchServer) -> dict[str, float]:
    """``callswitch_refusals_total`` by reason."""
    return {
        dict(labels)["reason"]: count
        for (name, labels), count in scrape(server).items()
        if name == "callswitch_refusals_total"
    }


def rss_kb(pid: int) -> int:
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise AssertionError(f"no VmRSS for pid {pid}")
