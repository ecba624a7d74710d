"""Applications through the official twilio library."""

from __future__ import annotations

import pytest
from twilio.base.exceptions import TwilioRestException

from control_api.sids import is_sid


def test_create_fetch_update_list_delete(client, account):
    app = client.applications.create(
        friendly_name="browser calls",
        voice_url="https://example.com/voice",
        voice_method="GET",
        status_callback="https://example.com/status",
    )
    assert is_sid(app.sid, "AP")
    assert app.account_sid == account.sid
    assert app.voice_url == "https://example.com/voice"
    assert app.voice_method == "GET"
    assert app.status_callback == "https://example.com/status"
    assert app.status_callback_method == "POST"
    assert app.uri == f"/2010-04-01/Accounts/{account.sid}/Applications/{app.sid}.json"

    updated = client.applications(app.sid).update(voice_method="POST", friendly_name="b")
    assert (updated.voice_method, updated.friendly_name) == ("POST", "b")
    assert updated.voice_url == "https://example.com/voice"
    assert [a.sid for a in client.applications.list()] == [app.sid]
    assert [a.sid for a in client.applications.list(friendly_name="b")] == [app.sid]
    assert client.applications.list(friendly_name="nope") == []
    assert client.applications(app.sid).fetch().friendly_name == "b"
    assert client.applications(app.sid).delete() is True
    with pytest.raises(TwilioRestException) as caught:
        client.applications(app.sid).fetch()
    assert caught.value.status == 404


@pytest.mark.parametrize(
    "fields, code",
    [({"voice_url": "ftp://x"}, 21402), ({"voice_method": "PUT"}, 21403)],
)
def test_bad_settings_are_refused(client, fields, code):
    with pytest.raises(TwilioRestException) as caught:
        client.applications.create(friendly_name="x", **fields)
    assert (caught.value.status, caught.value.code) == (400, code)


def test_another_account_cannot_see_or_change_it(client, api, other):
    app = client.applications.create(friendly_name="mine")
    theirs = api.client(other)
    assert theirs.applications.list() == []
    for call in (
        lambda: theirs.applications(app.sid).fetch(),
        lambda: theirs.applications(app.sid).update(voice_url="https://evil.example/"),
        lambda: theirs.applications(app.sid).delete(),
    ):
        with pytest.raises(TwilioRestException) as caught:
            call()
        assert caught.value.status == 404
    assert client.applications(app.sid).fetch().voice_url is None
