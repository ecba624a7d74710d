"""``POST Accounts/{Sid}.json``: an account renames itself; a main account (every
account here) cannot suspend or close itself."""

from __future__ import annotations

import pytest
from twilio.base.exceptions import TwilioRestException


def rest_error(call) -> TwilioRestException:
    with pytest.raises(TwilioRestException) as caught:
        call()
    return caught.value


def test_an_account_renames_itself(client, account, api):
    before = client.api.v2010.accounts(account.sid).fetch()
    updated = client.api.v2010.accounts(account.sid).update(friendly_name="front desk")
    assert updated.friendly_name == "front desk"
    assert client.api.v2010.accounts(account.sid).fetch().friendly_name == "front desk"
    assert updated.date_updated >= before.date_updated
    assert api.run(api.store.accounts.get(account.sid)).friendly_name == "front desk"


def test_no_parameters_answer_the_account_unchanged(client, account):
    assert client.api.v2010.accounts(account.sid).update().friendly_name == "test"


def test_status_active_is_accepted(client, account):
    updated = client.api.v2010.accounts(account.sid).update(status="active")
    assert updated.status == "active"


@pytest.mark.parametrize("status", ["suspended", "closed", "asleep"])
def test_a_main_account_cannot_suspend_or_close_itself(client, account, status):
    error = rest_error(lambda: client.api.v2010.accounts(account.sid).update(status=status))
    assert error.status == 400
    assert client.api.v2010.accounts(account.sid).fetch().status == "active"


@pytest.mark.parametrize("name", ["", "x" * 65])
def test_a_friendly_name_of_1_to_64_characters(client, account, name):
    error = rest_error(lambda: client.api.v2010.accounts(account.sid).update(friendly_name=name))
    assert (error.status, error.code) == (400, 20002)
    assert client.api.v2010.accounts(account.sid).fetch().friendly_name == "test"


def test_another_account_cannot_rename_it(api, account, other):
    theirs = api.client(other)
    error = rest_error(lambda: theirs.api.v2010.accounts(account.sid).update(friendly_name="x"))
    assert error.status == 401
    assert api.run(api.store.accounts.get(account.sid)).friendly_name == "test"
