"""OutgoingCallerIds and ValidationRequests through the official twilio library."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import httpx
import pytest
from twilio.base.exceptions import TwilioRestException
from twilio.rest import Client

from control_api.api import create_app
from control_api.sids import is_sid, new_sid
from control_api.store import Account, Store
from control_api.voice.port import Unroutable
from control_api.voice.validation import NewValidation
from tests.control_api.api.conftest import FakeLiveCalls, LocalHttpClient, serve


class FakeValidations:
    """Validation calls as the test says they go: each request kept, none placed."""

    def __init__(self) -> None:
        self.started: list[tuple[str, NewValidation, str]] = []
        self.unroutable: set[str] = set()

    async def start(self, account_sid: str, new: NewValidation) -> str:
        if new.phone_number in self.unroutable:
            raise Unroutable(f"{new.phone_number} cannot be called from here")
        sid = new_sid("CA")
        self.started.append((account_sid, new, sid))
        return sid


class Server:
    def __init__(self, base_url: str, store: Store, validations: FakeValidations) -> None:
        self.base_url = base_url
        self.store = store
        self.validations = validations
        self.http = httpx.Client(base_url=base_url, timeout=10)

    def account(self) -> Account:
        return asyncio.run(self.store.accounts.create("caller ids"))

    def client(self, account: Account) -> Client:
        return Client(account.sid, account.auth_token, http_client=LocalHttpClient(self.base_url))

    def verify(self, account: Account, number: str, name: str | None = None):
        return asyncio.run(self.store.caller_ids.verified(account.sid, number, name))


@pytest.fixture(scope="module")
def server(store_url: str) -> Iterator[Server]:
    validations = FakeValidations()

    def make(store: Store):
        live_calls = FakeLiveCalls(store=store)  # REST calls stored as queued
        return create_app(store, live_calls, caller_id_validations=validations)

    with serve(store_url, make) as (base_url, store, _):
        yield Server(base_url, store, validations)


def test_a_validation_request_answers_the_code_and_the_call(server):
    account = server.account()
    client = server.client(account)
    request = client.validation_requests.create(
        phone_number="+14155550123",
        friendly_name="front desk",
        call_delay=5,
        extension="12#",
        status_callback="https://example.com/verified",
    )
    assert request.phone_number == "+14155550123"
    assert request.friendly_name == "front desk"
    assert request.account_sid == account.sid
    assert len(request.validation_code) == 6 and request.validation_code.isdigit()
    account_sid, new, call_sid = server.validations.started[-1]
    assert (account_sid, request.call_sid) == (account.sid, call_sid)
    assert new.code == request.validation_code
    assert (new.call_delay, new.extension) == (5, "12#")
    assert new.status_callback == "https://example.com/verified"
    assert new.status_callback_method == "POST"
    # Not verified until the callee keyed the code.
    assert client.outgoing_caller_ids.list() == []


def test_validation_refusals_have_twilios_codes(server):
    account = server.account()
    client = server.client(account)
    for params, code in (
        ({"phone_number": "not a number"}, 21401),
        ({"phone_number": "+14155550124", "call_delay": 61}, 20001),
        ({"phone_number": "+14155550124", "extension": "12x"}, 20001),
        ({"phone_number": "+14155550124", "status_callback": "ftp://x"}, 20001),
    ):
        with pytest.raises(TwilioRestException) as caught:
            client.validation_requests.create(**params)
        assert (caught.value.status, caught.value.code) == (400, code)
    server.verify(account, "+14155550125")
    with pytest.raises(TwilioRestException) as caught:
        client.validation_requests.create(phone_number="+14155550125")
    assert caught.value.code == 21450
    server.validations.unroutable.add("+14155550126")
    with pytest.raises(TwilioRestException) as caught:
        client.validation_requests.create(phone_number="+14155550126")
    assert caught.value.code == 21215


def test_list_filter_fetch_rename_and_delete(server):
    account = server.account()
    client = server.client(account)
    first = server.verify(account, "+14155550127", "(415) 555-0127")
    second = server.verify(account, "+14155550128", "sales")
    assert is_sid(first.sid, "PN")
    assert [c.sid for c in client.outgoing_caller_ids.list()] == [first.sid, second.sid]
    assert [c.sid for c in client.outgoing_caller_ids.list(phone_number="+14155550128")] == [
        second.sid
    ]
    assert [c.sid for c in client.outgoing_caller_ids.list(friendly_name="sales")] == [second.sid]
    fetched = client.outgoing_caller_ids(first.sid).fetch()
    assert fetched.phone_number == "+14155550127"
    assert fetched.uri == f"/2010-04-01/Accounts/{account.sid}/OutgoingCallerIds/{first.sid}.json"
    renamed = client.outgoing_caller_ids(first.sid).update(friendly_name="front desk")
    assert renamed.friendly_name == "front desk"
    assert client.outgoing_caller_ids(first.sid).delete() is True
    with pytest.raises(TwilioRestException) as caught:
        client.outgoing_caller_ids(first.sid).fetch()
    assert (caught.value.status, caught.value.code) == (404, 20404)
    body = server.http.get(
        f"/2010-04-01/Accounts/{account.sid}.json", auth=(account.sid, account.auth_token)
    ).json()
    assert body["subresource_uris"]["outgoing_caller_ids"].endswith("/OutgoingCallerIds.json")


def test_another_accounts_caller_ids_are_not_seen(server):
    owner, intruder = server.account(), server.account()
    caller_id = server.verify(owner, "+14155550129")
    client = server.client(intruder)
    assert client.outgoing_caller_ids.list() == []
    for act in (
        lambda: client.outgoing_caller_ids(caller_id.sid).fetch(),
        lambda: client.outgoing_caller_ids(caller_id.sid).update(friendly_name="mine"),
        lambda: client.outgoing_caller_ids(caller_id.sid).delete(),
    ):
        with pytest.raises(TwilioRestException) as caught:
            act()
        assert caught.value.status == 404
    assert server.client(owner).outgoing_caller_ids(caller_id.sid).fetch().sid == caller_id.sid


def test_without_a_voice_runtime_validation_answers_501(store_url):
    with serve(store_url, lambda store: create_app(store, FakeLiveCalls())) as (url, store, _):
        account = asyncio.run(store.accounts.create("no voice"))
        client = Client(account.sid, account.auth_token, http_client=LocalHttpClient(url))
        with pytest.raises(TwilioRestException) as caught:
            client.validation_requests.create(phone_number="+14155550130")
        assert caught.value.status == 501


def test_verified_caller_ids_limit_a_rest_calls_from(store_url):
    def make(store: Store):
        return create_app(store, FakeLiveCalls(store=store), verified_caller_ids=True)

    with serve(store_url, make) as (url, store, _):
        account = asyncio.run(store.accounts.create("strict"))
        other = asyncio.run(store.accounts.create("owner"))
        asyncio.run(store.numbers.create(account.sid, "+14155550140"))
        asyncio.run(store.numbers.create(other.sid, "+14155550141"))
        asyncio.run(store.caller_ids.verified(account.sid, "+14155550142"))
        client = Client(account.sid, account.auth_token, http_client=LocalHttpClient(url))
        placed = []
        for caller in ("+14155550140", "+14155550142", "client:alice", "sip:bot@example.com"):
            call = client.calls.create(to="+15550100001", from_=caller, url="https://e.com/a")
            placed.append(call._from)
        assert placed == ["+14155550140", "+14155550142", "client:alice", "sip:bot@example.com"]
        for caller in ("+14155550141", "+14155550143"):  # another account's; nobody's
            with pytest.raises(TwilioRestException) as caught:
                client.calls.create(to="+15550100001", from_=caller, url="https://e.com/a")
            assert (caught.value.status, caught.value.code) == (400, 21210)


def test_by_default_any_number_may_be_a_rest_calls_from(server):
    account = server.account()
    call = server.client(account).calls.create(
        to="+15550100001", from_="+14155550144", url="https://e.com/a"
    )
    assert call._from == "+14155550144"
