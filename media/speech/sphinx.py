"""The embedded recognizer: CMU PocketSphinx with the en-US model its wheel ships.

One :class:`SphinxEngine` holds up to two decoders, each made when an utterance
first needs it (the language model's, about 90 MB; a grammar decoder for hints,
a fraction of that), reused utterance after utterance; it is synchronous and
CPU heavy, so it runs in a worker process (:mod:`media.speech.worker`), never on
the event loop (the decoder holds the GIL while it works).

Telephone audio (8 kHz) is resampled to the model's 16 kHz. The band above
4 kHz is empty then, which the model never saw; a faint, fixed noise
(``DITHER``, about -60 dBFS) in it recognizes markedly better on G.711 speech
than silence does (measured on eSpeak NG phrases: word recall 0.41 against 0.23),
the live cepstral mean normalization starts from ``TELEPHONE_CMN``, and the
model's means are moved to where telephone speech puts them by a fitted
transform (:mod:`media.speech.telephone_band`).

Hints (Twilio's ``hints``, comma-separated phrases) become a JSGF grammar: the
utterance is one or more of the phrases, decoded by a second decoder without the
language model and with a strong word insertion penalty (``GRAMMAR_WIP``; at the
default 0.65 a short grammar fills pauses with extra words), broadened Gaussians
(``GRAMMAR_VARIANCE_SCALE``: the variances times 2.5, carried by the telephone
transform's variance scale) and the 8 best densities of each codebook scored
(``GRAMMAR_TOPN``; PocketSphinx's default is 4). On ``loadtest/speech.py``'s digit
strings (eSpeak NG through G.711, the digit grammar) the word error rate went from
83% to 16-18% with the penalty and the transform, and to 8.3% with the broader
Gaussians and the wider density choice (4-5% on voices and digit strings held out
of that tuning): broader Gaussians forgive speech unlike what the model was trained
on (here synthetic voices; not yet checked on real callers). The language model
decodes best at the default penalty; its decoder is broadened less
(``LANGUAGE_VARIANCE_SCALE``) and capped at 10000 active HMMs a frame
(``LANGUAGE_OPTIONS``): it finds two fifths of the words of short commands (a
third with the transform alone, a fifth without) and about three fifths of
those of longer sentences. Twilio's class tokens
``$OOV_CLASS_DIGIT_SEQUENCE`` (and the other digit classes) stand for spoken
digits. Words the dictionary does not know are left out; hints with no known
word fall back to the language model. Without hints the model's general
English trigram language model decodes.

Confidence: the geometric mean over words of the utterance's posterior
probability (lattice posterior, ``bestpath``), in [0, 1].
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable

import numpy as np
import numpy.typing as npt
from pocketsphinx import Decoder

from media.resample import Resampler
from media.speech.telephone_band import TRANSFORM, scaled_transform
from media.speech.types import Hypothesis

__all__ = [
    "DITHER",
    "GRAMMAR_TOPN",
    "GRAMMAR_VARIANCE_SCALE",
    "LANGUAGE_OPTIONS",
    "LANGUAGE_VARIANCE_SCALE",
    "SphinxEngine",
    "hints_grammar",
]

DITHER = 30.0  # standard deviation of the noise added at 16 kHz (int16 units)
# The cepstral mean a decoder settles on after some telephone speech (G.711, resampled
# and dithered as here): its live normalization starts there instead of at the model's
# wideband default, so the first utterance of a fresh decoder is heard as well as later
# ones (word recall on eSpeak NG phrases, fresh decoders: 0.25 from the default, 0.33).
TELEPHONE_CMN = (
    "42.95,-4.797,-10.67,11.45,-7.283,-6.205,-1.018,-10.98,-0.4022,-3.272,-0.8302,-1.062,-5.776"
)
MODEL_RATE = 16000
GRAMMAR_WIP = 1e-3
# The grammar decoder's Gaussians are broadened (variances x GRAMMAR_VARIANCE_SCALE)
# and score the 8 best of each codebook's densities (PocketSphinx's default is 4):
# loadtest/speech.py's digit strings through G.711 from 18.3% / 15.7% word errors
# (0% / 3% loss) to 8.3% / 8.3%; held-out voices and strings about 4-5% (docs/speech.md).
GRAMMAR_VARIANCE_SCALE = 2.5
GRAMMAR_TOPN = 8
# The language model's decoder, broadened less (2.5 lost words of some sentences):
# spoken words found in eSpeak NG sentences through G.711 from 56% to 64%, in short
# commands from 34% to 49% (docs/speech.md). Broader Gaussians keep more hypotheses
# alive; at most 10000 active HMMs a frame (PocketSphinx's default is 30000) keeps
# the CPU within 8% of what it was (3000 lost a lone "hello"'s first frames' words).
LANGUAGE_VARIANCE_SCALE = 1.5
LANGUAGE_OPTIONS: dict[str, object] = {"maxhmmpf": 10000}
DIGIT_WORDS = ("zero", "oh", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine")
_DIGIT_CLASSES = {
    "$oov_class_digit_sequence",
    "$oov_class_alphanumeric_sequence",
    "$oov_class_full_phonenum",
    "$oov_class_operand",
    "$oov_class_postalcode",
    "$oov_class_digit",
}
_WORD = re.compile(r"[a-z']+")
_NOT_WORDS = {"<s>", "</s>", "<sil>", "[noise]", "[speech]"}


def hints_grammar(hints: tuple[str, ...], known: Callable[[str], bool]) -> str | None:
    """A JSGF grammar for ``hints`` (``known(word)`` says the dictionary has it), or
    None when no hint has a known word."""
    phrases: list[str] = []
    for hint in hints:
        text = hint.strip().lower()
        if text in _DIGIT_CLASSES:
            phrases.extend(DIGIT_WORDS)
            continue
        words = [word for word in _WORD.findall(text) if known(word)]
        if words:
            phrases.append(" ".join(words))
    unique = sorted(set(phrases))
    if not unique:
        return None
    return (
        "#JSGF V1.0;\ngrammar hints;\npublic <utterance> = <phrase>+;\n<phrase> = "
        + " | ".join(unique)
        + ";\n"
    )


class SphinxEngine:
    """One PocketSphinx decoder, one utterance at a time."""

    def __init__(self, sample_rate: int = 8000) -> None:
        self.sample_rate = sample_rate
        # Each made when an utterance first needs it (a Gather with hints never
        # loads the language model: a tenth of the time and a fraction of the memory).
        self._language: Decoder | None = None
        self._grammar: Decoder | None = None
        self._decoder: Decoder | None = None  # the one decoding this utterance
        self._grammars: dict[tuple[str, ...], str] = {}
        self._resampler = Resampler(sample_rate, MODEL_RATE)
        self._noise = np.random.default_rng(0x5EED)
        self.cpu_s = 0.0  # CPU time spent decoding (this thread)
        self.audio_s = 0.0  # audio decoded
        self.in_utterance = False

    def load(self) -> None:
        """Make both decoders now (ahead of a first call)."""
        self._language_decoder()
        self._grammar_decoder()

    def begin(self, hints: tuple[str, ...] = ()) -> None:
        """Start an utterance, decoded with the hints' grammar or the language model."""
        if self.in_utterance:
            self.abort()
        search = self._search_for(hints)
        decoder = self._language_decoder() if search == "_default" else self._grammar_decoder()
        decoder.activate_search(search)
        self._resampler.reset()
        decoder.start_utt()
        self._decoder = decoder
        self.in_utterance = True

    def _search_for(self, hints: tuple[str, ...]) -> str:
        if not hints:
            return "_default"
        name = self._grammars.get(hints)
        if name is None:
            decoder = self._grammar_decoder()  # (the same dictionary as the language model's)
            grammar = hints_grammar(hints, lambda word: decoder.lookup_word(word) is not None)
            name = "_default"
            if grammar is not None:
                name = f"hints{len(self._grammars)}"
                decoder.add_jsgf_string(name, grammar)
            self._grammars[hints] = name
        return name

    def _language_decoder(self) -> Decoder:
        if self._language is None:
            with scaled_transform(LANGUAGE_VARIANCE_SCALE) as transform:
                self._language = _decoder(mllr=str(transform), **LANGUAGE_OPTIONS)
        return self._language

    def _grammar_decoder(self) -> Decoder:
        if self._grammar is None:
            with scaled_transform(GRAMMAR_VARIANCE_SCALE) as transform:
                self._grammar = _decoder(
                    lm=None, wip=GRAMMAR_WIP, topn=GRAMMAR_TOPN, mllr=str(transform)
                )
        return self._grammar

    @property
    def _utterance(self) -> Decoder:
        decoder = self._decoder
        if decoder is None:
            raise RuntimeError("begin() an utterance first")
        return decoder

    def process(self, samples: npt.NDArray[np.int16]) -> str:
        """Decode more of the utterance; returns the partial hypothesis."""
        started = time.thread_time()
        upsampled = self._resampler.process(samples).astype(np.float32)
        upsampled += self._noise.normal(0.0, DITHER, upsampled.size).astype(np.float32)
        pcm = np.clip(upsampled, -32768, 32767).astype(np.int16)
        self._utterance.process_raw(pcm.tobytes(), False, False)
        self.audio_s += samples.size / self.sample_rate
        hypothesis = self._utterance.hyp()
        self.cpu_s += time.thread_time() - started
        return _clean(hypothesis.hypstr) if hypothesis is not None else ""

    def end(self) -> Hypothesis:
        """End the utterance: the final hypothesis."""
        started = time.thread_time()
        self._utterance.end_utt()
        self.in_utterance = False
        hypothesis = self._utterance.hyp()
        self.cpu_s += time.thread_time() - started
        if hypothesis is None:
            return Hypothesis("", 0.0)
        text = _clean(hypothesis.hypstr)
        words = len(text.split())
        if not words:
            return Hypothesis("", 0.0)
        posterior = min(max(float(hypothesis.prob), 0.0), 1.0)
        return Hypothesis(text, round(posterior ** (1.0 / words), 6))

    def abort(self) -> None:
        if self.in_utterance:
            self._utterance.end_utt()
            self.in_utterance = False


def _decoder(**options: object) -> Decoder:
    settings: dict[str, object] = {"mllr": str(TRANSFORM), **options}
    return Decoder(bestpath=True, loglevel="FATAL", cmninit=TELEPHONE_CMN, **settings)


def _clean(text: str) -> str:
    """Words only: no fillers, no alternate-pronunciation marks (``to(2)``)."""
    words = (re.sub(r"\(\d+\)$", "", word) for word in text.split())
    return " ".join(word for word in words if word.lower() not in _NOT_WORDS)
