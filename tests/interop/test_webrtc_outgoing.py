"""A browser places a call: the application its token names answers with
``<Dial><Sip>`` to a SIPp UAS; the call connects, tones cross both ways, and the
REST API shows the call From client:alice with its child."""

from __future__ import annotations

import asyncio
import time

import pytest

from tests.peers import require

from .harness import free_port
from .rtp import RtpSink
from .test_outbound_calls import CARRIER_TONE_HZ, heard, start_carrier
from .test_voice_webhooks import rest_client
from .webhook_app import WebhookApp, twiml
from .webrtc_client import SignalingClient, access_token

CLIENT_HZ = 440.0


async def priced_client_usage(client, timeout: float = 10.0):
    """The account's ``calls-client`` usage record, once a call has been priced in it
    (a call is priced in its journal just after its final status is written)."""
    deadline = time.monotonic() + timeout
    while True:
        record = next(iter(client.usage.records.list(category="calls-client")), None)
        if (record is not None and int(record.count) > 0) or time.monotonic() > deadline:
            return record
        await asyncio.sleep(0.1)


@pytest.fixture
def app():
    try:
        import aiortc  # noqa: F401
    except ImportError:
        require(False, "aiortc is not installed (pip install aiortc)")
    with WebhookApp() as application:
        yield application


async def test_a_browser_calls_a_sip_phone_through_its_application(server, app, tmp_path):
    uas_port = free_port()
    client = rest_client(server)
    app.routes["/voice"] = lambda r: twiml(f"<Dial><Sip>sip:desk@127.0.0.1:{uas_port}</Sip></Dial>")
    application = client.applications.create(
        friendly_name="browser", voice_url=app.url("/voice"), voice_method="POST"
    )
    token = access_token(server, "alice", application_sid=application.sid)
    from tests.signaling.peer import Peer

    with RtpSink() as sink:
        uas = start_carrier(tmp_path / "uas", uas_port, sink.port, "uas_answer_tone_bye.xml")
        tab = await SignalingClient.open(server)
        peer = Peer(CLIENT_HZ)
        try:
            registered = await tab.register(token)
            assert registered["outgoing"] is True
            await tab.send(
                type="call", ref="r1", to="desk", sdp=await peer.offer(), params={"team": "blue"}
            )
            answer = await tab.next("answer")
            assert answer["ref"] == "r1" and answer["call"].startswith("CA")
            await peer.accept(answer["sdp"])
            # The UAS talks 3 s and hangs up; then the application ends and so does our call.
            ended = await tab.next("hangup", timeout=20)
            assert ended["call"] == answer["call"]
            frequency, _ = peer.heard(3.0)
            statuses = [m["status"] for m in tab.messages if m["type"] == "status"]
        finally:
            await peer.close()
            await tab.close()
            result = await asyncio.to_thread(uas.wait, 20)
    assert result.ok(1), f"the UAS call failed\n{result.describe()}\n{server.tail()}"
    assert "in-progress" in statuses, statuses
    assert abs(frequency - CARRIER_TONE_HZ) < 15, f"{frequency:.0f} Hz\n{server.tail()}"
    assert heard(sink, CLIENT_HZ), f"the SIP phone did not hear the browser\n{server.tail()}"

    webhook = app.wait_for("/voice", count=1)[0]
    assert webhook.field("From") == "client:alice" and webhook.field("Caller") == "client:alice"
    assert webhook.field("To") == "desk" and webhook.field("team") == "blue"
    assert webhook.field("ApplicationSid") == application.sid
    assert webhook.field("Direction") == "inbound"
    deadline = time.monotonic() + 10
    while (call := client.calls(answer["call"]).fetch()).status != "completed":
        assert time.monotonic() < deadline, call.status
        await asyncio.sleep(0.1)
    assert call._from == "client:alice" and call.direction == "inbound"
    children = client.calls.list(parent_call_sid=call.sid)
    assert [c.status for c in children] == ["completed"]
    # A tab's call is a client call: priced (one started minute) as calls-client usage.
    usage = await priced_client_usage(client)
    assert usage is not None and int(usage.count) == 1, usage and usage.count
    assert float(usage.usage) == 1 and float(usage.price) > 0, (usage.usage, usage.price)
    assert client.calls(call.sid).fetch().price is not None


async def test_a_browsers_digits_reach_gather(server, app):
    """``dtmf`` messages arrive as the call's DTMF: ``<Gather>`` gets them (``#`` ends it)."""
    client = rest_client(server)
    app.routes["/voice"] = lambda r: twiml(
        f'<Gather numDigits="3" timeout="10" action="{app.url("/gathered")}"/>'
    )
    app.routes["/gathered"] = lambda r: twiml("<Pause length='1'/><Hangup/>")
    application = client.applications.create(friendly_name="ivr", voice_url=app.url("/voice"))
    token = access_token(server, "alice", application_sid=application.sid)
    from tests.signaling.peer import Peer

    tab = await SignalingClient.open(server)
    peer = Peer(CLIENT_HZ)
    try:
        await tab.register(token)
        await tab.send(type="call", ref="ivr", to="", sdp=await peer.offer())
        answer = await tab.next("answer")
        await peer.accept(answer["sdp"])
        await tab.next("status")  # in-progress
        await asyncio.sleep(0.5)
        await tab.send(type="dtmf", call=answer["call"], digits="4")
        await tab.send(type="dtmf", call=answer["call"], digits="2#")
        ended = await tab.next("hangup", timeout=15)
        assert ended["call"] == answer["call"]
    finally:
        await peer.close()
        await tab.close()
    gathered = app.wait_for("/gathered", count=1)
    assert gathered and gathered[0].field("Digits") == "42"
