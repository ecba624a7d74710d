"""Text-to-speech for TwiML ``<Say>`` with eSpeak NG, cached on disk and in memory.

eSpeak NG runs as a subprocess (``espeak-ng --stdout --stdin``); the text goes in on stdin,
never on the command line, so no text can be taken for an option. Its WAV output is decoded
and resampled to 8 kHz by :func:`media.audio_file.decode_audio`. A result is kept under
``cache_dir`` as ``<sha256 of (text, espeak voice, speed)>.wav`` (16-bit mono 8 kHz, written
to a temporary file and renamed into place, so a reader never sees half a file) and in a
small in-memory LRU, so a prompt that every call plays is synthesized once.

Twilio's attributes map onto an eSpeak NG voice name ``<language voice>+<variant>``.

``language`` (case-insensitive; checked against ``espeak-ng --voices``, eSpeak NG 1.51):

=============================================  ==========  ====================================
Twilio ``language``                            eSpeak NG   note
=============================================  ==========  ====================================
en-US, en-CA, en                               en-us
en-GB, en-AU, en-IN, en-IE, en-NZ, en-ZA       en-gb       nearest: eSpeak has no en-au/en-in
es-ES, es                                      es
es-MX, es-US, es-419                           es-419      Latin American Spanish
fr-FR, fr-CA, fr                               fr-fr       eSpeak has no Canadian French
de-DE, de-AT, de-CH, de                        de
it-IT, it                                      it
pt-BR                                          pt-br
pt-PT, pt                                      pt
nl-NL, nl-BE, nl                               nl
ja-JP, ja                                      ja
zh-CN, zh-TW, cmn-CN, zh                       cmn         Mandarin
zh-HK, yue                                     yue         Cantonese
ru-RU, ru                                      ru
pl-PL, pl                                      pl
sv-SE, sv                                      sv
da-DK, da                                      da
nb-NO, no-NO, nb, no                           nb
ko-KR, ko                                      ko
ca-ES, fi-FI, tr-TR, ro-RO, is-IS, cy-GB,      ca, fi, tr, ro, is, cy, hi, ar
hi-IN, arb
any other ``xx-YY`` or ``xx``                  xx          when eSpeak NG has language ``xx``
anything else                                  en-us       fallback
=============================================  ==========  ====================================

``voice`` picks the variant, ``+m3`` (male) or ``+f3`` (female):

* ``man`` → ``+m3``; ``woman`` and ``alice`` → ``+f3``.
* ``Polly.<Name>`` (an ``-Neural``/``-Generative``/``-LongForm`` suffix is ignored) → ``+f3``
  for Amazon Polly's female voices (see ``POLLY_FEMALE``: Joanna, Salli, Kendra, Kimberly,
  Ivy, Ruth, Danielle, Amy, Emma, Nicole, Olivia, Raveena, Aditi, Kajal, Aria, Ayanda, Niamh,
  Celine, Lea, Chantal, Gabrielle, Vicki, Marlene, Hannah, Carla, Bianca, Conchita, Lucia,
  Mia, Penelope, Lupe, Vitoria, Camila, Ines, Tatyana, Mizuki, Kazuha, Tomoko, Seoyeon,
  Zhiyu, Hiujin, Lotte, Laura, Ewa, Maja, Ola, Astrid, Elin, Naja, Sofie, Liv, Ida, Suvi,
  Filiz, Carmen, Dora, Gwyneth, Zeina, Arlet), ``+m3`` for the rest. A Polly voice
  speaks its own language, as on Twilio: ``Polly.Celine`` is French whatever ``language``
  says (``POLLY_LANGUAGE``).
* ``Google.<ll-RR>-<model>-<name>`` speaks ``ll-RR``; it is female for the en-US letters
  C, E, F, G and H and for the female Chirp3-HD names (Aoede, Kore, Leda, Zephyr, ...),
  male otherwise.
* Anything else → ``+m3``.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import logging
import os
import tempfile
import unicodedata
import wave
from collections import OrderedDict
from collections.abc import Callable
from pathlib import Path

import numpy as np

from media.audio_file import AudioDecodeError, decode_audio, wav_bytes

__all__ = [
    "MAX_TEXT_CHARS",
    "POLLY_FEMALE",
    "POLLY_LANGUAGE",
    "TextToSpeech",
    "TtsError",
    "espeak_language",
    "espeak_voice",
]

log = logging.getLogger("callswitch.media")

RATE = 8000
MAX_TEXT_CHARS = 4096  # Twilio's limit for one <Say>
_CACHE_FORMAT = 1  # bump when the synthesis or the file layout changes

DEFAULT_LANGUAGE = "en-us"
MALE, FEMALE = "+m3", "+f3"

# Twilio language tag (lower case) -> eSpeak NG voice, where it is not just the bare code.
_LANGUAGE = {
    "en-us": "en-us",
    "en-ca": "en-us",
    "en-gb": "en-gb",
    "en-au": "en-gb",
    "en-in": "en-gb",
    "en-ie": "en-gb",
    "en-nz": "en-gb",
    "en-za": "en-gb",
    "en-gb-wls": "en-gb",
    "en": "en-us",
    "es-mx": "es-419",
    "es-us": "es-419",
    "es-419": "es-419",
    "fr": "fr-fr",
    "pt-br": "pt-br",
    "zh-cn": "cmn",
    "zh-tw": "cmn",
    "cmn-cn": "cmn",
    "zh": "cmn",
    "zh-hk": "yue",
    "yue-hk": "yue",
    "no": "nb",
    "arb": "ar",
}

# eSpeak NG 1.51's languages named by a bare ISO 639 code: "xx" and "xx-YY" map to "xx".
_ESPEAK_CODES = (
    "af am an ar as az ba be bg bn bs ca cmn cs cv cy da de el eo es et eu fa fi ga gd gn gu "
    "haw he hi hr ht hu hy ia id io is it ja ka kk kl kn ko kok ku ky la lb lt lv mi mk ml mr "
    "ms mt my nb ne nl om or pa pap pl pt ro ru sd si sk sl sq sr sv sw ta te th tk tn tr tt "
    "ug uk ur uz vi yue"
)
_ESPEAK_LANGUAGES = frozenset(_ESPEAK_CODES.split())

# Amazon Polly voices by the language they speak: (female names, male names).
_POLLY_VOICES = {
    "en-US": (
        "Joanna Salli Kendra Kimberly Ivy Ruth Danielle",
        "Matthew Joey Justin Kevin Stephen Gregory",
    ),
    "en-GB": ("Amy Emma", "Brian Arthur"),
    "en-GB-WLS": ("", "Geraint"),
    "en-AU": ("Nicole Olivia", "Russell"),
    "en-IN": ("Raveena Aditi Kajal", ""),
    "en-NZ": ("Aria", ""),
    "en-ZA": ("Ayanda", ""),
    "en-IE": ("Niamh", ""),
    "fr-FR": ("Celine Lea", "Mathieu Remi"),
    "fr-CA": ("Chantal Gabrielle", "Liam"),
    "de-DE": ("Vicki Marlene", "Hans Daniel"),
    "de-AT": ("Hannah", ""),
    "it-IT": ("Carla Bianca", "Giorgio Adriano"),
    "es-ES": ("Conchita Lucia", "Enrique Sergio"),
    "es-MX": ("Mia", "Andres"),
    "es-US": ("Penelope Lupe", "Miguel Pedro"),
    "pt-BR": ("Vitoria Camila", "Ricardo Thiago"),
    "pt-PT": ("Ines", "Cristiano"),
    "ru-RU": ("Tatyana", "Maxim"),
    "ja-JP": ("Mizuki Kazuha Tomoko", "Takumi"),
    "ko-KR": ("Seoyeon", ""),
    "zh-CN": ("Zhiyu", ""),
    "zh-HK": ("Hiujin", ""),
    "nl-NL": ("Lotte Laura", "Ruben"),
    "pl-PL": ("Ewa Maja Ola", "Jacek Jan"),
    "sv-SE": ("Astrid Elin", ""),
    "da-DK": ("Naja Sofie", "Mads"),
    "nb-NO": ("Liv Ida", ""),
    "fi-FI": ("Suvi", ""),
    "tr-TR": ("Filiz", ""),
    "ro-RO": ("Carmen", ""),
    "is-IS": ("Dora", "Karl"),
    "cy-GB": ("Gwyneth", ""),
    "ca-ES": ("Arlet", ""),
    "arb": ("Zeina", ""),
}
POLLY_LANGUAGE: dict[str, str] = {
    name.lower(): language
    for language, (female, male) in _POLLY_VOICES.items()
    for name in (female + " " + male).split()
}
POLLY_FEMALE = frozenset(
    name.lower() for female, _ in _POLLY_VOICES.values() for name in female.split()
)
_POLLY_SUFFIXES = ("-neural", "-generative", "-longform", "-standard")

_GOOGLE_EN_US_FEMALE = frozenset("CEFGH")
_CHIRP_FEMALE_NAMES = (
    "achernar aoede autonoe callirrhoe despina erinome gacrux kore laomedeia leda "
    "pulcherrima sulafat vindemiatrix zephyr"
)
_GOOGLE_CHIRP_FEMALE = frozenset(_CHIRP_FEMALE_NAMES.split())


class TtsError(RuntimeError):
    """eSpeak NG is missing, failed, timed out, or wrote something that is not audio."""


def espeak_language(language: str) -> str:
    """The eSpeak NG language voice for a Twilio ``language`` tag (table in the module doc)."""
    tag = language.strip().lower().replace("_", "-")
    voice = _LANGUAGE.get(tag)
    if voice is not None:
        return voice
    primary = tag.split("-", 1)[0]
    voice = _LANGUAGE.get(primary)
    if voice is not None:
        return voice
    return primary if primary in _ESPEAK_LANGUAGES else DEFAULT_LANGUAGE


def _fold(name: str) -> str:
    # Twilio spells Céline, Léa, Vitória, Inês without accents; accept either.
    decomposed = unicodedata.normalize("NFKD", name)
    return "".join(c for c in decomposed if not unicodedata.combining(c)).lower()


def _voice_traits(voice: str) -> tuple[bool, str | None]:
    """(female, the language the voice itself speaks or None) for a Twilio ``voice``."""
    name = voice.strip()
    lowered = name.lower()
    if lowered in ("woman", "alice"):
        return True, None
    if lowered.startswith("polly."):
        polly = _fold(name[6:])
        for suffix in _POLLY_SUFFIXES:
            polly = polly.removesuffix(suffix)
        return polly in POLLY_FEMALE, POLLY_LANGUAGE.get(polly)
    if lowered.startswith("google."):
        parts = name[7:].split("-")
        if len(parts) < 3:
            return False, None
        language = f"{parts[0]}-{parts[1]}"
        last = parts[-1].lower()
        female = last in _GOOGLE_CHIRP_FEMALE or (
            language.lower() == "en-us" and len(last) == 1 and last.upper() in _GOOGLE_EN_US_FEMALE
        )
        return female, language
    return False, None


def espeak_voice(voice: str = "man", language: str = "en-US") -> str:
    """The eSpeak NG ``-v`` argument for Twilio's ``voice`` and ``language``, e.g. ``en-gb+f3``."""
    female, own_language = _voice_traits(voice)
    return espeak_language(own_language or language) + (FEMALE if female else MALE)


