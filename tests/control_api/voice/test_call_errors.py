"""What a call's TwiML meets lands in its call log: failed fetches (11200/11205) with the
request and the answer, parse failures (12100) with the document, schema warnings
(12200) as warnings, and verb errors counted in ``runner.errors`` (13xxx)."""

from __future__ import annotations

import asyncio
from types import SimpleNamespace
from urllib.parse import parse_qs

from control_api.call_log import CallLog
from control_api.http_client import HttpResponse
from control_api.voice.call_errors import code_of
from control_api.voice.runner import Document, TwimlRunner, VoiceServices
from control_api.webhooks import WebhookError
from tests.control_api.test_call_log import FakeStore
from tests.control_api.voice.test_runner import FakeCall, twiml


class Application:
    """TwiML by URL; a status code instead answers that status."""

    def __init__(self, pages: dict[str, str | int]) -> None:
        self.pages = pages

    async def fetch(self, url: str, method: str, fields: list[tuple[str, str]]) -> str:
        page = self.pages.get(url)
        if page is None:
            raise WebhookError(f"{url}: connection refused", url=url, method=method)
        if isinstance(page, int):
            answer = HttpResponse(page, [(b"Content-Type", b"text/plain")], b"it broke")
            raise WebhookError(f"HTTP {page}", page, url=url, method=method, response=answer)
        return page

    async def nothing(self, *args) -> object:
        raise AssertionError("no media in these tests")


async def run(pages: dict[str, str | int], document: Document) -> tuple[TwimlRunner, list]:
    store = FakeStore()
    call_log = CallLog(store)
    app = Application(pages)
    context = SimpleNamespace(call_log=call_log, dialer=None)
    services = VoiceServices(app.fetch, app.nothing, app.nothing, context=context)  # type: ignore[arg-type]
    runner = TwimlRunner(
        call := FakeCall(), services, lambda: [("CallSid", call.sid)], account_sid="AC1"
    )
    runner.start(document)
    await asyncio.wait_for(runner.wait(), 2)
    await call_log.flush()
    return runner, store.notifications.rows


async def test_a_webhook_answering_500_leaves_11200_with_the_request_and_the_answer():
    runner, [note] = await run({"http://app/voice": 500}, Document("http://app/voice", "GET"))
    assert note.error_code == "11200" and note.log == 0 and note.call_sid == "CA1"
    assert note.request_url == "http://app/voice" and note.request_method == "GET"
    assert parse_qs(note.request_variables) == {"CallSid": ["CA1"]}
    assert note.response_body == "it broke"
    assert parse_qs(note.message_text)["httpResponse"] == ["500"]
    assert len(runner.errors) == 1 and runner.errors[0].startswith("11200")


async def test_an_unreachable_webhook_and_its_fallback_each_leave_11205():
    _, notes = await run({}, Document("http://app/voice", fallback_url="http://app/fallback"))
    assert [(n.error_code, n.request_url) for n in notes] == [
        ("11205", "http://app/voice"),
        ("11205", "http://app/fallback"),
    ]
    assert parse_qs(notes[1].request_variables)["ErrorCode"] == ["11200"]


async def test_a_document_that_does_not_parse_leaves_12100_with_the_document():
    runner, [note] = await run(
        {"http://app/voice": "<Response><Say>"}, Document("http://app/voice")
    )
    assert note.error_code == "12100" and note.log == 0
    assert note.request_url == "http://app/voice" and note.response_body == "<Response><Say>"
    assert parse_qs(note.message_text)["Msg"][0].startswith("Document parse failure")
    assert runner.errors and runner.call.ended.is_set()


async def test_a_document_that_does_not_parse_sends_the_call_to_its_fallback():
    runner, [note] = await run(
        {"http://app/voice": "<Response><Say>", "http://app/fallback": twiml("<Hangup/>")},
        Document("http://app/voice", fallback_url="http://app/fallback"),
    )
    assert note.error_code == "12100" and note.request_url == "http://app/voice"
    fallback = dict(runner.document_params)  # what the fallback was sent
    assert runner.document_url == "http://app/fallback"
    assert (fallback["ErrorCode"], fallback["ErrorUrl"]) == ("12100", "http://app/voice")
    assert len(runner.errors) == 1 and runner.call.answered  # the fallback's <Hangup/> ran


async def test_a_schema_warning_is_logged_as_a_warning_and_not_counted():
    runner, [note] = await run(
        {"http://app/voice": twiml('<Hangup bogus="1"/>')}, Document("http://app/voice")
    )
    assert note.error_code == "12200" and note.log == 1
    assert runner.errors == []


async def test_a_verb_error_counted_by_the_runner_is_logged_against_its_document():
    runner, notes = await run(
        {"http://app/voice": twiml("<Hangup/>")}, Document("http://app/voice", "GET")
    )
    assert notes == []
    runner.errors.append("13224 no route to +1555")
    await runner.services.context.call_log.flush()
    rows = runner.services.context.call_log.store.notifications.rows
    assert rows[-1].error_code == "13224" and rows[-1].request_url == "http://app/voice"
    assert code_of("13xxx no queue") is None and code_of("31920 x") == 31920


async def test_a_runner_without_a_call_log_still_counts_its_errors():
    call = FakeCall()
    app = Application({"http://app/voice": 500})
    runner = TwimlRunner(call, VoiceServices(app.fetch, app.nothing, app.nothing), lambda: [])
    runner.start(Document("http://app/voice"))
    await asyncio.wait_for(runner.wait(), 2)
    assert runner.errors[0].startswith("11200")
