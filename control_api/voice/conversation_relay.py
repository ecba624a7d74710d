"""``<Connect><ConversationRelay>``: we listen and speak, the application exchanges text.

The session opens a WebSocket to the relay's ``url`` (``X-Twilio-Signature`` on the
handshake, ``--fetch-deny`` applies), sends ``setup``, speaks the
``welcomeGreeting`` and then, until the application sends ``end``, the socket
closes or the caller hangs up:

- the caller's audio goes to the node's speech recognizer, one utterance at a time
  (``VoiceContext.speech_listener``), and each utterance heard becomes a ``prompt``
  (with ``partialPrompts``, the words so far come first as prompts with ``last``
  false, as the recognizer gives them);
- ``text`` tokens are spoken as they complete a sentence (or come with
  ``last``) with the node's text-to-speech (eSpeak NG), ``play`` plays a file,
  ``sendDigits`` sends DTMF, ``language`` switches the languages; a ``text`` or
  ``play`` marked ``preemptible`` (or the greeting, with the noun's ``preemptible``)
  is cut short as soon as the application sends the next talk cycle's;
- the caller starting to talk over the agent (or pressing a key, by
  ``interruptible``) stops it and sends ``interrupt`` with what had been spoken and for
  how long; keys go up as ``dtmf`` with ``dtmfDetection``.

The message shapes are in relay_protocol.py; docs/conversation-relay.md describes
the whole. The ``action`` URL then gets ``SessionId``, ``SessionStatus`` (``ended``
when the application ended it, ``completed`` when the socket closed or the caller
hung up, ``failed`` when the socket could not be opened or broke), ``SessionDuration``
and ``HandoffData``.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import re
import time
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, WebSocketException

from control_api.call_log import ERROR
from control_api.sids import new_sid
from control_api.twiml.verbs import ConnectRelay, ConversationRelay
from control_api.voice import relay_protocol as messages
from control_api.voice.listening import Ears, Heard
from control_api.webhooks import sign
from media.leg import Frame
from media.player import play, send_digits
from media.taps import add_tap, remove_tap

if TYPE_CHECKING:
    from control_api.voice.runner import TwimlRunner

__all__ = ["RelayOutcome", "run_relay"]

log = logging.getLogger("callswitch.voice")

OPEN_TIMEOUT_S = 10.0
# What an application may have waiting to be spoken: past MAX_QUEUED pieces more are
# refused with an error message; unspoken text past MAX_PENDING_TEXT is spoken as it is.
MAX_QUEUED = 32
MAX_PENDING_TEXT = 4096
CONNECTION_ERROR = 64102  # the WebSocket could not be opened or broke
INVALID_MESSAGE = 64107  # a message of the application did not validate
_SENTENCE_END = re.compile(r"[.!?;:](?:\s|$)")
AGENT_VOICE = "woman"


@dataclass
class RelayOutcome:
    session_id: str
    status: str = "completed"  # ended, completed, failed
    started: float = field(default_factory=time.monotonic)
    duration_s: int = 0
    handoff_data: str | None = None
    error: str | None = None

    def params(self) -> list[tuple[str, str]]:
        """What the ``action`` URL gets about the session."""
        out = [
            ("SessionId", self.session_id),
            ("SessionStatus", self.status),
            ("SessionDuration", str(self.duration_s)),
        ]
        if self.handoff_data is not None:
            out.append(("HandoffData", self.handoff_data))
        if self.error is not None:
            out += [("ErrorCode", str(CONNECTION_ERROR)), ("ErrorMessage", self.error)]
        return out


async def run_relay(runner: TwimlRunner, verb: ConnectRelay) -> RelayOutcome:
    """Hold the conversation of ``verb`` on the runner's answered call until it ends."""
    outcome = RelayOutcome(new_sid("VX"))
    call = runner.call
    context = runner.services.context
    if call.leg is None or call.ended.is_set() or context is None:
        outcome.status = "failed"
        outcome.error = "the call has no audio"
        return outcome
    relay = verb.relay
    try:
        socket = await _open(runner, relay.url)
    except (OSError, WebSocketException, TimeoutError) as exc:
        outcome.status, outcome.error = "failed", f"cannot open {relay.url}: {exc}"
        _report(runner, outcome.error)
        return outcome
    session = RelaySession(runner, relay, socket, outcome)
    call.log("relay.started", session_sid=outcome.session_id)
    try:
        await session.run()
    finally:
        outcome.duration_s = round(time.monotonic() - outcome.started)
        await session.close()
        call.log("relay.ended", session_sid=outcome.session_id, status=outcome.status)
    return outcome


