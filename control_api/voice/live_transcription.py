"""``<Start><Transcription>``: a call's words as they are spoken, to a status callback.

A live transcription (``GT…``) listens to the call's ``track`` (``inbound_track``
what the caller says, ``outbound_track`` what the call plays to the caller, or
both) beside the TwiML, which goes on at once, and posts Twilio's real-time
transcription events to ``statusCallbackUrl`` (signed, through the outbox):
``transcription-started``; a ``transcription-content`` per utterance with
``TranscriptionData`` (``{"transcript": ..., "confidence": ...}``), ``Final``,
``Track`` and a ``SequenceId`` (with ``partialResults``, the words so far first, as
the recognizer gives them, with ``Final`` false); ``transcription-stopped`` when
``<Stop>`` or the REST resource (control_api/api/realtime_transcriptions.py) names it or
the call ends; ``transcription-error`` when the node has no recognizer or it fails.
Recognition is the node's (``--speech-provider``); ``transcriptionEngine`` and
``speechModel`` are accepted.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import weakref
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from control_api.sids import new_sid
from control_api.twiml.verbs import Transcription
from control_api.voice.lifecycle import API_VERSION
from control_api.voice.listening import Ears, Heard, OnPartial
from media.leg import Frame
from media.taps import add_tap, remove_tap

if TYPE_CHECKING:
    from control_api.voice.runner import TwimlRunner

__all__ = ["CallTranscriptions", "LiveTranscription"]

log = logging.getLogger("callswitch.voice")

MAX_PER_CALL = 4
STOP_WAIT_S = 3.0  # how long a stop waits for the callbacks it owes before it answers
PROVIDER = "callswitch"


@dataclass(eq=False)
class LiveTranscription:
    spec: Transcription
    sid: str = field(default_factory=lambda: new_sid("GT"))
    status: str = "in-progress"  # then stopped
    date_updated: datetime = field(default_factory=lambda: datetime.now(UTC))
    sequence: int = 0
    stop_requested: asyncio.Event = field(default_factory=asyncio.Event)
    task: asyncio.Task[None] | None = None
    partial_sent: asyncio.Task[None] | None = None  # the last partial result's event

    @property
    def name(self) -> str | None:
        return self.spec.name


class CallTranscriptions:
    """The live transcriptions of one call (its runner's)."""

    def __init__(self, runner: TwimlRunner) -> None:
        # Weak: the runner holds us, and a cycle would keep each ended call's runner,
        # leg and call until a full collection, which the server runs rarely.
        self._runner = weakref.ref(runner)
        self.running: list[LiveTranscription] = []

    @property
    def runner(self) -> TwimlRunner:
        runner = self._runner()
        if runner is None:
            raise RuntimeError("the call's TwiML runner is gone")
        return runner

    def find(self, sid_or_name: str) -> LiveTranscription | None:
        return next(
            (t for t in self.running if sid_or_name in (t.sid, t.name)),
            None,
        )

    def start(self, spec: Transcription) -> LiveTranscription:
        """Start one; ValueError when its name is taken or the call has as many as it may."""
        if spec.name and self.find(spec.name) is not None:
            raise ValueError(f"a transcription named {spec.name!r} is running")
        if len(self.running) >= MAX_PER_CALL:
            raise ValueError(f"a call runs at most {MAX_PER_CALL} transcriptions")
        transcription = LiveTranscription(spec)
        self.running.append(transcription)
        transcription.task = asyncio.ensure_future(self._run(transcription))
        return transcription

    async def stop(self, transcription: LiveTranscription) -> LiveTranscription:
        """Stop ``transcription`` and wait, up to ``STOP_WAIT_S``, for the callbacks it
        owes (the results heard before the stop, then ``transcription-stopped``). Its
        status is ``stopped`` from the moment it listens no more, which does not wait on
        the callbacks: past the bound the answer is still true, and the callbacks
        follow in order (then its name is free again)."""
        transcription.stop_requested.set()
        if transcription.task is not None:
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(asyncio.shield(transcription.task), STOP_WAIT_S)
        return transcription

    async def _run(self, transcription: LiveTranscription) -> None:
        runner = self.runner
        call = runner.call
        context = runner.services.context
        factory = context.speech_listener if context is not None else None
        spec = transcription.spec
        tracks = (
            ["inbound_track", "outbound_track"] if spec.track == "both_tracks" else [spec.track]
        )
        try:
            await self._event(transcription, "transcription-started")
            if factory is None or call.leg is None:
                await self._event(
                    transcription,
                    "transcription-error",
                    error="this node runs no speech recognizer",
                )
                return
            ears = {
                track: Ears(
                    factory,
                    spec.language_code,
                    spec.hints,
                    on_partial=self._partials(transcription, track)
                    if spec.partial_results
                    else None,
                )
                for track in tracks
            }
            side = {0: ears.get("inbound_track"), 1: ears.get("outbound_track")}

            def heard(which: int, frame: Frame) -> None:
                listening = side[which]
                if listening is not None:
                    listening.hear(frame)

            add_tap(call.leg, heard)
            listeners = [
                asyncio.ensure_future(self._listen(transcription, track, e))
                for track, e in ears.items()
            ]
            ended = asyncio.ensure_future(call.ended.wait())
            stopped = asyncio.ensure_future(transcription.stop_requested.wait())
            try:
                await asyncio.wait(
                    (ended, stopped, *listeners), return_when=asyncio.FIRST_COMPLETED
                )
            finally:
                for task in (ended, stopped, *listeners):
                    task.cancel()
                for e in ears.values():
                    e.cancel()
                remove_tap(call.leg, heard)
                await asyncio.gather(*listeners, return_exceptions=True)
                _stopped(transcription)  # it hears nothing more: stopped, callbacks or not
        finally:
            _stopped(transcription)
            await self._sent(transcription)
            if transcription in self.running:
                self.running.remove(transcription)
            await self._event(transcription, "transcription-stopped")

    async def _listen(self, transcription: LiveTranscription, track: str, ears: Ears) -> None:
        while True:
            try:
                heard = await ears.utterance()
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # the recognizer failed: said, and the transcription ends
                await self._event(transcription, "transcription-error", error=str(exc))
                return
            await self._sent(transcription)  # the partials go first
            if heard is not None and heard.text:
                data = json.dumps({"transcript": heard.text, "confidence": heard.confidence})
                await self._event(
                    transcription,
                    "transcription-content",
                    Track=track,
                    Final="true",
                    TranscriptionData=data,
                )

    def _partials(self, transcription: LiveTranscription, track: str) -> OnPartial:
        """The events of the words so far of ``track``'s utterance, in order."""

        def heard(words: Heard) -> None:
            if not words.text:
                return
            data = json.dumps({"transcript": words.text, "confidence": words.confidence})
            previous = transcription.partial_sent

            async def send() -> None:
                if previous is not None:
                    await asyncio.gather(previous, return_exceptions=True)
                await self._event(
                    transcription,
                    "transcription-content",
                    Track=track,
                    Final="false",
                    TranscriptionData=data,
                )

            transcription.partial_sent = asyncio.ensure_future(send())

        return heard

    @staticmethod
    async def _sent(transcription: LiveTranscription) -> None:
        """Once the partial results' events are on their way."""
        if transcription.partial_sent is not None:
            await asyncio.gather(transcription.partial_sent, return_exceptions=True)

    async def _event(self, transcription: LiveTranscription, event: str, **fields: str) -> None:
        """One status callback (when the transcription has one), in order."""
        runner = self.runner
        context = runner.services.context
        spec = transcription.spec
        url = spec.status_callback_url
        if event == "transcription-error":
            log.warning(
                "transcription.error",
                extra={"call_sid": runner.call.sid, "error": fields.get("error", "")},
            )
        if not url or context is None:
            return
        transcription.sequence += 1
        error = fields.pop("error", None)
        params = [
            ("AccountSid", runner.account_sid),
            ("CallSid", runner.call.sid),
            ("TranscriptionSid", transcription.sid),
            ("Timestamp", datetime.now(UTC).isoformat(timespec="milliseconds")),
            ("TranscriptionEvent", event),
            ("ProviderName", PROVIDER),
            ("LanguageCode", spec.language_code),
            ("TranscriptionEngine", spec.transcription_engine or PROVIDER),
            ("PartialResults", "true" if spec.partial_results else "false"),
            ("SequenceId", str(transcription.sequence)),
            ("ApiVersion", API_VERSION),
            *((name, value) for name, value in fields.items()),
        ]
        if spec.name:
            params.append(("TranscriptionName", spec.name))
        label = _label(spec, fields.get("Track"))
        if label:
            params.append(("TrackLabel", label))
        if error is not None:
            params.append(("TranscriptionError", error))
        await context.outbox.enqueue(
            account_sid=runner.account_sid,
            url=url,
            method=spec.status_callback_method,
            params=params,
            call_sid=runner.call.sid,
        )


def _stopped(transcription: LiveTranscription) -> None:
    if transcription.status != "stopped":
        transcription.status = "stopped"
        transcription.date_updated = datetime.now(UTC)


def _label(spec: Transcription, track: str | None) -> str | None:
    if track == "inbound_track":
        return spec.inbound_track_label
    if track == "outbound_track":
        return spec.outbound_track_label
    return None
