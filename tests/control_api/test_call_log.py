"""The call log with a fake store: what it records, what it bounds, what it never does
(fail the caller)."""

from __future__ import annotations

from urllib.parse import parse_qs

from control_api.call_log import (
    MAX_BODY,
    MAX_HEADERS,
    MAX_PARAMETERS,
    WARNING,
    CallLog,
    excerpt,
    fetch_failure,
    more_info,
)
from control_api.http_client import HttpResponse
from control_api.sids import utcnow
from control_api.store import OutboxItem
from control_api.webhooks import MAX_ATTEMPTS, Exchange, WebhookError

CALL = "CA" + "1" * 32
ACCOUNT = "AC" + "2" * 32


class FakeRows:
    def __init__(self, fail: bool = False) -> None:
        self.rows: list = []
        self.fail = fail
        self.caps: list[int] = []

    async def add(self, rows, *, per_call: int) -> int:
        if self.fail:
            raise OSError("database gone")
        self.caps.append(per_call)
        self.rows += rows
        return len(rows)


class FakeStore:
    def __init__(self, fail: bool = False) -> None:
        self.notifications = FakeRows(fail)
        self.call_events = FakeRows(fail)


def response(status: int, body: bytes = b"", headers=None) -> HttpResponse:
    return HttpResponse(status, headers or [(b"Content-Type", b"text/html")], body)


async def test_a_problem_is_written_as_twilio_shows_it():
    store = FakeStore()
    log = CallLog(store, notifications_per_call=7)
    log.problem(
        account_sid=ACCOUNT,
        call_sid=CALL,
        code=11200,
        text="HTTP 500",
        url="https://app.example/voice",
        method="post",
        params=[("CallSid", CALL), ("From", "+15550001")],
        response=response(500, b"<h1>boom</h1>"),
    )
    await log.flush()
    [note] = store.notifications.rows
    assert store.notifications.caps == [7]
    assert note.sid.startswith("NO") and note.call_sid == CALL and note.log == 0
    assert note.error_code == "11200" and note.request_method == "POST"
    assert note.request_url == "https://app.example/voice"
    assert parse_qs(note.request_variables)["From"] == ["+15550001"]
    assert note.response_body == "<h1>boom</h1>"
    assert note.response_headers == "Content-Type: text/html"
    text = parse_qs(note.message_text)
    assert text["ErrorCode"] == ["11200"] and text["httpResponse"] == ["500"]
    assert text["LogLevel"] == ["ERROR"] and text["url"] == ["https://app.example/voice"]
    assert more_info("11200") == "https://www.twilio.com/docs/errors/11200"


async def test_what_the_server_sent_is_kept_only_as_an_excerpt():
    store = FakeStore()
    log = CallLog(store)
    huge = response(500, b"x" * 1_000_000, [(b"X-Junk", b"y" * 100_000)])
    log.problem(account_sid=ACCOUNT, call_sid=CALL, code=11200, text="big", response=huge)
    about_call = [("CallSid", CALL), ("AccountSid", ACCOUNT)]
    log.exchanged(Exchange("https://app.example/v", "POST", about_call, huge, 0.2))
    await log.flush()
    [note], [event] = store.notifications.rows, store.call_events.rows
    assert len(note.response_body) < MAX_BODY + 50 and note.response_body.endswith("characters]")
    assert len(note.response_headers) < MAX_HEADERS + 50
    assert len(event.response_body) < MAX_BODY + 50
    log.exchanged(Exchange("u", "POST", [*about_call, *[("X", "z" * 9999)] * 500], None, 0.1))
    await log.flush()
    parameters = store.call_events.rows[-1].request_parameters
    assert len(parameters) == MAX_PARAMETERS and max(len(v) for _, v in parameters) < 300
    assert excerpt("short", 10) == "short"


async def test_rows_past_the_pending_bound_are_dropped_not_queued():
    store = FakeStore()
    log = CallLog(store, max_pending=3)
    for _ in range(10):  # no await between: the writer has not run yet
        log.problem(account_sid=ACCOUNT, call_sid=CALL, code=13224, text="bad number")
    assert log.dropped == 7
    await log.flush()
    assert len(store.notifications.rows) == 3


async def test_a_failing_store_never_reaches_the_caller():
    store = FakeStore(fail=True)
    log = CallLog(store)
    log.problem(account_sid=ACCOUNT, call_sid=CALL, code=12100, text="parse")
    await log.flush()
    assert log.dropped == 1


async def test_events_are_the_requests_about_a_call():
    store = FakeStore()
    log = CallLog(store)
    about_call = [("CallSid", CALL), ("AccountSid", ACCOUNT), ("Digits", "12")]
    xml = response(200, b"<Response/>", [(b"content-type", b"text/xml")])
    log.exchanged(Exchange("https://app.example/a", "GET", about_call, xml, 0.0123))
    log.exchanged(Exchange("https://app.example/b", "POST", about_call, None, 15.0, "timed out"))
    log.exchanged(Exchange("https://app.example/sms", "POST", [("MessageSid", "SM1")], None, 1.0))
    await log.flush()
    first, second = store.call_events.rows
    assert first.response_code == 200 and first.request_duration == 12
    assert first.content_type == "text/xml" and first.request_parameters[2] == ["Digits", "12"]
    assert second.response_code is None and second.error == "timed out"


def item(attempts: int) -> OutboxItem:
    return OutboxItem(
        id=1,
        delivery_id="d1",
        account_sid=ACCOUNT,
        url="https://app.example/status",
        method="POST",
        params=[["CallSid", CALL], ["CallStatus", "completed"]],
        call_sid=CALL,
        attempts=attempts,
        next_attempt_at=utcnow(),
        created_at=utcnow(),
        delivered_at=None,
        abandoned_at=None,
        last_error=None,
    )


async def test_a_failed_status_callback_is_a_warning_at_first_and_when_given_up():
    store = FakeStore()
    log = CallLog(store)
    answered = WebhookError("HTTP 404", 404, url="u", method="POST", response=response(404))
    for attempts in range(MAX_ATTEMPTS):
        log.callback_failed(item(attempts), answered)
    log.callback_failed(item(0), WebhookError("refused", url="u", method="POST"))
    await log.flush()
    first, last, unreachable = store.notifications.rows
    assert first.error_code == "15003" and first.log == WARNING
    assert "not sent again" in parse_qs(last.message_text)["Msg"][0]
    assert unreachable.error_code == "11205"
    assert parse_qs(first.message_text)["statusCallback"] == ["https://app.example/status"]


def test_a_fetch_failure_is_11200_with_an_answer_and_11205_without():
    with_answer = WebhookError("x", 500, url="https://a/", response=response(500))
    assert fetch_failure(with_answer) == (
        11200,
        "An attempt to retrieve content from https://a/ returned the HTTP status code 500",
    )
    assert fetch_failure(WebhookError("refused", url="https://a/"))[0] == 11205
