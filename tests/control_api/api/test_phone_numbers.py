"""IncomingPhoneNumbers through the official twilio library (and raw HTTP where it must)."""

from __future__ import annotations

import pytest
from twilio.base.exceptions import TwilioRestException

from control_api.sids import is_sid, new_sid


def numbers_uri(account) -> str:
    return f"/2010-04-01/Accounts/{account.sid}/IncomingPhoneNumbers.json"


def rest_error(call) -> TwilioRestException:
    with pytest.raises(TwilioRestException) as caught:
        call()
    return caught.value


def test_create_answers_201_with_the_number(api, client, account, auth):
    phone = api.new_number()
    number = client.incoming_phone_numbers.create(
        phone_number=phone,
        friendly_name="Front desk",
        voice_url="https://example.com/voice",
        voice_method="get",
        status_callback="http://example.com:8080/status?x=1",
    )
    assert is_sid(number.sid, "PN")
    assert number.account_sid == account.sid
    assert number.phone_number == phone
    assert number.friendly_name == "Front desk"
    assert number.voice_url == "https://example.com/voice"
    assert number.voice_method == "GET"
    assert number.voice_fallback_method == "POST"
    assert number.status_callback == "http://example.com:8080/status?x=1"
    assert number.date_created is not None  # parsed from RFC 2822 by the library
    assert number.type == "local"
    assert (
        number.uri == f"/2010-04-01/Accounts/{account.sid}/IncomingPhoneNumbers/{number.sid}.json"
    )

    raw = api.http.post(
        numbers_uri(account), data={"PhoneNumber": "1" + api.new_number()[2:]}, auth=auth
    )
    assert raw.status_code == 201
    body = raw.json()
    assert body["phone_number"].startswith("+1415")
    assert body["friendly_name"].startswith("(415) ")
    assert body["date_created"].endswith(" +0000")


def test_fetch_update_delete(api, client):
    created = client.incoming_phone_numbers.create(phone_number=api.new_number())
    fetched = client.incoming_phone_numbers(created.sid).fetch()
    assert fetched.sid == created.sid
    assert fetched.phone_number == created.phone_number

    updated = client.incoming_phone_numbers(created.sid).update(
        friendly_name="Support",
        voice_url="https://example.com/answer",
        voice_method="GET",
        voice_fallback_url="https://example.com/fallback",
        voice_fallback_method="GET",
        status_callback="https://example.com/status",
        status_callback_method="GET",
        sms_url="https://example.com/sms",
        sms_method="GET",
        sms_fallback_url="https://example.com/sms-fallback",
        sms_fallback_method="GET",
    )
    assert updated.friendly_name == "Support"
    assert updated.voice_url == "https://example.com/answer"
    assert updated.voice_fallback_url == "https://example.com/fallback"
    assert updated.sms_fallback_url == "https://example.com/sms-fallback"
    assert {
        updated.voice_method,
        updated.voice_fallback_method,
        updated.status_callback_method,
        updated.sms_method,
        updated.sms_fallback_method,
    } == {"GET"}
    again = client.incoming_phone_numbers(created.sid).fetch()
    assert again.voice_url == "https://example.com/answer"

    cleared = client.incoming_phone_numbers(created.sid).update(voice_url="")
    assert cleared.voice_url is None
    assert cleared.sms_url == "https://example.com/sms"  # untouched

    assert client.incoming_phone_numbers(created.sid).delete() is True
    error = rest_error(client.incoming_phone_numbers(created.sid).fetch)
    assert (error.status, error.code) == (404, 20404)


def test_list_filters(api, client):
    sales = client.incoming_phone_numbers.create(
        phone_number=api.new_number(), friendly_name="sales"
    )
    support = client.incoming_phone_numbers.create(
        phone_number=api.new_number(), friendly_name="support"
    )
    london = client.incoming_phone_numbers.create(
        phone_number="+442071838750", friendly_name="sales"
    )
    try:
        assert {n.sid for n in client.incoming_phone_numbers.list()} == {
            sales.sid,
            support.sid,
            london.sid,
        }
        assert [n.sid for n in client.incoming_phone_numbers.list(friendly_name="sales")] == [
            sales.sid,
            london.sid,
        ]
        assert [n.sid for n in client.incoming_phone_numbers.list(phone_number="+44")] == [
            london.sid
        ]
        exact = client.incoming_phone_numbers.list(phone_number=support.phone_number)
        assert [n.sid for n in exact] == [support.sid]
        wildcard = "*" * 4 + support.phone_number[5:]
        assert [n.sid for n in client.incoming_phone_numbers.list(phone_number=wildcard)] == [
            support.sid
        ]
        assert client.incoming_phone_numbers.list(friendly_name="nobody") == []
    finally:
        client.incoming_phone_numbers(london.sid).delete()


