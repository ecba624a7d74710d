"""<Record transcribe>: a recording's transcription row, text and callback
(control_api/voice/transcription.py), with a fake recognizer and store."""

from __future__ import annotations

import wave
from pathlib import Path
from types import SimpleNamespace

import numpy as np

from control_api.voice.transcription import transcribe


class FakeTranscriptions:
    def __init__(self) -> None:
        self.rows: dict[str, dict] = {}

    async def insert(self, record):
        self.rows[record.sid] = {"status": record.status, "recording": record.recording_sid}
        return record

    async def update(self, sid, **fields):
        self.rows[sid].update(fields)


class FakeOutbox:
    def __init__(self) -> None:
        self.sent: list[dict] = []

    async def enqueue(self, **item):
        self.sent.append(item)


class FakeBilling:
    async def transcription_priced(self, *, sid, account_sid, duration_s):
        return f"-{0.05 * -(-duration_s // 60):.5f}"


def wav(path: Path, seconds: float, rate: int = 8000) -> Path:
    with wave.open(str(path), "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(rate)
        out.writeframes(np.zeros(int(seconds * rate), dtype="<i2").tobytes())
    return path


def setting(tmp_path: Path, seconds: float, transcriber):
    context = SimpleNamespace(
        store=SimpleNamespace(transcriptions=FakeTranscriptions()),
        outbox=FakeOutbox(),
        billing=FakeBilling(),
        call_log=None,
        transcriber=transcriber,
        base_url="http://node.example",
    )
    recording = SimpleNamespace(
        account_sid="AC" + "1" * 32,
        sid="RE" + "2" * 32,
        call_sid="CA" + "3" * 32,
        duration=seconds,
        path=wav(tmp_path / "r.wav", seconds),
        url="http://node.example/2010-04-01/Accounts/AC/Recordings/RE",
    )
    return context, recording


async def test_the_words_reach_the_row_the_price_and_the_callback(tmp_path):
    heard = []

    async def recognizer(samples, rate):
        heard.append((samples.size, rate))
        return " please call me back "

    context, recording = setting(tmp_path, 65.0, recognizer)
    record = await transcribe(
        context, recording, callback="http://app.example/t", call_params=[("CallSid", "CA3")]
    )
    assert heard == [(65 * 8000, 8000)]
    row = context.store.transcriptions.rows[record.sid]
    assert (row["status"], row["transcription_text"], row["price"]) == (
        "completed",
        "please call me back",
        "-0.10000",  # two started minutes
    )
    [sent] = context.outbox.sent
    params = dict(sent["params"])
    assert sent["url"] == "http://app.example/t" and params["CallSid"] == "CA3"
    assert params["TranscriptionText"] == "please call me back"
    assert params["TranscriptionStatus"] == "completed"
    assert params["TranscriptionSid"] == record.sid and record.sid.startswith("TR")
    assert params["TranscriptionUrl"] == (
        f"http://node.example/2010-04-01/Accounts/{recording.account_sid}/Transcriptions/"
        f"{record.sid}"
    )
    assert params["RecordingSid"] == recording.sid and params["RecordingUrl"] == recording.url


async def test_empty_too_long_no_recognizer_or_a_failing_one_is_failed(tmp_path):
    async def broken(samples, rate):
        raise RuntimeError("provider unreachable")

    async def fine(samples, rate):
        return "words"

    for seconds, transcriber in ((0.0, fine), (5.0, None), (5.0, broken), (130.0, fine)):
        context, recording = setting(tmp_path, seconds, transcriber)
        record = await transcribe(context, recording, callback=None, call_params=[])
        row = context.store.transcriptions.rows[record.sid]
        assert row["status"] == "failed" and row["transcription_text"] is None
        assert "price" not in row and context.outbox.sent == []
