"""Billing with real calls: SIPp calls a number of a real ``callswitch serve``.

A usage trigger on calls at 2 minutes fires once when the second one-minute call
pushes usage to 2, and not again in that period, nor after a restart; a restart
loses no usage record; each priced call posts a signed billing event; a balance
set with ``callswitch balance set`` that runs out refuses the next REST call with
20005 and turns inbound calls away with 403.
"""

from __future__ import annotations

import subprocess
import time
from decimal import Decimal
from pathlib import Path

from twilio.base.exceptions import TwilioRestException
from twilio.request_validator import RequestValidator
from twilio.rest import Client

from .harness import CallswitchServer, server_command
from .sipp import run_sipp
from .test_voice_webhooks import credentials, rest_client
from .webhook_app import WebhookApp, twiml

NUMBER = "+15005550177"
SCENARIOS = Path(__file__).parent / "scenarios"


def _call(sipp_bin, server, rtp_sink, tmp_path, n: int) -> None:
    result = run_sipp(
        "uac_wait_bye.xml",
        server.sip_target,
        workdir=tmp_path / f"sipp{n}",
        sipp=sipp_bin,
        service=NUMBER.lstrip("+"),
        keys={"sink_port": rtp_sink.port},
        calls=1,
        timeout=20,
    )
    assert result.ok(1), result.describe()


def _usage(client: Client, category: str = "calls"):
    return next(r for r in client.usage.records.list(category=category))


def _wait(predicate, timeout: float = 20.0):
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value or time.monotonic() > deadline:
            return value
        time.sleep(0.05)


def test_trigger_fires_once_billing_events_and_restart(sipp_bin, rtp_sink, tmp_path):
    with WebhookApp() as app:
        app.routes["/voice"] = lambda r: twiml("<Say>Short call.</Say><Hangup/>")
        app.routes["/trigger"] = lambda r: (204, "text/plain", b"")
        app.routes["/billing"] = lambda r: (204, "text/plain", b"")
        workdir = tmp_path / "node"
        args = ("--billing-webhook", app.url("/billing"))
        server = CallswitchServer.start(workdir, extra_args=args)
        try:
            sid, token = credentials(server)
            client = rest_client(server, sid, token)
            client.incoming_phone_numbers.create(phone_number=NUMBER, voice_url=app.url("/voice"))
            trigger = client.usage.triggers.create(
                callback_url=app.url("/trigger"),
                trigger_value="2",
                usage_category="calls",
                recurring="daily",
            )
            _call(sipp_bin, server, rtp_sink, tmp_path, 1)
            assert _wait(lambda: _usage(client).usage == "1")
            time.sleep(0.5)
            assert app.to("/trigger") == []
            _call(sipp_bin, server, rtp_sink, tmp_path, 2)
            fired = app.wait_for("/trigger", 1, timeout=30)
            assert len(fired) == 1
            assert fired[0].field("UsageTriggerSid") == trigger.sid
            assert fired[0].field("CurrentValue") == "2"
            assert RequestValidator(token).validate(
                fired[0].url, fired[0].form_dict, fired[0].headers["X-Twilio-Signature"]
            )
            fetched = client.usage.triggers(trigger.sid).fetch()
            assert fetched.date_fired is not None and fetched.current_value == "2"
            assert [t.sid for t in client.usage.triggers.list()] == [trigger.sid]
            _call(sipp_bin, server, rtp_sink, tmp_path, 3)
            assert _wait(lambda: _usage(client).usage == "3")
            events = app.wait_for("/billing", 3, timeout=30)
            assert len(events) == 3
            for event in events:
                assert event.field("EventType") == "call.priced"
                assert event.field("Category") == "calls-inbound"
                assert event.field("Usage") == "1" and event.field("UsageUnit") == "minutes"
                assert Decimal(event.field("Price")) == Decimal("0.0085")
                assert RequestValidator(token).validate(
                    event.url, event.form_dict, event.headers["X-Twilio-Signature"]
                )
            calls = client.calls.list()
            assert len(calls) == 3 and {c.price for c in calls} == {"-0.00850"}
        finally:
            problems = server.stop()
        assert not problems, problems
        second = CallswitchServer.start(workdir, extra_args=args)
        try:
            client = rest_client(second, sid, token)
            record = _usage(client)
            assert (record.count, record.usage) == ("3", "3")
            _call(sipp_bin, second, rtp_sink, tmp_path, 4)
            assert _wait(lambda: _usage(client).usage == "4")
            time.sleep(0.5)
            assert len(app.to("/trigger")) == 1  # same day: no second firing
            assert len(app.wait_for("/billing", 4, timeout=30)) == 4
        finally:
            problems = second.stop()
        assert not problems, problems


