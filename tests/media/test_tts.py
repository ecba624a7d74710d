"""<Say> through eSpeak NG: speech that sounds like speech, caching, failures, voice mapping."""

from __future__ import annotations

import asyncio
import os
import shutil
import stat
import subprocess
import time
import wave
from pathlib import Path

import numpy as np
import pytest

from media import tts
from media.tones import level_dbfs
from media.tts import (
    MAX_TEXT_CHARS,
    POLLY_LANGUAGE,
    TextToSpeech,
    TtsError,
    espeak_language,
    espeak_voice,
)
from tests.peers import require

ESPEAK = shutil.which("espeak-ng")


@pytest.fixture
def espeak() -> None:
    require(ESPEAK is not None, "espeak-ng is not installed (Debian package espeak-ng)")


@pytest.fixture
def spawned(monkeypatch):
    """The argv of every subprocess started through asyncio."""
    calls: list[tuple[str, ...]] = []
    real = asyncio.create_subprocess_exec

    async def recording(*args, **kwargs):
        calls.append(args)
        return await real(*args, **kwargs)

    monkeypatch.setattr(asyncio, "create_subprocess_exec", recording)
    return calls


def band_fraction(samples: np.ndarray, low: float, high: float, rate: int = 8000) -> float:
    power = np.abs(np.fft.rfft(samples.astype(np.float64))) ** 2
    bins = np.fft.rfftfreq(samples.size, 1 / rate)
    return float(power[(bins >= low) & (bins <= high)].sum() / power.sum())


def script(tmp_path: Path, body: str) -> str:
    path = tmp_path / "fake-espeak"
    path.write_text("#!/bin/sh\n" + body + "\n")
    path.chmod(path.stat().st_mode | stat.S_IXUSR)
    return str(path)


# -- synthesis


@pytest.mark.usefixtures("espeak")
async def test_hello_world_sounds_like_speech(tmp_path):
    samples = await TextToSpeech(tmp_path).synthesize("Hello world")
    assert samples.dtype == np.int16 and samples.ndim == 1
    assert 0.5 <= samples.size / 8000 <= 3.0
    assert level_dbfs(samples) > -40
    assert band_fraction(samples, 200, 3500) > 0.8


@pytest.mark.usefixtures("espeak")
async def test_second_call_is_served_from_memory(spawned):
    speaker = TextToSpeech(None)
    first = await speaker.synthesize("Hello world")
    assert len(spawned) == 1
    second = await speaker.synthesize("Hello world")
    assert len(spawned) == 1
    np.testing.assert_array_equal(first, second)
    assert not second.flags.writeable  # shared with the cache: nobody may change it


@pytest.mark.usefixtures("espeak")
async def test_disk_cache_survives_a_new_instance(tmp_path, spawned):
    first = await TextToSpeech(tmp_path).synthesize("Your call is important", "woman", "en-GB")
    files = sorted(tmp_path.iterdir())
    key = TextToSpeech(tmp_path).cache_key("Your call is important", "en-gb+f3")
    assert [f.name for f in files] == [f"{key}.wav"]  # and no temporary file left behind
    with wave.open(str(files[0])) as reader:
        assert (reader.getnchannels(), reader.getsampwidth(), reader.getframerate()) == (
            1,
            2,
            8000,
        )
    again = await TextToSpeech(tmp_path).synthesize("Your call is important", "woman", "en-GB")
    assert len(spawned) == 1
    np.testing.assert_array_equal(first, again)


@pytest.mark.usefixtures("espeak")
async def test_cache_key_covers_voice_and_speed(tmp_path, spawned):
    speaker = TextToSpeech(None)
    man = await speaker.synthesize("Goodbye", "man")
    woman = await speaker.synthesize("Goodbye", "woman")
    assert len(spawned) == 2 and not np.array_equal(man, woman)
    assert speaker.cache_key("Goodbye", "en-us+m3") != TextToSpeech(None, speed=120).cache_key(
        "Goodbye", "en-us+m3"
    )


@pytest.mark.usefixtures("espeak")
async def test_concurrent_requests_share_one_synthesis(spawned):
    speaker = TextToSpeech(None)
    results = await asyncio.gather(*(speaker.synthesize("Please hold") for _ in range(5)))
    assert len(spawned) == 1
    assert all(r is results[0] for r in results)


@pytest.mark.usefixtures("espeak")
async def test_a_cancelled_caller_still_fills_the_cache(spawned):
    speaker = TextToSpeech(None)
    waiter = asyncio.ensure_future(speaker.synthesize("Barge in"))
    await asyncio.sleep(0)  # the waiter is waiting on the synthesis, which has not run yet
    assert not waiter.done()
    waiter.cancel()
    with pytest.raises(asyncio.CancelledError):
        await waiter
    samples = await speaker.synthesize("Barge in")
    assert len(spawned) == 1 and samples.size > 0


