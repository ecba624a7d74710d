"""``/metrics`` during and after a real call: SIPp calls a number whose TwiML
says a word, pauses and hangs up, while the test scrapes the server and reads the text
with prometheus-client's own parser (an independent reader of the format)."""

from __future__ import annotations

import json
import re
import time
import urllib.request
from pathlib import Path

from prometheus_client.parser import text_string_to_metric_families

from .audio import sine, ulaw_encode
from .conftest import require
from .rtp import RtpSink
from .sipp import SippBackground, find_sipp
from .test_voice_webhooks import rest_client
from .webhook_app import WebhookApp, twiml

NUMBER = "+15005550060"


def scrape(server) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Every sample of /metrics, keyed by name and sorted labels."""
    url = f"http://127.0.0.1:{server.http_port}/metrics"
    with urllib.request.urlopen(url, timeout=5) as response:
        assert response.status == 200
        assert response.headers["Content-Type"].startswith("text/plain; version=0.0.4")
        text = response.read().decode()
    samples = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            samples[sample.name, tuple(sorted(sample.labels.items()))] = sample.value
    return samples


def value(samples, name: str, **labels: str) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


def total(samples, name: str) -> float:
    return sum(v for (n, _), v in samples.items() if n == name)


def test_a_call_shows_in_the_metrics_while_it_lasts_and_in_the_totals_after(server, tmp_path):
    sipp = find_sipp()
    require(sipp is not None, "sipp is not installed (Debian package sip-tester)")
    client = rest_client(server)
    before = scrape(server)
    with WebhookApp() as app, RtpSink() as sink:
        app.routes["/voice"] = lambda r: twiml('<Say>Hello.</Say><Pause length="3"/><Hangup/>')
        client.incoming_phone_numbers.create(phone_number=NUMBER, voice_url=app.url("/voice"))
        caller = SippBackground(
            "uac_tone_wait_bye.xml",
            server.sip_target,
            workdir=tmp_path / "caller",
            sipp=sipp,
            service=NUMBER.lstrip("+"),
            keys={"sink_port": sink.port},
            calls=1,
            timeout=30,
            trace_msg=True,
            files={"tone.ulaw": ulaw_encode(sine(1000.0, 1.0, amplitude=0.2))},
        )
        try:
            time.sleep(2.0)  # answered, the tone flowing, the Pause running
            during = scrape(server)
            result = caller.wait(20)
        finally:
            caller.stop()
    assert result.ok(1), f"{result.describe()}\n{server.tail()}"
    time.sleep(0.5)
    after = scrape(server)

    assert value(during, "callswitch_calls_active", direction="inbound", leg="sip") == 1
    assert value(during, "callswitch_rtp_sessions", codec="PCMU") == 1
    received = value(during, "callswitch_rtp_packets_received_total", codec="PCMU")
    assert 50 <= received <= 150  # 1.x s of 20 ms packets since the answer
    assert value(during, "callswitch_rtp_packets_lost_total", codec="PCMU") == 0
    assert 1.0 <= value(during, "callswitch_rtp_mos_estimate", codec="PCMU") <= 4.5
    assert value(during, "callswitch_rtp_mos_estimate", codec="PCMU") > 4.0  # loopback: clean
    assert 0 <= value(during, "callswitch_rtp_jitter_seconds", codec="PCMU") < 0.02
    grew = value(during, "callswitch_sip_requests_received_total", method="INVITE")
    assert grew - value(before, "callswitch_sip_requests_received_total", method="INVITE") == 1
    assert value(during, "callswitch_sip_responses_sent_total", method="INVITE", code="200") >= 1
    assert value(during, "callswitch_webhook_duration_seconds_count", outcome="ok") >= 1

    assert total(after, "callswitch_calls_active") == 0
    assert value(after, "callswitch_calls_total", direction="inbound", status="completed") == (
        value(before, "callswitch_calls_total", direction="inbound", status="completed") + 1
    )
    # The ended session's packets stay counted: counters never go back.
    assert value(after, "callswitch_rtp_packets_received_total", codec="PCMU") >= received + 50
    assert value(after, "callswitch_rtp_sessions", codec="PCMU") == 0
    assert value(after, "callswitch_sip_requests_sent_total", method="BYE") >= 1
    assert value(after, "callswitch_sip_responses_received_total", method="BYE", code="200") >= 1
    assert ("callswitch_media_clock_skipped_ticks_total", ()) in after


def served_families(server) -> set[str]:
    url = f"http://127.0.0.1:{server.http_port}/metrics"
    with urllib.request.urlopen(url, timeout=5) as response:
        text = response.read().decode()
    names = set()
    for family in text_string_to_metric_families(text):
        names.add(family.name)
        names.update(sample.name for sample in family.samples)
        if family.type == "counter":
            names.add(family.name + "_total")
        if family.type == "histogram":
            names.update(family.name + suffix for suffix in ("_bucket", "_count", "_sum"))
    return names


def test_the_dashboard_and_the_docs_name_only_metrics_that_are_served(server):
    served = served_families(server)
    docs = Path(__file__).resolve().parents[2] / "docs"
    dashboard = json.loads((docs / "grafana-dashboard.json").read_text())
    queries = " ".join(t["expr"] for p in dashboard["panels"] for t in p["targets"])
    named = set(re.findall(r"callswitch_[a-z_]+", queries))
    table = (docs / "metrics.md").read_text()
    documented = set(re.findall(r"`(callswitch_[a-z_]+)`", table))
    assert named and documented
    assert named <= served, sorted(named - served)
    assert documented <= served, sorted(documented - served)


def test_messages_by_direction_and_status(server):
    """A message to one of our own numbers goes through the local carrier: the outbound
    one counts queued, sending, sent and delivered, the number's inbound one received."""
    client = rest_client(server)
    number = "+15005550061"
    client.incoming_phone_numbers.create(phone_number=number)
    before = scrape(server)
    message = client.messages.create(to=number, from_="+15005550062", body="counted")
    deadline = time.monotonic() + 15
    while client.messages(message.sid).fetch().status != "delivered":
        assert time.monotonic() < deadline, server.tail()
        time.sleep(0.1)
    after = scrape(server)
    for status in ("queued", "sending", "sent", "delivered"):
        grew = value(after, "callswitch_messages_total", direction="outbound-api", status=status)
        was = value(before, "callswitch_messages_total", direction="outbound-api", status=status)
        assert grew - was == 1, status
    received = value(after, "callswitch_messages_total", direction="inbound", status="received")
    assert (
        received
        - value(before, "callswitch_messages_total", direction="inbound", status="received")
        == 1
    )
    assert ("callswitch_messages_inflight", ()) in after
