"""Half-sent HTTP requests and connection floods against the HTTP port.

300 requests that never finish their headers, from four hosts, are all closed
about 10 s after they began (they used to be held for good), with
``http.timeout`` logged once per host; a host past ``--max-connections-per-ip``
has its extra connections closed at once (``http.connections``); ``/health``
answers throughout.
"""

from __future__ import annotations

import time

from .flood import Flood
from .node import health, metric, refused_events

HEADER_TIMEOUT = 10.0  # callswitch/http.py's HEADER_TIMEOUT
HALF_REQUEST = b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\nUser-Agent: slow"
SOURCES = [f"127.0.0.{i}" for i in range(2, 6)]


def test_half_sent_requests_are_closed_within_the_header_timeout(server):
    target = ("127.0.0.1", server.http_port)
    with Flood() as flood:
        started = time.monotonic()
        for source in SOURCES:
            flood.open(target, source, 75, send=HALF_REQUEST)
        flood.watch(1.0)
        assert flood.open_count == 300, "none is past its host's cap: all are held for now"
        assert health(server) == 200
        assert flood.wait_until_open(0, HEADER_TIMEOUT + 15), (
            f"{flood.open_count} half-sent requests still open after "
            f"{time.monotonic() - started:.0f} s"
        )
        took = time.monotonic() - started
    assert HEADER_TIMEOUT - 1 <= took <= HEADER_TIMEOUT + 15
    assert {e["source_ip"] for e in refused_events(server, "http.timeout")} == set(SOURCES)
    assert metric(server, "callswitch_refusals_total", reason="http.timeout") == 300
    assert health(server) == 200


def test_a_host_past_its_cap_has_its_extra_connections_closed_at_once(server):
    target = ("127.0.0.1", server.http_port)
    with Flood() as flood:
        flood.open(target, "127.0.0.6", 130)
        assert flood.wait_until_open(100, 5), f"{flood.open_count} of 130 open"
        flood.watch(0.5)
        assert flood.open_count == 100
        assert health(server) == 200
    lines = refused_events(server, "http.connections")
    assert [e["source_ip"] for e in lines] == ["127.0.0.6"]
