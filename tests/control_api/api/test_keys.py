"""Keys through the official twilio library; key-signed access tokens and Basic auth."""

from __future__ import annotations

import time

import pytest
from twilio.base.exceptions import TwilioRestException
from twilio.jwt.access_token import AccessToken
from twilio.jwt.access_token.grants import VoiceGrant
from twilio.rest import Client

from control_api.sids import is_sid
from signaling.tokens import verify
from tests.control_api.api.conftest import LocalHttpClient


def test_create_shows_the_secret_once_and_list_fetch_delete(client, account, api):
    key = client.new_keys.create(friendly_name="browser phones")
    assert is_sid(key.sid, "SK")
    assert key.friendly_name == "browser phones"
    assert len(key.secret) == 32
    assert key.date_created is not None

    listed = client.keys.list()
    assert [k.sid for k in listed] == [key.sid]
    fetched = client.keys(key.sid).fetch()
    assert fetched.friendly_name == "browser phones"
    body = api.http.get(
        f"/2010-04-01/Accounts/{account.sid}/Keys/{key.sid}.json",
        auth=(account.sid, account.auth_token),
    ).json()
    assert "secret" not in body

    renamed = client.keys(key.sid).update(friendly_name="tabs")
    assert renamed.friendly_name == "tabs"

    assert client.keys(key.sid).delete() is True
    assert client.keys.list() == []
    with pytest.raises(TwilioRestException) as caught:
        client.keys(key.sid).fetch()
    assert caught.value.status == 404
    assert api.run(api.store.api_keys.find(key.sid)) is None


def test_a_library_token_signed_with_a_new_key_verifies(client, account, api):
    key = client.new_keys.create(friendly_name="tokens")
    token = AccessToken(account.sid, key.sid, key.secret, identity="alice", ttl=600)
    token.add_grant(VoiceGrant(incoming_allow=True))
    stored = api.run(api.store.api_keys.find(key.sid))
    claims = verify(
        token.to_jwt(), secret=stored.secret, account_sid=stored.account_sid, now=time.time()
    )
    assert claims.identity == "alice" and claims.incoming_allow


def test_another_account_sees_none_of_the_keys(client, api, other):
    key = client.new_keys.create(friendly_name="mine")
    theirs = api.client(other)
    assert theirs.keys.list() == []
    with pytest.raises(TwilioRestException) as caught:
        theirs.keys(key.sid).fetch()
    assert caught.value.status == 404
    with pytest.raises(TwilioRestException):
        theirs.keys(key.sid).delete()
    assert client.keys(key.sid).fetch().sid == key.sid


def test_a_key_authenticates_rest_requests_for_its_account(client, account, api, other):
    key = client.new_keys.create()
    keyed = Client(key.sid, key.secret, account.sid, http_client=LocalHttpClient(api.base_url))
    assert [k.sid for k in keyed.keys.list()] == [key.sid]
    wrong = Client(key.sid, "x" * 32, account.sid, http_client=LocalHttpClient(api.base_url))
    with pytest.raises(TwilioRestException) as caught:
        wrong.keys(key.sid).fetch()
    assert caught.value.status == 401
    foreign = Client(key.sid, key.secret, other.sid, http_client=LocalHttpClient(api.base_url))
    with pytest.raises(TwilioRestException) as caught:
        foreign.keys(key.sid).fetch()
    assert caught.value.status == 401


def test_friendly_name_too_long_is_refused(client):
    with pytest.raises(TwilioRestException) as caught:
        client.new_keys.create(friendly_name="x" * 65)
    assert caught.value.status == 400
