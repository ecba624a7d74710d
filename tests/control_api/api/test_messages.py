"""The Messages resource through the official twilio library (reference §7)."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

import pytest
from twilio.base.exceptions import TwilioRestException
from twilio.request_validator import RequestValidator
from twilio.twiml.messaging_response import MessagingResponse

from tests.control_api.api.sms_server import SmsServer
from tests.interop.webhook_app import WebhookApp


@pytest.fixture(scope="module")
def sms(tmp_path_factory):
    with SmsServer(tmp_path_factory.mktemp("sms")) as server:
        yield server


@pytest.fixture(scope="module")
def app():
    with WebhookApp() as webhook_app:
        yield webhook_app


@pytest.fixture
def account(sms):
    return sms.new_account()


@pytest.fixture
def client(sms, account):
    return sms.client(account)


def test_create_sends_through_the_carrier_and_reports_each_status(sms, client, account, app):
    app.routes["/status"] = lambda r: (204, "text/plain", b"")
    # The media are fetched before the carrier gets the message, as Twilio does.
    app.routes["/a.png"] = app.routes["/b.png"] = lambda r: (200, "image/png", b"\x89PNG")
    media_urls = (app.url("/a.png"), app.url("/b.png"))
    message = client.messages.create(
        to="+15550001111",
        from_="+14155550100",
        body="Hello {world} €",
        status_callback=app.url("/status"),
        media_url=list(media_urls),
        validity_period=600,
    )
    assert message.sid.startswith("MM")
    assert message.status == "queued"
    assert message.direction == "outbound-api"
    assert message.num_segments == "1"
    assert message.num_media == "2"
    assert message.to == "+15550001111"
    assert message.from_ == "+14155550100"
    assert message.body == "Hello {world} €"
    sent = sms.wait_status(client, message.sid, "sent")
    assert sent.status == "sent"
    assert sent.price == "-0.00790"
    assert sent.price_unit == "USD"
    assert sent.date_sent is not None
    submitted = next(s for s in sms.carrier.submitted if s.sid == message.sid)
    assert submitted.media_urls == media_urls
    assert submitted.validity_period == 600
    carrier_id = sms.call(sms.messaging.messages.get(account.sid, message.sid)).carrier_message_id
    sms.call(sms.messaging.receipt("fake", carrier_id, True, None))
    assert sms.wait_status(client, message.sid, "delivered").status == "delivered"
    callbacks = [
        r for r in app.wait_for("/status", 3, timeout=30) if r.field("MessageSid") == message.sid
    ]
    assert [r.field("MessageStatus") for r in callbacks] == ["sending", "sent", "delivered"]
    validator = RequestValidator(account.auth_token)
    for request in callbacks:
        assert validator.validate(
            request.url, request.form_dict, request.headers["X-Twilio-Signature"]
        )
        assert request.field("SmsStatus") == request.field("MessageStatus")
        assert request.field("AccountSid") == account.sid
        assert request.field("ApiVersion") == "2010-04-01"


def test_segments_and_price_follow_the_body(sms, client):
    long_gsm = client.messages.create(to="+15550001112", from_="+14155550100", body="a" * 161)
    assert long_gsm.num_segments == "2"
    emoji = client.messages.create(to="+15550001112", from_="+14155550100", body="😀" * 36)
    assert emoji.num_segments == "2"
    assert sms.wait_status(client, long_gsm.sid, "sent").price == "-0.01580"


def test_receipt_of_failure_is_undelivered_with_error(sms, client, account, app):
    message = client.messages.create(to="+15550001113", from_="+14155550100", body="x")
    sms.wait_status(client, message.sid, "sent")
    carrier_id = sms.call(sms.messaging.messages.get(account.sid, message.sid)).carrier_message_id
    sms.call(sms.messaging.receipt("fake", carrier_id, False, 30006))
    done = sms.wait_status(client, message.sid, "undelivered")
    assert (done.status, done.error_code) == ("undelivered", 30006)


def test_a_receipt_that_overtakes_the_carriers_answer_still_counts(sms, client):
    sms.carrier.receipt_first.add("+15550005555")
    message = client.messages.create(to="+15550005555", from_="+14155550100", body="fast")
    assert sms.wait_status(client, message.sid, "delivered").status == "delivered"


def test_refused_by_the_carrier_is_failed(sms, client):
    sms.carrier.reject.add("+15550009999")
    message = client.messages.create(to="+15550009999", from_="+14155550100", body="x")
    done = sms.wait_status(client, message.sid, "failed")
    assert (done.status, done.error_code) == ("failed", 30007)


def test_a_message_waits_queued_until_a_carrier_takes_it(sms, client):
    sms.carrier.unavailable = True
    try:
        message = client.messages.create(to="+15550001114", from_="+14155550100", body="wait")
        time.sleep(0.5)
        assert client.messages(message.sid).fetch().status == "queued"
    finally:
        sms.carrier.unavailable = False
    # the retry is due within a couple of seconds of backoff
    sms.call(sms.messaging.messages.update(message.sid, next_attempt_at=datetime.now(UTC)))
    sms.messaging._wake.set()
    assert sms.wait_status(client, message.sid, "sent").status == "sent"


def test_no_carrier_keeps_it_queued(sms, client):
    message = client.messages.create(to="+4420000000", from_="+14155550100", body="x")
    time.sleep(0.3)
    assert client.messages(message.sid).fetch().status == "queued"


def test_list_filters_and_pages(sms, client, account):
    to = "+15550002000"
    sids = [client.messages.create(to=to, from_="+14155550101", body=f"m{i}").sid for i in range(5)]
    for sid in sids:
        sms.wait_status(client, sid, "sent")
    listed = client.messages.list(to=to, page_size=2)
    assert [m.sid for m in listed] == list(reversed(sids))
    assert client.messages.list(from_="+14155550101", limit=3)[0].sid == sids[-1]
    today = datetime.now(UTC).date()
    assert len(client.messages.list(to=to, date_sent=today)) == 5
    assert len(client.messages.list(to=to, date_sent_after=today + timedelta(days=1))) == 0
    assert len(client.messages.list(to=to, date_sent_before=today)) == 0
    page = client.messages.page(to=to, page_size=2)
    assert len(list(page)) == 2 and page.next_page() is not None


def test_redact_and_delete(sms, client):
    message = client.messages.create(to="+15550003000", from_="+14155550100", body="secret")
    sms.wait_status(client, message.sid, "sent")
    redacted = client.messages(message.sid).update(body="")
    assert redacted.body == ""
    assert client.messages(message.sid).fetch().body == ""
    with pytest.raises(TwilioRestException) as error:
        client.messages(message.sid).update(body="not empty")
    assert error.value.status == 400
    assert client.messages(message.sid).delete() is True
    with pytest.raises(TwilioRestException) as error:
        client.messages(message.sid).fetch()
    assert (error.value.status, error.value.code) == (404, 20404)


def test_cannot_delete_a_queued_message(sms, client):
    message = client.messages.create(to="+4420000001", from_="+14155550100", body="x")
    with pytest.raises(TwilioRestException) as error:
        client.messages(message.sid).delete()
    assert error.value.code == 20009


@pytest.mark.parametrize(
    ("params", "code"),
    [
        ({"to": "", "from_": "+14155550100", "body": "x"}, 21604),
        ({"to": "+15550001111", "body": "x"}, 21603),
        ({"to": "+15550001111", "from_": "+14155550100"}, 21602),
        ({"to": "nonsense", "from_": "+14155550100", "body": "x"}, 21211),
        ({"to": "+15550001111", "from_": "not a number!", "body": "x"}, 21212),
        ({"to": "+15550001111", "from_": "+14155550100", "body": "x" * 1601}, 21617),
        (
            {"to": "+15550001111", "from_": "+14155550100", "body": "x", "media_url": ["ftp://a"]},
            21620,
        ),
        (
            {"to": "+15550001111", "from_": "+14155550100", "body": "x", "status_callback": "x"},
            21609,
        ),
        (
            {"to": "+15550001111", "from_": "+14155550100", "body": "x", "validity_period": 0},
            20001,
        ),
    ],
)
def test_bad_parameters_get_twilio_codes(client, params, code):
    with pytest.raises(TwilioRestException) as error:
        client.messages.create(**params)
    assert (error.value.status, error.value.code) == (400, code)


def test_alphanumeric_sender_is_accepted(client):
    assert client.messages.create(to="+15550001111", from_="MyShop", body="x").from_ == "MyShop"


def test_accounts_do_not_see_each_other(sms, client):
    message = client.messages.create(to="+15550001111", from_="+14155550100", body="mine")
    other = sms.client(sms.new_account())
    with pytest.raises(TwilioRestException) as error:
        other.messages(message.sid).fetch()
    assert error.value.status == 404
    assert other.messages.list() == []


def test_inbound_to_our_number_posts_sms_url_and_sends_the_reply(sms, client, account, app):
    def answer(request):
        reply = MessagingResponse()
        reply.message(f"you said {request.field('Body')}")
        return 200, "text/xml", str(reply).encode()

    app.routes["/sms"] = answer
    ours = sms.new_number()
    client.incoming_phone_numbers.create(phone_number=ours, sms_url=app.url("/sms"))
    # An SMS from a phone behind the fake carrier to our number, as a carrier reports it.
    assert sms.call(sms.messaging.inbound("+15550004000", ours, "ping"))
    request = app.wait_for("/sms", timeout=30)[-1]
    validator = RequestValidator(account.auth_token)
    assert validator.validate(request.url, request.form_dict, request.headers["X-Twilio-Signature"])
    fields = request.form_dict
    assert fields["From"] == "+15550004000" and fields["To"] == ours
    assert fields["Body"] == "ping" and fields["SmsStatus"] == "received"
    assert fields["MessageSid"] == fields["SmsSid"] == fields["SmsMessageSid"]
    assert fields["NumSegments"] == "1" and fields["NumMedia"] == "0"
    inbound = client.messages(fields["MessageSid"]).fetch()
    assert (inbound.direction, inbound.status) == ("inbound", "received")
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        replies = [m for m in client.messages.list(to="+15550004000") if m.direction != "inbound"]
        if replies and replies[0].status == "sent":
            break
        time.sleep(0.05)
    assert replies[0].body == "you said ping"
    assert replies[0].direction == "outbound-reply"
    assert replies[0].from_ == ours


def test_message_between_our_numbers_is_delivered_locally(sms, client, app):
    app.routes["/local"] = lambda r: (200, "text/xml", b"<Response/>")
    ours = sms.new_number()
    client.incoming_phone_numbers.create(phone_number=ours, sms_url=app.url("/local"))
    message = client.messages.create(to=ours, from_="+14155550100", body="hi me")
    assert sms.wait_status(client, message.sid, "delivered").status == "delivered"
    assert app.wait_for("/local", timeout=30)[-1].field("Body") == "hi me"
