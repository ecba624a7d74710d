"""What carriers send and expect, with SIPp as the carrier (issue 19, item 5).

Inbound: SIPp sends INVITEs as carriers write them (the caller's number without
"+" in From and P-Asserted-Identity, ``Privacy``, ``Diversion``) from the
address of a trunk with ``country_code=44;national_prefix=0``; the
application's webhook must see the asserted caller in E.164 (or Twilio's
anonymous ``+266696687`` under ``Privacy: id``), ``ForwardedFrom`` and
``CallerName``. Outbound: a call placed through a ``;pai;strip_plus`` trunk,
and one ``<Dial>`` passes on from a withheld caller, reach SIPp UASes whose
scenarios check the INVITE (Request-URI, ``P-Asserted-Identity``, From,
``Privacy``) and fail the call otherwise.
"""

from __future__ import annotations

import pytest
from twilio.rest import Client

from .conftest import require
from .harness import CallswitchServer, free_port
from .sipp import SippBackground, find_sipp, run_sipp
from .test_voice_webhooks import LocalHttpClient, credentials
from .webhook_app import WebhookApp, twiml

NUMBER = "+15005550006"
CALLER_NATIONAL = "02071234567"  # as the UK carrier writes +442071234567
DIVERTED_NATIONAL = "02079460000"


@pytest.fixture
def app():
    with WebhookApp() as application:
        yield application


@pytest.fixture
def sipp_path() -> str:
    path = find_sipp()
    require(path is not None, "sipp is not installed (Debian package sip-tester)")
    assert path is not None
    return path


def start(tmp_path, carrier_port: int) -> tuple[CallswitchServer, Client]:
    """callswitch with two trunks at 127.0.0.1: "uk" (its numbers are national; the
    SIPp UACs come from its address) and "carrier" (the SIPp UAS: pai, strip_plus)."""
    server = CallswitchServer.start(
        tmp_path / "server",
        extra_args=(
            "--trunk",
            "uk=sip:127.0.0.1:9;prefix=+44;country_code=44;national_prefix=0",
            "--trunk",
            f"carrier=sip:127.0.0.1:{carrier_port};prefix=+1555;pai;strip_plus",
        ),
    )
    sid, token = credentials(server)
    client = Client(sid, token, http_client=LocalHttpClient(f"http://127.0.0.1:{server.http_port}"))
    return server, client


def carrier_invite(server, tmp_path, sipp_path: str, privacy: str):
    return run_sipp(
        "uac_carrier_identity.xml",
        server.sip_target,
        workdir=tmp_path / "uac",
        sipp=sipp_path,
        service=NUMBER,
        trace_msg=True,
        timeout=20,
        keys={
            "sink_port": free_port(),
            "caller": CALLER_NATIONAL,
            "privacy": privacy,
            "diverted_from": DIVERTED_NATIONAL,
        },
    )


def test_the_webhook_sees_the_asserted_withheld_and_forwarding_numbers(tmp_path, app, sipp_path):
    app.routes["/voice"] = lambda r: twiml('<Reject reason="busy"/>')
    server, client = start(tmp_path, free_port())
    try:
        client.incoming_phone_numbers.create(
            phone_number=NUMBER, voice_url=app.url("/voice"), voice_caller_id_lookup=True
        )
        shown = carrier_invite(server, tmp_path, sipp_path, "none")
        [asserted] = app.wait_for("/voice")
        withheld_run = carrier_invite(server, tmp_path, sipp_path, "id")
        _, withheld = app.wait_for("/voice", 2)
        records = {c._from: c for c in client.calls.list()}
        invites = server.events("sip.invite")
        lines = server.lines()
    finally:
        problems = server.stop()
    assert shown.ok(1), f"{shown.describe()}\n{server.tail()}"
    assert withheld_run.ok(1), f"{withheld_run.describe()}\n{server.tail()}"
    assert not problems, problems

    # P-Asserted-Identity, read with the trunk's national rule; CallerName (the number
    # has VoiceCallerIdLookup) and ForwardedFrom (Diversion).
    assert asserted.field("From") == asserted.field("Caller") == "+442071234567"
    assert asserted.field("CallerName") == "Alice Smith"
    assert asserted.field("ForwardedFrom") == "+442079460000"
    # Privacy: id: Twilio's anonymous caller, no name; the forwarding number stays.
    assert withheld.field("From") == withheld.field("Caller") == "+266696687"
    assert withheld.field("CallerName") == ""
    assert withheld.field("ForwardedFrom") == "+442079460000"
    # The Calls resource shows the same.
    assert set(records) == {"+266696687", "+442071234567"}, list(records)
    first, hidden = records["+442071234567"], records["+266696687"]
    assert (first.caller_name, first.forwarded_from) == ("Alice Smith", "+442079460000")
    assert (hidden.caller_name, hidden.forwarded_from) == (None, "+442079460000")
    # The log names the first caller and not the one who withheld the number.
    assert [event["from"] for event in invites] == [CALLER_NATIONAL, "anonymous"]
    hidden_call = invites[1]["call_id"]
    leaks = [line for line in lines if hidden_call in line and "2071234567" in line]
    assert leaks == [], leaks


def test_a_pai_trunk_asserts_the_caller_and_dials_without_plus(tmp_path, app, sipp_path):
    carrier_port = free_port()
    carrier = SippBackground(
        "uas_check_pai_busy.xml",
        None,
        workdir=tmp_path / "carrier",
        sipp=sipp_path,
        local_port=carrier_port,
        calls=1,
        timeout=30,
        trace_msg=True,
    )
    server, client = start(tmp_path, carrier_port)
    try:
        app.routes["/answer"] = lambda r: twiml("<Hangup/>")
        app.routes["/status"] = lambda r: (204, "text/plain", b"")
        client.incoming_phone_numbers.create(phone_number=NUMBER)
        call = client.calls.create(
            to="+15550001234",
            from_=NUMBER,
            url=app.url("/answer"),
            status_callback=app.url("/status"),
        )
        result = carrier.wait(20)
        [completed] = app.wait_for("/status")
    finally:
        problems = server.stop()
    assert result.ok(1), f"{result.describe()}\n{server.tail()}"
    assert not problems, problems
    assert completed.field("CallSid") == call.sid
    assert completed.field("CallStatus") == "busy"


def test_a_withheld_caller_is_passed_on_anonymous(tmp_path, app, sipp_path):
    carrier_port = free_port()
    carrier = SippBackground(
        "uas_check_anonymous_busy.xml",
        None,
        workdir=tmp_path / "carrier",
        sipp=sipp_path,
        local_port=carrier_port,
        calls=1,
        timeout=30,
        trace_msg=True,
    )
    server, client = start(tmp_path, carrier_port)
    try:
        dial = (
            f'<Dial answerOnBridge="true" action="{app.url("/after")}">'
            "<Number>+15550001235</Number></Dial>"
        )
        app.routes["/voice"] = lambda r: twiml(dial)
        app.routes["/after"] = lambda r: twiml('<Reject reason="busy"/>')
        client.incoming_phone_numbers.create(phone_number=NUMBER, voice_url=app.url("/voice"))
        inbound = carrier_invite(server, tmp_path, sipp_path, "id")
        result = carrier.wait(20)
        [after] = app.wait_for("/after")
    finally:
        problems = server.stop()
    assert result.ok(1), f"{result.describe()}\n{server.tail()}"
    assert inbound.ok(1), f"{inbound.describe()}\n{server.tail()}"
    assert not problems, problems
    assert after.field("DialCallStatus") == "busy"
    assert after.field("From") == "+266696687"
