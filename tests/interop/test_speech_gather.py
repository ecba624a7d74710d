"""``<Gather input="speech">`` heard through a real call.

SIPp calls a number whose TwiML gathers speech; after the prompt it plays a
pcap of words synthesized with eSpeak NG, as PCMU at 8 kHz with the silence a
phone sends around them. The embedded recognizer (PocketSphinx) must post the
words to the action as ``SpeechResult`` with a ``Confidence`` in [0, 1]; a
``dtmf speech`` Gather must still take keys (RFC 4733 in the pcap).
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
from twilio.rest import Client

from media.audio_file import decode_audio

from .audio import ulaw_decode, ulaw_encode
from .conftest import require, sipp_failure
from .pcap import write_pcap
from .rtp import RtpPacket
from .test_voice_webhooks import LocalHttpClient, credentials
from .webhook_app import WebhookApp, twiml

PCMU, EVENT = 0, 101
FRAME = 160  # 20 ms at 8 kHz


def espeak(text: str, voice: str = "en-us", speed: int = 150) -> np.ndarray:
    """eSpeak NG's speech as 8 kHz int16."""
    require(shutil.which("espeak-ng") is not None, "espeak-ng is not installed")
    wav = subprocess.run(
        ["espeak-ng", "--stdout", "-v", voice, "-s", str(speed)],
        input=text.encode(),
        capture_output=True,
        check=True,
    ).stdout
    return np.asarray(decode_audio(wav), dtype=np.int16)


def speech_pcap(path: Path, samples: np.ndarray, lead_s: float = 0.5, tail_s: float = 2.5) -> None:
    """The caller's audio: silence, the words, silence (a pause that ends the utterance)."""
    audio = np.concatenate(
        [np.zeros(int(8000 * lead_s), np.int16), samples, np.zeros(int(8000 * tail_s), np.int16)]
    )
    payload = ulaw_encode(audio[: len(audio) - len(audio) % FRAME])
    packets = []
    for i in range(0, len(payload), FRAME):
        n = i // FRAME
        rtp = RtpPacket(PCMU, 100 + n, n * FRAME, 0x5EEC4, payload[i : i + FRAME], marker=n == 0)
        packets.append((n * 0.020, rtp.serialize()))
    write_pcap(path, packets)


def keys_pcap(path: Path, keys: str) -> None:
    """RFC 4733 events for ``keys``: 100 ms each, 200 ms apart, three end packets."""
    codes = {**{str(d): d for d in range(10)}, "*": 10, "#": 11}
    packets, seq, t = [], 100, 0.0
    for k, key in enumerate(keys):
        stamp = 8000 + k * 1600
        for step in range(5):  # 20 ms updates
            end = step == 4
            duration = (step + 1) * FRAME
            body = bytes([codes[key], (0x80 if end else 0) | 10]) + duration.to_bytes(2, "big")
            for _ in range(3 if end else 1):
                rtp = RtpPacket(EVENT, seq, stamp, 0x5EEC4, body, marker=step == 0)
                packets.append((t, rtp.serialize()))
                seq += 1
            t += 0.020
        t += 0.100
    write_pcap(path, packets)


@pytest.fixture
def app():
    with WebhookApp() as application:
        yield application


@pytest.fixture
def client(server) -> Client:
    sid, token = credentials(server)
    return Client(sid, token, http_client=LocalHttpClient(f"http://127.0.0.1:{server.http_port}"))


def call_gather(sipp, server, rtp_sink, app, client, tmp_path, number, gather_xml, pcap_writer):
    app.routes["/voice"] = lambda r: twiml(gather_xml + "<Say>Nothing heard.</Say>")
    app.routes["/heard"] = lambda r: twiml("<Hangup/>")
    client.incoming_phone_numbers.create(phone_number=number, voice_url=app.url("/voice"))
    workdir = tmp_path / "caller"
    workdir.mkdir()
    pcap_writer(workdir / "caller.pcap")
    result = sipp(
        "uac_speech_pcap.xml",
        service=number.lstrip("+"),
        keys={"sink_port": rtp_sink.port},
        pause_ms=1500,  # the prompt "Speak now." plays meanwhile
        calls=1,
        timeout=60,
        cwd=workdir,
    )
    assert result.ok(1), sipp_failure(result, server, "the caller was not hung up on")
    [heard] = app.wait_for("/heard", timeout=10)
    return heard


