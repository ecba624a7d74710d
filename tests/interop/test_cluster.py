"""Two callswitch nodes on one PostgreSQL behind Kamailio (deploy/kamailio/).

SIPp places 200 calls through Kamailio, which spreads them over both nodes by
Call-ID. Mid-load one node is killed (SIGKILL, by its PID): only the calls it held
are lost, every call placed after Kamailio noticed goes to the other node, and once
the lease is over the Calls API of the surviving node lists every call with a final
status (the lost ones failed). REST updates sent to one node for calls the other
holds reach it; a draining node refuses REST creates (503) and Kamailio sends the
INVITEs it refuses (503) to the other node; a killed node restarted under its id
fails and bills the call it held.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import re
import signal
import threading
import time
import urllib.error
import urllib.request
from collections import Counter
from datetime import UTC, datetime

import pytest
from sqlalchemy import select
from twilio.base.exceptions import TwilioRestException

from control_api.store import Store
from control_api.store.schema import calls
from tests.peers import require

from .harness import CallswitchServer
from .kamailio import Kamailio, find_kamailio
from .sipp import run_sipp
from .test_voice_webhooks import credentials, rest_client
from .webhook_app import WebhookApp, twiml

pytestmark = pytest.mark.solo  # load-sensitive: run alone, after the parallel run

NUMBER = "+15005550177"
CALLS = 200
RATE = 20  # calls per second
HOLD_S = 2  # each call's <Pause>
LEASE_S = 3
KILL_AFTER_S = 4.0
FINAL = {"completed", "failed", "busy", "no-answer", "canceled"}


def _node_args(url: str, node_id: str) -> tuple[str, ...]:
    return ("--database-url", url, "--node-id", node_id, "--node-lease", str(LEASE_S))


def _ready(server: CallswitchServer) -> dict:
    with urllib.request.urlopen(f"http://127.0.0.1:{server.http_port}/ready", timeout=5) as r:
        return json.load(r)


def _stored_calls(url: str) -> list:
    async def read():
        store = await Store.open(url, pooled=False)
        try:
            return await store.db.run(lambda c: c.execute(select(calls)).all())
        finally:
            await store.close()

    return asyncio.run(read())


def test_two_nodes_behind_kamailio_lose_only_the_killed_nodes_calls(
    pg_cluster, sipp_bin, rtp_sink, tmp_path
):
    binary = find_kamailio()
    require(binary is not None, "kamailio is not installed (Debian package kamailio)")
    url = pg_cluster.create_database("cluster")
    servers: list[CallswitchServer] = []
    proxy = None
    try:
        with WebhookApp() as app:
            app.routes["/voice"] = lambda r: twiml(f'<Say>Hello.</Say><Pause length="{HOLD_S}"/>')
            app.routes["/status"] = lambda r: (204, "text/plain", b"")
            a = CallswitchServer.start(tmp_path / "a", extra_args=_node_args(url, "node-a"))
            servers.append(a)
            b = CallswitchServer.start(tmp_path / "b", extra_args=_node_args(url, "node-b"))
            servers.append(b)
            sid, token = credentials(a)
            rest_client(a, sid, token).incoming_phone_numbers.create(
                phone_number=NUMBER, voice_url=app.url("/voice"), status_callback=app.url("/status")
            )
            proxy = Kamailio.start(
                binary, tmp_path / "kamailio", [a.sip_addr, b.sip_addr], probe_interval=1
            )

            outcome = {}

            def place_calls():
                outcome["sipp"] = run_sipp(
                    "uac_cluster.xml",
                    proxy.target,
                    workdir=tmp_path / "sipp",
                    sipp=sipp_bin,
                    service=NUMBER.lstrip("+"),
                    keys={"sink_port": rtp_sink.port},
                    calls=CALLS,
                    rate=RATE,
                    limit=150,
                    timeout=60,
                    extra=("-trace_logs",),
                )

            sipp = threading.Thread(target=place_calls)
            sipp.start()
            started = time.monotonic()
            # Kill node A mid-load (some 80 calls placed), while both nodes hold calls.
            deadline = started + 20
            while time.monotonic() < deadline:
                busy = _ready(a)["live_calls"] >= 5 and _ready(b)["live_calls"] >= 5
                if busy and time.monotonic() - started >= KILL_AFTER_S:
                    break
                time.sleep(0.1)
            else:
                raise AssertionError("the calls were not spread over both nodes\n" + proxy.tail())
            os.kill(a.pid, signal.SIGKILL)
            killed_at = datetime.now(UTC)
            a.proc.wait(5)
            sipp.join(90)
            assert not sipp.is_alive()
            result = outcome["sipp"]

            # The survivor reaps A's calls once A's heartbeat is older than the lease.
            client = rest_client(b, sid, token)
            deadline = time.monotonic() + LEASE_S + 10
            listed = []
            while time.monotonic() < deadline:
                listed = list(client.calls.list(limit=1000))
                if listed and all(call.status in FINAL for call in listed):
                    break
                time.sleep(0.5)
            statuses = Counter(call.status for call in listed)
            assert set(statuses) <= FINAL, (statuses, b.tail())
            # B sends each lost call's final status callback (failed) in A's place.
            failed = {call.sid for call in listed if call.status == "failed"}
            finals = _final_callbacks(app, failed, timeout=10)
            b.assert_alive()

        rows = _stored_calls(url)
        by_call_id = {row.sip_call_id: row for row in rows}
        on = Counter(row.node_id for row in rows)
        lost_ids = [
            line.split("LOST ", 1)[1].strip()
            for path in result.rundir.glob("*_logs.log")
            for line in path.read_text().splitlines()
            if "LOST " in line
        ] + re.findall(r"Aborting call on unexpected message for Call-Id '([^']+)'", result.errors)
        report = (
            f"sipp: {result.successful} successful, {result.failed} failed, "
            f"{len(lost_ids)} lost; store: {dict(on)} {dict(statuses)}\n"
            + result.describe(2000)
            + "\n"
            + proxy.tail()
        )
        # 200 calls through Kamailio, spread over both nodes.
        assert result.created == CALLS, report
        assert on["node-a"] > 0 and on["node-b"] > 0, report
        assert len(rows) == len(listed), report
        # Only A's live calls were lost: each one SIPp lost was held by A and is failed.
        assert lost_ids, report
        for call_id in lost_ids:
            row = by_call_id.get(call_id)
            assert row is None or (row.node_id, row.status) == ("node-a", "failed"), (
                call_id,
                report,
            )
        unrecorded = [call_id for call_id in lost_ids if call_id not in by_call_id]
        assert len(unrecorded) <= 3, (unrecorded, report)  # INVITEs A took as it died
        # SIPp counts a lost call as ended (its scenario logs it and stops it).
        assert result.successful + result.failed == CALLS, report
        assert len(rows) + len(unrecorded) == CALLS, report
        assert all(row.status == "completed" for row in rows if row.node_id == "node-b"), report
        failed_on_a = [r for r in rows if r.node_id == "node-a" and r.status == "failed"]
        # A call A hung up just before dying is failed too: its end was not yet written.
        ended_unwritten = [r for r in failed_on_a if r.sip_call_id not in lost_ids]
        assert len(ended_unwritten) <= 3, report
        assert statuses["completed"] + statuses["failed"] == len(rows), report
        assert all(r.end_time <= killed_at for r in failed_on_a), report
        # Every call placed after Kamailio's probe marked A down went to B.
        settled = killed_at.timestamp() + 3
        late = [r for r in rows if r.date_created.timestamp() > settled]
        assert late and all(r.node_id == "node-b" for r in late), report
        assert b.events("node.calls_lost"), b.tail()
        # Each call's final status callback once: the lost ones' from B, failed.
        assert all(len(sent) == 1 for sent in finals.values()), finals
        assert {sid for sid, sent in finals.items() if sent[0]["CallStatus"] == "failed"} == {
            row.sid for row in failed_on_a
        }, report
    finally:
        if proxy is not None:
            proxy.stop()
        problems = []
        for server in servers:
            if server.is_alive():
                problems += server.stop()
            else:
                server.stopped_rc = server.proc.returncode
        with contextlib.suppress(Exception):
            pg_cluster.drop_database(url)
    assert not problems, problems


def _final_callbacks(app: WebhookApp, awaited: set[str], timeout: float) -> dict:
    """CallSid -> the final status callbacks received for it, once every call in
    ``awaited`` has one (or the time is up)."""
    deadline = time.monotonic() + timeout
    while True:
        finals: dict[str, list[dict]] = {}
        for request in app.to("/status"):
            form = request.form_dict
            if form.get("CallStatus") in FINAL:
                finals.setdefault(form["CallSid"], []).append(form)
        if awaited <= finals.keys() or time.monotonic() > deadline:
            return finals
        time.sleep(0.2)


def _wait_calls(client, count: int, status: str, timeout: float = 15.0) -> list:
    deadline = time.monotonic() + timeout
    found = []
    while time.monotonic() < deadline:
        found = list(client.calls.list(status=status))
        if len(found) >= count:
            return found
        time.sleep(0.2)
    raise AssertionError(f"{len(found)} calls {status}, expected {count}")


def _calls_in_thread(
    sipp_bin, target, tmp_path, rtp_sink, calls, scenario="uac_wait_bye.xml", service=NUMBER
):
    outcome = {}

    def run():
        outcome["sipp"] = run_sipp(
            scenario,
            target,
            workdir=tmp_path / "sipp",
            sipp=sipp_bin,
            service=service.lstrip("+"),
            keys={"sink_port": rtp_sink.port},
            calls=calls,
            rate=10,
            timeout=40,
        )

    thread = threading.Thread(target=run)
    thread.start()
    return thread, outcome


def test_rest_updates_reach_the_node_holding_the_call_and_a_restart_bills_lost_calls(
    pg_cluster, sipp_bin, rtp_sink, tmp_path
):
    url = pg_cluster.create_database("nodes")
    servers: list[CallswitchServer] = []
    try:
        with WebhookApp() as app:
            app.routes["/voice"] = lambda r: twiml('<Say>Hello.</Say><Pause length="30"/>')
            a = CallswitchServer.start(
                tmp_path / "a", extra_args=(*_node_args(url, "node-a"), "--drain-timeout", "20")
            )
            servers.append(a)
            b = CallswitchServer.start(tmp_path / "b", extra_args=_node_args(url, "node-b"))
            servers.append(b)
            sid, token = credentials(a)
            via_a, via_b = rest_client(a, sid, token), rest_client(b, sid, token)
            via_a.incoming_phone_numbers.create(phone_number=NUMBER, voice_url=app.url("/voice"))

            # Two calls held by A, ended through B: a hangup and a redirect.
            thread, outcome = _calls_in_thread(sipp_bin, a.sip_target, tmp_path, rtp_sink, 2)
            first, second = _wait_calls(via_b, 2, "in-progress")
            via_b.calls(first.sid).update(status="completed")
            via_b.calls(second.sid).update(twiml="<Response><Hangup/></Response>")
            thread.join(30)
            assert outcome["sipp"].ok(2), outcome["sipp"].describe()
            assert {c.status for c in via_b.calls.list()} == {"completed"}
            with pytest.raises(TwilioRestException) as refused:
                via_b.calls(first.sid).update(status="completed")
            assert refused.value.code == 21220

            # A drains on SIGTERM: REST creates get 503 there; B still reaches its call.
            thread, outcome = _calls_in_thread(sipp_bin, a.sip_target, tmp_path, rtp_sink, 1)
            [held] = _wait_calls(via_b, 1, "in-progress")
            os.kill(a.pid, signal.SIGTERM)
            deadline = time.monotonic() + 10
            while _ready_status(a) != 503 and time.monotonic() < deadline:
                time.sleep(0.1)
            with pytest.raises(TwilioRestException) as draining:
                via_a.calls.create(
                    to="sip:echo@127.0.0.1", from_="+15005550100", twiml="<Response/>"
                )
            assert (draining.value.status, draining.value.code) == (503, 20503)
            via_b.calls(held.sid).update(status="completed")
            thread.join(30)
            assert outcome["sipp"].ok(1), outcome["sipp"].describe()
            a.proc.wait(15)
            assert a.proc.returncode == 0, a.tail()
            a.stopped_rc = 0

            # B dies holding a call; restarted under the same id it fails and bills it.
            thread, outcome = _calls_in_thread(
                sipp_bin, b.sip_target, tmp_path, rtp_sink, 1, "uac_cluster.xml"
            )
            [lost] = _wait_calls(via_b, 1, "in-progress")
            time.sleep(LEASE_S)  # a heartbeat or two after the answer: billable seconds
            os.kill(b.pid, signal.SIGKILL)
            b.proc.wait(5)
            b.stopped_rc = b.proc.returncode
            thread.join(30)
            again = CallswitchServer.start(tmp_path / "b2", extra_args=_node_args(url, "node-b"))
            servers.append(again)
            [started] = again.events("node")
            assert started["calls_lost"] == "1", again.tail()
            call = rest_client(again, sid, token).calls(lost.sid).fetch()
            assert call.status == "failed" and int(call.duration) >= 1, call
            assert call.price == "-0.00850", call
            client = rest_client(again, sid, token)
            [usage] = client.usage.records.list(category="calls-inbound")
            billed = [
                c for c in client.calls.list() if c.status == "completed" and c.duration != "0"
            ]
            assert int(usage.count) == len(billed) + 1, usage  # the lost call is usage too
    finally:
        problems = []
        for server in servers:
            if server.stopped_rc is None:
                problems += server.stop()
        with contextlib.suppress(Exception):
            pg_cluster.drop_database(url)
    assert not problems, problems


def _ready_status(server: CallswitchServer) -> int:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{server.http_port}/ready", timeout=5) as r:
            return r.status
    except urllib.error.HTTPError as exc:
        return exc.code


def test_kamailio_sends_new_calls_past_a_draining_node(pg_cluster, sipp_bin, rtp_sink, tmp_path):
    binary = find_kamailio()
    require(binary is not None, "kamailio is not installed (Debian package kamailio)")
    url = pg_cluster.create_database("drain")
    servers: list[CallswitchServer] = []
    proxy = None
    long_number = "+15005550178"
    try:
        with WebhookApp() as app:
            app.routes["/short"] = lambda r: twiml("<Say>Hello.</Say>")
            app.routes["/long"] = lambda r: twiml('<Say>Hello.</Say><Pause length="30"/>')
            a = CallswitchServer.start(
                tmp_path / "a", extra_args=(*_node_args(url, "node-a"), "--drain-timeout", "20")
            )
            servers.append(a)
            b = CallswitchServer.start(tmp_path / "b", extra_args=_node_args(url, "node-b"))
            servers.append(b)
            sid, token = credentials(a)
            via_b = rest_client(b, sid, token)
            via_b.incoming_phone_numbers.create(phone_number=NUMBER, voice_url=app.url("/short"))
            via_b.incoming_phone_numbers.create(
                phone_number=long_number, voice_url=app.url("/long")
            )
            proxy = Kamailio.start(
                binary, tmp_path / "kamailio", [a.sip_addr, b.sip_addr], probe_interval=1
            )
            # A holds a call, then drains: INVITEs get 503, OPTIONS probes still 200.
            held_thread, held = _calls_in_thread(
                sipp_bin, a.sip_target, tmp_path, rtp_sink, 1, service=long_number
            )
            [call] = _wait_calls(via_b, 1, "in-progress")
            os.kill(a.pid, signal.SIGTERM)
            deadline = time.monotonic() + 10
            while _ready_status(a) != 503 and time.monotonic() < deadline:
                time.sleep(0.1)
            assert _ready_status(a) == 503, a.tail()

            result = run_sipp(
                "uac_cluster.xml",
                proxy.target,
                workdir=tmp_path / "sipp",
                sipp=sipp_bin,
                service=NUMBER.lstrip("+"),
                keys={"sink_port": rtp_sink.port},
                calls=20,
                rate=10,
                timeout=40,
                extra=("-trace_logs",),
            )
            lost = [
                line
                for path in result.rundir.glob("*_logs.log")
                for line in path.read_text().splitlines()
            ]
            assert result.ok(20) and not lost, result.describe() + proxy.tail()
            refused = [line for line in proxy.lines() if "node failed (503)" in line]
            assert refused, proxy.tail()  # some were hashed to A, which refused them

            via_b.calls(call.sid).update(status="completed")  # forwarded to the draining A
            held_thread.join(30)
            assert held["sipp"].ok(1), held["sipp"].describe()
            a.proc.wait(15)
            assert a.proc.returncode == 0, a.tail()
            a.stopped_rc = 0
        rows = [row for row in _stored_calls(url) if row.to_address == NUMBER]
        assert len(rows) == 20 and {row.node_id for row in rows} == {"node-b"}, rows
        assert {row.status for row in rows} == {"completed"}
    finally:
        if proxy is not None:
            proxy.stop()
        problems = []
        for server in servers:
            if server.stopped_rc is None:
                problems += server.stop()
        with contextlib.suppress(Exception):
            pg_cluster.drop_database(url)
    assert not problems, problems
