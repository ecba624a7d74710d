"""SIP CredentialLists and Credentials through the official twilio library."""

from __future__ import annotations

import pytest
from twilio.base.exceptions import TwilioRestException

from control_api.sids import is_sid, new_sid
from control_api.sip_realm import SIP_REALM
from sip.auth import ha1
from tests.control_api.api.routing_server import FakeLiveConferences, serve_api

PASSWORD = "IWasAtSignal2018"


@pytest.fixture(scope="module")
def api(tmp_path_factory, store_url):
    root = tmp_path_factory.mktemp("sip-credentials")
    with serve_api(
        store_url,
        live_conferences=FakeLiveConferences(),
        recordings_dir=root / "recordings",
    ) as running:
        yield running


_usernames = iter(range(10**6))


def username() -> str:
    """A username no test has used."""
    return f"user.{next(_usernames)}-x"


def rest_error(call) -> TwilioRestException:
    with pytest.raises(TwilioRestException) as caught:
        call()
    return caught.value


def test_create_list_and_credential_and_read_them_back(client, account, api):
    created = client.sip.credential_lists.create(friendly_name="office")
    assert is_sid(created.sid, "CL")
    assert created.account_sid == account.sid
    assert created.friendly_name == "office"
    base = f"/2010-04-01/Accounts/{account.sid}/SIP/CredentialLists/{created.sid}"
    assert created.uri == base + ".json"
    assert created.subresource_uris == {"credentials": base + "/Credentials.json"}
    assert created.date_created is not None

    name = username()
    credential = client.sip.credential_lists(created.sid).credentials.create(
        username=name, password=PASSWORD
    )
    assert is_sid(credential.sid, "CR")
    assert credential.username == name
    assert credential.credential_list_sid == created.sid
    assert credential.account_sid == account.sid
    assert credential.uri == f"{base}/Credentials/{credential.sid}.json"

    fetched = client.sip.credential_lists(created.sid).credentials(credential.sid).fetch()
    assert (fetched.sid, fetched.username) == (credential.sid, name)
    listed = client.sip.credential_lists(created.sid).credentials.list()
    assert [c.sid for c in listed] == [credential.sid]
    assert [cl.sid for cl in client.sip.credential_lists.list()] == [created.sid]
    assert client.sip.credential_lists(created.sid).fetch().friendly_name == "office"


def test_the_password_is_never_shown_and_stored_only_as_ha1(client, api, auth):
    created = client.sip.credential_lists.create(friendly_name="phones")
    name = username()
    credential = created.credentials.create(username=name, password=PASSWORD)
    path = f"{created.uri[: -len('.json')]}/Credentials/{credential.sid}.json"
    body = api.http.get(path, auth=auth).json()
    assert "password" not in body and PASSWORD not in str(body)
    stored = api.run(api.store.sip_credentials.find(name))
    assert stored.ha1_md5 == ha1(name, SIP_REALM, PASSWORD, "MD5")
    assert stored.ha1_sha256 == ha1(name, SIP_REALM, PASSWORD, "SHA-256")
    assert len(stored.ha1_md5) == 32 and len(stored.ha1_sha256) == 64
    assert SIP_REALM == "callswitch"


def test_update_password_and_rename_list(client, api):
    created = client.sip.credential_lists.create(friendly_name="before")
    name = username()
    credential = created.credentials.create(username=name, password=PASSWORD)
    renamed = client.sip.credential_lists(created.sid).update(friendly_name="after")
    assert renamed.friendly_name == "after"
    new_password = "AnotherSecret99"
    updated = created.credentials(credential.sid).update(password=new_password)
    assert updated.sid == credential.sid
    stored = api.run(api.store.sip_credentials.find(name))
    assert stored.ha1_md5 == ha1(name, SIP_REALM, new_password, "MD5")
    error = rest_error(lambda: created.credentials(credential.sid).update(password="weak"))
    assert (error.status, error.code) == (400, 21240)


def test_delete_credential_then_list(client, api):
    created = client.sip.credential_lists.create(friendly_name="gone")
    name = username()
    credential = created.credentials.create(username=name, password=PASSWORD)
    assert created.credentials(credential.sid).delete() is True
    assert api.run(api.store.sip_credentials.find(name)) is None
    assert created.credentials.list() == []
    error = rest_error(lambda: created.credentials(credential.sid).fetch())
    assert (error.status, error.code) == (404, 20404)

    again = created.credentials.create(username=username(), password=PASSWORD)
    assert client.sip.credential_lists(created.sid).delete() is True
    assert api.run(api.store.sip_credentials.find(again.username)) is None
    assert rest_error(lambda: client.sip.credential_lists(created.sid).fetch()).status == 404


