"""Call logs through the official twilio library: the account's and a call's
Notifications (list with Log/MessageDate, fetch) and a call's Events."""

from __future__ import annotations

from datetime import timedelta

import pytest
from twilio.base.exceptions import TwilioException, TwilioRestException

from control_api.call_log import WARNING, CallLog
from control_api.http_client import HttpResponse
from control_api.sids import new_sid, utcnow
from control_api.webhooks import Exchange


def log_call(api, account, call_sid: str, *, days_ago: int = 0) -> None:
    """What a call whose webhook answered 500 leaves, as the voice runtime writes it."""
    params = [("CallSid", call_sid), ("AccountSid", account.sid), ("From", "+15550001")]
    answer = HttpResponse(500, [(b"Content-Type", b"text/plain")], b"server exploded")
    when = utcnow() - timedelta(days=days_ago)

    async def write() -> None:
        log = CallLog(api.store, clock=lambda: when)
        log.exchanged(Exchange("https://app.example/voice", "POST", params, answer, 0.05))
        log.problem(
            account_sid=account.sid,
            call_sid=call_sid,
            code=11200,
            text="HTTP 500",
            url="https://app.example/voice",
            method="POST",
            params=params,
            response=answer,
        )
        log.problem(account_sid=account.sid, call_sid=call_sid, code=12200, text="w", level=WARNING)
        await log.flush()

    api.run(write())


def test_a_calls_notifications_list_and_fetch(api, client, account):
    call = api.insert_call(account, status="completed")
    log_call(api, account, call.sid)
    notes = client.calls(call.sid).notifications.list()
    assert sorted(n.error_code for n in notes) == ["11200", "12200"]
    error = next(n for n in notes if n.error_code == "11200")
    assert (error.log, error.request_method) == ("0", "POST")
    assert error.request_url == "https://app.example/voice"
    assert error.more_info == "https://www.twilio.com/docs/errors/11200"
    assert error.uri == (
        f"/2010-04-01/Accounts/{account.sid}/Calls/{call.sid}/Notifications/{error.sid}.json"
    )
    assert error.request_variables is None  # lists leave them out, as Twilio's
    fetched = client.calls(call.sid).notifications(error.sid).fetch()
    assert fetched.response_body == "server exploded"
    assert "CallSid=" in fetched.request_variables
    assert fetched.response_headers == "Content-Type: text/plain"
    assert "httpResponse=500" in fetched.message_text
    assert [n.error_code for n in client.calls(call.sid).notifications.list(log=1)] == ["12200"]


def test_the_accounts_notifications_with_filters(api, client, account, other):
    old, new = api.insert_call(account), api.insert_call(account)
    log_call(api, account, old.sid, days_ago=3)
    log_call(api, account, new.sid)
    assert {n.call_sid for n in client.notifications.list()} == {old.sid, new.sid}
    errors = client.notifications.list(log=0)
    assert {n.error_code for n in errors} == {"11200"} and len(errors) == 2
    today = client.notifications.list(message_date=utcnow().date())
    assert {n.call_sid for n in today} == {new.sid}
    before = client.notifications.list(message_date_before=(utcnow() - timedelta(days=1)).date())
    assert {n.call_sid for n in before} == {old.sid}
    sid = errors[0].sid
    assert client.notifications(sid).fetch().uri.endswith(f"/Notifications/{sid}.json")
    assert api.client(other).notifications.list() == []
    with pytest.raises(TwilioRestException) as caught:
        api.client(other).notifications(sid).fetch()
    assert caught.value.status == 404


def test_a_bad_log_filter_is_refused(api, account):
    answer = api.http.get(
        f"/2010-04-01/Accounts/{account.sid}/Notifications.json?Log=7",
        auth=(account.sid, account.auth_token),
    )
    assert answer.status_code == 400


def test_a_calls_events_are_its_webhook_requests(api, client, account):
    call = api.insert_call(account)
    log_call(api, account, call.sid)
    [event] = client.calls(call.sid).events.list()
    assert event.request["method"] == "POST" and event.request["url"] == "https://app.example/voice"
    assert event.request["parameters"]["From"] == "+15550001"
    assert event.response["response_code"] == 500
    assert event.response["response_body"] == "server exploded"
    with pytest.raises(TwilioException, match="404"):  # no such call
        client.calls(new_sid("CA")).events.list()


def test_a_call_of_nobodys_has_no_logs(api, client, account, other):
    call = api.insert_call(account)
    log_call(api, account, call.sid)
    theirs = api.client(other)
    for listing in (theirs.calls(call.sid).notifications, theirs.calls(call.sid).events):
        with pytest.raises(TwilioException, match="404"):
            listing.list()
    note = client.calls(call.sid).notifications.list()[0]
    elsewhere = api.insert_call(account)
    with pytest.raises(TwilioRestException):
        client.calls(elsewhere.sid).notifications(note.sid).fetch()


def test_the_call_and_the_account_link_their_logs(client, account, api):
    call = api.insert_call(account)
    uris = client.calls(call.sid).fetch().subresource_uris
    base = f"/2010-04-01/Accounts/{account.sid}/Calls/{call.sid}"
    assert uris["notifications"] == f"{base}/Notifications.json"
    assert uris["events"] == f"{base}/Events.json"
    assert (
        client.api.accounts(account.sid)
        .fetch()
        .subresource_uris["notifications"]
        .endswith("/Notifications.json")
    )