def test_a_sigkill_loses_no_usage_record(sipp_bin, rtp_sink, tmp_path):
    with WebhookApp() as app:
        app.routes["/voice"] = lambda r: twiml("<Say>Short call.</Say><Hangup/>")
        workdir = tmp_path / "node"
        server = CallswitchServer.start(workdir)
        try:
            sid, token = credentials(server)
            client = rest_client(server, sid, token)
            client.incoming_phone_numbers.create(phone_number=NUMBER, voice_url=app.url("/voice"))
            _call(sipp_bin, server, rtp_sink, tmp_path, 1)
            _call(sipp_bin, server, rtp_sink, tmp_path, 2)
        finally:
            server._kill()  # no chance to flush: the journal may not have priced the last
        second = CallswitchServer.start(workdir)
        try:
            client = rest_client(second, sid, token)
            completed = [c for c in client.calls.list() if c.status == "completed"]
            record = _usage(client)
            assert record.count == str(len(completed))
            assert all(c.price == "-0.00850" for c in completed)
        finally:
            problems = second.stop()
        assert not problems, problems


def test_a_spent_balance_refuses_calls(sipp_bin, rtp_sink, tmp_path):
    with WebhookApp() as app:
        app.routes["/voice"] = lambda r: twiml("<Say>Short call.</Say><Hangup/>")
        workdir = tmp_path / "node"
        server = CallswitchServer.start(workdir)
        try:
            sid, token = credentials(server)
            client = rest_client(server, sid, token)
            client.incoming_phone_numbers.create(phone_number=NUMBER, voice_url=app.url("/voice"))
            subprocess.run(
                [
                    *server_command(),
                    "balance",
                    "set",
                    sid,
                    "0.01",
                    *server.store_args,
                ],
                check=True,
                capture_output=True,
            )
            assert client.api.v2010.account.balance.fetch().balance == "0.01"
            _call(sipp_bin, server, rtp_sink, tmp_path, 1)  # 0.0085: 0.0015 left
            _call(sipp_bin, server, rtp_sink, tmp_path, 2)  # spent: -0.0070
            assert _wait(lambda: client.api.v2010.account.balance.fetch().balance == "-0.01")
            try:
                client.calls.create(to="+15550001111", from_=NUMBER, url=app.url("/voice"))
            except TwilioRestException as exc:
                assert (exc.status, exc.code) == (401, 20005)
            else:
                raise AssertionError("a call was placed on a spent balance")
            try:
                client.messages.create(to="+15550001111", from_=NUMBER, body="x")
            except TwilioRestException as exc:
                assert (exc.status, exc.code) == (401, 20005)
            else:
                raise AssertionError("a message was queued on a spent balance")
            scenario = tmp_path / "uac_403.xml"
            scenario.write_text(
                (SCENARIOS / "uac_404.xml")
                .read_text()
                .replace(
                    '<recv response="404"/>',
                    '<recv response="180" optional="true"/><recv response="403"/>',
                )
            )
            refused = run_sipp(
                scenario,
                server.sip_target,
                workdir=tmp_path / "sipp403",
                sipp=sipp_bin,
                service=NUMBER.lstrip("+"),
                keys={"sink_port": rtp_sink.port},
                calls=1,
                timeout=20,
            )
            assert refused.ok(1), refused.describe()
            assert len(client.calls.list()) == 2
        finally:
            problems = server.stop()
        assert not problems, problems
