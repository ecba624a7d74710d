"""What the two kinds of SIP list share: their routes, a list's JSON and its name."""

from __future__ import annotations

from datetime import UTC, datetime
from types import SimpleNamespace

import pytest

from control_api.api.sip_lists import SipListKind
from control_api.errors import ApiError

KIND = SipListKind("CredentialLists", "Credentials", ("CL", "CR"), 4, 21240)
ACCOUNT = "AC" + "a" * 32
LIST = "CL" + "1" * 32


def test_the_routes_of_a_list_and_of_an_entry():
    base = "/2010-04-01/Accounts/{account_sid}/SIP/CredentialLists/{list_sid}"
    assert KIND.list_path == base + ".json"
    assert KIND.entry_path == base + "/Credentials/{sid}.json"


def test_a_list_shows_its_entries_uri():
    when = datetime(2026, 12, 5, 10, tzinfo=UTC)
    sip_list = SimpleNamespace(
        account_sid=ACCOUNT, sid=LIST, friendly_name="office", date_created=when, date_updated=when
    )
    base = f"/2010-04-01/Accounts/{ACCOUNT}/SIP/CredentialLists/{LIST}"
    assert KIND.list_json(sip_list) == {
        "account_sid": ACCOUNT,
        "date_created": "Sat, 05 Dec 2026 10:00:00 +0000",
        "date_updated": "Sat, 05 Dec 2026 10:00:00 +0000",
        "friendly_name": "office",
        "sid": LIST,
        "subresource_uris": {"credentials": base + "/Credentials.json"},
        "uri": base + ".json",
    }


def test_an_entry_shows_its_list_and_its_own_fields():
    when = datetime(2026, 12, 5, 10, tzinfo=UTC)
    entry = SimpleNamespace(account_sid=ACCOUNT, sid="CR1", date_created=when, date_updated=when)
    base = f"/2010-04-01/Accounts/{ACCOUNT}/SIP/CredentialLists/{LIST}"
    shown = KIND.entry_json(entry, LIST, username="alice")
    assert shown == {
        "account_sid": ACCOUNT,
        "credential_list_sid": LIST,
        "date_created": "Sat, 05 Dec 2026 10:00:00 +0000",
        "date_updated": "Sat, 05 Dec 2026 10:00:00 +0000",
        "sid": "CR1",
        "uri": base + "/Credentials/CR1.json",
        "username": "alice",
    }
    assert list(shown) == sorted(shown)


@pytest.mark.parametrize(
    ("value", "message"),
    [
        (None, "A FriendlyName is required"),
        ("", "A FriendlyName is required"),
        ("abcde", "FriendlyName must have 1 to 4 characters"),
    ],
)
def test_a_list_name_is_required_and_bounded_with_the_kinds_code(value, message):
    with pytest.raises(ApiError) as raised:
        KIND.friendly_name(value)
    assert (raised.value.status, raised.value.code, raised.value.message) == (400, 21240, message)
    assert KIND.friendly_name("abcd") == "abcd"


def test_a_kind_names_itself_in_its_refusals():
    assert KIND.noun == "credential list"
