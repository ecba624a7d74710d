"""``<Dial referUrl>`` (refer_url.py) with fakes: the URL is asked with the caller's
parameters and ``ReferTransferTarget``; its answer is the caller's next document and
the referrer is told 200; a URL that fails tells the referrer 503 and records 11200."""

from __future__ import annotations

from types import SimpleNamespace

from control_api.twiml.parser import parse_voice_twiml
from control_api.voice.refer_url import ask_refer_url
from control_api.webhooks import WebhookError


class Handle:
    def __init__(self) -> None:
        self.sent: list[int] = []

    def notify(self, status: int, reason: str = "") -> None:
        self.sent.append(status)


def setup(answer: str | None):
    asked: list[tuple[str, str, dict]] = []

    async def fetch(url, method, fields):
        asked.append((url, method, dict(fields)))
        if answer is None:
            raise WebhookError(f"{url}: 500")
        return answer

    runner = SimpleNamespace(
        services=SimpleNamespace(fetch_twiml=fetch),
        document_url="http://app/voice",
        params=lambda: [("CallSid", "CAcaller")],
        errors=[],
        call=SimpleNamespace(sid="CAcaller", log=lambda *a, **k: None),
    )
    [verb] = parse_voice_twiml(
        '<Response><Dial referUrl="/refer" referMethod="GET">+15550001</Dial></Response>'
    ).verbs
    request = SimpleNamespace(target="sip:+15550002@10.0.0.9", handle=Handle())
    return runner, verb, request, asked


async def test_the_answer_is_the_callers_next_document_and_the_referrer_is_told_200():
    runner, verb, request, asked = setup("<Response><Dial>+15550002</Dial></Response>")
    document = await ask_refer_url(runner, verb, request)
    [(url, method, fields)] = asked
    assert (url, method) == ("http://app/refer", "GET")
    assert fields == {"CallSid": "CAcaller", "ReferTransferTarget": "<sip:+15550002@10.0.0.9>"}
    assert document is not None and document.url == "http://app/refer"
    assert document.twiml == "<Response><Dial>+15550002</Dial></Response>"
    assert request.handle.sent == [200] and not runner.errors


async def test_a_failing_url_tells_the_referrer_503_and_records_11200():
    runner, verb, request, _ = setup(None)
    assert await ask_refer_url(runner, verb, request) is None
    assert request.handle.sent == [503]
    assert [e.split()[0] for e in runner.errors] == ["11200"]