async def _open(runner: TwimlRunner, url: str) -> ClientConnection:
    """The relay's WebSocket, signed like a webhook (the URL, no parameters), connected
    to the address the fetch policy allows."""
    context = runner.services.context
    assert context is not None  # run_relay checked
    token = await context.token_of(runner.account_sid) or ""
    parts = urlsplit(url)
    host = parts.hostname or ""
    port = parts.port or (443 if parts.scheme == "wss" else 80)
    options: dict[str, Any] = {}
    if context.fetch_guard is not None:
        options["host"] = await context.fetch_guard(host, port)
        options["port"] = port
        if parts.scheme == "wss":
            options["server_hostname"] = host
    return await connect(
        url,
        additional_headers={"X-Twilio-Signature": sign(url, None, token)},
        open_timeout=OPEN_TIMEOUT_S,
        max_size=messages.MAX_MESSAGE,
        **options,
    )


def _report(runner: TwimlRunner, text: str, code: int = CONNECTION_ERROR) -> None:
    runner.errors.append(f"{code} {text}")
    log.warning("relay.error", extra={"call_sid": runner.call.sid, "error": text})
    context = runner.services.context
    if context is not None and context.call_log is not None:
        context.call_log.problem(
            account_sid=runner.account_sid, call_sid=runner.call.sid, code=code, text=text,
            level=ERROR,
        )  # fmt: skip


@dataclass
class _Chunk:
    """A piece of the agent's speech: a sentence to synthesize, or a file to load."""

    text: str
    make: Callable[[], Awaitable[Any]]  # its int16 8 kHz samples
    cycle: int  # the talk cycle it belongs to: one reply (up to ``last``), a file, the greeting
    loop: int = 1
    interruptible: str = "any"
    preemptible: bool = False  # the next talk cycle cuts it short
    audio: asyncio.Future[Any] | None = None  # being made: the one playing and the next

    def prepare(self) -> asyncio.Future[Any]:
        if self.audio is None:
            self.audio = asyncio.ensure_future(self.make())
        return self.audio

    def drop(self) -> None:
        if self.audio is not None:
            self.audio.cancel()


