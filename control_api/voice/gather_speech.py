"""``<Gather input="speech">`` and ``input="dtmf speech"``: listen while prompting.

The caller's audio goes to a :class:`media.speech.StreamingRecognizer` over the
call's speech provider (``--speech-provider``, ``VoiceContext.speech``) from the
moment the Gather starts; its voice-activity endpointer finds the utterance:

- ``bargeIn`` (default true): speech starting stops the nested ``<Say>``/``<Play>``
  (as a key does); with ``bargeIn="false"`` nothing is heard until they end.
- ``timeout``: seconds after the prompts end for the caller to start speaking
  (or pressing keys); ``speechTimeout``: the pause that ends the utterance
  (seconds, or ``auto`` for a natural pause; default ``timeout``);
  ``maxSpeechTime`` caps the utterance.
- ``language``, ``hints`` (a grammar for the embedded recognizer, the ``prompt``
  of an OpenAI-compatible one), ``speechModel`` (the remote model);
  ``enhanced`` and ``profanityFilter`` are accepted and change nothing.
- ``partialResultCallback``: each new partial hypothesis is posted through the
  outbox (signed, retried) with ``UnstableSpeechResult`` (the words so far),
  ``StableSpeechResult`` (those that did not change since the last partial),
  ``Stability`` and ``SequenceNumber`` (from 1).
- with ``dtmf`` too, the first key ends listening and the digits are gathered
  as for a DTMF Gather.

What is heard goes to ``action`` as ``SpeechResult`` and ``Confidence``; nothing
heard (or a provider failure, which is also the call's notification) falls
through to the next verb, or requests ``action`` without them when
``actionOnEmptyResult`` is true.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any
from urllib.parse import urljoin

import numpy as np

from control_api.twiml.verbs import Gather
from media.leg import Frame
from media.mixer import decoder_for
from media.speech import (
    Hypothesis,
    RecognitionOptions,
    SpeechError,
    SpeechProvider,
    StreamingRecognizer,
)

if TYPE_CHECKING:
    from control_api.voice.runner import TwimlRunner

__all__ = ["SpeechGatherResult", "gather_speech", "recognition_options", "speech_params"]

log = logging.getLogger("callswitch.twiml")

RESULT_GRACE_S = 20.0  # a provider's answer after the utterance ended, at most


@dataclass(slots=True)
class SpeechGatherResult:
    """What the Gather got: speech, or the first key (then digits follow), or nothing."""

    hypothesis: Hypothesis | None = None
    first_digit: str | None = None
    failed: bool = False
    digits: asyncio.Queue[str] = field(default_factory=asyncio.Queue)


def recognition_options(verb: Gather) -> RecognitionOptions:
    if verb.speech_timeout == "auto":
        end_silence: float | None = None
    elif verb.speech_timeout is not None:
        end_silence = float(max(int(verb.speech_timeout), 1))
    else:
        end_silence = float(verb.timeout)
    hints = tuple(h.strip() for h in (verb.hints or "").split(",") if h.strip())
    return RecognitionOptions(
        language=verb.language,
        hints=hints,
        end_silence_s=end_silence,
        no_input_s=float(verb.timeout),
        max_speech_s=float(verb.max_speech_time),
        partials=bool(verb.partial_result_callback),
        model=verb.speech_model,
    )


async def gather_speech(
    runner: TwimlRunner,
    verb: Gather,
    provider: SpeechProvider,
    document_url: str | None,
    prompt: Callable[[], asyncio.Future[None]] | None,
) -> SpeechGatherResult:
    """Listen (and take keys, with ``dtmf``) while ``prompt()`` plays; see the module."""
    leg = runner._answered_leg()
    result = SpeechGatherResult()
    options = recognition_options(verb)
    partials = _partial_poster(runner, verb, document_url)
    # The no-input timer starts when the prompts end: until then the endpointer waits.
    listening = dataclasses.replace(options, no_input_s=1e9)
    speech_started = asyncio.Event()
    recognizer = StreamingRecognizer(
        provider, listening, on_speech=speech_started.set, on_partial=partials
    )
    decode = decoder_for(leg.codec)
    hearing = not (prompt is not None and not verb.barge_in)

    def on_frame(frame: Frame) -> None:
        if hearing:
            recognizer.feed(np.asarray(decode(frame.payload), dtype=np.int16))

    saved = leg.on_frame, leg.on_dtmf
    leg.on_frame = on_frame
    if "dtmf" in verb.input:
        leg.on_dtmf = result.digits.put_nowait
    try:
        if prompt is not None:
            playing = prompt()
            await _first(playing, speech_started, result.digits, barge_in=verb.barge_in)
            if not playing.done():
                playing.cancel()
                await asyncio.gather(playing, return_exceptions=True)
        hearing = True
        if result.digits.empty():
            recognizer.endpointer.no_input_s = recognizer.endpointer.waited_s + options.no_input_s
            await _listen(runner, recognizer, options, result)
        if not result.digits.empty() and result.hypothesis is None:
            result.first_digit = result.digits.get_nowait()
    finally:
        recognizer.close()
        leg.on_frame = saved[0]
        if "dtmf" not in verb.input:
            leg.on_dtmf = saved[1]
    return result


async def _first(
    playing: asyncio.Future[None],
    speech_started: asyncio.Event,
    digits: asyncio.Queue[str],
    *,
    barge_in: bool,
) -> None:
    """Wait for the prompt to end, or (``barge_in``) speech or a key to interrupt it."""
    if not barge_in:
        await asyncio.wait([playing])
        return
    spoke: asyncio.Future[Any] = asyncio.ensure_future(speech_started.wait())
    key: asyncio.Future[Any] = asyncio.ensure_future(_peek(digits))
    try:
        await _race([playing, spoke, key])
    finally:
        spoke.cancel()
        key.cancel()


async def _race(futures: list[asyncio.Future[Any]], timeout: float | None = None) -> None:
    """Until the first of ``futures`` is done (or ``timeout`` passes)."""
    await asyncio.wait(futures, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)


async def _peek(digits: asyncio.Queue[str]) -> None:
    while digits.empty():
        digit = await digits.get()
        digits.put_nowait(digit)


async def _listen(
    runner: TwimlRunner,
    recognizer: StreamingRecognizer,
    options: RecognitionOptions,
    result: SpeechGatherResult,
) -> None:
    """Until the utterance is recognized, nobody spoke, a key came or the call ended.
    Wall-clock limits back the endpointer up when the caller's audio stops coming."""
    call_ended: asyncio.Future[Any] = asyncio.ensure_future(runner.call.ended.wait())
    key: asyncio.Future[Any] = asyncio.ensure_future(_peek(result.digits))
    try:
        deadline = options.no_input_s + 0.5
        if not recognizer.speaking:
            await _race([recognizer.result, call_ended, key], deadline)
            if not recognizer.speaking:
                recognizer.end()  # nobody spoke, or no audio came
        if recognizer.speaking:
            await _while_speaking(recognizer, options, [recognizer.result, call_ended, key])
        if key.done() and not recognizer.speaking:
            return
        recognizer.end()
        await _race([recognizer.result, call_ended], RESULT_GRACE_S)
        if recognizer.result.done():
            result.hypothesis = recognizer.result.result()
        elif not call_ended.done():
            raise SpeechError(f"no answer from the {recognizer.provider.name} recognizer")
    except SpeechError as exc:
        result.failed = True
        runner.errors.record(
            f"speech Speech recognition failed: {exc}",
            code=None,
            text=f"Speech recognition failed: {exc}",
        )
        log.warning("gather.speech_failed", extra={"call_sid": runner.call.sid, "error": str(exc)})
    finally:
        call_ended.cancel()
        key.cancel()


