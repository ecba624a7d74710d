"""Calls through the official twilio library, with rows written through the Store."""

from __future__ import annotations

from datetime import date, timedelta

import pytest
from twilio.base.exceptions import TwilioRestException

from control_api.sids import new_sid
from control_api.voice.port import Unavailable, Unroutable


def rest_error(call) -> TwilioRestException:
    with pytest.raises(TwilioRestException) as caught:
        call()
    return caught.value


def calls_uri(account) -> str:
    return f"/2010-04-01/Accounts/{account.sid}/Calls.json"


@pytest.fixture
def history(api, account, at):
    """Three calls of ``account`` over three days, and one of another account."""
    parent = api.insert_call(
        account,
        to="+14155550100",
        from_="+14155550199",
        status="completed",
        start_time=at(),
        end_time=at(seconds=42),
        duration=42,
        price="-0.01300",
        date_created=at(),
    )
    child = api.insert_call(
        account,
        to="sip:bob@example.com",
        from_="+14155550100",
        status="completed",
        direction="outbound-dial",
        parent_call_sid=parent.sid,
        start_time=at(days=1),
        end_time=at(days=1, minutes=3),
        duration=180,
        date_created=at(days=1),
    )
    live = api.insert_call(
        account,
        to="+14155550100",
        from_="client:alice",
        status="in-progress",
        start_time=at(days=2),
        date_created=at(days=2),
    )
    api.insert_call(api.new_account(), to="+14155550100", start_time=at(), date_created=at())
    return parent, child, live


def sids(calls) -> list[str]:
    return [c.sid for c in calls]


def test_list_newest_first_with_filters(client, history, at):
    parent, child, live = history
    assert sids(client.calls.list()) == [live.sid, child.sid, parent.sid]
    assert sids(client.calls.list(to="+14155550100")) == [live.sid, parent.sid]
    assert sids(client.calls.list(from_="client:alice")) == [live.sid]
    assert sids(client.calls.list(to="sip:bob@example.com")) == [child.sid]
    assert sids(client.calls.list(status="completed")) == [child.sid, parent.sid]
    assert sids(client.calls.list(status="in-progress")) == [live.sid]
    assert sids(client.calls.list(parent_call_sid=parent.sid)) == [child.sid]
    assert sids(client.calls.list(to="+19999999999")) == []


def test_list_time_filters(client, history, at):
    parent, child, live = history
    day0 = at().date()
    # StartTime: that whole UTC day, from a date or from a date-time.
    assert sids(client.calls.list(start_time=day0)) == [parent.sid]
    assert sids(client.calls.list(start_time=at(hours=3))) == [parent.sid]
    # StartTime> on or after, StartTime< before.
    assert sids(client.calls.list(start_time_after=day0 + timedelta(days=1))) == [
        live.sid,
        child.sid,
    ]
    assert sids(client.calls.list(start_time_before=day0 + timedelta(days=1))) == [parent.sid]
    assert sids(
        client.calls.list(
            start_time_after=day0 + timedelta(days=1), start_time_before=day0 + timedelta(days=2)
        )
    ) == [child.sid]
    assert sids(client.calls.list(start_time_after=at(seconds=1))) == [live.sid, child.sid]
    # EndTime: a call still going on has none.
    assert sids(client.calls.list(end_time=day0 + timedelta(days=1))) == [child.sid]
    assert sids(client.calls.list(end_time_after=day0)) == [child.sid, parent.sid]
    assert sids(client.calls.list(end_time_before=day0 + timedelta(days=1))) == [parent.sid]
    assert client.calls.list(start_time=date(2001, 1, 1)) == []


def test_raw_time_filters_as_twilio_documents_them(api, auth, account, history, at):
    parent, child, live = history
    day1 = (at() + timedelta(days=1)).date().isoformat()
    # A hand-written "StartTime>=2026-11-25" arrives as the key "StartTime>".
    response = api.http.get(f"{calls_uri(account)}?StartTime>={day1}", auth=auth)
    assert [c["sid"] for c in response.json()["calls"]] == [live.sid, child.sid]
    response = api.http.get(f"{calls_uri(account)}?StartTime<={day1}", auth=auth)
    assert [c["sid"] for c in response.json()["calls"]] == [parent.sid]
    for bad in ("yesterday", "2026-13-01", "2026-11-24T25:00:00Z"):
        response = api.http.get(calls_uri(account), params={"StartTime": bad}, auth=auth)
        assert response.status_code == 400, bad
        assert response.json()["code"] == 20001
    response = api.http.get(calls_uri(account), params={"Status": "ringing-ish"}, auth=auth)
    assert (response.status_code, response.json()["code"]) == (400, 20001)