class RelaySession:
    """One conversation: the socket, the caller's ears, the agent's voice."""

    def __init__(
        self,
        runner: TwimlRunner,
        relay: ConversationRelay,
        socket: ClientConnection,
        outcome: RelayOutcome,
    ) -> None:
        self.runner = runner
        self.relay = relay
        self.socket = socket
        self.outcome = outcome
        context = runner.services.context
        assert context is not None
        self.context = context
        self.leg = runner.call.leg
        self.tts_language = relay.tts_language or relay.language
        self.stt_language = relay.transcription_language or relay.language
        self.tokens = ""  # text of the talk cycle not yet spoken (no sentence end yet)
        self.chunks: deque[_Chunk] = deque()
        self.current: _Chunk | None = None
        self.playing: asyncio.Task[None] | None = None
        self.next_cycle = 0  # the talk cycle new speech belongs to
        self.cycle = -1  # the talk cycle being spoken
        self.cycle_text: list[str] = []  # what was spoken of it so far
        self.cycle_started = 0.0
        self.wake = asyncio.Event()
        self.ears: Ears | None = None
        self.talked_over = False  # the caller spoke while the agent did, without cutting in
        self.partial_sent: asyncio.Task[None] | None = None  # the last partial prompt
        self.done = asyncio.Event()
        self._tasks: list[asyncio.Task[Any]] = []

    # -- the whole

    async def run(self) -> None:
        call = self.runner.call
        await self._send(
            messages.setup(
                session_id=self.outcome.session_id,
                account_sid=self.runner.account_sid,
                call_sid=call.sid,
                parent_call_sid=_param(self.runner, "ParentCallSid"),
                from_=_param(self.runner, "From"),
                to=_param(self.runner, "To"),
                forwarded_from=_param(self.runner, "ForwardedFrom"),
                caller_name=_param(self.runner, "CallerName"),
                direction=_param(self.runner, "Direction") or "inbound",
                call_type=_call_type(_param(self.runner, "From")),
                call_status="IN-PROGRESS",
                custom_parameters=dict(self.relay.parameters),
            )
        )
        if self.relay.welcome_greeting:
            self._say(
                self.relay.welcome_greeting,
                self.relay.welcome_greeting_interruptible,
                self.relay.preemptible,
            )
            self.next_cycle += 1
        assert self.leg is not None
        add_tap(self.leg, self._heard)
        saved_dtmf = self.leg.on_dtmf
        self.leg.on_dtmf = self._key
        self._tasks = [
            asyncio.ensure_future(self._read()),
            asyncio.ensure_future(self._speak()),
            asyncio.ensure_future(self._listen()),
        ]
        ended = asyncio.ensure_future(call.ended.wait())
        done = asyncio.ensure_future(self.done.wait())
        try:
            await asyncio.wait((ended, done), return_when=asyncio.FIRST_COMPLETED)
        finally:
            ended.cancel()
            done.cancel()
            remove_tap(self.leg, self._heard)
            self.leg.on_dtmf = saved_dtmf

    async def close(self) -> None:
        for task in self._tasks:
            task.cancel()
        if self.ears is not None:
            self.ears.cancel()
        self._stop_speaking()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        with contextlib.suppress(Exception):
            await asyncio.wait_for(self.socket.close(), 2)

    def _finish(self, status: str, error: str | None = None) -> None:
        if not self.done.is_set():
            self.outcome.status = status
            self.outcome.error = error
            self.done.set()

    async def _send(self, message: bytes) -> None:
        try:
            await self.socket.send(message.decode())
        except ConnectionClosed:
            self._finish("completed")

    # -- what the application says

    async def _read(self) -> None:
        try:
            async for data in self.socket:
                try:
                    message = messages.parse_app_message(data)
                except messages.RelayMessageError as exc:
                    _report(self.runner, f"invalid message: {exc}", INVALID_MESSAGE)
                    await self._send(messages.error(f"Invalid message received: {exc}"))
                    continue
                await self._handle(message)
            self._finish("completed")
        except ConnectionClosed as exc:
            if exc.rcvd is not None and exc.rcvd.code in (1000, 1001):
                self._finish("completed")
            else:
                self._finish("failed", f"the WebSocket broke: {exc}")
                _report(self.runner, self.outcome.error or "")

    async def _handle(self, message: messages.AppMessage) -> None:
        if isinstance(message, messages.Text):
            if message.lang:
                self.tts_language = message.lang
            self.tokens += message.token
            preemptible = self._preemptible(message.preemptible)
            self._flush_tokens(message.last, message.interruptible, preemptible)
            if len(self.tokens) > MAX_PENDING_TEXT:  # no sentence end in sight: say it now
                self._say(self.tokens, self._interruptible(message.interruptible), preemptible)
                self.tokens = ""
        elif isinstance(message, messages.Play):
            load = functools.partial(self.context.load_audio, message.source)
            interruptible = self._interruptible(message.interruptible)
            preemptible = self._preemptible(message.preemptible)
            self._queue(_Chunk("", load, self.next_cycle, message.loop, interruptible, preemptible))
            self.next_cycle += 1
        elif isinstance(message, messages.SendDigits):
            if self.leg is not None:
                with contextlib.suppress(ValueError):
                    await send_digits(self.leg, message.digits)
        elif isinstance(message, messages.Language):
            self.tts_language = message.tts_language or self.tts_language
            self.stt_language = message.transcription_language or self.stt_language
        elif isinstance(message, messages.End):
            self.outcome.handoff_data = message.handoff_data
            self._finish("ended")

    def _flush_tokens(self, last: bool, interruptible: str | None, preemptible: bool) -> None:
        """Speak what forms whole sentences (everything, with ``last``)."""
        while True:
            found = _SENTENCE_END.search(self.tokens)
            if found is None:
                break
            sentence, self.tokens = self.tokens[: found.end()], self.tokens[found.end() :]
            self._say(sentence, self._interruptible(interruptible), preemptible)
        if last:
            self._say(self.tokens, self._interruptible(interruptible), preemptible)
            self.tokens = ""
            self.next_cycle += 1

    def _interruptible(self, given: str | None) -> str:
        return given or self.relay.interruptible

    def _preemptible(self, given: bool | None) -> bool:
        return self.relay.preemptible if given is None else given

    # -- the agent's voice

    def _say(self, text: str, interruptible: str, preemptible: bool = False) -> None:
        text = text.strip()
        if not text:
            return
        speech = functools.partial(self.context.synthesize, text, AGENT_VOICE, self.tts_language)
        self._queue(_Chunk(text, speech, self.next_cycle, 1, interruptible, preemptible))

    def _queue(self, chunk: _Chunk) -> None:
        self._preempt(chunk.cycle)
        if len(self.chunks) >= MAX_QUEUED:
            self._spawn(self._send(messages.error(f"more than {MAX_QUEUED} pieces queued")))
            return
        self.chunks.append(chunk)
        if len(self.chunks) == 1:
            chunk.prepare()  # the next to play: made now, the rest in their turn
        self.wake.set()

    @property
    def speaking(self) -> bool:
        return self.current is not None or bool(self.chunks)

    async def _speak(self) -> None:
        leg = self.leg
        assert leg is not None
        while True:
            await self.wake.wait()
            self.wake.clear()
            while self.chunks:
                chunk = self.current = self.chunks.popleft()
                audio = chunk.prepare()
                if self.chunks:
                    self.chunks[0].prepare()  # made while this one plays
                try:
                    samples = await audio
                    if chunk.cycle != self.cycle:
                        self.cycle, self.cycle_text = chunk.cycle, []
                        self.cycle_started = time.monotonic()
                    if chunk.text:
                        self.cycle_text.append(chunk.text)
                    self.playing = asyncio.ensure_future(play(leg, samples, loop=chunk.loop))
                    await self.playing
                except asyncio.CancelledError:
                    if _being_cancelled():  # the session is closing, not an interrupt
                        raise
                except Exception as exc:  # a file that would not load, speech that failed
                    await self._send(messages.error(f"cannot play: {exc}"))
                finally:
                    self.playing = None
                    self.current = None

    def _preempt(self, cycle: int) -> None:
        """A piece of talk cycle ``cycle`` came: the preemptible speech of earlier
        cycles, playing or waiting, gives way to it (no ``interrupt``: the caller did
        not cut in)."""
        kept: deque[_Chunk] = deque()
        for waiting in self.chunks:
            if waiting.preemptible and waiting.cycle < cycle:
                waiting.drop()
            else:
                kept.append(waiting)
        self.chunks = kept
        current = self.current
        if current is not None and current.preemptible and current.cycle < cycle:
            current.drop()  # still being made: never played
            if self.playing is not None:
                self.playing.cancel()

    def _stop_speaking(self) -> None:
        for chunk in self.chunks:
            chunk.drop()
        self.chunks.clear()
        if self.current is not None:
            self.current.drop()  # still being made: never played
        if self.playing is not None:
            self.playing.cancel()

    def _interrupt(self, by: str) -> bool:
        """The caller cut in (``by`` speech or dtmf): stop and tell the application,
        when what is being said allows it."""
        chunk = self.current or (self.chunks[0] if self.chunks else None)
        if chunk is None or chunk.interruptible not in ("any", by):
            return False
        utterance = " ".join(self.cycle_text)
        spoken_ms = round(1000 * (time.monotonic() - self.cycle_started))
        self._stop_speaking()
        self.tokens = ""
        self._spawn(self._send(messages.interrupt(utterance, spoken_ms)))
        return True

    # -- what the caller does

    def _heard(self, side: int, frame: Frame) -> None:
        if not side and self.ears is not None:
            self.ears.hear(frame)

    def _caller_started(self) -> None:
        if self.speaking and not self._interrupt("speech"):
            self.talked_over = True

    def _key(self, digit: str) -> None:
        if self.speaking:
            self._interrupt("dtmf")
        if self.relay.dtmf_detection:
            self._spawn(self._send(messages.dtmf(digit)))

    async def _listen(self) -> None:
        factory = self.context.speech_listener
        if factory is None:
            await self._send(messages.error("this node runs no speech recognizer"))
            return
        partial = self._partial if self.relay.partial_prompts else None
        self.ears = Ears(
            factory, self.stt_language, self.relay.hints, self._caller_started, partial
        )
        while not self.done.is_set():
            self.talked_over = False
            self.ears.language = self.stt_language
            try:
                heard = await self.ears.utterance()
            except Exception as exc:  # the recognizer failed this utterance
                await self._send(messages.error(f"speech recognition failed: {exc}"))
                continue
            heard_over = self.talked_over and self.relay.report_input_during_agent_speech not in (
                "any",
                "speech",
            )
            if self.partial_sent is not None:  # the partials go first
                await asyncio.gather(self.partial_sent, return_exceptions=True)
            if heard is not None and heard.text and not heard_over:
                await self._send(messages.prompt(heard.text, self.stt_language))

    def _partial(self, heard: Heard) -> None:
        """The words so far of the utterance being spoken (``partialPrompts``), in order,
        unless they are said over an agent that may not be interrupted (and such input
        is not reported)."""
        if not heard.text or (
            self.talked_over
            and self.relay.report_input_during_agent_speech not in ("any", "speech")
        ):
            return
        previous = self.partial_sent
        message = messages.prompt(heard.text, self.stt_language, last=False)

        async def send() -> None:
            if previous is not None:
                await asyncio.gather(previous, return_exceptions=True)
            await self._send(message)

        self.partial_sent = asyncio.ensure_future(send())
        self._spawn(self.partial_sent)

    def _spawn(self, work: Awaitable[None]) -> None:
        self._tasks = [task for task in self._tasks if not task.done()]
        self._tasks.append(asyncio.ensure_future(work))


def _being_cancelled() -> bool:
    """Whether the running task itself is asked to stop (not merely something it awaited)."""
    task = asyncio.current_task()
    return task is not None and task.cancelling() > 0


def _param(runner: TwimlRunner, name: str) -> str:
    return next((value for key, value in runner.params() if key == name), "")


def _call_type(caller: str) -> str:
    """PSTN, SIP or CLIENT, as ``setup`` names the caller's kind."""
    if caller.startswith("client:"):
        return "CLIENT"
    if caller.startswith(("sip:", "sips:")):
        return "SIP"
    return "PSTN"