@pytest.mark.parametrize(
    "password",
    ["", "Short1a", "alllowercase123", "ALLUPPERCASE123", "NoDigitsAtAllHere"],
)
def test_weak_or_missing_password_is_21240(client, password):
    created = client.sip.credential_lists.create(friendly_name="rules")
    error = rest_error(lambda: created.credentials.create(username=username(), password=password))
    assert (error.status, error.code) == (400, 21240)
    assert created.credentials.list() == []


@pytest.mark.parametrize("bad", ["", "x" * 33, "al ice", "alice@example.com", "ünï"])
def test_bad_username_is_21240(client, bad):
    created = client.sip.credential_lists.create(friendly_name="names")
    error = rest_error(lambda: created.credentials.create(username=bad, password=PASSWORD))
    assert (error.status, error.code) == (400, 21240)


def test_username_is_unique_in_the_account_only(client, api, account, other):
    name = username()
    mine = client.sip.credential_lists.create(friendly_name="mine")
    first = mine.credentials.create(username=name, password=PASSWORD)
    error = rest_error(lambda: mine.credentials.create(username=name, password=PASSWORD))
    assert (error.status, error.code) == (400, 21240)
    assert name in error.msg and "in use" in error.msg
    second = client.sip.credential_lists.create(friendly_name="mine too")
    error = rest_error(lambda: second.credentials.create(username=name, password=PASSWORD))
    assert (error.status, error.code) == (400, 21240)
    # Another tenant can neither learn that the name exists nor squat it.
    theirs = api.client(other).sip.credential_lists.create(friendly_name="theirs")
    their = theirs.credentials.create(username=name, password=PASSWORD + "x")
    assert (their.username, their.account_sid) == (name, other.sid)
    assert [c.sid for c in theirs.credentials.list()] == [their.sid]
    stored = api.run(api.store.sip_credentials.find_all(name))
    assert [(c.sid, c.account_sid) for c in stored] == [
        (first.sid, account.sid),
        (their.sid, other.sid),
    ]


def test_list_names_are_unique_in_an_account(client, api, other):
    client.sip.credential_lists.create(friendly_name="twice")
    error = rest_error(lambda: client.sip.credential_lists.create(friendly_name="twice"))
    assert (error.status, error.code) == (400, 21240)
    assert api.client(other).sip.credential_lists.create(friendly_name="twice").sid
    error = rest_error(lambda: client.sip.credential_lists.create(friendly_name="x" * 65))
    assert (error.status, error.code) == (400, 21240)


def test_another_account_sees_nothing(client, api, other):
    created = client.sip.credential_lists.create(friendly_name="private")
    credential = created.credentials.create(username=username(), password=PASSWORD)
    theirs = api.client(other)
    assert theirs.sip.credential_lists.list() == []
    for call in (
        lambda: theirs.sip.credential_lists(created.sid).fetch(),
        lambda: theirs.sip.credential_lists(created.sid).update(friendly_name="mine now"),
        lambda: theirs.sip.credential_lists(created.sid).delete(),
        lambda: theirs.sip.credential_lists(created.sid).credentials(credential.sid).fetch(),
        lambda: theirs.sip.credential_lists(created.sid).credentials(credential.sid).delete(),
        lambda: theirs.sip.credential_lists(created.sid).credentials.create(
            username=username(), password=PASSWORD
        ),
    ):
        assert rest_error(call).status == 404
    # The library raises a plain TwilioException for a list page that is not 200.
    path = f"/2010-04-01/Accounts/{other.sid}/SIP/CredentialLists/{created.sid}/Credentials.json"
    listing = api.http.get(path, auth=(other.sid, other.auth_token))
    assert listing.status_code == 404 and listing.json()["code"] == 20404
    assert created.credentials(credential.sid).fetch().sid == credential.sid


def test_unknown_and_malformed_sids_are_404(client):
    assert rest_error(lambda: client.sip.credential_lists(new_sid("CL")).fetch()).status == 404
    assert rest_error(lambda: client.sip.credential_lists("CLnot-a-sid").fetch()).status == 404
    created = client.sip.credential_lists.create(friendly_name="lookups")
    assert rest_error(lambda: created.credentials(new_sid("CR")).fetch()).status == 404


def test_list_pages(client):
    created = client.sip.credential_lists.create(friendly_name="paged")
    names = [username() for _ in range(3)]
    for name in names:
        created.credentials.create(username=name, password=PASSWORD)
    assert [c.username for c in created.credentials.list(page_size=2)] == names
    page = created.credentials.page(page_size=2)
    assert len(list(page)) == 2 and page.next_page() is not None
