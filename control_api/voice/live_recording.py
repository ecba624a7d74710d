"""Recording a call or a conference while it goes on, started, paused, resumed and
stopped on request: Twilio's ``POST Calls/{CallSid}/Recordings.json`` and
``POST Calls/{CallSid}/Recordings/{Sid}.json`` (``Status`` in-progress, paused,
stopped; ``PauseBehavior`` skip or silence), ``Conferences/{ConferenceSid}/Recordings``
and ``<Conference record="record-from-start">``.

A :class:`LiveRecording` is a :class:`~control_api.voice.recording.CallRecording`
(the WAV file, the Recordings row, the signed status callbacks) with a gate in front:
it listens to the call's leg through a media tap (media/taps.py) or to a conference
room's whole mix, and writes what it hears only while ``in-progress``. While paused
with ``silence`` the media clock's ticks still write (silent) time; with ``skip``
they do not, so the paused stretch is left out. It finishes when stopped or when
the call or conference ends: file closed, row ``completed``, callback posted.

:class:`CallRecordings` keeps the live recordings of this node's calls, by call.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from typing import TYPE_CHECKING, Protocol

import numpy as np

from control_api.calls.waiting import until_any
from control_api.voice.lifecycle import now
from control_api.voice.port import NewRecording
from control_api.voice.recording import CallRecording
from media.leg import Frame, Leg
from media.taps import add_tap, remove_tap

if TYPE_CHECKING:
    from control_api.calls.call import Call
    from control_api.voice.context import VoiceContext
    from media.conference import ConferenceRoom

__all__ = [
    "CURRENT",
    "MAX_RUNNING",
    "PAUSE_BEHAVIORS",
    "STATUSES",
    "TRACKS",
    "CallRecordings",
    "LiveRecording",
    "record_conference",
    "update_live",
]

log = logging.getLogger("callswitch.voice")

CURRENT = "Twilio.CURRENT"  # the Sid that names a call's recording in progress
STATUSES = ("in-progress", "paused", "stopped")  # what an update may ask for
PAUSE_BEHAVIORS = ("skip", "silence")
TRACKS = ("inbound", "outbound", "both")
MAX_RUNNING = 8  # recordings not stopped on one call at a time (each a file and a tap)
_SIDES = {"inbound": (0,), "outbound": (1,), "both": (0, 1)}


class _Clock(Protocol):
    """What a live recording needs of the media clock."""

    def subscribe(self, tick: Callable[[], None]) -> int: ...

    def unsubscribe(self, token: int) -> None: ...


class LiveRecording:
    """One recording that can be paused, resumed and stopped while it runs."""

    def __init__(self, recording: CallRecording, *, track: str = "both") -> None:
        self.recording = recording
        self.sid = recording.sid
        self.status = "in-progress"
        self.pause_behavior = "silence"
        self._sides = _SIDES.get(track, (0, 1))
        self._clock: _Clock | None = None
        self._token: int | None = None
        self._detach: Callable[[], None] | None = None
        self.done: asyncio.Future | None = None  # the finish, once stopped
        self.stopped = asyncio.Event()

    # -- wiring

    def listen_to_leg(self, leg: Leg, clock: _Clock) -> None:
        """Record ``leg`` (side 0 what its peer says, 1 what it hears), ticking with ``clock``."""
        add_tap(leg, self.tap)
        self._detach = lambda: remove_tap(leg, self.tap)
        self._tick_with(clock)

    def listen_to_room(self, room: ConferenceRoom) -> None:
        """Record a conference room's whole mix; the room's ticks pace it."""
        room.listeners.append(self.hear_mix)

        def detach() -> None:
            with contextlib.suppress(ValueError):
                room.listeners.remove(self.hear_mix)

        self._detach = detach

    def _tick_with(self, clock: _Clock) -> None:
        self._clock = clock
        self._token = clock.subscribe(self.tick)

    # -- input

    def tap(self, side: int, frame: Frame) -> None:
        if self.status == "in-progress" and side in self._sides:
            self.recording.tap(side, frame)

    def tick(self) -> None:
        """One 20 ms tick of the media clock: time passes in the file unless paused with
        ``skip`` (a tick without audio writes silence)."""
        if self.status == "in-progress" or (
            self.status == "paused" and self.pause_behavior == "silence"
        ):
            self.recording.recorder.tick()

    def hear_mix(self, samples: np.ndarray) -> None:
        """A conference tick's whole mix (mono recorder: one write is one tick)."""
        recorder = self.recording.recorder
        if recorder.closed:
            return
        if self.status == "in-progress":
            recorder.write(samples)
        elif self.status == "paused" and self.pause_behavior == "silence":
            recorder.write(np.zeros_like(samples))

    # -- control

    async def set_status(self, status: str, pause_behavior: str = "silence") -> None:
        """``Status=paused`` (with ``pause_behavior``), ``in-progress`` or ``stopped``;
        returns once the row shows it (for ``stopped``: once the file is written)."""
        if self.status == "stopped" or status == self.status:
            if status == "stopped":
                await self.stop()
            return
        if status == "stopped":
            await self.stop()
            return
        if status == "paused":
            self.pause_behavior = pause_behavior
        self.status = status
        await self.recording._saved
        await self.recording.context.store.update_recording(
            self.sid, status=status, date_updated=now()
        )

    async def stop(self) -> None:
        """Stop listening, write the file and complete the row (once)."""
        if self.done is None:
            self.status = "stopped"
            if self._token is not None and self._clock is not None:
                self._clock.unsubscribe(self._token)
                self._token = None
            if self._detach is not None:
                self._detach()
                self._detach = None
            self.done = asyncio.ensure_future(self.recording.finish())
            self.stopped.set()
        await asyncio.shield(self.done)

    async def started(self) -> None:
        """The row is stored; the ``in-progress`` callback (if asked for) is queued."""
        await self.recording._saved
        await self.recording.notify("in-progress")


