"""Every error has Twilio's body: unknown routes, wrong methods, bad bodies, crashes."""

from __future__ import annotations

import pytest


def assert_twilio_error(response, status: int, code: int) -> None:
    assert response.status_code == status
    assert response.headers["content-type"] == "application/json"
    body = response.json()
    assert set(body) == {"code", "message", "more_info", "status"}
    assert (body["status"], body["code"]) == (status, code)
    assert body["more_info"] == f"https://www.twilio.com/docs/errors/{code}"
    assert body["message"]


@pytest.mark.parametrize(
    "path",
    [
        "/2010-04-01/Accounts/{sid}/Nothing.json",
        "/2010-04-01/Accounts/{sid}/IncomingPhoneNumbers",  # no .json
        "/2010-04-01/Accounts/{sid}/Calls/CA0/Recordings.json",
        "/2010-04-01/",
        "/2010-04-01",
        "/",
    ],
)
def test_unknown_routes_are_404_20404(api, account, auth, path):
    response = api.http.get(path.format(sid=account.sid), auth=auth)
    assert_twilio_error(response, 404, 20404)


def test_wrong_method_is_405_20004(api, account, auth):
    response = api.http.put(f"/2010-04-01/Accounts/{account.sid}/Calls.json", auth=auth)
    assert_twilio_error(response, 405, 20004)
    assert "GET" in response.headers["allow"]
    response = api.http.delete(f"/2010-04-01/Accounts/{account.sid}.json", auth=auth)
    assert_twilio_error(response, 405, 20004)


def test_unexpected_errors_are_500_20500(api, account, auth):
    call = api.insert_call(account, status="in-progress")
    api.live_calls.fail_with = RuntimeError("the engine fell over")
    try:
        response = api.http.post(
            f"/2010-04-01/Accounts/{account.sid}/Calls/{call.sid}.json",
            data={"Status": "completed"},
            auth=auth,
        )
    finally:
        api.live_calls.fail_with = None
    assert_twilio_error(response, 500, 20500)
    assert "fell over" not in response.text


FORM = {"Content-Type": "application/x-www-form-urlencoded"}


@pytest.mark.parametrize(
    ("body", "headers"),
    [
        (b"FriendlyName=%FF%FE", FORM),  # percent-encoded bytes that are not UTF-8
        (b"FriendlyName=\xff\xfe", FORM),  # raw bytes that are not UTF-8
        (b"FriendlyName=a%00b", FORM),  # NUL
        (b"%00=x", FORM),
        (b"&".join(b"k%d=v" % i for i in range(500)), FORM),  # too many fields
        (b'{"FriendlyName": "json"}', {"Content-Type": "application/json"}),
        (b"FriendlyName=x", {"Content-Type": "text/plain"}),
        (b"FriendlyName=x", {}),
        (
            b'--b\r\nContent-Disposition: form-data; name="FriendlyName"\r\n\r\nx\r\n--b--\r\n',
            {"Content-Type": "multipart/form-data; boundary=b"},
        ),
    ],
)
def test_malformed_bodies_are_400(api, auth, number_path, body, headers):
    response = api.http.post(number_path, content=body, headers=headers, auth=auth)
    assert_twilio_error(response, 400, 20001)
    after = api.http.get(number_path, auth=auth).json()
    assert after["friendly_name"].startswith("(415) ")


def test_too_large_a_body_is_413(api, auth, number_path):
    response = api.http.post(
        number_path, content=b"FriendlyName=" + b"x" * 70_000, headers=FORM, auth=auth
    )
    assert_twilio_error(response, 413, 20001)


def test_odd_but_valid_forms_are_accepted(api, auth, number_path):
    for body in (b"", b"&&", b"=", b"VoiceUrl", b"Unknown=1&Other=%20"):
        response = api.http.post(number_path, content=body, headers=FORM, auth=auth)
        assert response.status_code == 200, body
    response = api.http.post(
        number_path, content=b"FriendlyName=caf%C3%A9+bar", headers=FORM, auth=auth
    )
    assert response.json()["friendly_name"] == "café bar"


@pytest.mark.parametrize(
    "query",
    [
        "PageSize=0",
        "PageSize=1001",
        "PageSize=ten",
        "PageSize=-1",
        "Page=-1",
        "Page=1e3",
        "Page=99999999999999",
        "PageToken=PA123",
        "PageToken=PT",
        "PhoneNumber=%00",
    ],
)
def test_bad_paging_and_filters_are_400(api, account, auth, query):
    response = api.http.get(
        f"/2010-04-01/Accounts/{account.sid}/IncomingPhoneNumbers.json?{query}", auth=auth
    )
    assert_twilio_error(response, 400, 20001)


def test_unencoded_plus_in_a_filter_still_matches(api, client, account, auth):
    number = client.incoming_phone_numbers.create(phone_number=api.new_number())
    response = api.http.get(
        f"/2010-04-01/Accounts/{account.sid}/IncomingPhoneNumbers.json"
        f"?PhoneNumber={number.phone_number}",  # '+' left raw, as curl users do
        auth=auth,
    )
    assert [n["sid"] for n in response.json()["incoming_phone_numbers"]] == [number.sid]


def test_path_sids_of_the_wrong_form_never_reach_the_store(api, account, auth, monkeypatch):
    asked = []

    async def spy(*args):
        asked.append(args)

    for resource in (api.store.numbers, api.store.calls):
        for name in ("get", "delete"):
            monkeypatch.setattr(resource, name, spy)
    base = f"/2010-04-01/Accounts/{account.sid}"
    for path in ("IncomingPhoneNumbers/PN%00.json", "Calls/CA%00.json", "Calls/PNx.json"):
        for method in ("GET", "POST", "DELETE"):
            response = api.http.request(method, f"{base}/{path}", auth=auth)
            assert_twilio_error(response, 404, 20404)
    assert asked == []
