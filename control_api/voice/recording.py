"""Recordings: a call's audio to a WAV file, its Recordings row and callbacks.

``<Record>`` records what the caller says (mono); ``<Dial record=...>``
records both parties (mixed, or one per channel with the ``-dual`` forms).
The file lives under the recordings directory as ``{AccountSid}/{Sid}.wav``;
when it is closed the row turns ``completed`` with its duration and the
``recordingStatusCallback`` (if any) gets Twilio's parameters.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
import wave
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from control_api.sids import rfc2822
from control_api.store import RecordingRecord
from control_api.voice.lifecycle import API_VERSION, now

if TYPE_CHECKING:
    from control_api.voice.context import VoiceContext
from media.leg import Frame
from media.recorder import Recorder

__all__ = ["CallRecording", "recording_url"]

log = logging.getLogger("callswitch.voice")


def recording_url(base_url: str, account_sid: str, sid: str) -> str:
    """Twilio's RecordingUrl: the resource URI without extension (append .wav or .mp3)."""
    return f"{base_url}/2010-04-01/Accounts/{account_sid}/Recordings/{sid}"


class CallRecording:
    """One recording in progress."""

    def __init__(
        self,
        context: VoiceContext,
        *,
        account_sid: str,
        call_sid: str,
        source: str,
        channels: int = 1,
        mix_to_mono: bool = False,
        trim_silence: bool = False,
        status_callback: str | None = None,
        status_callback_method: str = "POST",
        status_callback_events: tuple[str, ...] = ("completed",),
        conference_sid: str | None = None,
        track: str = "both",
        absent_when_empty: bool = False,
        clock=None,
    ) -> None:
        self.context = context
        self.sid = "RE" + secrets.token_hex(16)
        self.account_sid = account_sid
        self.call_sid = call_sid
        self.source = source
        self.mix_to_mono = mix_to_mono
        self.channels = 1 if mix_to_mono else channels
        self.status_callback = status_callback
        self.status_callback_method = status_callback_method or "POST"
        self.status_callback_events = status_callback_events
        self.conference_sid = conference_sid
        self.track = track
        # A recording that ends with no audio at all is ``absent`` (live recordings).
        self.absent_when_empty = absent_when_empty
        self.relative = Path(account_sid) / f"{self.sid}.wav"
        self.path = context.recordings_dir / self.relative
        self.path.parent.mkdir(parents=True, exist_ok=True)
        recorder_channels = 2 if mix_to_mono else channels
        self.recorder = Recorder(self.path, channels=recorder_channels, trim_silence=trim_silence)
        self.started = now()
        self.duration = 0.0
        self._saved = asyncio.ensure_future(
            context.store.insert_recording(
                RecordingRecord(
                    sid=self.sid,
                    account_sid=account_sid,
                    call_sid=call_sid,
                    conference_sid=conference_sid,
                    status="in-progress",
                    source=source,
                    channels=self.channels,
                    track=track,
                    start_time=self.started,
                    file_path=str(self.relative),
                    date_created=self.started,
                    date_updated=self.started,
                )
            )
        )
        self._finished: asyncio.Future | None = None
        # Two channels stay aligned by the media clock's ticks, not by frame arrival.
        self._clock = clock
        self._tick_token = clock.subscribe(self.recorder.tick) if clock is not None else None

    @property
    def url(self) -> str:
        return recording_url(self.context.base_url, self.account_sid, self.sid)

    # -- input

    def tap(self, side: int, frame: Frame) -> None:
        """Record ``frame`` on channel ``side``: 0 the caller, 1 the other party (a
        bridge's or an RTP session's tap, or ``<Record>`` feeding the caller alone)."""
        self.recorder.feed(frame.codec, frame.payload, side)

    # -- the end

    def finish(self) -> asyncio.Future:
        """Close the file, complete the row and send the callback (once)."""
        if self._finished is None:
            self._finished = asyncio.ensure_future(self._finish())
        return self._finished

    async def _finish(self) -> None:
        if self._tick_token is not None:
            self._clock.unsubscribe(self._tick_token)
            self._tick_token = None
        info = self.recorder.close()
        if self.mix_to_mono:
            await asyncio.to_thread(_downmix, self.path)
        self.duration = info.duration_seconds
        seconds = round(self.duration)
        status = "absent" if self.absent_when_empty and self.duration == 0 else "completed"
        await self._saved
        await self.context.store.update_recording(
            self.sid, status=status, duration=seconds, date_updated=now()
        )
        log.info(
            f"recording.{status}",
            extra={"call_sid": self.call_sid, "recording_sid": self.sid, "seconds": seconds},
        )
        await self.notify(status)

    async def notify(self, status: str) -> None:
        """Post ``recordingStatusCallback`` (through the outbox, signed) for ``status``
        when it is one of the events asked for."""
        if not self.status_callback or status not in self.status_callback_events:
            return
        await self._saved
        await self.context.outbox.enqueue(
            account_sid=self.account_sid,
            url=self.status_callback,
            method=self.status_callback_method,
            params=self.status_params(status),
            call_sid=self.call_sid,
        )

    def status_params(self, status: str) -> list[tuple[str, str]]:
        """Twilio's RecordingStatusCallback parameters for ``status``."""
        seconds = round(self.duration) if status != "in-progress" else 0
        params = [
            ("AccountSid", self.account_sid),
            ("CallSid", self.call_sid),
            ("RecordingSid", self.sid),
            ("RecordingUrl", self.url),
            ("RecordingStatus", status),
            ("RecordingDuration", str(seconds)),
            ("RecordingChannels", str(self.channels)),
            ("RecordingStartTime", rfc2822(self.started)),
            ("RecordingSource", self.source),
            ("RecordingTrack", self.track),
        ]
        if self.conference_sid:
            params.append(("ConferenceSid", self.conference_sid))
        if status == "absent":
            params.append(("ErrorCode", "0"))
        params.append(("ApiVersion", API_VERSION))
        return params

    def params(self) -> list[tuple[str, str]]:
        """What an action URL gets about this recording."""
        return [
            ("RecordingUrl", self.url),
            ("RecordingSid", self.sid),
            ("RecordingDuration", str(round(self.duration))),
        ]


def _downmix(path: Path) -> None:
    """Two channels → one (their sum, clipped): Twilio's mono Dial recordings."""
    with wave.open(str(path)) as source:
        rate = source.getframerate()
        data = np.frombuffer(source.readframes(source.getnframes()), dtype="<i2")
    both = data.reshape(-1, 2).astype(np.int32)
    mono = np.clip(both.sum(axis=1), -32768, 32767).astype("<i2")
    with wave.open(str(path), "wb") as target:
        target.setnchannels(1)
        target.setsampwidth(2)
        target.setframerate(rate)
        target.writeframes(mono.tobytes())
