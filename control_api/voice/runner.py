"""Runs a call's TwiML: fetches documents, executes verbs, follows actions.

One :class:`TwimlRunner` per call. It answers the call lazily (the first verb
other than ``<Reject>`` picks up, as on Twilio), and ends it when a document
runs out of verbs. A REST redirect cancels the running verb and starts a new
document (see :meth:`TwimlRunner.redirect`).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING
from urllib.parse import urljoin

from control_api.call_log import fetch_failure
from control_api.calls.call import Call
from control_api.twiml.parser import TwimlError, parse_voice_twiml
from control_api.twiml.verbs import (
    Connect,
    ConnectRelay,
    Dial,
    Enqueue,
    Gather,
    Hangup,
    Pause,
    Play,
    Record,
    Redirect,
    Refer,
    Reject,
    Say,
    Start,
    StartTranscription,
    Stop,
    StopTranscription,
)
from control_api.voice.call_errors import CallErrors
from control_api.voice.conversation_relay import run_relay
from control_api.voice.dial import DialOutcome, dial
from control_api.voice.gather_speech import gather_speech, speech_params
from control_api.voice.live_transcription import CallTranscriptions
from control_api.voice.queue import enqueue
from control_api.voice.record import record
from control_api.voice.refer import refer_call
from control_api.voice.stream import CallForks, connect_stream
from control_api.voice.transcription import transcribe
from control_api.webhooks import WebhookError
from media.player import play, send_digits

if TYPE_CHECKING:
    from control_api.voice.context import VoiceContext
    from media.leg import Leg

__all__ = ["Document", "NextDocument", "TwimlRunner", "VoiceServices"]

log = logging.getLogger("callswitch.twiml")

APPLICATION_ERROR = "We are sorry, an application error has occurred. Goodbye."
MAX_DOCUMENTS = 1000  # a runaway Redirect loop ends here
SAY_LOOP_FOREVER = 1000  # Twilio's cap for loop="0"


@dataclass(slots=True)
class Document:
    """Where the next TwiML comes from: a URL to request, or the TwiML itself."""

    url: str | None
    method: str = "POST"
    twiml: str | None = None
    extra: list[tuple[str, str]] = field(default_factory=list)
    fallback_url: str | None = None
    fallback_method: str = "POST"


@dataclass(slots=True)
class VoiceServices:
    """What a runner needs from outside: TwiML fetching, speech, audio files, and the
    voice runtime's context for dialling, conferences, recordings and streams."""

    fetch_twiml: Callable[[str, str, list[tuple[str, str]]], Awaitable[str]]
    synthesize: Callable[[str, str, str], Awaitable[object]]  # text, voice, language → samples
    load_audio: Callable[[str], Awaitable[object]]  # URL → samples
    context: VoiceContext | None = None


class NextDocument(Exception):
    """A verb leaves the running document for another (an action, a ``<Redirect>``)."""

    def __init__(self, document: Document) -> None:
        self.document = document


