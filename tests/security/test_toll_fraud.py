"""Toll fraud, as an outsider tries it against a real node: REFER from a caller with
no credentials, ``sip:`` targets into ``--dial-deny``, a trunk's host dialled raw.

Each attack must be refused (403 to the REFER, a Twilio error to the REST call, a
failed ``<Dial>``), no INVITE may reach the address it named (a UDP socket bound
there says so), the refusal is logged (``event=security.refused``) and counted,
and the node still answers OPTIONS and ``/health`` afterwards.
"""

from __future__ import annotations

import pytest
from twilio.base.exceptions import TwilioRestException

from tests.interop.harness import CallswitchServer, free_port
from tests.interop.test_voice_webhooks import rest_client
from tests.interop.webhook_app import WebhookApp, twiml

from .node import refusal_counts, refused_events, still_serving, wait_event
from .phone import Listener, Phone

NUMBER = "+15005550041"
CALLEE = "+15550301111"  # through the trunk, to the callee phone
NOTHING_WAIT_S = 1.5  # a forbidden INVITE would leave within milliseconds


@pytest.fixture
def app():
    with WebhookApp() as application:
        yield application


def bridged_call(server, app, caller: Phone, callee: Phone):
    """``caller`` rings NUMBER, whose TwiML <Dial>s the callee through the trunk; the
    bridge is up when this returns (the caller's dialog)."""
    app.routes["/voice"] = lambda r: twiml(f"<Dial><Number>{CALLEE}</Number></Dial>")
    rest_client(server).incoming_phone_numbers.create(
        phone_number=NUMBER, voice_url=app.url("/voice")
    )
    dialog = caller.call(server.sip_addr, NUMBER.lstrip("+"))
    assert dialog is not None, server.tail()
    assert callee.wait(lambda m: m.method == "ACK", 10) is not None, server.tail()
    assert wait_event(server, "dial.bridged"), server.tail()
    return dialog


def start_with_trunk(tmp_path, callee: Phone, *extra: str) -> CallswitchServer:
    trunk = f"b=sip:{callee.host}:{callee.port};prefix=+1555030"
    return CallswitchServer.start(tmp_path / "server", extra_args=("--trunk", trunk, *extra))


def test_refer_from_an_unauthenticated_caller_is_403_and_dials_nothing(tmp_path, app):
    with (
        Phone("127.0.0.5", "fraud") as caller,
        Phone("127.0.0.1", "callee") as callee,
        Listener("127.0.0.9") as victim,
    ):
        server = start_with_trunk(tmp_path, callee)
        try:
            dialog = bridged_call(server, app, caller, callee)
            refer_to = f"Refer-To: <sip:+15559990000@{victim.host}:{victim.port}>\r\n"
            status = caller.request(dialog, "REFER", server.sip_addr, refer_to)
            arrived = victim.received(NOTHING_WAIT_S)
            counted = refusal_counts(server)
            caller.request(dialog, "BYE", server.sip_addr)
            assert wait_event(server, "call.completed"), server.tail()
            still_serving(server)
        finally:
            problems = server.stop()
        assert status == 403, server.tail()
        assert arrived == [], f"an INVITE reached {victim.host}: {arrived[:1]}"
        assert counted.get("refer.unauthenticated") == 1, counted
        [event] = refused_events(server, "refer.unauthenticated")
        assert event["source_ip"] == "127.0.0.5"
        # Nothing was placed beyond the <Dial> itself: one INVITE left, to the callee.
        assert len(callee.requests("INVITE")) >= 1
        assert not [e for e in server.events("transfer.completed")]
        assert not problems, problems


def test_refer_from_a_leg_we_placed_to_an_arbitrary_host_is_403(tmp_path, app):
    """The callee is a leg the account's <Dial> placed (authenticated), but its REFER
    names a host that is neither ours nor a trunk's: not dialled directly."""
    with (
        Phone("127.0.0.5", "caller") as caller,
        Phone("127.0.0.1", "callee") as callee,
        Listener("127.0.0.9") as victim,
    ):
        server = start_with_trunk(tmp_path, callee)
        try:
            bridged_call(server, app, caller, callee)
            refer_to = f"Refer-To: <sip:+15559990000@{victim.host}:{victim.port}>\r\n"
            status = callee.request(callee.dialog, "REFER", server.sip_addr, refer_to)
            arrived = victim.received(NOTHING_WAIT_S)
            counted = refusal_counts(server)
            still_serving(server)
        finally:
            problems = server.stop()
        assert status == 403, server.tail()
        assert arrived == []
        assert counted.get("refer.target") == 1, counted
        assert not problems, problems