def test_list_walks_three_pages(api, client, auth, account):
    made = [client.incoming_phone_numbers.create(phone_number=api.new_number()) for _ in range(5)]
    expected = [n.sid for n in made]

    assert [n.sid for n in client.incoming_phone_numbers.list(page_size=2)] == expected
    assert [n.sid for n in client.incoming_phone_numbers.stream(page_size=2)] == expected
    assert [n.sid for n in client.incoming_phone_numbers.list(page_size=2, limit=3)] == expected[:3]

    first = client.incoming_phone_numbers.page(page_size=2)
    second = first.next_page()
    third = second.next_page()
    assert [len(list(p)) for p in (first, second, third)] == [2, 2, 1]
    assert third.next_page() is None

    # The page URIs keep the filters, and say where they are.
    body = api.http.get(
        numbers_uri(account), params={"FriendlyName": "(415) 200-0000", "PageSize": 1}, auth=auth
    ).json()
    assert body["page"] == 0 and body["page_size"] == 1 and body["start"] == 0
    assert "FriendlyName=%28415%29+200-0000" in body["uri"]
    page2 = api.http.get(
        numbers_uri(account), params={"PageSize": 2, "Page": 1, "PageToken": "PT2"}, auth=auth
    ).json()
    assert [n["sid"] for n in page2["incoming_phone_numbers"]] == expected[2:4]
    assert (page2["start"], page2["end"]) == (2, 3)
    assert "PageSize=2" in page2["next_page_uri"] and "Page=2" in page2["next_page_uri"]
    assert "Page=0" in page2["previous_page_uri"]
    assert page2["first_page_uri"].endswith("IncomingPhoneNumbers.json?PageSize=2&Page=0")


def test_a_number_already_provisioned_is_400_21422(api, client, other):
    phone = api.new_number()
    client.incoming_phone_numbers.create(phone_number=phone)
    error = rest_error(lambda: client.incoming_phone_numbers.create(phone_number=phone))
    assert (error.status, error.code) == (400, 21422)
    error = rest_error(
        lambda: api.client(other).incoming_phone_numbers.create(phone_number=phone[1:])
    )
    assert (error.status, error.code) == (400, 21422)


def test_missing_or_invalid_phone_number_is_400_21421(api, account, auth, client):
    missing = api.http.post(numbers_uri(account), data={"FriendlyName": "x"}, auth=auth)
    assert missing.status_code == 400
    assert missing.json() == {
        "code": 21421,
        "message": "A PhoneNumber is required",
        "more_info": "https://www.twilio.com/docs/errors/21421",
        "status": 400,
    }
    area = api.http.post(numbers_uri(account), data={"AreaCode": "415"}, auth=auth)
    assert area.json()["code"] == 21421
    for bad in ("hello", "+0123", "+1415555010000000"):
        error = rest_error(lambda bad=bad: client.incoming_phone_numbers.create(phone_number=bad))
        assert (error.status, error.code) == (400, 21421)


@pytest.mark.parametrize(
    "bad_url",
    [
        "example.com/voice",
        "ftp://example.com/voice",
        "https://",
        "javascript:alert(1)",
        "https://exa mple.com/",
        "http://example.com:99999/",
        "http://[::1/",
        "https://example.com/" + "x" * 4000,
    ],
)
def test_bad_urls_are_400_21402(api, client, bad_url):
    number = client.incoming_phone_numbers.create(phone_number=api.new_number())
    error = rest_error(lambda: client.incoming_phone_numbers(number.sid).update(voice_url=bad_url))
    assert (error.status, error.code) == (400, 21402)
    error = rest_error(
        lambda: client.incoming_phone_numbers.create(
            phone_number=api.new_number(), status_callback=bad_url
        )
    )
    assert (error.status, error.code) == (400, 21402)
    assert client.incoming_phone_numbers(number.sid).fetch().voice_url is None


def test_bad_method_is_21403_and_bad_friendly_name_20002(api, client):
    number = client.incoming_phone_numbers.create(phone_number=api.new_number())
    for method in ("PUT", "DELETE", "post "):
        error = rest_error(
            lambda method=method: client.incoming_phone_numbers(number.sid).update(
                sms_method=method
            )
        )
        assert (error.status, error.code) == (400, 21403)
    for name in ("", "x" * 65):
        error = rest_error(
            lambda name=name: client.incoming_phone_numbers(number.sid).update(friendly_name=name)
        )
        assert (error.status, error.code) == (400, 20002)
    assert (
        client.incoming_phone_numbers(number.sid).update(friendly_name="x" * 64).friendly_name
        == "x" * 64
    )