class TwimlRunner:
    """Executes the TwiML of one call (reference §5)."""

    def __init__(
        self,
        call: Call,
        services: VoiceServices,
        params: Callable[[], list[tuple[str, str]]],
        *,
        account_sid: str = "",
    ) -> None:
        self.call = call
        self.account_sid = account_sid
        self.services = services
        self.params = params  # the webhook parameters of the call, as of now
        self._task: asyncio.Task | None = None
        self._verbs_run = 0
        self._requests: set[asyncio.Task] = set()  # action requests of calls gone
        # "CODE text" of each error met, each also in the call's log (call_errors.py).
        self.errors = CallErrors(self)
        self.forks = CallForks(self)  # <Start><Stream> and REST streams beside the TwiML
        self.transcriptions = CallTranscriptions(self)  # <Start><Transcription>
        self.bridged: tuple | None = None  # the two calls a <Dial> bridges now
        self.document_url: str | None = None  # the URL of the document running now
        self.document_method: str | None = None  # and the method it was requested with
        self.document_params: list[tuple[str, str]] = []  # and the parameters sent

    # -- control

    def start(self, document: Document) -> asyncio.Task:
        self._task = asyncio.get_running_loop().create_task(self.run(document))
        return self._task

    def redirect(self, document: Document) -> None:
        """Replace the running TwiML at once (REST ``Url``/``Twiml`` update)."""
        if self._task is not None and not self._task.done():
            self._task.cancel()
        self.start(document)

    async def wait(self) -> None:
        while self._task is not None:
            task = self._task
            try:
                await task
            except asyncio.CancelledError:
                if self._task is task:  # cancelled from outside, not by a redirect
                    raise
            if self._task is task:
                return

    # -- documents

    async def run(self, document: Document) -> None:
        current: Document | None = document
        for _ in range(MAX_DOCUMENTS):
            if current is None or self.call.ended.is_set():
                break
            self.document_url = current.url
            self.document_method = current.method if current.url else None
            self.document_params = []
            text = await self._load(current)
            if text is None:
                return
            try:
                response = parse_voice_twiml(text)
            except TwimlError as exc:
                error = f"{exc.code} {exc}"
                what = str(exc).partition(" ")[2]
                fallback = _fallback_of(current, self.document_url, exc.code)
                if fallback is None:
                    await self._application_error(error, code=exc.code, text=what, body=text)
                    return
                # As on Twilio, a document that cannot run sends the call to the fallback.
                self.errors.record(
                    error,
                    code=exc.code,
                    text=what,
                    body=text,
                    url=self.document_url,
                    method=self.document_method,
                    params=self.document_params,
                )
                current = fallback
                continue
            for warning in response.warnings:
                log.info("twiml.warning", extra={"call_sid": self.call.sid, "warning": warning})
                self.errors.warn(12200, f"Schema validation warning: {warning}")
            try:
                await self._execute(response.verbs, current.url)
            except NextDocument as follow:
                current = follow.document
                continue
            current = None
        if not self.call.ended.is_set():
            self.call.hangup()

    async def _load(self, document: Document) -> str | None:
        if document.twiml is not None:
            return document.twiml
        assert document.url is not None
        params = self.params() + document.extra
        self.document_params = params
        try:
            return await self.services.fetch_twiml(document.url, document.method, params)
        except WebhookError as exc:
            self._fetch_failed(exc, document.url, document.method, params)
            log.warning("twiml.fetch_failed", extra={"call_sid": self.call.sid, "error": str(exc)})
        if document.fallback_url:
            params = [*params, ("ErrorCode", "11200"), ("ErrorUrl", document.url)]
            self.document_url = document.fallback_url
            self.document_method = document.fallback_method
            self.document_params = params
            try:
                return await self.services.fetch_twiml(
                    document.fallback_url, document.fallback_method, params
                )
            except WebhookError as exc:
                self._fetch_failed(exc, document.fallback_url, document.fallback_method, params)
                log.warning(
                    "twiml.fallback_failed", extra={"call_sid": self.call.sid, "error": str(exc)}
                )
        await self._application_error(None)
        return None

    def _fetch_failed(
        self, exc: WebhookError, url: str, method: str, params: list[tuple[str, str]]
    ) -> None:
        """Count a failed fetch (11200) and log it: 11200, or 11205 without an answer."""
        code, text = fetch_failure(exc)
        self.errors.record(
            f"11200 {exc}",
            code=code,
            text=text,
            url=exc.url or url,
            method=exc.method or method,
            params=params,
            response=exc.response,
        )

    async def _application_error(self, error: str | None, **details) -> None:
        """What Twilio does when the application fails: apologise, hang up. ``error``
        (with ``details`` for the call log) is counted, unless counted already."""
        if error is not None:
            if self.document_params:
                details["params"] = self.document_params
            self.errors.record(error, url=self.document_url, method=self.document_method, **details)
        log.warning("twiml.application_error", extra={"call_sid": self.call.sid, "error": error})
        if await self.call.answer():
            try:
                await self._say(Say(APPLICATION_ERROR))
            except Exception:  # speech itself failing must not hide the real error
                log.exception("twiml.error_prompt_failed", extra={"call_sid": self.call.sid})
        self.call.hangup()

    # -- verbs

    async def _execute(self, verbs, document_url: str | None) -> None:
        for verb in verbs:
            if self.call.ended.is_set():
                return
            first = self._verbs_run == 0
            self._verbs_run += 1
            if isinstance(verb, Reject):
                if self.call.answered:
                    self.call.hangup()
                else:
                    self.call.reject(486 if verb.reason == "busy" else 603)
                return
            if isinstance(verb, Pause) and first and not self.call.answered:
                await self._sleep(verb.length)  # a leading Pause delays the answer
                continue
            if isinstance(verb, Dial) and verb.answer_on_bridge and not self.call.answered:
                await self._dial(verb, document_url)  # the caller rings until the callee answers
                continue
            if not await self.call.answer():
                return
            if isinstance(verb, Say | Play | Pause):
                await self._prompt(verb)
            elif isinstance(verb, Gather):
                await self._gather(verb, document_url)
            elif isinstance(verb, Hangup):
                self.call.hangup()
                return
            elif isinstance(verb, Dial):
                await self._dial(verb, document_url)
            elif isinstance(verb, Record):
                await self._record(verb, document_url)
            elif isinstance(verb, Refer):
                await self._refer(verb, document_url)
            elif isinstance(verb, Connect):
                await self._connect(verb, document_url)
            elif isinstance(verb, ConnectRelay):
                outcome = await run_relay(self, verb)
                if verb.action:
                    self._act(_resolve(document_url, verb.action), verb.method, outcome.params())
            elif isinstance(verb, Start):
                self._start_stream(verb)
            elif isinstance(verb, Stop):
                await self._stop_stream(verb)
            elif isinstance(verb, StartTranscription):
                try:
                    self.transcriptions.start(verb.transcription)
                except ValueError as exc:  # a name taken, or too many: the TwiML goes on
                    self.errors.warn(12200, f"<Start><Transcription>: {exc}")
            elif isinstance(verb, StopTranscription):
                running = self.transcriptions.find(verb.transcription.name or "")
                if running is not None:
                    await self.transcriptions.stop(running)
            elif isinstance(verb, Redirect):
                _follow(Document(_resolve(document_url, verb.url), verb.method))
            elif isinstance(verb, Enqueue):  # control_api/voice/queue.py
                extra = await enqueue(self, verb, document_url)
                if verb.action:
                    self._act(_resolve(document_url, verb.action), verb.method, extra)
            else:
                log.warning(
                    "twiml.unsupported_verb",
                    extra={"call_sid": self.call.sid, "verb": type(verb).__name__},
                )

    async def _dial(self, verb: Dial, document_url: str | None) -> None:
        if self.services.context is None or self.services.context.dialer is None:
            log.warning("twiml.dial_unavailable", extra={"call_sid": self.call.sid})
            return
        outcome = await dial(self, verb)
        self.call.log("dial.finished", status=outcome.status, bridged=outcome.bridged)
        then = outcome.then if isinstance(outcome, DialOutcome) else None
        if then is not None and not self.call.ended.is_set():
            _follow(then)  # a referUrl's answer, in place of the action
        if verb.action:
            self._act(_resolve(document_url, verb.action), verb.method, outcome.params())

    def _act(self, action: str | None, method: str, extra: list[tuple[str, str]]) -> None:
        """Go on at a verb's ``action``; a caller who hung up still has it requested
        (as Twilio does), and the TwiML it returns is ignored."""
        if self.call.ended.is_set():
            if action:
                params = self.params() + extra
                self._background(self.services.fetch_twiml(action, method, params))
            return
        _follow(Document(action, method, extra=extra))

    async def _refer(self, verb: Refer, document_url: str | None) -> None:
        """``<Refer>``: transfer the caller; on success our side hangs up (refer.py)."""
        outcome = await refer_call(self.call, verb.sip.uri)
        self.call.log("refer.finished", status=outcome.status, code=outcome.refer_code)
        if outcome.status == "completed" and not self.call.ended.is_set():
            self.call.hangup()  # the caller talks to the target now
        if verb.action:
            self._act(_resolve(document_url, verb.action), verb.method, outcome.params())

    async def _connect(self, verb: Connect, document_url: str | None) -> None:
        """``<Connect><Stream>``: a Media Stream until it closes (stream.py), then go on."""
        await connect_stream(self, verb)
        if verb.action:
            self._act(_resolve(document_url, verb.action), verb.method, [])

    def _start_stream(self, verb: Start) -> None:
        """``<Start><Stream>``: a fork runs in the background; the TwiML goes on at once."""
        try:
            self.forks.start(verb.stream)
        except ValueError as exc:
            self.errors.append(f"31920 {exc}")
            log.warning(
                "twiml.stream_refused", extra={"call_sid": self.call.sid, "error": str(exc)}
            )

    async def _stop_stream(self, verb: Stop) -> None:
        """``<Stop><Stream name=...>``: stop the fork of that name (or URL)."""
        fork = self.forks.find(verb.stream.name or verb.stream.url or "")
        if fork is not None:
            await self.forks.stop(fork)

    async def _record(self, verb: Record, document_url: str | None) -> None:
        recording, key = await record(self, verb)
        extra = [*recording.params(), ("Digits", key)]
        context = self.services.context
        # transcribeCallback alone asks for a transcription too, as on Twilio.
        if (verb.transcribe or verb.transcribe_callback) and context is not None:
            callback = (
                _resolve(document_url, verb.transcribe_callback)
                if verb.transcribe_callback
                else None
            )
            self._background(
                transcribe(context, recording, callback=callback, call_params=self.params())
            )
        self._act(_resolve(document_url, verb.action), verb.method, extra)

    def _background(self, coroutine) -> None:
        """Run a request nobody waits for; held here so it is not collected mid-flight."""
        task = asyncio.ensure_future(coroutine)
        self._requests.add(task)
        task.add_done_callback(self._requests.discard)
        task.add_done_callback(_log_failure)

    async def _sleep(self, seconds: float) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.call.ended.wait(), seconds)

    async def _say(self, verb: Say) -> None:
        if not verb.text:
            return
        samples = await self.services.synthesize(verb.text, verb.voice, verb.language)
        await self._play_samples(samples, verb.loop)

    def _answered_leg(self) -> Leg:
        leg = self.call.leg
        assert leg is not None  # _execute runs Play and Gather only once answer() succeeded
        return leg

    async def _play(self, verb: Play) -> None:
        if verb.digits:
            await send_digits(self._answered_leg(), verb.digits)
        if verb.url:
            try:
                samples = await self.services.load_audio(verb.url)
            except Exception as exc:
                self.errors.append(f"11100 {exc}")
                log.warning(
                    "twiml.play_failed",
                    extra={"call_sid": self.call.sid, "url": verb.url, "error": str(exc)},
                )
                return  # Twilio skips a Play it cannot fetch and goes on
            await self._play_samples(samples, verb.loop)

    async def _play_samples(self, samples, loop: int) -> None:
        leg = self.call.leg
        if leg is None or self.call.ended.is_set():
            return
        playing = asyncio.ensure_future(play(leg, samples, loop=loop if loop > 0 else 0))
        ended = asyncio.ensure_future(self.call.ended.wait())
        try:
            await asyncio.wait([playing, ended], return_when=asyncio.FIRST_COMPLETED)
        finally:
            ended.cancel()
            if not playing.done():
                playing.cancel()
                await asyncio.gather(playing, return_exceptions=True)

    async def _gather(self, verb: Gather, document_url: str | None) -> None:
        context = self.services.context
        if "speech" in verb.input and context is not None and context.speech is not None:
            await self._gather_speech(verb, context.speech, document_url)
            return
        leg = self._answered_leg()
        digits: asyncio.Queue[str] = asyncio.Queue()
        leg.on_dtmf = digits.put_nowait
        try:
            if verb.children:
                prompt = asyncio.ensure_future(self._gather_prompt(verb.children))
                first = asyncio.ensure_future(digits.get())
                await asyncio.wait([prompt, first], return_when=asyncio.FIRST_COMPLETED)
                if first.done():  # barge-in: the first key stops the prompt
                    prompt.cancel()
                    await asyncio.gather(prompt, return_exceptions=True)
                    digits.put_nowait(first.result())
                else:
                    first.cancel()
            collected, finished_on_key = await self._collect_digits(verb, digits)
        finally:
            leg.on_dtmf = _ignore_digit
        self._gathered(verb, document_url, collected, finished_on_key)

    async def _gather_speech(self, verb: Gather, speech, document_url: str | None) -> None:
        """``input="speech"`` or ``"dtmf speech"`` (gather_speech.py)."""
        children = verb.children
        prompt = (
            (lambda: asyncio.ensure_future(self._gather_prompt(children))) if children else None
        )
        leg = self._answered_leg()
        try:
            heard = await gather_speech(self, verb, speech, document_url, prompt)
            collected: list[str] = []
            finished_on_key = ""
            if heard.first_digit is not None:
                heard.digits.put_nowait(heard.first_digit)
                collected, finished_on_key = await self._collect_digits(verb, heard.digits)
        finally:
            leg.on_dtmf = _ignore_digit
        if self.call.ended.is_set():
            return
        if heard.hypothesis is not None and heard.hypothesis.text:
            extra = speech_params(heard.hypothesis)
            _follow(Document(_resolve(document_url, verb.action), verb.method, extra=extra))
        self._gathered(verb, document_url, collected, finished_on_key)

    async def _collect_digits(
        self, verb: Gather, digits: asyncio.Queue[str]
    ) -> tuple[list[str], str]:
        """Keys until ``finishOnKey``, ``numDigits`` or ``timeout`` seconds without one."""
        collected: list[str] = []
        while not self.call.ended.is_set():
            try:
                digit = await asyncio.wait_for(digits.get(), verb.timeout)
            except TimeoutError:
                break
            if verb.finish_on_key and digit in verb.finish_on_key:
                return collected, digit
            collected.append(digit)
            if verb.num_digits is not None and len(collected) >= verb.num_digits:
                break
        return collected, ""

    def _gathered(
        self, verb: Gather, document_url: str | None, collected: list[str], finished_on_key: str
    ) -> None:
        """Go to ``action`` with the digits; nothing gathered falls through to the next
        verb unless ``actionOnEmptyResult``."""
        if self.call.ended.is_set():
            return
        if collected or verb.action_on_empty_result:
            extra = [("Digits", "".join(collected)), ("FinishedOnKey", finished_on_key)]
            _follow(Document(_resolve(document_url, verb.action), verb.method, extra=extra))

    async def _gather_prompt(self, children) -> None:
        for child in children:
            if isinstance(child, Say | Play | Pause):
                await self._prompt(child)

    async def _prompt(self, verb: Say | Play | Pause) -> None:
        """What a caller hears: speech, audio (or digits), silence."""
        if isinstance(verb, Say):
            await self._say(verb)
        elif isinstance(verb, Play):
            await self._play(verb)
        else:
            await self._sleep(verb.length)


def _follow(document: Document) -> None:
    """Leave the current document for ``document``; inline TwiML with no URL to go
    to (no action, no document URL) just goes on with its next verb."""
    if document.url:
        raise NextDocument(document)


def _fallback_of(document: Document, loaded_from: str | None, code: int) -> Document | None:
    """Where a call goes when the TwiML from ``document``'s own URL cannot run: its
    fallback URL, told the error (None: no fallback, or the fallback's TwiML failed)."""
    if not document.fallback_url or not document.url or loaded_from != document.url:
        return None
    extra = [*document.extra, ("ErrorCode", str(code)), ("ErrorUrl", document.url)]
    return Document(document.fallback_url, document.fallback_method, extra=extra)


def _ignore_digit(digit: str) -> None:
    pass


def _log_failure(task: asyncio.Task) -> None:
    if not task.cancelled() and task.exception() is not None:
        log.warning("twiml.background_request_failed", extra={"error": str(task.exception())})


def _resolve(document_url: str | None, target: str | None) -> str | None:
    """Action and Redirect URLs may be relative to the document (default: itself)."""
    if not target:
        return document_url
    return urljoin(document_url, target) if document_url else target