def test_list_pages_keep_the_filters(api, client, account, at):
    made = [
        api.insert_call(account, status="completed", date_created=at(minutes=i)) for i in range(5)
    ]
    api.insert_call(account, status="busy", date_created=at(minutes=10))
    expected = [c.sid for c in reversed(made)]
    assert sids(client.calls.list(status="completed", page_size=2)) == expected
    assert sids(client.calls.stream(status="completed", page_size=2)) == expected
    page = client.calls.page(status="completed", page_size=2)
    assert "Status=completed" in page._payload["next_page_uri"]


def test_fetch_shows_twilio_fields(api, client, auth, account, history):
    parent, child, live = history
    call = client.calls(parent.sid).fetch()
    assert call.sid == parent.sid
    assert call.account_sid == account.sid
    assert call.to == "+14155550100"
    assert call.to_formatted == "(415) 555-0100"
    assert call._from == "+14155550199"
    assert call.status == "completed"
    assert call.direction == "inbound"
    assert call.duration == "42"
    assert call.price == "-0.01300"
    assert call.price_unit == "USD"
    assert call.start_time == parent.start_time.replace(microsecond=0)
    assert call.api_version == "2010-04-01"
    assert call.subresource_uris["recordings"].endswith(f"/Calls/{parent.sid}/Recordings.json")

    body = api.http.get(f"/2010-04-01/Accounts/{account.sid}/Calls/{live.sid}.json", auth=auth)
    raw = body.json()
    assert raw["duration"] is None and raw["end_time"] is None
    assert raw["from"] == "client:alice"
    assert raw["date_created"].endswith(" +0000")
    assert raw["uri"] == f"/2010-04-01/Accounts/{account.sid}/Calls/{live.sid}.json"
    child_raw = client.calls(child.sid).fetch()
    assert child_raw.parent_call_sid == parent.sid
    assert child_raw.direction == "outbound-dial"


def test_update_asks_the_live_call(api, client, account, history):
    _parent, _child, live = history
    api.live_calls.live.add(live.sid)
    try:
        api.live_calls.asked.clear()
        answer = client.calls(live.sid).update(status="completed")
        assert answer.sid == live.sid
        client.calls(live.sid).update(status="canceled")
        client.calls(live.sid).update(url="https://example.com/next", method="GET")
        client.calls(live.sid).update(url="https://example.com/default")
        client.calls(live.sid).update(twiml="<Response><Hangup/></Response>")
        assert api.live_calls.asked == [
            ("hangup", account.sid, live.sid),
            ("cancel", account.sid, live.sid),
            ("redirect", account.sid, live.sid, "https://example.com/next", "GET", None),
            ("redirect", account.sid, live.sid, "https://example.com/default", "POST", None),
            ("redirect", account.sid, live.sid, None, "POST", "<Response><Hangup/></Response>"),
        ]
    finally:
        api.live_calls.live.discard(live.sid)


def test_update_answers_with_the_fresh_call(api, client, history):
    _parent, _child, live = history
    api.live_calls.live.add(live.sid)
    try:
        api.run(api.store.calls.update(live.sid, status="completed", duration=7))
        answer = client.calls(live.sid).update(status="completed")
        assert (answer.status, answer.duration) == ("completed", "7")
    finally:
        api.live_calls.live.discard(live.sid)


def test_update_of_a_call_not_live_is_21220(api, client, history):
    parent, _child, _live = history
    for update in (
        lambda: client.calls(parent.sid).update(status="completed"),
        lambda: client.calls(parent.sid).update(status="canceled"),
        lambda: client.calls(parent.sid).update(url="https://example.com/next"),
        lambda: client.calls(parent.sid).update(twiml="<Response/>"),
    ):
        error = rest_error(update)
        assert (error.status, error.code) == (400, 21220)
    assert (
        "Cannot redirect"
        in rest_error(lambda: client.calls(parent.sid).update(url="https://example.com/next")).msg
    )


def test_update_checks_its_parameters(api, client, history):
    _parent, _child, live = history
    api.live_calls.live.add(live.sid)
    api.live_calls.asked.clear()
    try:
        for update, code in (
            (lambda: client.calls(live.sid).update(status="in-progress"), 20001),
            (lambda: client.calls(live.sid).update(url="not a url"), 21205),
            (
                lambda: client.calls(live.sid).update(url="https://example.com/", method="PUT"),
                21209,
            ),
        ):
            error = rest_error(update)
            assert (error.status, error.code) == (400, code)
        assert api.live_calls.asked == []
        error = rest_error(lambda: client.calls(new_sid("CA")).update(status="completed"))
        assert (error.status, error.code) == (404, 20404)
        assert api.live_calls.asked == []
    finally:
        api.live_calls.live.discard(live.sid)


