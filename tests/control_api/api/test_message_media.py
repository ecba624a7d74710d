"""Messages' media (MMS) through the official twilio library: inbound media stored and
named on the SmsUrl webhook, the Media resource, and outbound MediaUrl fetched."""

from __future__ import annotations

import time

import httpx
import pytest
from twilio.base.exceptions import TwilioException, TwilioRestException

from control_api.sids import is_sid
from control_api.sms.mms import MmsPart
from tests.control_api.api.sms_server import SmsServer
from tests.interop.webhook_app import WebhookApp

PNG = b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 4
JPEG = b"\xff\xd8\xff\xe0" + bytes(200)


@pytest.fixture(scope="module")
def sms(tmp_path_factory):
    with SmsServer(tmp_path_factory.mktemp("mms")) as server:
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


def test_inbound_media_are_stored_and_named_on_the_webhook(sms, client, account, app):
    app.routes["/mms"] = lambda r: (200, "text/xml", b"<Response/>")
    ours = sms.new_number()
    client.incoming_phone_numbers.create(phone_number=ours, sms_url=app.url("/mms"))
    media = [MmsPart("image/png", PNG), MmsPart("image/jpeg", JPEG)]
    assert sms.call(sms.messaging.inbound("+15550004001", ours, "look", media))
    fields = app.wait_for("/mms", timeout=30)[-1].form_dict
    assert fields["NumMedia"] == "2" and fields["Body"] == "look"
    assert (fields["MediaContentType0"], fields["MediaContentType1"]) == ("image/png", "image/jpeg")
    sid = fields["MessageSid"]
    assert is_sid(sid, "MM")
    message = client.messages(sid).fetch()
    assert message.num_media == "2"
    assert message.subresource_uris["media"].endswith(f"/Messages/{sid}/Media.json")
    listed = client.messages(sid).media.list()
    assert [m.content_type for m in listed] == ["image/png", "image/jpeg"]
    first = client.messages(sid).media(listed[0].sid).fetch()
    assert first.parent_sid == sid and is_sid(first.sid, "ME")
    assert first.uri == f"/2010-04-01/Accounts/{account.sid}/Messages/{sid}/Media/{first.sid}.json"
    # The webhook's MediaUrl0 is the file itself, with its type, without credentials.
    assert fields["MediaUrl0"].endswith(first.uri.removesuffix(".json"))
    raw = httpx.get(sms.base_url + first.uri.removesuffix(".json"))
    assert raw.status_code == 200 and raw.content == PNG
    assert raw.headers["content-type"] == "image/png"
    wrong = httpx.get(sms.base_url + first.uri.removesuffix(".json"), auth=(account.sid, "x" * 32))
    assert wrong.status_code == 401
    assert client.messages(sid).media(first.sid).delete() is True
    assert [m.sid for m in client.messages(sid).media.list()] == [listed[1].sid]
    assert httpx.get(sms.base_url + first.uri.removesuffix(".json")).status_code == 404
    # Deleting the message deletes its media with it.
    second = listed[1].uri.removesuffix(".json")
    assert client.messages(sid).delete() is True
    assert httpx.get(sms.base_url + second).status_code == 404


def test_another_accounts_media_are_not_seen(sms, client, account):
    ours = sms.new_number()
    client.incoming_phone_numbers.create(phone_number=ours)
    assert sms.call(sms.messaging.inbound("+15550004002", ours, "", [MmsPart("image/png", PNG)]))
    [message] = client.messages.list(to=ours)
    [medium] = client.messages(message.sid).media.list()
    intruder = sms.client(sms.new_account())
    with pytest.raises(TwilioException, match="20404"):  # the library's list error
        intruder.messages(message.sid).media.list()
    for act in (
        lambda: intruder.messages(message.sid).media(medium.sid).fetch(),
        lambda: intruder.messages(message.sid).media(medium.sid).delete(),
    ):
        with pytest.raises(TwilioRestException) as caught:
            act()
        assert caught.value.status == 404


def _wait(client, sid: str, *statuses: str):
    deadline = time.monotonic() + 20
    while (message := client.messages(sid).fetch()).status not in statuses:
        assert time.monotonic() < deadline, message.status
        time.sleep(0.05)
    return message


def test_outbound_media_url_is_fetched_stored_and_linked_for_a_carrier_without_media(
    sms, client, app
):
    app.routes["/cat.png"] = lambda r: (200, "image/png", PNG)
    message = client.messages.create(
        to="+15550004003", from_="+14155550100", body="a cat", media_url=[app.url("/cat.png")]
    )
    assert is_sid(message.sid, "MM") and message.num_media == "1"
    _wait(client, message.sid, "sent", "delivered")
    [medium] = client.messages(message.sid).media.list()
    assert medium.content_type == "image/png"
    assert httpx.get(sms.base_url + medium.uri.removesuffix(".json")).content == PNG
    [sent] = [s for s in sms.carrier.submitted if s.sid == message.sid]
    # The fake carrier carries no media: the text with the medium's URL, as Twilio's
    # MMS converter sends it.
    assert sent.media == ()
    assert sent.body == f"a cat\n{medium.uri.removesuffix('.json')}"


def test_outbound_media_of_a_refused_type_or_unreachable_fail_the_message(sms, client, app):
    app.routes["/page.html"] = lambda r: (200, "text/html", b"<html></html>")
    refused = client.messages.create(
        to="+15550004004", from_="+14155550100", media_url=[app.url("/page.html")]
    )
    assert _wait(client, refused.sid, "failed").error_code == 12300
    missing = client.messages.create(
        to="+15550004004", from_="+14155550100", media_url=[app.url("/nothing.png")]
    )
    assert _wait(client, missing.sid, "failed").error_code == 11200


def test_media_between_our_numbers_arrive_as_an_mms(sms, client, app):
    app.routes["/pic.png"] = lambda r: (200, "image/png", PNG)
    app.routes["/local-mms"] = lambda r: (200, "text/xml", b"<Response/>")
    ours = sms.new_number()
    client.incoming_phone_numbers.create(phone_number=ours, sms_url=app.url("/local-mms"))
    sent = client.messages.create(to=ours, from_="+14155550100", media_url=[app.url("/pic.png")])
    _wait(client, sent.sid, "delivered")
    fields = app.wait_for("/local-mms", timeout=30)[-1].form_dict
    assert fields["NumMedia"] == "1" and fields["MediaContentType0"] == "image/png"
    [medium] = client.messages(fields["MessageSid"]).media.list()
    assert httpx.get(sms.base_url + medium.uri.removesuffix(".json")).content == PNG