def _clean(text: str) -> str:
    # Control characters other than line breaks mean nothing to a speaker; NUL would end
    # the text early in eSpeak's C string handling.
    return "".join(c if c in "\n\t" or unicodedata.category(c) != "Cc" else " " for c in text)


_EMPTY = np.zeros(0, dtype=np.int16)
_EMPTY.flags.writeable = False


class TextToSpeech:
    """``<Say>`` audio: eSpeak NG's speech as int16 mono 8 kHz samples, cached.

    The arrays returned are shared with the cache and read-only. Concurrent requests for the
    same text share one synthesis, which runs to completion (and fills the cache) even when
    every caller is cancelled, as a barge-in does.
    """

    def __init__(
        self,
        cache_dir: Path | None,
        executable: str = "espeak-ng",
        *,
        speed: int = 160,
        timeout: float = 20.0,
        memory_bytes: int = 32 * 1024 * 1024,
    ) -> None:
        self.cache_dir = Path(cache_dir) if cache_dir is not None else None
        self.executable = executable
        self.speed = speed  # words per minute
        self.timeout = timeout
        self.memory_bytes = memory_bytes
        self._memory: OrderedDict[str, np.ndarray] = OrderedDict()
        self._memory_used = 0
        self._pending: dict[str, asyncio.Task[np.ndarray]] = {}
        self.syntheses = 0  # how many times eSpeak NG ran

    async def synthesize(
        self, text: str, voice: str = "man", language: str = "en-US"
    ) -> np.ndarray:
        """Speak ``text``; raises :class:`TtsError`, or ValueError for text over the limit."""
        if len(text) > MAX_TEXT_CHARS:
            raise ValueError(f"text is {len(text)} characters, the limit is {MAX_TEXT_CHARS}")
        text = _clean(text)
        if not text.strip():
            return _EMPTY
        espeak = espeak_voice(voice, language)
        key = self.cache_key(text, espeak)
        cached = self._memory.get(key)
        if cached is not None:
            self._memory.move_to_end(key)
            return cached
        task = self._pending.get(key)
        if task is None:
            task = asyncio.get_running_loop().create_task(self._load(key, text, espeak))
            self._pending[key] = task
            task.add_done_callback(self._finishing(key))
        return await asyncio.shield(task)

    def cache_key(self, text: str, espeak: str) -> str:
        material = json.dumps([_CACHE_FORMAT, text, espeak, self.speed], ensure_ascii=False)
        return hashlib.sha256(material.encode()).hexdigest()

    def _finishing(self, key: str) -> Callable[[asyncio.Task[np.ndarray]], None]:
        return lambda task: self._finished(key, task)

    def _finished(self, key: str, task: asyncio.Task[np.ndarray]) -> None:
        self._pending.pop(key, None)
        if not task.cancelled():
            task.exception()  # retrieved here too, in case every waiter was cancelled

    async def _load(self, key: str, text: str, espeak: str) -> np.ndarray:
        path = self.cache_dir / f"{key}.wav" if self.cache_dir is not None else None
        samples = await asyncio.to_thread(_read_cached, path) if path is not None else None
        if samples is None:
            samples = await self._run_espeak(text, espeak)
            if path is not None:
                await asyncio.to_thread(_write_cached, path, samples)
        samples.flags.writeable = False
        self._remember(key, samples)
        return samples

    def _remember(self, key: str, samples: np.ndarray) -> None:
        if samples.nbytes > self.memory_bytes:
            return
        self._memory[key] = samples
        self._memory_used += samples.nbytes
        while self._memory_used > self.memory_bytes:
            _, evicted = self._memory.popitem(last=False)
            self._memory_used -= evicted.nbytes

    async def _run_espeak(self, text: str, espeak: str) -> np.ndarray:
        command = [
            self.executable,
            "--stdout",
            "--stdin",
            "-b",
            "1",  # input is UTF-8
            "-v",
            espeak,
            "-s",
            str(self.speed),
        ]
        self.syntheses += 1
        try:
            process = await asyncio.create_subprocess_exec(
                *command,
                stdin=asyncio.subprocess.PIPE,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.PIPE,
            )
        except OSError as exc:
            raise TtsError(f"cannot run {self.executable}: {exc}") from exc
        try:
            async with asyncio.timeout(self.timeout):
                output, errors = await process.communicate(text.encode("utf-8", "replace"))
        except TimeoutError:
            raise TtsError(f"{self.executable} took longer than {self.timeout} s") from None
        finally:
            if process.returncode is None:  # timed out or cancelled: do not leave it running
                with contextlib.suppress(ProcessLookupError):
                    process.kill()
                await process.wait()
        if process.returncode != 0:
            message = errors.decode("utf-8", "replace").strip()[:200]
            raise TtsError(f"{self.executable} exited with {process.returncode}: {message}")
        try:
            return await asyncio.to_thread(decode_audio, output, RATE)
        except AudioDecodeError as exc:
            raise TtsError(f"{self.executable} wrote no usable audio: {exc}") from exc


def _read_cached(path: Path) -> np.ndarray | None:
    try:
        with wave.open(str(path), "rb") as reader:
            if reader.getparams()[:3] != (1, 2, RATE):
                return None
            frames = reader.readframes(reader.getnframes())
    except FileNotFoundError:
        return None
    except (OSError, EOFError, wave.Error) as exc:
        log.warning("ignoring unreadable TTS cache file %s: %s", path, exc)
        return None
    return np.frombuffer(frames, dtype="<i2").astype(np.int16)


def _write_cached(path: Path, samples: np.ndarray) -> None:
    data = wav_bytes(samples, RATE)
    temporary = None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(
            dir=path.parent, prefix=".tts-", suffix=".tmp", delete=False
        ) as file:
            temporary = file.name
            file.write(data)
        os.replace(temporary, path)
    except OSError as exc:  # a cache that cannot be written only costs a re-synthesis
        log.warning("cannot write TTS cache file %s: %s", path, exc)
        if temporary is not None:
            with contextlib.suppress(OSError):
                os.unlink(temporary)