@pytest.mark.usefixtures("raw_sockets")
@pytest.mark.parametrize(
    ("phrase", "hints"),
    [
        ("one two three four five", "$OOV_CLASS_DIGIT_SEQUENCE"),
        ("yes", "yes, no"),
    ],
)
def test_speech_gather_posts_the_spoken_words(
    sipp, server, rtp_sink, app, client, tmp_path, phrase, hints
):
    number = "+15005550100" if hints.startswith("$") else "+15005550101"
    gather = (
        f'<Gather input="speech" action="/heard" timeout="5" speechTimeout="auto" '
        f'hints="{hints}"><Say>Speak now.</Say></Gather>'
    )
    samples = espeak(phrase)
    heard = call_gather(
        sipp,
        server,
        rtp_sink,
        app,
        client,
        tmp_path,
        number,
        gather,
        lambda path: speech_pcap(path, samples),
    )
    said = heard.field("SpeechResult")
    assert said is not None, heard.form
    spoken = phrase.split()
    got = said.lower().split()
    matched = sum(1 for word in spoken if word in got)
    assert matched * 2 >= len(spoken), f"{phrase!r} heard as {said!r}"
    confidence = float(heard.field("Confidence") or "nan")
    assert 0.0 <= confidence <= 1.0, heard.form
    assert heard.field("Digits") is None


@pytest.mark.usefixtures("raw_sockets")
def test_speech_gather_without_hints_uses_the_language_model(
    sipp, server, rtp_sink, app, client, tmp_path
):
    phrase = "hello"
    gather = '<Gather input="speech" action="/heard" timeout="5"><Say>Speak now.</Say></Gather>'
    samples = espeak(phrase)
    heard = call_gather(
        sipp,
        server,
        rtp_sink,
        app,
        client,
        tmp_path,
        "+15005550102",
        gather,
        lambda path: speech_pcap(path, samples),
    )
    assert phrase in (heard.field("SpeechResult") or "").lower().split(), heard.form
    assert 0.0 <= float(heard.field("Confidence") or "nan") <= 1.0


@pytest.mark.usefixtures("raw_sockets")
def test_dtmf_speech_gather_still_takes_keys(sipp, server, rtp_sink, app, client, tmp_path):
    gather = (
        '<Gather input="dtmf speech" action="/heard" timeout="3" finishOnKey="#">'
        "<Say>Speak or press.</Say></Gather>"
    )
    heard = call_gather(
        sipp,
        server,
        rtp_sink,
        app,
        client,
        tmp_path,
        "+15005550103",
        gather,
        lambda path: keys_pcap(path, "42#"),
    )
    assert heard.field("Digits") == "42", heard.form
    assert heard.field("FinishedOnKey") == "#"
    assert heard.field("SpeechResult") is None


@pytest.mark.usefixtures("raw_sockets")
def test_speech_barges_in_over_the_prompt(sipp, server, rtp_sink, app, client, tmp_path):
    """The caller talks over a long <Say>: the prompt stops, the words are heard."""
    prompt = (
        "Thank you for calling. Please listen carefully, as our menu options have "
        "changed recently. You may say the name of the department you want at any time."
    )
    gather = (
        '<Gather input="speech" action="/heard" timeout="5" hints="sales, support, billing">'
        f"<Say>{prompt}</Say></Gather>"
    )
    samples = espeak("support")
    heard = call_gather(
        sipp,
        server,
        rtp_sink,
        app,
        client,
        tmp_path,
        "+15005550104",
        gather,
        lambda path: speech_pcap(path, samples),
    )
    assert heard.field("SpeechResult") == "support", heard.form
    # What the caller heard: the prompt, cut short once the caller spoke. SIPp
    # starts speaking 1.5 s + 0.5 s after the answer; the prompt alone is > 7 s.
    packets = [p for p in rtp_sink.packets() if p.payload_type == PCMU]
    audio = ulaw_decode(b"".join(p.payload for p in packets))
    loud = [i for i in range(0, audio.size - 160, 160) if np.abs(audio[i : i + 160]).max() > 2000]
    assert loud, "no prompt heard"
    prompt_s = (loud[-1] - loud[0]) / 8000
    assert 1.0 < prompt_s < 4.0, f"the prompt played {prompt_s:.1f} s"