async def _while_speaking(
    recognizer: StreamingRecognizer, options: RecognitionOptions, stops: list[asyncio.Future[Any]]
) -> None:
    """Until the endpointer ends the utterance, or the audio stops coming for the
    pause that would have ended it, or ``maxSpeechTime`` passes."""
    loop = asyncio.get_running_loop()
    started = loop.time()
    quiet_limit = recognizer.endpointer.end_silence_s + 0.5
    while not any(stop.done() for stop in stops):
        await _race(stops, 0.25)
        now = loop.time()
        if now - recognizer.fed_at >= quiet_limit or now - started >= options.max_speech_s:
            return


def _partial_poster(
    runner: TwimlRunner, verb: Gather, document_url: str | None
) -> Callable[[Hypothesis], None] | None:
    """``partialResultCallback``: each partial through the outbox, numbered."""
    context = runner.services.context
    if not verb.partial_result_callback or context is None:
        return None
    url = (
        urljoin(document_url, verb.partial_result_callback)
        if document_url
        else (verb.partial_result_callback)
    )
    sequence = 0
    previous: list[str] = []

    def post(hypothesis: Hypothesis) -> None:
        nonlocal sequence, previous
        sequence += 1
        words = hypothesis.text.split()
        stable = []
        for old, new in zip(previous, words, strict=False):
            if old != new:
                break
            stable.append(new)
        previous = words
        params = [
            *runner.params(),
            ("UnstableSpeechResult", hypothesis.text),
            ("StableSpeechResult", " ".join(stable)),
            ("Stability", f"{hypothesis.stability:g}"),
            ("SequenceNumber", str(sequence)),
            ("Language", verb.language),
        ]
        context.tasks.spawn(
            context.outbox.enqueue(
                account_sid=runner.account_sid,
                url=url,
                method=verb.partial_result_callback_method,
                params=params,
                call_sid=runner.call.sid,
            )
        )

    return post


def speech_params(hypothesis: Hypothesis) -> list[tuple[str, str]]:
    return [("SpeechResult", hypothesis.text), ("Confidence", f"{hypothesis.confidence:.6g}")]