@pytest.mark.usefixtures("espeak")
async def test_text_goes_in_on_stdin_never_as_an_option(spawned):
    text = "--version -w /tmp/owned.wav"
    samples = await TextToSpeech(None).synthesize(text)
    assert samples.size > 8000  # it was spoken, not obeyed
    (argv,) = spawned
    assert all(text not in arg and "--version" not in arg for arg in argv)
    assert "--stdin" in argv and "--stdout" in argv


@pytest.mark.usefixtures("espeak")
async def test_other_languages_synthesize():
    speaker = TextToSpeech(None)
    for voice, language, text in [
        ("Polly.Celine", "en-US", "Bonjour"),
        ("woman", "es-MX", "Hola"),
        ("man", "ja-JP", "こんにちは"),
    ]:
        samples = await speaker.synthesize(text, voice, language)
        assert samples.size > 1600 and level_dbfs(samples) > -40


async def test_blank_text_is_silence_without_a_subprocess(spawned):
    speaker = TextToSpeech(None, executable="/nonexistent/espeak-ng")
    assert (await speaker.synthesize("  \n ")).size == 0
    assert spawned == []


async def test_text_over_twilios_limit_is_refused(spawned):
    with pytest.raises(ValueError, match="limit"):
        await TextToSpeech(None).synthesize("a" * (MAX_TEXT_CHARS + 1))
    assert spawned == []


# -- failures


async def test_missing_executable_is_a_tts_error():
    with pytest.raises(TtsError, match="cannot run"):
        await TextToSpeech(None, executable="/nonexistent/espeak-ng").synthesize("Hi")


async def test_failing_executable_is_a_tts_error_with_its_message(tmp_path):
    fake = script(tmp_path, "echo 'voice not found' >&2; exit 3")
    with pytest.raises(TtsError, match="exited with 3: voice not found"):
        await TextToSpeech(None, executable=fake).synthesize("Hi")


async def test_output_that_is_not_audio_is_a_tts_error(tmp_path):
    fake = script(tmp_path, "cat")  # echoes the text back instead of a WAV
    with pytest.raises(TtsError, match="no usable audio"):
        await TextToSpeech(None, executable=fake).synthesize("Hi there")


async def test_a_hung_synthesizer_is_killed_at_the_timeout(tmp_path):
    marker = tmp_path / "pid"
    fake = script(tmp_path, f"echo $$ > {marker}; exec sleep 30")
    started = time.monotonic()
    with pytest.raises(TtsError, match="longer than"):
        await TextToSpeech(None, executable=fake, timeout=0.5).synthesize("Hi")
    assert time.monotonic() - started < 5
    pid = int(marker.read_text())
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)  # gone, and reaped


@pytest.mark.usefixtures("espeak")
async def test_corrupt_cache_file_is_replaced(tmp_path, spawned):
    speaker = TextToSpeech(tmp_path)
    key = speaker.cache_key("Hello again", "en-us+m3")
    (tmp_path / f"{key}.wav").write_bytes(b"RIFF junk")
    samples = await speaker.synthesize("Hello again")
    assert len(spawned) == 1 and samples.size > 4000
    with wave.open(str(tmp_path / f"{key}.wav")) as reader:
        assert reader.getnframes() == samples.size


@pytest.mark.usefixtures("espeak")
async def test_unwritable_cache_dir_only_costs_resynthesis(tmp_path, spawned):
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("")
    speaker = TextToSpeech(blocker / "cache")
    samples = await speaker.synthesize("Still works")
    assert samples.size > 0 and len(spawned) == 1


async def test_memory_cache_is_bounded(tmp_path):
    speaker = TextToSpeech(None, memory_bytes=3000)
    for i in range(5):
        speaker._remember(str(i), np.zeros(500, dtype=np.int16))  # 1000 bytes each
    assert list(speaker._memory) == ["2", "3", "4"]
    speaker._remember("huge", np.zeros(5000, dtype=np.int16))
    assert "huge" not in speaker._memory


# -- the voice mapping


@pytest.mark.parametrize(
    ("language", "expected"),
    [
        ("en-US", "en-us"),
        ("en-GB", "en-gb"),
        ("en-AU", "en-gb"),
        ("en-IN", "en-gb"),
        ("en-CA", "en-us"),
        ("es-ES", "es"),
        ("es-MX", "es-419"),
        ("fr-FR", "fr-fr"),
        ("fr-CA", "fr-fr"),
        ("de-DE", "de"),
        ("it-IT", "it"),
        ("pt-BR", "pt-br"),
        ("pt-PT", "pt"),
        ("nl-NL", "nl"),
        ("ja-JP", "ja"),
        ("zh-CN", "cmn"),
        ("zh-TW", "cmn"),
        ("zh-HK", "yue"),
        ("ru-RU", "ru"),
        ("pl-PL", "pl"),
        ("sv-SE", "sv"),
        ("da-DK", "da"),
        ("nb-NO", "nb"),
        ("ko-KR", "ko"),
        ("ca-ES", "ca"),
        ("fi-FI", "fi"),
        ("en", "en-us"),
        ("fr", "fr-fr"),
        ("de", "de"),
        ("zh", "cmn"),
        ("no", "nb"),
        ("EN_gb", "en-gb"),
        ("de-CH", "de"),
        ("tr-TR", "tr"),
        ("xx-YY", "en-us"),
        ("klingon", "en-us"),
        ("", "en-us"),
    ],
)
def test_language_mapping(language, expected):
    assert espeak_language(language) == expected


