"""This node's calls in progress: the one table of them, and the ``LiveCalls`` port
(voice/port.py) over it that the REST API and the cluster use."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Protocol, runtime_checkable

from control_api.calls.leg import CallLeg
from control_api.twiml.verbs import Stream, Transcription
from control_api.voice import outbound, participants
from control_api.voice.live_recording import CallRecordings, update_live
from control_api.voice.live_transcription import LiveTranscription
from control_api.voice.port import NewTwiml, StreamInfo, TranscriptionInfo
from control_api.voice.runner import Document

if TYPE_CHECKING:
    from control_api.voice.runner import TwimlRunner
    from control_api.voice.runtime import VoiceRuntime

__all__ = ["LiveCall", "LiveCallTable", "LocalLiveCalls"]


@runtime_checkable
class OfferedLeg(Protocol):
    """A call offered to us (inbound, or placed by a browser tab): refused with a status."""

    def reject(self, status: int) -> None: ...


@runtime_checkable
class RingingLeg(Protocol):
    """A call we place (over SIP, or to a browser tab): canceled while it rings."""

    def cancel(self) -> None: ...


# How long a REST hangup or cancel waits for the call's final record before answering.
SETTLE_TIMEOUT_S = 5.0


@dataclass(slots=True)
class LiveCall:
    call: CallLeg
    runner: TwimlRunner | None
    account_sid: str
    # Every leg rung under the call's SID while it rings (a REST call to several
    # destinations, or to a client's several tabs): a cancel reaches them all.
    ringing: Sequence[CallLeg] = ()


class LiveCallTable:
    """The calls in progress on this node, by SID; each call source tracks its calls
    here until they end, and says when their final record is written (``settled``)."""

    def __init__(self) -> None:
        self._calls: dict[str, LiveCall] = {}
        # Calls the REST API ended, until their final record is written.
        self._ending: dict[str, asyncio.Event] = {}

    def __len__(self) -> int:
        return len(self._calls)

    def track(
        self,
        call: CallLeg,
        runner: TwimlRunner | None,
        account_sid: str,
        *,
        ringing: Sequence[CallLeg] = (),
    ) -> None:
        self._calls[call.sid] = LiveCall(call, runner, account_sid, ringing)

    def untrack(self, sid: str) -> None:
        self._calls.pop(sid, None)

    def find(self, account_sid: str, sid: str) -> LiveCall | None:
        live = self._calls.get(sid)
        return live if live is not None and live.account_sid == account_sid else None

    def of_account(self, account_sid: str) -> list[LiveCall]:
        return [live for live in self._calls.values() if live.account_sid == account_sid]

    def settled(self, sid: str) -> None:
        """The call's final status is in the store: a REST update ending it may answer."""
        ending = self._ending.get(sid)
        if ending is not None:
            ending.set()

    async def end(self, sid: str, end: Callable[[], object]) -> None:
        """End a live call and wait (briefly) for its final record, so that the REST
        answer, like Twilio's, already shows the call completed or canceled."""
        ending = self._ending.setdefault(sid, asyncio.Event())
        try:
            end()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(ending.wait(), SETTLE_TIMEOUT_S)
        finally:
            self._ending.pop(sid, None)


