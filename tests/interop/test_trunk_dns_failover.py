"""A carrier as carriers publish themselves: DNS NAPTR/SRV, several hosts, failover and
OPTIONS health checks.

A dnslib server on 127.0.0.1 (``--dns-server``) publishes the trunk's host name with
NAPTR → SRV records naming two hosts, each a SIPp on loopback: the first (priority
10) answers 503, the second (priority 20) answers. A REST call through the official
``twilio`` library must complete on the second, as one Call whose events name both
attempts and whose notifications carry the failover warning. Then a trunk with
``ping=1`` whose first host is dead: the OPTIONS pings mark it down (log line,
``/metrics``) and the next call goes straight to the live host.
"""

from __future__ import annotations

import re
import time
from urllib.parse import parse_qs

import httpx
import pytest
from twilio.rest import Client

from .audio import sine, ulaw_encode
from .conftest import require
from .dns_server import LocalDns
from .harness import CallswitchServer, free_port
from .rtp import RtpSink
from .sipp import SippBackground, find_sipp
from .test_voice_webhooks import LocalHttpClient, credentials
from .webhook_app import WebhookApp, twiml

TONE = ulaw_encode(sine(1000.0, 1.0, amplitude=0.3))


@pytest.fixture
def app():
    with WebhookApp() as application:
        application.routes["/answer"] = lambda r: twiml('<Pause length="1"/>')
        application.routes["/status"] = lambda r: (204, "text/plain", b"")
        yield application


def sipp_host(workdir, scenario: str, port: int, sink_port: int, calls: int | None = 1):
    sipp = find_sipp()
    require(sipp is not None, "sipp is not installed (Debian package sip-tester)")
    return SippBackground(
        scenario,
        None,
        workdir=workdir,
        sipp=sipp,
        local_port=port,
        calls=calls,
        timeout=60,
        trace_msg=True,
        keys={"sink_port": sink_port},
        files={"tone.ulaw": TONE},
    )


def rest_client(server: CallswitchServer) -> Client:
    sid, token = credentials(server)
    return Client(sid, token, http_client=LocalHttpClient(f"http://127.0.0.1:{server.http_port}"))


def place_call(client: Client, app: WebhookApp) -> str:
    call = client.calls.create(
        to="+15550001234",
        from_="+15005550006",
        url=app.url("/answer"),
        status_callback=app.url("/status"),
        status_callback_event=["completed"],
    )
    return call.sid


def wait_completed(app: WebhookApp, count: int = 1) -> str:
    [*_, last] = app.wait_for("/status", count, timeout=30)
    return last.field("CallStatus")


def invites(client: Client, sid: str) -> list[tuple[str, int | None, dict]]:
    """The INVITE events of the call: (Hop, status, parameters), oldest first."""
    found = []
    for event in client.calls(sid).events.list():
        request = event.request
        if request["method"] != "INVITE":
            continue
        params = request["parameters"]
        status = event.response["response_code"] if event.response else None
        found.append((params["Hop"], status, params))
    return found


def test_naptr_srv_failover_from_a_503_host_to_the_next(tmp_path, app):
    first, second = free_port(), free_port()
    zone = f"""
carrier.test. 60 IN NAPTR 10 10 "S" "SIP+D2U" "" _sip._udp.carrier.test.
carrier.test. 60 IN NAPTR 20 10 "S" "SIP+D2T" "" _sip._tcp.carrier.test.
_sip._udp.carrier.test. 60 IN SRV 10 0 {first} busy.carrier.test.
_sip._udp.carrier.test. 60 IN SRV 20 0 {second} spare.carrier.test.
busy.carrier.test. 60 IN A 127.0.0.1
spare.carrier.test. 60 IN A 127.0.0.1
"""
    with LocalDns(zone) as dns, RtpSink() as sink:
        busy = sipp_host(tmp_path / "busy", "uas_503.xml", first, sink.port)
        spare = sipp_host(tmp_path / "spare", "uas_answer_wait_bye.xml", second, sink.port)
        server = CallswitchServer.start(
            tmp_path / "server",
            extra_args=(
                "--trunk",
                "carrier=sip:carrier.test;prefix=+1555",
                "--dns-server",
                f"127.0.0.1:{dns.port}",
            ),
        )
        try:
            client = rest_client(server)
            sid = place_call(client, app)
            busy_result = busy.wait(30)
            spare_result = spare.wait(30)
            assert busy_result.ok(1), f"{busy_result.describe()}\n{server.tail()}"
            assert spare_result.ok(1), f"{spare_result.describe()}\n{server.tail()}"
            assert wait_completed(app) == "completed"
            record = client.calls(sid).fetch()
            deadline = time.monotonic() + 10
            while len(attempts := invites(client, sid)) < 2:  # written off the call's path
                assert time.monotonic() < deadline, attempts
                time.sleep(0.1)
            notifications = client.calls(sid).notifications.list()
        finally:
            problems = server.stop()
        assert not problems, problems
    assert ("carrier.test", "NAPTR") in dns.queries
    assert ("_sip._udp.carrier.test", "SRV") in dns.queries
    assert record.status == "completed" and int(record.duration) >= 1
    # One Call, two attempts: the 503 from the priority-10 host, the answer of the next.
    assert [(hop, status) for hop, status, _ in attempts] == [
        (f"udp:127.0.0.1:{first}", 503),
        (f"udp:127.0.0.1:{second}", 200),
    ]
    assert [p["Host"] for _, _, p in attempts] == ["busy.carrier.test", "spare.carrier.test"]
    assert all(p["Trunk"] == "carrier" for _, _, p in attempts)
    [warning] = [n for n in notifications if n.error_code == "32011"]
    text = parse_qs(warning.message_text)
    assert text["hop"] == [f"udp:127.0.0.1:{first}"] and text["sipResponseCode"] == ["503"]
    assert text["LogLevel"] == ["WARN"] and warning.log == "1"


