"""``<Record>``: record the caller until a key, silence, ``maxLength`` or hang-up.

A beep first (``playBeep``), then the caller's audio goes to a WAV file. It
ends on a key of ``finishOnKey``, after ``timeout`` seconds of silence
(0 = never), at ``maxLength`` seconds, or when the caller hangs up. The action
URL gets ``RecordingUrl``, ``RecordingSid``, ``RecordingDuration`` and
``Digits`` (the key, or ``hangup``) as reference §3 says.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import TYPE_CHECKING

from control_api.twiml.verbs import Record
from control_api.voice.recording import CallRecording
from media.g711 import alaw_decode, ulaw_decode
from media.leg import Frame
from media.player import play
from media.recorder import SilenceDetector
from media.tones import beep

if TYPE_CHECKING:
    from control_api.voice.runner import TwimlRunner

__all__ = ["record"]

_DECODERS = {"PCMU": ulaw_decode, "PCMA": alaw_decode}


async def record(runner: TwimlRunner, verb: Record) -> tuple[CallRecording, str]:
    """Record; returns the recording and what ended it (the key, ``hangup``, or "")."""
    call = runner.call
    leg = call.leg
    assert leg is not None  # the runner runs <Record> once answer() bound the leg
    context = runner.services.context
    assert context is not None  # a runner of the voice runtime: where recordings are kept
    if verb.play_beep:
        await play(leg, beep(frequency=1000.0, duration_s=0.5))
    recording = CallRecording(
        context,
        account_sid=runner.account_sid,
        call_sid=call.sid,
        source="RecordVerb",
        trim_silence=verb.trim == "trim-silence",
        status_callback=verb.recording_status_callback,
        status_callback_method=verb.recording_status_callback_method,
        status_callback_events=verb.recording_status_callback_event,
    )
    loop = asyncio.get_running_loop()
    ended: asyncio.Future[str] = loop.create_future()

    def finish(reason: str) -> None:
        if not ended.done():
            ended.set_result(reason)

    silence = SilenceDetector(verb.timeout, wait_for_speech=False) if verb.timeout > 0 else None
    decode = _DECODERS.get(leg.codec)

    def on_frame(frame: Frame) -> None:
        recording.tap(0, frame)
        if silence is not None and decode is not None and silence.feed(decode(frame.payload)):
            finish("")

    def on_dtmf(digit: str) -> None:
        if digit in verb.finish_on_key:
            finish(digit)

    saved = leg.on_frame, leg.on_dtmf
    leg.on_frame, leg.on_dtmf = on_frame, on_dtmf
    gone = asyncio.ensure_future(call.ended.wait())

    def on_gone(waiter: asyncio.Task[object]) -> None:
        if not waiter.cancelled():
            finish("hangup")

    gone.add_done_callback(on_gone)
    try:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(asyncio.shield(ended), verb.max_length)
    finally:
        gone.cancel()
        leg.on_frame, leg.on_dtmf = saved
        await recording.finish()
    return recording, ended.result() if ended.done() else ""
