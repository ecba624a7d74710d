"""Authentication, accounts, and never seeing another account's data."""

from __future__ import annotations

import base64

import pytest
from twilio.base.exceptions import TwilioException, TwilioRestException

from control_api.sids import new_sid

AUTH_FAILED = {
    "code": 20003,
    "message": "Authenticate",
    "more_info": "https://www.twilio.com/docs/errors/20003",
    "status": 401,
}


def rest_error(call) -> TwilioRestException:
    with pytest.raises(TwilioRestException) as caught:
        call()
    return caught.value


def test_fetch_own_account(client, account):
    fetched = client.api.v2010.accounts(account.sid).fetch()
    assert fetched.sid == account.sid
    assert fetched.friendly_name == "test"
    assert fetched.status == "active"
    assert fetched.auth_token == account.auth_token
    assert fetched.subresource_uris["calls"] == f"/2010-04-01/Accounts/{account.sid}/Calls.json"
    assert client.api.v2010.account.fetch().sid == account.sid


def test_account_list_has_only_oneself(client, account, other):
    assert [a.sid for a in client.api.v2010.accounts.list()] == [account.sid]


def test_wrong_password_is_401_20003(api, account):
    wrong = api.client(account, token=account.auth_token[:-1] + "x")
    for call in (
        wrong.api.v2010.account.fetch,
        wrong.calls(new_sid("CA")).fetch,
        lambda: wrong.incoming_phone_numbers.create(phone_number=api.new_number()),
    ):
        error = rest_error(call)
        assert (error.status, error.code) == (401, 20003)
    # Lists raise the library's plain TwilioException, carrying the response.
    with pytest.raises(TwilioException) as caught:
        wrong.incoming_phone_numbers.list()
    response = caught.value.args[1]
    assert response.status_code == 401
    assert '"code":20003' in response.text.replace(" ", "")


def test_unknown_account_is_the_same_401(api):
    sid = new_sid("AC")
    response = api.http.get(f"/2010-04-01/Accounts/{sid}/Calls.json", auth=(sid, "0" * 32))
    assert response.status_code == 401
    assert response.json() == AUTH_FAILED


@pytest.mark.parametrize(
    "header",
    [
        None,
        "Bearer abc",
        "Basic",
        "Basic !!!not-base64!!!",
        "Basic " + base64.b64encode(b"no-colon-here").decode(),
        "Basic " + base64.b64encode(b"\xff\xfe:\xff").decode(),
        "Basic " + base64.b64encode(b":").decode(),
    ],
)
def test_missing_or_malformed_credentials_are_401_with_a_challenge(api, account, header):
    headers = {} if header is None else {"Authorization": header}
    response = api.http.get(
        f"/2010-04-01/Accounts/{account.sid}/IncomingPhoneNumbers.json", headers=headers
    )
    assert response.status_code == 401
    assert response.headers["www-authenticate"] == 'Basic realm="Twilio API"'
    assert response.json() == AUTH_FAILED


def test_another_accounts_path_is_401_and_shows_nothing(api, account, auth, other):
    theirs = api.client(other).incoming_phone_numbers.create(
        phone_number=api.new_number(), voice_url="https://other.example.com/"
    )
    their_call = api.insert_call(other, status="completed")
    base = f"/2010-04-01/Accounts/{other.sid}"
    requests = [
        ("GET", f"{base}.json", None),
        ("GET", f"{base}/IncomingPhoneNumbers.json", None),
        ("POST", f"{base}/IncomingPhoneNumbers.json", {"PhoneNumber": api.new_number()}),
        ("GET", f"{base}/IncomingPhoneNumbers/{theirs.sid}.json", None),
        ("POST", f"{base}/IncomingPhoneNumbers/{theirs.sid}.json", {"VoiceUrl": "https://evil/"}),
        ("DELETE", f"{base}/IncomingPhoneNumbers/{theirs.sid}.json", None),
        ("GET", f"{base}/Calls.json", None),
        ("GET", f"{base}/Calls/{their_call.sid}.json", None),
        ("POST", f"{base}/Calls/{their_call.sid}.json", {"Status": "completed"}),
        ("DELETE", f"{base}/Calls/{their_call.sid}.json", None),
    ]
    api.live_calls.asked.clear()
    for method, path, data in requests:
        response = api.http.request(method, path, data=data, auth=auth)
        assert response.status_code == 401, (method, path)
        assert response.json() == AUTH_FAILED
        assert other.sid not in response.text.replace(path, "")
    assert api.live_calls.asked == []
    owner = api.client(other)
    assert (
        owner.incoming_phone_numbers(theirs.sid).fetch().voice_url == "https://other.example.com/"
    )
    assert [n.sid for n in owner.incoming_phone_numbers.list()] == [theirs.sid]
    assert owner.calls(their_call.sid).fetch().sid == their_call.sid

    # The official library answers the same way.
    error = rest_error(lambda: api.client(account).api.v2010.accounts(other.sid).fetch())
    assert (error.status, error.code) == (401, 20003)
