"""``--speech-provider``: which recognizer ``<Gather input="speech">`` uses.

``embedded`` (the default) is PocketSphinx in worker processes
(:mod:`media.speech.embedded`): no network. ``openai:URL`` sends each utterance
the voice-activity endpointer cut (media/speech/recognizer.py) to an
OpenAI-compatible ``/v1/audio/transcriptions`` endpoint, which self-hosted
Whisper servers also speak: ``URL`` is the endpoint itself
(``https://host/v1/audio/transcriptions``) or its ``/v1`` base.

The request is what OpenAI documents: ``POST`` ``multipart/form-data`` with
``file`` (a 16-bit mono 8 kHz WAV, ``utterance.wav``, ``audio/wav``), ``model``
(``--speech-model``, default ``whisper-1``), ``language`` (ISO-639-1: ``en``
from ``en-US``), ``prompt`` (the Gather's hints, when given) and
``response_format`` ``verbose_json``; ``Authorization: Bearer`` the
``--speech-api-key`` when one is set (never logged, never in an error text).
The answer's ``text`` is the result; ``Confidence`` is e to the mean of the
segments' ``avg_logprob`` (0 when the server sends no segments). The URL is
fetched under ``--fetch-deny`` (control_api/fetch_policy.py). Any failure (no
answer within ``TIMEOUT_S``, a status other than 200, a body that is not the
expected JSON) is a :class:`~media.speech.SpeechError`.
"""

from __future__ import annotations

import json
import math
import secrets
from collections.abc import Callable

import numpy as np

from control_api.http_client import Guard, HttpError, request
from media.audio_file import wav_bytes
from media.speech import (
    EmbeddedSpeech,
    Hypothesis,
    RecognitionOptions,
    SpeechError,
    SpeechProvider,
)

__all__ = ["OpenAiTranscriptions", "parse_speech_provider", "speech_provider_from"]

TIMEOUT_S = 15.0
MAX_ANSWER = 256 * 1024
RATE = 8000


def parse_speech_provider(spec: str) -> tuple[str, str | None]:
    """``embedded`` or ``openai:URL`` → (kind, URL); raises ValueError otherwise."""
    text = spec.strip()
    if text.lower() == "embedded":
        return "embedded", None
    kind, _, url = text.partition(":")
    if kind.lower() == "openai" and url.startswith(("http://", "https://")):
        return "openai", _endpoint(url)
    raise ValueError(f"speech provider {spec!r}: embedded or openai:http(s)://URL")


def _endpoint(url: str) -> str:
    trimmed = url.rstrip("/")
    return (
        trimmed if trimmed.endswith("/audio/transcriptions") else trimmed + "/audio/transcriptions"
    )


def speech_provider_from(
    spec: str,
    *,
    api_key: str | None = None,
    model: str | None = None,
    guard: Guard | None = None,
    workers: int = 1,
) -> SpeechProvider:
    kind, url = parse_speech_provider(spec)
    if kind == "openai":
        assert url is not None
        return OpenAiTranscriptions(url, api_key=api_key, model=model or "whisper-1", guard=guard)
    return EmbeddedSpeech(workers=workers)


class OpenAiTranscriptions:
    """A :class:`~media.speech.SpeechProvider` over ``/v1/audio/transcriptions``."""

    name = "openai"
    sample_rate = RATE

    def __init__(
        self, url: str, *, api_key: str | None, model: str, guard: Guard | None = None
    ) -> None:
        self.url = url
        self._api_key = api_key
        self.model = model
        self.guard = guard

    def __repr__(self) -> str:  # the key stays out of logs and tracebacks
        return f"OpenAiTranscriptions({self.url!r}, model={self.model!r})"

    def open(self, options: RecognitionOptions) -> _Utterance:
        return _Utterance(self, options)

    async def transcribe(self, samples: np.ndarray, options: RecognitionOptions) -> Hypothesis:
        fields = [("model", options.model or self.model), ("response_format", "verbose_json")]
        language = options.language.split("-")[0].lower()
        if language:
            fields.append(("language", language))
        if options.hints:
            fields.append(("prompt", ", ".join(options.hints)))
        body, content_type = multipart(fields, "file", "utterance.wav", "audio/wav", wav(samples))
        headers = [("Content-Type", content_type), ("Accept", "application/json")]
        if self._api_key:
            headers.append(("Authorization", f"Bearer {self._api_key}"))
        try:
            answer = await request(
                "POST",
                self.url,
                headers=headers,
                body=body,
                timeout=TIMEOUT_S,
                max_body=MAX_ANSWER,
                guard=self.guard,
            )
        except HttpError as exc:
            raise SpeechError(f"transcription request to {self.url} failed: {exc}") from exc
        if answer.status != 200:
            raise SpeechError(f"transcription service {self.url} answered {answer.status}")
        return _hypothesis(answer.body, self.url)


def _hypothesis(body: bytes, url: str) -> Hypothesis:
    try:
        data = json.loads(body)
        text = data["text"]
        if not isinstance(text, str):
            raise TypeError("text is not a string")
    except (ValueError, KeyError, TypeError) as exc:
        raise SpeechError(f"transcription service {url} sent no text: {exc}") from exc
    logprobs = [
        s["avg_logprob"]
        for s in data.get("segments") or ()
        if isinstance(s, dict) and isinstance(s.get("avg_logprob"), int | float)
    ]
    confidence = math.exp(sum(logprobs) / len(logprobs)) if logprobs else 0.0
    return Hypothesis(" ".join(text.split()), round(min(max(confidence, 0.0), 1.0), 6))


class _Utterance:
    """The utterance's audio, kept until it ends, then sent in one request."""

    def __init__(self, provider: OpenAiTranscriptions, options: RecognitionOptions) -> None:
        self.on_partial: Callable[[Hypothesis], None] | None = None
        self._provider = provider
        self._options = options
        self._chunks: list[np.ndarray] = []
        self._room = int(options.max_speech_s * RATE) + RATE

    def push(self, samples: np.ndarray) -> None:
        if samples.size <= self._room:
            self._chunks.append(samples)
            self._room -= samples.size

    async def finish(self) -> Hypothesis:
        audio = np.concatenate(self._chunks) if self._chunks else np.zeros(0, np.int16)
        return await self._provider.transcribe(audio, self._options)

    def cancel(self) -> None:
        self._chunks.clear()


def wav(samples: np.ndarray) -> bytes:
    """16-bit mono 8 kHz WAV."""
    return wav_bytes(samples, RATE)


def multipart(
    fields: list[tuple[str, str]], file_field: str, filename: str, file_type: str, data: bytes
) -> tuple[bytes, str]:
    """A ``multipart/form-data`` body (RFC 7578) and its Content-Type."""
    boundary = "callswitch" + secrets.token_hex(12)
    parts: list[bytes] = []
    for name, value in fields:
        parts.append(
            f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n'.encode()
            + value.encode()
            + b"\r\n"
        )
    parts.append(
        (
            f"--{boundary}\r\nContent-Disposition: form-data; "
            f'name="{file_field}"; filename="{filename}"\r\nContent-Type: {file_type}\r\n\r\n'
        ).encode()
        + data
        + b"\r\n"
    )
    parts.append(f"--{boundary}--\r\n".encode())
    return b"".join(parts), f"multipart/form-data; boundary={boundary}"
