"""An ended call's TwiML runner goes by reference counting alone.

The server collects full generations rarely (callswitch/server.py), so a runner in
a reference cycle keeps its call, leg, SIP session and RTP socket until one runs:
the soak's per-call growth. The runner's parts (errors, forks, transcriptions) hold
it weakly; these tests check, with the collector off, that nothing holds it back.
"""

from __future__ import annotations

import asyncio
import gc
import weakref
from types import SimpleNamespace

import numpy as np
import pytest

from control_api.call_log import CallLog
from control_api.voice.runner import Document, TwimlRunner, VoiceServices
from tests.control_api.test_call_log import FakeStore
from tests.control_api.voice.test_call_errors import Application
from tests.control_api.voice.test_runner import FakeCall, twiml


@pytest.fixture
def no_collector():
    gc.collect()
    gc.disable()
    try:
        yield
    finally:
        gc.enable()


class Outbox:
    def __init__(self) -> None:
        self.events: list[str] = []
        self.stopped = asyncio.Event()

    async def enqueue(self, *, params: list[tuple[str, str]], **_: object) -> None:
        event = dict(params)["TranscriptionEvent"]
        self.events.append(event)
        if event == "transcription-stopped":
            self.stopped.set()


async def silence(*_: object) -> np.ndarray:
    """What <Say> speaks (the apology after an application error): nothing. A failing
    synthesizer's logged traceback would hold the runner's frames in pytest's caplog."""
    return np.zeros(0, dtype=np.int16)


def runner_of(
    pages: dict[str, str | int], call_log: CallLog | None = None, outbox: Outbox | None = None
) -> TwimlRunner:
    app = Application(pages)
    context = SimpleNamespace(
        call_log=call_log, dialer=None, speech_listener=None, outbox=outbox or Outbox()
    )
    services = VoiceServices(app.fetch, silence, app.nothing, context=context)  # type: ignore[arg-type]
    call = FakeCall()
    return TwimlRunner(call, services, lambda: [("CallSid", call.sid)], account_sid="AC1")


def test_a_new_runner_and_its_parts_go_with_the_last_reference(no_collector) -> None:
    runner = runner_of({})
    parts = [weakref.ref(p) for p in (runner, runner.errors, runner.forks, runner.transcriptions)]
    transcriptions = runner.transcriptions
    assert transcriptions.runner is runner
    del runner
    assert [p() for p in parts[:1]] == [None]
    with pytest.raises(RuntimeError):
        transcriptions.runner  # noqa: B018
    del transcriptions
    assert [p() for p in parts] == [None] * 4


async def test_a_runner_that_met_errors_goes_once_its_call_is_over(no_collector) -> None:
    call_log, outbox = CallLog(FakeStore()), Outbox()
    runner = runner_of(
        {
            "http://app/voice": twiml(
                '<Start><Transcription statusCallbackUrl="http://app/t"/></Start>'
                '<Redirect method="GET">http://app/broken</Redirect>'
            ),
            "http://app/broken": 500,
        },
        call_log,
        outbox,
    )
    runner.start(Document("http://app/voice", "GET"))
    await asyncio.wait_for(runner.wait(), 5)
    await call_log.flush()
    assert runner.errors and runner.errors[0].startswith("11200")
    await asyncio.wait_for(outbox.stopped.wait(), 5)  # its last callback, once the call ended
    assert outbox.events == [
        "transcription-started",
        "transcription-error",  # no recognizer here
        "transcription-stopped",
    ]
    await asyncio.sleep(0)  # the transcription's task returns (one step, no time)
    gone = weakref.ref(runner)
    call = weakref.ref(runner.call)
    del runner
    assert gone() is None
    assert call() is None