def test_rest_call_to_a_denied_sip_address_gets_twilios_error(tmp_path, app):
    with Listener("127.0.0.9") as victim:
        server = CallswitchServer.start(
            tmp_path / "server", extra_args=("--dial-deny", "127.0.0.9/32")
        )
        try:
            client = rest_client(server)
            app.routes["/answer"] = lambda r: twiml("<Hangup/>")
            with pytest.raises(TwilioRestException) as refused:
                client.calls.create(
                    to=f"sip:+15559990000@{victim.host}:{victim.port}",
                    from_="+15005550006",
                    url=app.url("/answer"),
                )
            arrived = victim.received(NOTHING_WAIT_S)
            calls = client.calls.list()
            counted = refusal_counts(server)
            still_serving(server)
        finally:
            problems = server.stop()
        assert refused.value.status == 403 and refused.value.code == 21215
        assert "--dial-deny" in refused.value.msg
        assert arrived == [] and calls == []
        assert counted.get("dial.denied") == 1, counted
        [event] = refused_events(server, "dial.denied")
        assert event["source_ip"] == "127.0.0.1" and event["address"] == victim.host
        assert not problems, problems


def test_dial_sip_to_a_denied_address_fails_the_dial(tmp_path, app):
    with Phone("127.0.0.5", "caller") as caller, Listener("127.0.0.9") as victim:
        server = CallswitchServer.start(
            tmp_path / "server", extra_args=("--dial-deny", "127.0.0.9/32")
        )
        try:
            target = f"sip:bob@{victim.host}:{victim.port}"
            app.routes["/voice"] = lambda r: twiml(
                f'<Dial action="{app.url("/after")}"><Sip>{target}</Sip></Dial>'
            )
            app.routes["/after"] = lambda r: twiml("<Hangup/>")
            rest_client(server).incoming_phone_numbers.create(
                phone_number=NUMBER, voice_url=app.url("/voice")
            )
            caller.call(server.sip_addr, NUMBER.lstrip("+"), timeout=5)
            [after] = app.wait_for("/after", 1, timeout=15)
            arrived = victim.received(NOTHING_WAIT_S)
            counted = refusal_counts(server)
            still_serving(server)
        finally:
            problems = server.stop()
        assert after.field("DialCallStatus") == "failed", server.tail()
        assert arrived == []
        assert counted.get("dial.denied") == 1, counted
        [event] = refused_events(server, "dial.denied")
        assert event["source_ip"] == "127.0.0.5"
        assert not problems, problems


def test_a_trunk_host_dialled_raw_gets_the_trunk_rules(tmp_path, app):
    """REST ``To=sip:+1…@<carrier>`` leaves through the carrier's trunk: its port,
    number format (strip_plus) and caller ID; a number it does not serve is refused."""
    with Phone("127.0.0.6", "carrier") as carrier:
        trunk = (
            f"carrier=sip:{carrier.host}:{carrier.port};prefix=+1555;caller_id=+15550100;strip_plus"
        )
        server = CallswitchServer.start(tmp_path / "server", extra_args=("--trunk", trunk))
        try:
            client = rest_client(server)
            app.routes["/answer"] = lambda r: twiml("<Hangup/>")
            elsewhere = free_port()  # another port of the carrier's host: still the trunk
            call = client.calls.create(
                to=f"sip:+15551234567@{carrier.host}:{elsewhere}",
                from_="+15005550006",
                url=app.url("/answer"),
            )
            invite = carrier.wait(lambda m: m.method == "INVITE", 10)
            with pytest.raises(TwilioRestException) as refused:
                client.calls.create(
                    to=f"sip:+442071234567@{carrier.host}:{carrier.port}",
                    from_="+15005550006",
                    url=app.url("/answer"),
                )
            counted = refusal_counts(server)
            still_serving(server)
        finally:
            problems = server.stop()
        assert call.status == "queued"
        assert invite is not None, server.tail()
        assert invite.first_line.startswith(f"INVITE sip:15551234567@{carrier.host}:{carrier.port}")
        assert "<sip:+15550100@" in (invite.header("From") or "")
        assert refused.value.status == 403 and refused.value.code == 21215
        assert counted.get("dial.trunk") == 1, counted
        assert not problems, problems


def test_a_registered_phone_of_the_account_may_transfer_through_routing(tmp_path, app):
    """The honest use goes on: a phone registered to the account calls the number and,
    once bridged, transfers the other party to a number: 202, and the INVITE leaves
    through the trunk that serves that number."""
    with (
        Phone("127.0.0.3", "alice") as alice,
        Phone("127.0.0.1", "callee") as callee,
        Phone("127.0.0.4", "target") as target,
    ):
        server = start_with_trunk(
            tmp_path, callee, "--trunk", f"c=sip:{target.host}:{target.port};prefix=+1555040"
        )
        try:
            client = rest_client(server)
            phones = client.sip.credential_lists.create(friendly_name="phones")
            client.sip.credential_lists(phones.sid).credentials.create(
                username="alice", password="Correct-Horse-7"
            )
            assert alice.register(server.sip_addr, "Correct-Horse-7") == 200, server.tail()
            dialog = bridged_call(server, app, alice, callee)
            refer_to = f"Refer-To: <sip:+15550402222@{target.host}>\r\n"
            status = alice.request(dialog, "REFER", server.sip_addr, refer_to)
            invite = target.wait(lambda m: m.method == "INVITE", 10)
            counted = refusal_counts(server)
        finally:
            problems = server.stop()
        assert status == 202, server.tail()
        assert invite is not None, server.tail()
        assert invite.first_line.startswith(f"INVITE sip:+15550402222@{target.host}:{target.port}")
        assert not [r for r in counted if r.startswith("refer.")], counted
        assert not problems, problems