def test_unknown_number_sid_is_404_20404(client, api, account, auth):
    unknown = new_sid("PN")
    for call in (
        client.incoming_phone_numbers(unknown).fetch,
        lambda: client.incoming_phone_numbers(unknown).update(friendly_name="x"),
        client.incoming_phone_numbers(unknown).delete,
    ):
        error = rest_error(call)
        assert (error.status, error.code) == (404, 20404)
    raw = api.http.get(
        f"/2010-04-01/Accounts/{account.sid}/IncomingPhoneNumbers/not-a-sid.json", auth=auth
    )
    assert raw.status_code == 404
    assert raw.json()["more_info"] == "https://www.twilio.com/docs/errors/20404"


def test_another_accounts_number_is_not_found_in_ones_own_path(api, client, other):
    theirs = api.client(other).incoming_phone_numbers.create(
        phone_number=api.new_number(), voice_url="https://other.example.com/"
    )
    for call in (
        client.incoming_phone_numbers(theirs.sid).fetch,
        lambda: client.incoming_phone_numbers(theirs.sid).update(voice_url="https://evil.example/"),
        client.incoming_phone_numbers(theirs.sid).delete,
    ):
        error = rest_error(call)
        assert (error.status, error.code) == (404, 20404)
    assert theirs.sid not in {n.sid for n in client.incoming_phone_numbers.list()}
    kept = api.client(other).incoming_phone_numbers(theirs.sid).fetch()
    assert kept.voice_url == "https://other.example.com/"


def test_moving_a_number_to_another_account_is_refused(api, client, other):
    number = client.incoming_phone_numbers.create(phone_number=api.new_number())
    error = rest_error(
        lambda: client.incoming_phone_numbers(number.sid).update(account_sid=other.sid)
    )
    assert (error.status, error.code) == (400, 20001)
    assert api.client(other).incoming_phone_numbers.list() == []


def test_a_north_american_toll_free_number_has_type_toll_free(api, client):
    number = client.incoming_phone_numbers.create(phone_number="+1800" + api.new_number()[5:])
    assert number.type == "toll-free"
    assert client.incoming_phone_numbers(number.sid).fetch().type == "toll-free"


def test_local_mobile_and_toll_free_lists_create_and_list_their_type(api, client, account):
    mobile = client.incoming_phone_numbers.mobile.create(
        phone_number=api.new_number(), voice_url="https://example.com/voice"
    )
    local = client.incoming_phone_numbers.local.create(phone_number=api.new_number())
    toll_free = client.incoming_phone_numbers.toll_free.create(
        phone_number="+1888" + api.new_number()[5:]
    )
    assert mobile.voice_url == "https://example.com/voice"
    assert client.incoming_phone_numbers(mobile.sid).fetch().type == "mobile"
    assert client.incoming_phone_numbers(local.sid).fetch().type == "local"
    assert client.incoming_phone_numbers(toll_free.sid).fetch().type == "toll-free"
    assert [n.sid for n in client.incoming_phone_numbers.mobile.list()] == [mobile.sid]
    assert [n.sid for n in client.incoming_phone_numbers.local.list()] == [local.sid]
    assert [n.sid for n in client.incoming_phone_numbers.toll_free.list()] == [toll_free.sid]
    assert len(client.incoming_phone_numbers.list()) == 3
    found = client.incoming_phone_numbers.mobile.list(phone_number=mobile.phone_number)
    assert [n.sid for n in found] == [mobile.sid]
    with pytest.raises(TwilioRestException) as error:
        client.incoming_phone_numbers.mobile.create(phone_number=mobile.phone_number)
    assert error.value.code == 21422


def test_voice_caller_id_lookup_is_kept(api, client):
    """VoiceCallerIdLookup=true makes the number's call webhooks carry CallerName."""
    number = client.incoming_phone_numbers.create(phone_number=api.new_number())
    assert number.voice_caller_id_lookup is False
    updated = client.incoming_phone_numbers(number.sid).update(voice_caller_id_lookup=True)
    assert updated.voice_caller_id_lookup is True
    assert client.incoming_phone_numbers(number.sid).fetch().voice_caller_id_lookup is True
    error = rest_error(
        lambda: client.incoming_phone_numbers(number.sid).update(voice_caller_id_lookup="maybe")
    )
    assert error.status == 400
