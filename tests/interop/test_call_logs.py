"""Call logs end to end: a SIPp call to a number whose webhook fails, then the official
`twilio` library reads what Twilio's debugger would show.

A voice URL answering 500 with no fallback ends the call as Twilio does (the apology,
then our BYE) and leaves an 11200 notification on the call with the request URL,
method and the answer's status and body, in the call's and the account's lists; the
request shows among the call's Events. A document that does not parse leaves 12100.
"""

from __future__ import annotations

import time
from urllib.parse import parse_qs

import pytest
from twilio.rest import Client

from .conftest import sipp_failure, wait_status
from .test_voice_webhooks import credentials, rest_client
from .webhook_app import WebhookApp

FAILING_NUMBER = "+15005550101"
BAD_TWIML_NUMBER = "+15005550102"


@pytest.fixture
def app():
    with WebhookApp() as application:
        yield application


@pytest.fixture
def client(server) -> Client:
    return rest_client(server)


def notifications_of(client: Client, call_sid: str, timeout: float = 10.0) -> list:
    """The call's notifications once there are some (they are written after the fact)."""
    deadline = time.monotonic() + timeout
    while True:
        found = client.calls(call_sid).notifications.list()
        if found or time.monotonic() > deadline:
            return found
        time.sleep(0.1)


def call_to(server, sipp, rtp_sink, number: str) -> None:
    result = sipp(
        "uac_wait_bye.xml",
        service=number.lstrip("+"),
        keys={"sink_port": rtp_sink.port},
        calls=1,
        timeout=20,
    )
    assert result.ok(1), sipp_failure(result, server, "the call did not end with our BYE")


def test_a_webhook_answering_500_leaves_11200_on_the_call(server, sipp, rtp_sink, app, client):
    app.routes["/voice"] = lambda r: (500, "text/plain", b"the application crashed")
    client.incoming_phone_numbers.create(phone_number=FAILING_NUMBER, voice_url=app.url("/voice"))
    call_to(server, sipp, rtp_sink, FAILING_NUMBER)
    [voice] = app.to("/voice")
    call_sid = voice.field("CallSid")
    assert wait_status(client, call_sid, {"completed"}) == "completed"

    [note] = notifications_of(client, call_sid)
    assert note.error_code == "11200" and note.log == "0"
    assert note.request_url == app.url("/voice") and note.request_method == "POST"
    assert note.more_info == "https://www.twilio.com/docs/errors/11200"
    text = parse_qs(note.message_text)
    assert text["httpResponse"] == ["500"] and text["ErrorCode"] == ["11200"]
    fetched = client.calls(call_sid).notifications(note.sid).fetch()
    assert fetched.response_body == "the application crashed"
    assert parse_qs(fetched.request_variables)["CallSid"] == [call_sid]

    account_sid, _ = credentials(server)
    mine = [n for n in client.notifications.list(log=0) if n.call_sid == call_sid]
    assert [n.sid for n in mine] == [note.sid]
    assert client.notifications(note.sid).fetch().error_code == "11200"
    assert note.account_sid == account_sid

    events = client.calls(call_sid).events.list()
    voice_requests = [e for e in events if e.request["url"] == app.url("/voice")]
    assert voice_requests and voice_requests[0].response["response_code"] == 500


def test_a_document_that_does_not_parse_leaves_12100(server, sipp, rtp_sink, app, client):
    app.routes["/voice"] = lambda r: (200, "text/xml", b"<Response><Say>unclosed</Response>")
    client.incoming_phone_numbers.create(phone_number=BAD_TWIML_NUMBER, voice_url=app.url("/voice"))
    call_to(server, sipp, rtp_sink, BAD_TWIML_NUMBER)
    [voice] = app.to("/voice")
    [note] = notifications_of(client, voice.field("CallSid"))
    assert note.error_code == "12100" and note.request_url == app.url("/voice")
    fetched = client.notifications(note.sid).fetch()
    assert fetched.response_body == "<Response><Say>unclosed</Response>"
