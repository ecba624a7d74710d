"""SigningKeys through the official twilio library: a list of its own beside Keys, the
secret shown once, and the key signing access tokens and authenticating REST requests."""

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


def test_create_shows_the_secret_once_and_list_fetch_update_delete(client, account, api):
    key = client.new_signing_keys.create(friendly_name="video rooms")
    assert is_sid(key.sid, "SK")
    assert key.friendly_name == "video rooms"
    assert len(key.secret) == 32
    assert key.date_created is not None

    assert [k.sid for k in client.signing_keys.list()] == [key.sid]
    fetched = client.signing_keys(key.sid).fetch()
    assert fetched.friendly_name == "video rooms"
    body = api.http.get(
        f"/2010-04-01/Accounts/{account.sid}/SigningKeys/{key.sid}.json",
        auth=(account.sid, account.auth_token),
    ).json()
    assert "secret" not in body
    assert client.signing_keys(key.sid).update(friendly_name="tabs").friendly_name == "tabs"
    assert client.signing_keys(key.sid).fetch().friendly_name == "tabs"

    assert client.signing_keys(key.sid).delete() is True
    assert client.signing_keys.list() == []
    with pytest.raises(TwilioRestException) as caught:
        client.signing_keys(key.sid).fetch()
    assert caught.value.status == 404
    assert api.run(api.store.signing_keys.find(key.sid)) is None


def test_signing_keys_and_keys_are_two_lists(client):
    signing = client.new_signing_keys.create(friendly_name="signing")
    standard = client.new_keys.create(friendly_name="standard")
    assert [k.sid for k in client.signing_keys.list()] == [signing.sid]
    assert [k.sid for k in client.keys.list()] == [standard.sid]
    for other_list in (client.keys(signing.sid), client.signing_keys(standard.sid)):
        with pytest.raises(TwilioRestException) as caught:
            other_list.fetch()
        assert caught.value.status == 404
    with pytest.raises(TwilioRestException):
        client.keys(signing.sid).delete()
    assert client.signing_keys(signing.sid).fetch().sid == signing.sid


def test_a_library_token_signed_with_a_signing_key_verifies(client, api):
    key = client.new_signing_keys.create(friendly_name="tokens")
    token = AccessToken(client.account_sid, key.sid, key.secret, identity="bob", ttl=600)
    token.add_grant(VoiceGrant(incoming_allow=True))
    stored = api.run(api.store.api_keys.find(key.sid))
    claims = verify(
        token.to_jwt(), secret=stored.secret, account_sid=stored.account_sid, now=time.time()
    )
    assert claims.identity == "bob" and claims.incoming_allow


def test_a_signing_key_authenticates_rest_requests_until_deleted(client, account, api):
    key = client.new_signing_keys.create()
    keyed = Client(key.sid, key.secret, account.sid, http_client=LocalHttpClient(api.base_url))
    assert [k.sid for k in keyed.signing_keys.list()] == [key.sid]
    client.signing_keys(key.sid).delete()
    with pytest.raises(TwilioRestException) as caught:
        keyed.signing_keys(key.sid).fetch()
    assert caught.value.status == 401  # not 404: the request is refused before the lookup


def test_another_account_sees_none_of_the_signing_keys(client, api, other):
    key = client.new_signing_keys.create(friendly_name="mine")
    theirs = api.client(other)
    assert theirs.signing_keys.list() == []
    with pytest.raises(TwilioRestException) as caught:
        theirs.signing_keys(key.sid).fetch()
    assert caught.value.status == 404
    with pytest.raises(TwilioRestException):
        theirs.signing_keys(key.sid).delete()
    assert client.signing_keys(key.sid).fetch().sid == key.sid


def test_friendly_name_too_long_is_refused(client):
    with pytest.raises(TwilioRestException) as caught:
        client.new_signing_keys.create(friendly_name="x" * 65)
    assert caught.value.status == 400
