"""Queues and their Members through the official twilio library."""

from __future__ import annotations

from datetime import timedelta

import pytest
from twilio.base.exceptions import TwilioRestException

from control_api.sids import is_sid, new_sid, utcnow
from control_api.store import QueueMember


def enqueue(api, account, queue_sid: str, seconds_ago: int) -> str:
    """A call waiting in the queue since ``seconds_ago``, as the voice runtime writes it."""
    call_sid = new_sid("CA")
    joined = utcnow() - timedelta(seconds=seconds_ago)
    api.run(api.store.queue_members.add(QueueMember(queue_sid, call_sid, account.sid, joined)))
    return call_sid


def test_create_fetch_update_list_delete(client, account):
    queue = client.queues.create(friendly_name="support")
    assert is_sid(queue.sid, "QU")
    assert (queue.friendly_name, queue.max_size) == ("support", 1000)
    assert (queue.current_size, queue.average_wait_time) == (0, 0)
    assert queue.uri == f"/2010-04-01/Accounts/{account.sid}/Queues/{queue.sid}.json"
    updated = client.queues(queue.sid).update(friendly_name="sales", max_size=20)
    assert (updated.friendly_name, updated.max_size) == ("sales", 20)
    assert [q.sid for q in client.queues.list()] == [queue.sid]
    assert client.queues(queue.sid).fetch().friendly_name == "sales"
    assert client.queues(queue.sid).delete() is True
    with pytest.raises(TwilioRestException) as caught:
        client.queues(queue.sid).fetch()
    assert caught.value.status == 404


def test_members_are_served_under_the_queue_uri(client, api, account):
    """The spec's queue has no ``subresource_uris``: Members is at the queue's URI."""
    queue = client.queues.create(friendly_name="q")
    body = api.http.get(
        f"/2010-04-01/Accounts/{account.sid}/Queues/{queue.sid}.json",
        auth=(account.sid, account.auth_token),
    ).json()
    assert "subresource_uris" not in body and "api_version" not in body
    members = body["uri"].removesuffix(".json") + "/Members.json"
    answer = api.http.get(members, auth=(account.sid, account.auth_token))
    assert answer.status_code == 200 and answer.json()["queue_members"] == []


@pytest.mark.parametrize(
    "fields",
    [
        {"friendly_name": ""},
        {"friendly_name": "x" * 65},
        {"friendly_name": "a", "max_size": 0},
        {"friendly_name": "a", "max_size": 5001},
    ],
)
def test_bad_fields_are_refused(client, fields):
    with pytest.raises(TwilioRestException) as caught:
        client.queues.create(**fields)
    assert caught.value.status == 400


def test_a_name_is_one_queue_per_account(client, api, other):
    client.queues.create(friendly_name="dup")
    with pytest.raises(TwilioRestException) as caught:
        client.queues.create(friendly_name="dup")
    assert caught.value.status == 400
    assert api.client(other).queues.create(friendly_name="dup").friendly_name == "dup"


def test_members_statistics_and_front(client, api, account):
    queue = client.queues.create(friendly_name="stats")
    first = enqueue(api, account, queue.sid, 30)
    second = enqueue(api, account, queue.sid, 10)
    fetched = client.queues(queue.sid).fetch()
    assert fetched.current_size == 2
    assert fetched.average_wait_time in (20, 21)
    members = client.queues(queue.sid).members.list()
    assert [(m.call_sid, m.position) for m in members] == [(first, 1), (second, 2)]
    assert members[0].wait_time in (30, 31) and members[0].queue_sid == queue.sid
    front = client.queues(queue.sid).members("Front").fetch()
    assert (front.call_sid, front.position) == (first, 1)
    assert client.queues(queue.sid).members(second).fetch().position == 2
    with pytest.raises(TwilioRestException) as caught:
        client.queues(queue.sid).members(new_sid("CA")).fetch()
    assert caught.value.status == 404
    with pytest.raises(TwilioRestException) as caught:
        client.queues(queue.sid).delete()  # not while calls wait
    assert caught.value.status == 400


def test_dequeue_redirects_the_call(client, api, account):
    queue = client.queues.create(friendly_name="dequeue")
    waiting = enqueue(api, account, queue.sid, 5)
    api.live_calls.live.add(waiting)
    member = (
        client.queues(queue.sid)
        .members("Front")
        .update(url="https://example.com/agent", method="GET")
    )
    assert member.call_sid == waiting
    assert api.live_calls.asked[-1] == (
        "redirect",
        account.sid,
        waiting,
        "https://example.com/agent",
        "GET",
        None,
    )
    with pytest.raises(TwilioRestException) as caught:
        client.queues(queue.sid).members(waiting).update(url="ftp://nope")
    assert caught.value.status == 400


def test_a_member_whose_call_is_gone_is_dropped(client, api, account):
    queue = client.queues.create(friendly_name="stale")
    gone = enqueue(api, account, queue.sid, 5)  # not live: its node went away
    with pytest.raises(TwilioRestException) as caught:
        client.queues(queue.sid).members(gone).update(url="https://example.com/x")
    assert caught.value.status == 404
    assert client.queues(queue.sid).members.list() == []


def test_another_account_cannot_see_them(client, api, account, other):
    queue = client.queues.create(friendly_name="mine")
    enqueue(api, account, queue.sid, 1)
    theirs = api.client(other)
    assert theirs.queues.list() == []
    for call in (
        lambda: theirs.queues(queue.sid).fetch(),
        lambda: theirs.queues(queue.sid).update(max_size=3),
        lambda: theirs.queues(queue.sid).delete(),
        lambda: theirs.queues(queue.sid).members("Front").fetch(),
    ):
        with pytest.raises(TwilioRestException) as caught:
            call()
        assert caught.value.status == 404
    members = f"/2010-04-01/Accounts/{other.sid}/Queues/{queue.sid}/Members.json"
    assert api.http.get(members, auth=(other.sid, other.auth_token)).status_code == 404


# The properties of the 2010-04-01 spec's schemas (api.v2010.account.queue and
# api.v2010.account.queue.member) and their JSON types.
QUEUE_SCHEMA = {
    "date_updated": str,
    "current_size": int,
    "friendly_name": str,
    "uri": str,
    "account_sid": str,
    "average_wait_time": int,
    "sid": str,
    "date_created": str,
    "max_size": int,
}
MEMBER_SCHEMA = {
    "call_sid": str,
    "date_enqueued": str,
    "position": int,
    "uri": str,
    "wait_time": int,
    "queue_sid": str,
}


def test_answers_have_every_field_of_the_spec_with_its_type(client, api, account):
    queue = client.queues.create(friendly_name="schema")
    enqueue(api, account, queue.sid, 3)
    auth = (account.sid, account.auth_token)
    base = f"/2010-04-01/Accounts/{account.sid}/Queues"
    answers = {
        "queue": api.http.get(f"{base}/{queue.sid}.json", auth=auth).json(),
        "listed": api.http.get(f"{base}.json", auth=auth).json()["queues"][0],
        "member": api.http.get(f"{base}/{queue.sid}/Members/Front.json", auth=auth).json(),
        "listed member": api.http.get(f"{base}/{queue.sid}/Members.json", auth=auth).json()[
            "queue_members"
        ][0],
    }
    for name, body in answers.items():
        schema = QUEUE_SCHEMA if "member" not in name else MEMBER_SCHEMA
        for field, kind in schema.items():
            assert isinstance(body.get(field), kind), (name, field, body.get(field))