class LocalLiveCalls:
    """``LiveCalls`` for this node's own calls (the cluster wraps it for its peers')."""

    def __init__(self, runtime: VoiceRuntime) -> None:
        self.runtime = runtime
        self.table = runtime.live_calls
        self.recordings = CallRecordings()  # POST Calls/{CallSid}/Recordings

    def live_of(self, account_sid: str) -> list[LiveCall]:
        """The account's calls in progress (the console's live view)."""
        return self.table.of_account(account_sid)

    async def create(self, account_sid: str, new_call):
        return await outbound.place_call(self.runtime, account_sid, new_call)

    async def add_participant(self, account_sid: str, conference: str, participant):
        """Dial a participant into a conference (voice/participants.py)."""
        conferences = self.runtime.context.conferences
        if conferences is None:
            return None
        return await participants.add_participant(
            conferences, self.table, self.create, account_sid, conference, participant
        )

    async def hangup(self, account_sid: str, sid: str) -> bool:
        live = self.table.find(account_sid, sid)
        if live is None:
            return False
        await self.table.end(sid, live.call.hangup)
        return True

    async def cancel(self, account_sid: str, sid: str) -> bool:
        live = self.table.find(account_sid, sid)
        if live is None or live.call.answered:
            return False
        call = live.call
        if isinstance(call, RingingLeg):
            legs = [leg for leg in live.ringing or [call] if isinstance(leg, RingingLeg)]

            def cancel_all() -> None:
                for leg in legs:
                    leg.cancel()

            await self.table.end(sid, cancel_all)
        else:
            assert isinstance(call, OfferedLeg)  # not placed by us: offered to us
            await self.table.end(sid, lambda: call.reject(487))
        return True

    async def redirect(self, account_sid: str, sid: str, to: NewTwiml) -> bool:
        live = self.table.find(account_sid, sid)
        if live is None or live.runner is None or live.call.ended.is_set():
            return False
        live.runner.redirect(Document(to.url, to.method or "POST", twiml=to.twiml))
        return True

    def _answered(self, account_sid: str, sid: str):
        """The runner of the account's call ``sid`` if it is answered and not ended (a
        ringing call has nothing to fork or hear yet)."""
        live = self.table.find(account_sid, sid)
        if live is None or live.runner is None or live.call.ended.is_set():
            return None
        return live.runner if live.call.answered else None

    async def start_stream(self, account_sid: str, sid: str, new_stream):
        """The Streams resource: fork a live, answered call's audio (voice/stream.py);
        None (21220) while it rings or once it ended."""
        runner = self._answered(account_sid, sid)
        if runner is None:
            return None
        # A NewStream is the REST form of a <Stream>: its attributes, by the same names.
        fork = runner.forks.start(Stream(**asdict(new_stream)))
        return _stream_info(fork)

    async def stop_stream(self, account_sid: str, sid: str, sid_or_name: str):
        live = self.table.find(account_sid, sid)
        if live is None or live.runner is None:
            return None
        fork = live.runner.forks.find(sid_or_name)
        if fork is None:
            raise LookupError(sid_or_name)
        return _stream_info(await live.runner.forks.stop(fork))

    async def start_transcription(self, account_sid: str, sid: str, new_transcription):
        """The call's Transcriptions resource: what ``<Start><Transcription>`` starts,
        on a live, answered call (voice/live_transcription.py); None (21220) while it
        rings or once it ended."""
        runner = self._answered(account_sid, sid)
        if runner is None:
            return None
        # A NewTranscription is the REST form of a <Transcription>: the same names.
        started = runner.transcriptions.start(Transcription(**asdict(new_transcription)))
        return _transcription_info(started)

    async def stop_transcription(self, account_sid: str, sid: str, sid_or_name: str):
        live = self.table.find(account_sid, sid)
        if live is None or live.runner is None:
            return None
        running = live.runner.transcriptions.find(sid_or_name)
        if running is None:
            raise LookupError(sid_or_name)
        return _transcription_info(await live.runner.transcriptions.stop(running))

    async def start_recording(self, account_sid: str, sid: str, new_recording):
        """Record a live, answered call from now (voice/live_recording.py); None (21220)
        while it rings or once it ended."""
        live = self.table.find(account_sid, sid)
        if live is None or live.runner is None or live.call.ended.is_set():
            return None
        call = live.runner.call
        if not call.answered or call.leg is None:
            return None
        recording = await self.recordings.start(
            self.runtime.context, account_sid, call, new_recording
        )
        return recording.sid

    async def update_recording(
        self, account_sid: str, call_sid: str, sid: str, status: str, pause_behavior: str
    ) -> str | None:
        """Pause, resume or stop a live call's recording; None (21220) once it ended."""
        live = self.table.find(account_sid, call_sid)
        if live is None:
            return None
        return await update_live(self.recordings.of_call(call_sid), sid, status, pause_behavior)


def _stream_info(fork) -> StreamInfo:
    return StreamInfo(fork.sid, fork.name, fork.status, fork.date_updated)


def _transcription_info(transcription: LiveTranscription) -> TranscriptionInfo:
    return TranscriptionInfo(
        transcription.sid, transcription.name, transcription.status, transcription.date_updated
    )
