"""Answering-machine detection on the calls we place (``MachineDetection``).

A REST call with ``MachineDetection=Enable|DetectMessageEnd`` listens to the
answered party (media/amd.py) before its TwiML runs, and the first webhook
carries ``AnsweredBy`` and ``MachineDetectionDuration``; with ``AsyncAmd=true``
the TwiML runs at once and the decision is posted to ``AsyncAmdStatusCallback``
(signed, through the outbox) when it is made. ``<Number>``/``<Sip>``
``machineDetection`` (and a participant's) works the asynchronous way: the
callee is bridged as usual and ``amdStatusCallback`` hears the decision. Either
way the call's record gets ``answered_by``.

An asynchronous detection without a callback is Twilio's warning 21262 (no AMD status
callback URL: the decision is only on the call's record), and ``AsyncAmd``
parameters given to a participant (or ``asyncAmd…`` attributes on a ``<Number>``/``<Sip>``
that detects) are its warning 21263; both are notifications of the call, and
detection goes on.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import TYPE_CHECKING, Any

from control_api.call_log import WARNING
from control_api.voice.port import NewMachineDetection
from media import codecs
from media.amd import AmdResult, AmdSettings, MachineDetector
from media.leg import Frame
from media.taps import add_tap, remove_tap

if TYPE_CHECKING:
    from control_api.calls.leg import CallLeg
    from control_api.voice.context import VoiceContext
    from control_api.voice.lifecycle import CallLifecycle

__all__ = ["detect", "report", "request_of", "run", "settings_of", "warn"]

# Audio arrives through the jitter buffer a few packets late; only a longer gap is
# a peer sending nothing (counted as silence).
LATE_MS = 300.0
POLL_S = 0.1
NO_CALLBACK = 21262
MISPLACED_ASYNC = 21263


def settings_of(request: NewMachineDetection) -> AmdSettings:
    """The detector's settings for what the call asked."""
    return AmdSettings(
        detect_message_end=request.detect_message_end,
        timeout_ms=request.timeout_s * 1000,
        speech_threshold_ms=request.speech_threshold_ms,
        speech_end_threshold_ms=request.speech_end_threshold_ms,
        silence_timeout_ms=request.silence_timeout_ms,
    )


async def detect(call: CallLeg, settings: AmdSettings) -> AmdResult | None:
    """Listen to what ``call``'s party sends until the detector decides (or its
    timeout passes); None when the call ends first or has no media."""
    leg = call.leg
    if leg is None or call.ended.is_set():
        return None
    loop = asyncio.get_running_loop()
    detector = MachineDetector(settings)
    decoders: dict[str, codecs.Decoder] = {}
    decided: asyncio.Future[AmdResult] = loop.create_future()
    started = loop.time()

    def settle(result: AmdResult | None) -> None:
        if result is not None and not decided.done():
            decided.set_result(result)

    def tap(side: int, frame: Frame) -> None:
        if side or decided.done():
            return
        decoder = decoders.get(frame.codec)
        if decoder is None:
            try:
                decoder = decoders[frame.codec] = codecs.decoder(frame.codec)
            except codecs.UnsupportedCodec:
                return
        with contextlib.suppress(ValueError):  # a payload the codec cannot read
            settle(detector.feed(decoder.decode(frame.payload), codecs.sample_rate(frame.codec)))

    add_tap(leg, tap)
    ended: asyncio.Future[bool] = asyncio.ensure_future(call.ended.wait())
    try:
        while not decided.done() and not ended.done():
            await asyncio.wait((decided, ended), timeout=POLL_S)
            settle(detector.catch_up((loop.time() - started) * 1000.0 - LATE_MS))
        return decided.result() if decided.done() else None
    finally:
        ended.cancel()
        remove_tap(leg, tap)


def request_of(noun: Any) -> NewMachineDetection | None:
    """What a ``<Number>``/``<Sip>`` noun asks of AMD (always the asynchronous way:
    its callee is bridged while the detector listens); None when nothing."""
    mode = getattr(noun, "machine_detection", None)
    if not mode:
        return None
    return NewMachineDetection(
        detect_message_end=mode == "DetectMessageEnd",
        timeout_s=noun.machine_detection_timeout,
        speech_threshold_ms=noun.machine_detection_speech_threshold,
        speech_end_threshold_ms=noun.machine_detection_speech_end_threshold,
        silence_timeout_ms=noun.machine_detection_silence_timeout,
        asynchronous=True,
        callback=noun.amd_status_callback,
        callback_method=noun.amd_status_callback_method,
        misplaced_async=bool(getattr(noun, "misplaced_async_amd", ())),
    )


async def run(
    context: VoiceContext, call: CallLeg, lifecycle: CallLifecycle, request: NewMachineDetection
) -> None:
    """Detect who answered ``call`` and report it (:func:`report`)."""
    warn(context, lifecycle.record.account_sid, call.sid, request)
    result = await detect(call, settings_of(request))
    if result is not None:
        report(context, lifecycle, result, request)
        call.log("call.amd", answered_by=result.answered_by, ms=result.duration_ms)


def warn(
    context: VoiceContext, account_sid: str, call_sid: str, request: NewMachineDetection
) -> None:
    """Twilio's warnings for what ``request`` lacks or has too much of, as
    notifications of the call (21262, 21263)."""
    call_log = context.call_log
    if call_log is None:
        return
    if request.misplaced_async:
        call_log.problem(
            account_sid=account_sid,
            call_sid=call_sid,
            code=MISPLACED_ASYNC,
            text="Invalid Answering Machine Detection Parameters: AsyncAmd, "
            "AsyncAmdStatusCallback and AsyncAmdStatusCallbackMethod are for Calls only "
            "(a participant takes AmdStatusCallback, <Number>/<Sip> amdStatusCallback)",
            level=WARNING,
        )
    if request.asynchronous and not request.callback:
        call_log.problem(
            account_sid=account_sid,
            call_sid=call_sid,
            code=NO_CALLBACK,
            text="No AMD status callback URL provided: the answering machine detection "
            "result is only on the call's record (answered_by)",
            level=WARNING,
        )


def report(
    context: VoiceContext,
    lifecycle: CallLifecycle,
    result: AmdResult,
    detection: NewMachineDetection,
) -> None:
    """Remember ``result`` on the call (its record and later webhooks) and, for an
    asynchronous detection, post it to the callback."""
    lifecycle.machine_detected(result.answered_by, result.duration_ms)
    if not (detection.asynchronous and detection.callback):
        return
    record = lifecycle.record
    fields = [
        ("AccountSid", record.account_sid),
        ("CallSid", record.sid),
        ("AnsweredBy", result.answered_by),
        ("MachineDetectionDuration", str(result.duration_ms)),
    ]
    callback = detection.callback
    lifecycle.journal.add(
        lambda: context.outbox.enqueue(
            account_sid=record.account_sid,
            url=callback,
            method=detection.callback_method,
            params=fields,
            call_sid=record.sid,
        )
    )