def received(result, method: str) -> int:
    """How many ``method`` requests the SIPp scenario received (its screen's count)."""
    found = re.search(rf"-+> {method}\s+(\d+)", result.screen)
    return int(found.group(1)) if found else 0


def metric_up(server: CallswitchServer, port: int) -> str | None:
    text = httpx.get(f"http://127.0.0.1:{server.http_port}/metrics").text
    for line in text.splitlines():
        if line.startswith("callswitch_trunk_host_up{") and f'host="127.0.0.1:{port}"' in line:
            return line.rsplit(" ", 1)[1]
    return None


def test_options_pings_mark_a_dead_host_down_and_calls_skip_it(tmp_path, app):
    dead, live = free_port(), free_port()
    with RtpSink() as sink:
        host = sipp_host(
            tmp_path / "live", "uas_options_answer_wait_bye.xml", live, sink.port, calls=None
        )
        server = CallswitchServer.start(
            tmp_path / "server",
            extra_args=(
                "--trunk",
                f"carrier=sip:127.0.0.1:{dead};host=127.0.0.1:{live};prefix=+1555;ping=1",
            ),
        )
        try:
            downs = server.wait_events("trunk.host_down", 20)
            assert downs, server.tail()
            [down] = downs
            assert down["host"] == f"127.0.0.1:{dead}" and down["trunk"] == "carrier"
            assert metric_up(server, dead) == "0.0"
            assert metric_up(server, live) == "1.0"
            client = rest_client(server)
            started = time.monotonic()
            sid = place_call(client, app)
            assert wait_completed(app) == "completed"
            took = time.monotonic() - started
            deadline = time.monotonic() + 10
            while not (attempts := invites(client, sid)):
                assert time.monotonic() < deadline
                time.sleep(0.1)
        finally:
            problems = server.stop()
            result = host.stop()
        assert not problems, problems
    # Straight to the live host: no INVITE to the dead one, no wait for it.
    assert [(hop, status) for hop, status, _ in attempts] == [(f"udp:127.0.0.1:{live}", 200)]
    assert took < 15
    assert received(result, "INVITE") == 1, result.describe()
    assert received(result, "OPTIONS") >= 1, result.describe()
    assert result.failed == 0, result.describe()
    assert not server.events("trunk.host_up")  # the dead host never answered


def test_each_trunk_tried_shows_the_caller_and_offers_srtp_its_own_way(tmp_path, app):
    """A call failing over from one trunk to the next: each INVITE follows its own
    trunk's caller ID, P-Asserted-Identity and SDES-SRTP settings."""
    from .test_trunk_outbound_proxy import headers, received

    first, second = free_port(), free_port()
    with RtpSink() as sink:
        busy = sipp_host(tmp_path / "busy", "uas_503.xml", first, sink.port)
        spare = sipp_host(tmp_path / "spare", "uas_answer_wait_bye.xml", second, sink.port)
        server = CallswitchServer.start(
            tmp_path / "server",
            extra_args=(
                "--trunk",
                f"secure=sip:127.0.0.1:{first};prefix=+1555;caller_id=+15550100;pai;srtp=mandatory",
                "--trunk",
                f"plain=sip:127.0.0.1:{second};prefix=+1555;order=1;caller_id=+15550200",
            ),
        )
        try:
            place_call(rest_client(server), app)
            busy_result = busy.wait(30)
            spare_result = spare.wait(30)
            assert busy_result.ok(1), f"{busy_result.describe()}\n{server.tail()}"
            assert spare_result.ok(1), f"{spare_result.describe()}\n{server.tail()}"
            assert wait_completed(app) == "completed"
        finally:
            problems = server.stop()
        assert not problems, problems
    [to_secure] = received(busy_result, "INVITE")
    [to_plain] = received(spare_result, "INVITE")
    # The first trunk: its caller ID, asserted, SRTP required (two SDES keys).
    assert "<sip:+15550100@" in headers(to_secure, "from")[0]
    [asserted] = headers(to_secure, "p-asserted-identity")
    assert asserted.startswith("<sip:+15550100@127.0.0.1:")
    assert any(line.startswith("m=audio") and "RTP/SAVP" in line for line in to_secure)
    assert sum(line.startswith("a=crypto:") for line in to_secure) == 2
    # The next trunk: its own caller ID, no assertion, plain RTP without keys.
    assert "<sip:+15550200@" in headers(to_plain, "from")[0]
    assert headers(to_plain, "p-asserted-identity") == []
    assert any(line.startswith("m=audio") and "RTP/AVP " in line for line in to_plain)
    assert not any(line.startswith("a=crypto:") for line in to_plain)
