"""The TwiML runner with fakes (no sockets): documents fetched and followed, the lazy
answer, <Reject>, the fallback URL, and <Dial> on a runtime without a dialer."""

from __future__ import annotations

import asyncio

from control_api.voice.runner import Document, TwimlRunner, VoiceServices
from control_api.webhooks import WebhookError


class FakeCall:
    def __init__(self) -> None:
        self.sid = "CA1"
        self.leg = None
        self.ended = asyncio.Event()
        self.answered = False
        self.rejected: int | None = None

    async def answer(self) -> bool:
        if not self.ended.is_set():
            self.answered = True
        return self.answered

    def hangup(self) -> None:
        self.ended.set()

    def reject(self, status: int) -> None:
        self.rejected = status
        self.ended.set()


class FakeApplication:
    """TwiML by URL; a URL missing from ``pages`` fails as an unreachable webhook."""

    def __init__(self, pages: dict[str, str]) -> None:
        self.pages = pages
        self.asked: list[tuple[str, str, dict]] = []

    async def fetch(self, url: str, method: str, fields: list[tuple[str, str]]) -> str:
        self.asked.append((url, method, dict(fields)))
        if url not in self.pages:
            raise WebhookError(f"{url}: connection refused")
        return self.pages[url]

    async def nothing(self, *args) -> object:  # speech and audio are not used here
        raise AssertionError("no media in these tests")


def run(pages: dict[str, str], document: Document) -> tuple[FakeCall, FakeApplication, TwimlRunner]:
    call = FakeCall()
    app = FakeApplication(pages)
    services = VoiceServices(app.fetch, app.nothing, app.nothing)
    runner = TwimlRunner(call, services, lambda: [("CallSid", "CA1")], account_sid="AC1")
    runner.start(document)
    return call, app, runner


def twiml(body: str) -> str:
    return f'<?xml version="1.0" encoding="UTF-8"?><Response>{body}</Response>'


async def test_a_redirect_is_followed_and_the_first_verb_answers():
    call, app, runner = run(
        {
            "http://app/voice": twiml('<Redirect method="GET">/next</Redirect>'),
            "http://app/next": twiml("<Hangup/>"),
        },
        Document("http://app/voice"),
    )
    await asyncio.wait_for(runner.wait(), 2)
    assert [(url, method) for url, method, _ in app.asked] == [
        ("http://app/voice", "POST"),
        ("http://app/next", "GET"),
    ]
    assert app.asked[0][2]["CallSid"] == "CA1"
    assert call.ended.is_set() and runner.errors == []
    assert call.answered  # its first verb (not <Reject>) picked up, as on Twilio


async def test_reject_refuses_the_call_unanswered():
    call, _, runner = run(
        {"http://app/voice": twiml('<Reject reason="busy"/>')}, Document("http://app/voice")
    )
    await asyncio.wait_for(runner.wait(), 2)
    assert call.rejected == 486 and not call.answered


async def test_a_failed_fetch_goes_to_the_fallback_with_the_error():
    call, app, runner = run(
        {"http://app/fallback": twiml("<Hangup/>")},
        Document("http://app/voice", fallback_url="http://app/fallback"),
    )
    await asyncio.wait_for(runner.wait(), 2)
    fallback = app.asked[1][2]
    assert fallback["ErrorCode"] == "11200" and fallback["ErrorUrl"] == "http://app/voice"
    assert runner.errors and runner.errors[0].startswith("11200")
    assert call.ended.is_set()


async def test_dial_without_a_runtime_is_skipped_and_the_document_goes_on():
    call, app, runner = run(
        {"http://app/voice": twiml("<Dial>+15550001</Dial><Redirect>/after</Redirect>"),
         "http://app/after": twiml("<Hangup/>")},
        Document("http://app/voice"),
    )  # fmt: skip
    await asyncio.wait_for(runner.wait(), 2)
    assert call.answered and call.ended.is_set()
    assert [url for url, _, _ in app.asked] == ["http://app/voice", "http://app/after"]


async def test_twiml_given_inline_runs_without_a_fetch():
    call, app, runner = run({}, Document(None, twiml=twiml("<Hangup/>")))
    await asyncio.wait_for(runner.wait(), 2)
    assert app.asked == [] and call.answered and call.ended.is_set()