# The female Polly voices the brief names; everything else male.
_FEMALE_NAMES = (
    "Joanna Salli Kendra Kimberly Ivy Amy Emma Nicole Raveena Aditi Celine Lea Vicki Marlene "
    "Conchita Lucia Penelope Lupe Mia Camila Vitoria Ines Carla Bianca Tatyana Mizuki Seoyeon "
    "Zhiyu"
)
_MALE_NAMES = "Matthew Joey Justin Brian Russell Mathieu Hans Giorgio Enrique Miguel Maxim"
FEMALE_POLLY = _FEMALE_NAMES.split()
MALE_POLLY = _MALE_NAMES.split()


@pytest.mark.parametrize("name", FEMALE_POLLY)
def test_female_polly_voices(name):
    assert espeak_voice(f"Polly.{name}", "en-US").endswith("+f3")
    assert espeak_voice(f"Polly.{name}-Neural", "en-US").endswith("+f3")


@pytest.mark.parametrize("name", MALE_POLLY)
def test_male_polly_voices(name):
    assert espeak_voice(f"Polly.{name}", "en-US").endswith("+m3")


@pytest.mark.parametrize(
    ("voice", "language", "expected"),
    [
        ("man", "en-US", "en-us+m3"),
        ("woman", "en-US", "en-us+f3"),
        ("alice", "en-GB", "en-gb+f3"),
        ("Alice", "de-DE", "de+f3"),
        ("WOMAN", "fr-CA", "fr-fr+f3"),
        ("robot", "it-IT", "it+m3"),
        ("", "", "en-us+m3"),
        # A Polly voice speaks its own language, whatever `language` says.
        ("Polly.Joanna", "en-US", "en-us+f3"),
        ("Polly.Celine", "en-US", "fr-fr+f3"),
        ("Polly.Céline", "en-US", "fr-fr+f3"),
        ("Polly.Hans", "en-US", "de+m3"),
        ("Polly.Mia", "en-US", "es-419+f3"),
        ("Polly.Takumi", "en-US", "ja+m3"),
        ("Polly.Zhiyu", "en-US", "cmn+f3"),
        ("Polly.Raveena", "en-US", "en-gb+f3"),
        ("polly.amy-generative", "en-US", "en-gb+f3"),
        ("Polly.Nobody", "de-DE", "de+m3"),
        # Google voices carry their language in the name.
        ("Google.en-US-Standard-C", "fr-FR", "en-us+f3"),
        ("Google.en-US-Neural2-J", "en-US", "en-us+m3"),
        ("Google.en-GB-Wavenet-B", "en-US", "en-gb+m3"),
        ("Google.de-DE-Chirp3-HD-Aoede", "en-US", "de+f3"),
        ("Google.ja-JP-Chirp3-HD-Puck", "en-US", "ja+m3"),
        ("Google.nonsense", "it-IT", "it+m3"),
    ],
)
def test_voice_mapping(voice, language, expected):
    assert espeak_voice(voice, language) == expected


def test_every_polly_language_has_its_own_espeak_voice():
    for name, language in POLLY_LANGUAGE.items():
        mapped = espeak_language(language)
        assert language.startswith("en") or mapped != "en-us", (name, language)


@pytest.mark.usefixtures("espeak")
def test_every_mapped_voice_exists_in_espeak():
    listing = subprocess.run(
        [ESPEAK, "--voices"], capture_output=True, text=True, check=True, timeout=10
    ).stdout
    available = {line.split()[1] for line in listing.splitlines()[1:] if line.strip()}
    mapped = {espeak_language(language) for language in POLLY_LANGUAGE.values()}
    mapped |= set(tts._LANGUAGE.values()) | set(tts._ESPEAK_LANGUAGES)
    assert mapped <= available, mapped - available


def test_module_doc_states_the_mapping():
    doc = tts.__doc__
    for row in ["en-GB, en-AU, en-IN", "es-MX, es-US", "zh-CN, zh-TW", "+m3", "+f3"]:
        assert row in doc
    for name in FEMALE_POLLY:
        assert name in doc