def test_delete_only_finished_calls(api, client, history):
    parent, _child, live = history
    error = rest_error(client.calls(live.sid).delete)
    assert (error.status, error.code) == (400, 20009)
    assert client.calls(live.sid).fetch().sid == live.sid
    assert client.calls(parent.sid).delete() is True
    error = rest_error(client.calls(parent.sid).fetch)
    assert (error.status, error.code) == (404, 20404)
    error = rest_error(client.calls(parent.sid).delete)
    assert (error.status, error.code) == (404, 20404)


def test_another_accounts_calls_are_not_found(api, client, other, at):
    theirs = api.insert_call(other, status="completed", start_time=at())
    for call in (
        client.calls(theirs.sid).fetch,
        lambda: client.calls(theirs.sid).update(status="completed"),
        client.calls(theirs.sid).delete,
    ):
        error = rest_error(call)
        assert (error.status, error.code) == (404, 20404)
    assert client.calls.list() == []
    assert api.client(other).calls(theirs.sid).fetch().status == "completed"


@pytest.mark.parametrize(
    ("params", "code"),
    [
        ({"From": "+14155550100", "Url": "https://example.com/"}, 21201),
        ({"To": "+14155550100", "Url": "https://example.com/"}, 21213),
        ({"To": "hello", "From": "+14155550100", "Url": "https://example.com/"}, 21211),
        ({"To": "+14155550100", "From": "client:", "Url": "https://example.com/"}, 21212),
        ({"To": "+14155550100", "From": "+14155550101"}, 21205),
        ({"To": "+14155550100", "From": "+14155550101", "Url": "example.com"}, 21205),
        (
            {
                "To": "+14155550100",
                "From": "+14155550101",
                "Url": "http://x.example/",
                "Method": "PUT",
            },
            21209,
        ),
    ],
)
def test_create_checks_parameters_like_twilio(api, account, auth, params, code):
    response = api.http.post(calls_uri(account), data=params, auth=auth)
    assert (response.status_code, response.json()["code"]) == (400, code)


def test_create_without_sip_is_501(client, api):
    api.live_calls.store = None
    error = rest_error(
        lambda: client.calls.create(
            to="client:alice", from_="+14155550100", url="https://example.com/answer"
        )
    )
    assert error.status == 501
    assert error.code == 20004
    assert "places no calls" in error.msg


@pytest.mark.parametrize(
    ("refused", "status"), [(True, 403), (False, 400)], ids=["dial-guard", "no-route"]
)
def test_an_unroutable_call_is_21215(client, api, monkeypatch, refused, status):
    """The engine says Unroutable (a domain error); the API answers Twilio's 21215."""

    async def create(account_sid, new_call):
        raise Unroutable(f"cannot reach {new_call.to}", refused=refused)

    monkeypatch.setattr(api.live_calls, "create", create)
    error = rest_error(
        lambda: client.calls.create(
            to="+14155550111", from_="+14155550100", url="https://example.com/answer"
        )
    )
    assert (error.status, error.code) == (status, 21215)
    assert "cannot reach +14155550111" in error.msg


def test_an_unavailable_engine_is_20503(client, api, monkeypatch):
    """The node drains, or the node holding the call did not answer (domain errors of
    the voice port and the cluster): the API answers 503, Twilio's 20503."""

    async def create(account_sid, new_call):
        raise Unavailable("This node is draining: place the call on another node")

    monkeypatch.setattr(api.live_calls, "create", create)
    error = rest_error(
        lambda: client.calls.create(
            to="+14155550111", from_="+14155550100", url="https://example.com/answer"
        )
    )
    assert (error.status, error.code) == (503, 20503) and "draining" in error.msg


def test_create_hands_checked_parameters_to_the_engine(client, api):
    api.live_calls.store = api.store
    call = client.calls.create(
        to="+14155550111",
        from_="+14155550100",
        url="https://example.com/answer",
        status_callback="https://example.com/status",
        status_callback_event=["initiated", "ringing", "answered", "completed"],
        timeout=15,
        send_digits="1w2",
    )
    assert call.sid.startswith("CA") and call.status == "queued"
    assert call.direction == "outbound-api"
    assert client.calls(call.sid).fetch().to == "+14155550111"
    _, _, new_call = api.live_calls.asked[-1]
    assert new_call.status_callback_events == {"initiated", "ringing", "answered", "completed"}
    assert new_call.timeout == 15 and new_call.send_digits == "1w2"
    api.live_calls.store = None


def test_create_refuses_unknown_status_events(client, api):
    api.live_calls.store = api.store
    error = rest_error(
        lambda: client.calls.create(
            to="+14155550111",
            from_="+14155550100",
            url="https://example.com/answer",
            status_callback_event=["exploded"],
        )
    )
    api.live_calls.store = None
    assert error.status == 400
