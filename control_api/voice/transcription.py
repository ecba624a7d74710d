"""``<Record transcribe>``: a recording's words, as a Transcription (TR…) and a callback.

Once the recording is done, a Transcriptions row is written (``in-progress``) and
the recording is read by the node's speech recognizer (``--speech-provider``:
``VoiceContext.transcriber``) off the call's path. The row then turns
``completed`` with ``transcription_text`` and ``duration``, priced from the
``transcriptions`` entry of the price list per started minute, or ``failed``
(no recognizer, an empty recording or one longer than 120 s — Twilio's limit — or
a recognizer error, which is also a notification of the call).
``transcribeCallback`` then gets Twilio's parameters, signed, through the outbox:
``TranscriptionSid``, ``TranscriptionText``, ``TranscriptionStatus``,
``TranscriptionUrl``, ``RecordingSid``, ``RecordingUrl`` and the call's own.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from control_api.call_log import WARNING
from control_api.sids import new_sid
from control_api.store import TranscriptionRecord
from control_api.voice.lifecycle import API_VERSION, now
from media.audio_file import decode_audio

if TYPE_CHECKING:
    from control_api.voice.context import VoiceContext
    from control_api.voice.recording import CallRecording

__all__ = ["MAX_SECONDS", "Transcriber", "transcribe", "transcription_uri"]

log = logging.getLogger("callswitch.voice")

# Samples (16-bit mono) and their rate in, the words out; raises on failure.
Transcriber = Callable[[np.ndarray, int], Awaitable[str]]
MAX_SECONDS = 120
RATE = 8000  # recordings are 8 kHz WAV; decode_audio downmixes two-channel ones


def transcription_uri(account_sid: str, sid: str) -> str:
    return f"/2010-04-01/Accounts/{account_sid}/Transcriptions/{sid}.json"


def _without_json(record: TranscriptionRecord) -> str:
    """Twilio's TranscriptionUrl: the resource's URI without ``.json``."""
    return transcription_uri(record.account_sid, record.sid).removesuffix(".json")


async def transcribe(
    context: VoiceContext,
    recording: CallRecording,
    *,
    callback: str | None,
    call_params: list[tuple[str, str]],
) -> TranscriptionRecord:
    """Transcribe a finished ``recording``: its row, its text, its price, its callback."""
    record = TranscriptionRecord(
        sid=new_sid("TR"),
        account_sid=recording.account_sid,
        recording_sid=recording.sid,
        call_sid=recording.call_sid,
        duration=round(recording.duration),
        date_created=now(),
        date_updated=now(),
    )
    store = context.store
    await store.transcriptions.insert(record)
    text, status = None, "failed"
    try:
        text = await _words(context.transcriber, recording.path, recording.duration)
        status = "completed"
    except Exception as exc:  # the recognizer's failure is the transcription's, not the call's
        _tell(context, recording, str(exc))
    fields: dict[str, object] = {
        "status": status,
        "transcription_text": text,
        "date_updated": now(),
    }
    if status == "completed" and context.billing is not None:
        fields["price"] = await context.billing.transcription_priced(
            sid=record.sid, account_sid=record.account_sid, duration_s=recording.duration
        )
    await store.transcriptions.update(record.sid, **fields)
    record.status, record.transcription_text = status, text
    log.info(
        f"transcription.{status}",
        extra={"call_sid": recording.call_sid, "transcription_sid": record.sid},
    )
    if callback:
        await context.outbox.enqueue(
            account_sid=record.account_sid,
            url=callback,
            method="POST",
            params=[
                *call_params,
                ("TranscriptionSid", record.sid),
                ("TranscriptionText", text or ""),
                ("TranscriptionStatus", status),
                ("TranscriptionUrl", context.base_url + _without_json(record)),
                ("RecordingSid", recording.sid),
                ("RecordingUrl", recording.url),
                ("ApiVersion", API_VERSION),
            ],
            call_sid=recording.call_sid,
        )
    return record


async def _words(transcriber: Transcriber | None, path: Path, seconds: float) -> str:
    if transcriber is None:
        raise RuntimeError("this node runs no speech recognizer")
    if not 0 < seconds <= MAX_SECONDS:
        raise ValueError(f"a recording of {seconds:.1f} s: up to {MAX_SECONDS} s are transcribed")
    data = await asyncio.to_thread(path.read_bytes)
    samples = await asyncio.to_thread(decode_audio, data, RATE, max_seconds=MAX_SECONDS)
    return (await transcriber(samples, RATE)).strip()


def _tell(context: VoiceContext, recording: CallRecording, error: str) -> None:
    """A failed transcription is a warning of its call (Notifications) and a log line."""
    log.warning(
        "transcription.failed",
        extra={"call_sid": recording.call_sid, "recording_sid": recording.sid, "error": error},
    )
    if context.call_log is not None:
        context.call_log.problem(
            account_sid=recording.account_sid,
            call_sid=recording.call_sid,
            code=None,
            text=f"Transcription of {recording.sid} failed: {error}",
            level=WARNING,
        )