class CallRecordings:
    """The live recordings of this node's calls (``POST Calls/{CallSid}/Recordings``)."""

    def __init__(self) -> None:
        self._by_call: dict[str, list[LiveRecording]] = {}

    def of_call(self, call_sid: str) -> list[LiveRecording]:
        return list(self._by_call.get(call_sid, ()))

    def find(self, call_sid: str, sid: str) -> LiveRecording | None:
        """The call's recording ``sid``; ``Twilio.CURRENT``: the newest not stopped."""
        return _find(self._by_call.get(call_sid, []), sid)

    async def start(
        self,
        context: VoiceContext,
        account_sid: str,
        call: Call,
        request: NewRecording,
    ) -> LiveRecording:
        """Record ``call`` (answered, with its leg) from now until stopped or it ends.
        ValueError when ``MAX_RUNNING`` run on it already."""
        running = [each for each in self._by_call.get(call.sid, ()) if each.status != "stopped"]
        if len(running) >= MAX_RUNNING:
            raise ValueError(f"A call may have at most {MAX_RUNNING} recordings in progress")
        leg = call.leg
        assert leg is not None  # the caller checked the call is answered
        recording = CallRecording(
            context,
            account_sid=account_sid,
            call_sid=call.sid,
            source="StartCallRecordingAPI",
            channels=2,
            mix_to_mono=request.channels != "dual",
            trim_silence=request.trim == "trim-silence",
            status_callback=request.status_callback,
            status_callback_method=request.status_callback_method,
            status_callback_events=request.status_callback_events,
            track=request.track,
            absent_when_empty=True,
        )
        live = LiveRecording(recording, track=request.track)
        live.listen_to_leg(leg, call.media.clock)
        self._by_call.setdefault(call.sid, []).append(live)
        context.tasks.spawn(self._stop_at_end(call, live))
        await live.started()
        log.info("recording.started", extra={"call_sid": call.sid, "recording_sid": live.sid})
        return live

    async def _stop_at_end(self, call: Call, live: LiveRecording) -> None:
        """Finish the recording when the call ends (unless it was stopped before)."""
        try:
            await until_any(call.ended, live.stopped)
            await live.stop()
        finally:
            if call.ended.is_set():
                self._by_call.pop(call.sid, None)


def _find(recordings: list[LiveRecording], sid: str) -> LiveRecording | None:
    """``sid`` among ``recordings``; ``Twilio.CURRENT``: the newest not stopped."""
    if sid == CURRENT:
        running = [each for each in recordings if each.status != "stopped"]
        return running[-1] if running else None
    return next((each for each in recordings if each.sid == sid), None)


async def update_live(
    recordings: list[LiveRecording], sid: str, status: str, pause_behavior: str
) -> str:
    """Set the status of the running recording ``sid`` (or ``Twilio.CURRENT``) among
    ``recordings``; its sid. LookupError when none such is running."""
    recording = _find(recordings, sid)
    if recording is None or recording.status == "stopped":
        raise LookupError(sid)
    await recording.set_status(status, pause_behavior)
    return recording.sid


def record_conference(
    context: VoiceContext,
    room: ConferenceRoom,
    *,
    account_sid: str,
    conference_sid: str,
    call_sid: str,
    trim: str = "trim-silence",
    status_callback: str | None = None,
    status_callback_method: str = "POST",
    status_callback_events: tuple[str, ...] = ("completed",),
) -> LiveRecording:
    """``<Conference record="record-from-start">``: the room's whole mix, mono, from now
    until the conference ends (or the REST API stops it)."""
    recording = CallRecording(
        context,
        account_sid=account_sid,
        call_sid=call_sid,
        source="Conference",
        channels=1,
        trim_silence=trim == "trim-silence",
        status_callback=status_callback,
        status_callback_method=status_callback_method,
        status_callback_events=status_callback_events,
        conference_sid=conference_sid,
    )
    live = LiveRecording(recording)
    live.listen_to_room(room)
    context.tasks.spawn(live.started())
    return live
