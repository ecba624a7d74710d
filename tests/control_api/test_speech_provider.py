"""The OpenAI-compatible transcriptions provider against a local HTTP server that
checks each request as OpenAI documents ``POST /v1/audio/transcriptions``:
``multipart/form-data`` with ``file`` (a named audio file with its type),
``model``, ``language`` (ISO-639-1), ``prompt``, ``response_format``, and the key
as ``Authorization: Bearer``."""

from __future__ import annotations

import email.parser
import email.policy
import io
import json
import wave
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from threading import Thread

import numpy as np
import pytest

from control_api.speech_provider import (
    OpenAiTranscriptions,
    parse_speech_provider,
    speech_provider_from,
)
from media.speech import EmbeddedSpeech, RecognitionOptions, SpeechError

KEY = "sk-test-0123456789"


@dataclass
class Transcriber:
    """What the fake service was sent, and what it answers."""

    status: int = 200
    answer: bytes = b""
    requests: list[dict] = field(default_factory=list)
    url: str = ""


def parse_form(content_type: str, body: bytes) -> dict[str, tuple[str | None, str | None, bytes]]:
    """name -> (filename, content type, value) of a multipart/form-data body."""
    message = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(
        f"Content-Type: {content_type}\r\n\r\n".encode() + body
    )
    assert message.is_multipart()
    form = {}
    for part in message.iter_parts():
        assert part.get_content_disposition() == "form-data"
        name = part.get_param("name", header="content-disposition")
        form[name] = (part.get_filename(), part.get("Content-Type"), part.get_payload(decode=True))
    return form


@pytest.fixture
def service() -> Iterator[Transcriber]:
    state = Transcriber()

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args) -> None:
            pass

        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers["Content-Length"]))
            state.requests.append(
                {"path": self.path, "headers": dict(self.headers.items()), "body": body}
            )
            self.send_response(state.status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(state.answer)))
            self.end_headers()
            self.wfile.write(state.answer)

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = Thread(target=server.serve_forever, daemon=True)
    thread.start()
    state.url = f"http://127.0.0.1:{server.server_address[1]}/v1"
    try:
        yield state
    finally:
        server.shutdown()
        server.server_close()


def provider_for(service: Transcriber, key: str | None = KEY) -> OpenAiTranscriptions:
    kind, url = parse_speech_provider(f"openai:{service.url}")
    assert kind == "openai" and url is not None
    return OpenAiTranscriptions(url, api_key=key, model="whisper-1")


async def recognize(provider, options: RecognitionOptions, seconds: float = 1.5):
    session = provider.open(options)
    tone = (np.sin(np.arange(int(8000 * seconds)) * 0.3) * 6000).astype(np.int16)
    for start in range(0, tone.size, 160):
        session.push(tone[start : start + 160])
    return await session.finish(), tone


async def test_the_request_is_the_documented_multipart_upload(service):
    service.answer = json.dumps(
        {
            "text": " Check my  balance. ",
            "segments": [{"avg_logprob": -0.1}, {"avg_logprob": -0.3}],
        }
    ).encode()
    options = RecognitionOptions(language="en-GB", hints=("balance", "agent"))
    hypothesis, sent = await recognize(provider_for(service), options)
    assert hypothesis.text == "Check my balance."
    assert hypothesis.confidence == pytest.approx(np.exp(-0.2), abs=1e-6)
    [request] = service.requests
    assert request["path"] == "/v1/audio/transcriptions"
    headers = request["headers"]
    assert headers["Authorization"] == f"Bearer {KEY}"
    content_type = headers["Content-Type"]
    assert content_type.startswith("multipart/form-data; boundary=")
    form = parse_form(content_type, request["body"])
    assert set(form) == {"file", "model", "language", "prompt", "response_format"}
    assert form["model"][2] == b"whisper-1"
    assert form["language"][2] == b"en"
    assert form["prompt"][2] == b"balance, agent"
    assert form["response_format"][2] == b"verbose_json"
    filename, file_type, data = form["file"]
    assert filename == "utterance.wav" and file_type == "audio/wav"
    with wave.open(io.BytesIO(data)) as wav:
        assert (wav.getnchannels(), wav.getsampwidth(), wav.getframerate()) == (1, 2, 8000)
        samples = np.frombuffer(wav.readframes(wav.getnframes()), "<i2")
    assert np.array_equal(samples, sent)


async def test_speech_model_and_no_key_no_hints(service):
    service.answer = b'{"text": "yes"}'
    options = RecognitionOptions(model="large-v3")
    hypothesis, _ = await recognize(provider_for(service, key=None), options)
    assert hypothesis.text == "yes" and hypothesis.confidence == 0.0  # no segments: unknown
    [request] = service.requests
    assert "Authorization" not in request["headers"]
    form = parse_form(request["headers"]["Content-Type"], request["body"])
    assert form["model"][2] == b"large-v3" and "prompt" not in form


@pytest.mark.parametrize(
    ("status", "answer", "fault"),
    [
        (500, b'{"error": "boom"}', "answered 500"),
        (401, b'{"error": {"message": "bad key"}}', "answered 401"),
        (200, b"<html>not json</html>", "sent no text"),
        (200, b'{"text": 7}', "sent no text"),
    ],
)
async def test_a_failing_service_is_a_speech_error_without_the_key(service, status, answer, fault):
    service.status, service.answer = status, answer
    provider = provider_for(service)
    with pytest.raises(SpeechError, match=fault) as caught:
        await recognize(provider, RecognitionOptions())
    assert KEY not in str(caught.value) and KEY not in repr(provider)


async def test_an_unreachable_or_denied_service_is_a_speech_error():
    async def deny(host: str, port: int) -> str:
        raise PermissionError(f"fetch denied: {host}")

    denied = OpenAiTranscriptions(
        "http://metadata.example/v1/audio/transcriptions", api_key=KEY, model="m", guard=deny
    )
    with pytest.raises(SpeechError, match="fetch denied"):
        await recognize(denied, RecognitionOptions(), seconds=0.1)


def test_provider_specs():
    assert parse_speech_provider("embedded") == ("embedded", None)
    assert parse_speech_provider("openai:https://h/v1/") == (
        "openai",
        "https://h/v1/audio/transcriptions",
    )
    assert parse_speech_provider("openai:http://h:8000/v1/audio/transcriptions")[1] == (
        "http://h:8000/v1/audio/transcriptions"
    )
    for bad in ("", "whisper", "openai:", "openai:ftp://h/v1"):
        with pytest.raises(ValueError, match="embedded or openai"):
            parse_speech_provider(bad)
    assert isinstance(speech_provider_from("embedded"), EmbeddedSpeech)
    remote = speech_provider_from("openai:http://h/v1", api_key=KEY)
    assert isinstance(remote, OpenAiTranscriptions) and remote.model == "whisper-1"
