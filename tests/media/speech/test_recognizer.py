"""The streaming recognizer: endpointing decides what a provider hears."""

from __future__ import annotations

import asyncio

import numpy as np
import pytest

from media.speech import (
    EmbeddedSpeech,
    Hypothesis,
    RecognitionOptions,
    SpeechError,
    StreamingRecognizer,
)


class FakeSession:
    def __init__(self, answer: Hypothesis | Exception) -> None:
        self.on_partial = None
        self.pushed: list[np.ndarray] = []
        self.answer = answer
        self.cancelled = False

    def push(self, samples: np.ndarray) -> None:
        self.pushed.append(samples)

    async def finish(self) -> Hypothesis:
        await asyncio.sleep(0)
        if isinstance(self.answer, Exception):
            raise self.answer
        return self.answer

    def cancel(self) -> None:
        self.cancelled = True


class FakeProvider:
    name = "fake"
    sample_rate = 8000

    def __init__(self, answer: Hypothesis | Exception | None = None) -> None:
        self.answer = answer or Hypothesis("hello", 0.9)
        self.sessions: list[FakeSession] = []

    def open(self, options: RecognitionOptions) -> FakeSession:
        session = FakeSession(self.answer)
        self.sessions.append(session)
        return session


def feed_all(recognizer: StreamingRecognizer, audio: np.ndarray, chunk: int = 160) -> None:
    for start in range(0, audio.size, chunk):
        recognizer.feed(audio[start : start + chunk])


async def test_silence_alone_is_no_input_and_no_provider_is_asked():
    provider = FakeProvider()
    recognizer = StreamingRecognizer(provider, RecognitionOptions(no_input_s=1.0))
    feed_all(recognizer, np.zeros(8000 * 2, np.int16))
    assert await recognizer.result is None
    assert provider.sessions == []


async def test_an_utterance_goes_to_the_provider_with_its_pre_roll(spoken):
    provider = FakeProvider()
    started = []
    recognizer = StreamingRecognizer(
        provider, RecognitionOptions(end_silence_s=0.6), on_speech=lambda: started.append(1)
    )
    audio = spoken("hello there", lead_s=1.0, tail_s=1.0)
    feed_all(recognizer, audio, chunk=333)  # not whole frames: the rest is carried
    assert await recognizer.result == Hypothesis("hello", 0.9)
    [session] = provider.sessions
    heard = np.concatenate(session.pushed)
    assert started == [1]
    assert heard.size % 160 == 0
    # The words and the pause after them, a little of the silence before, not all of it.
    assert 0.8 * (audio.size - 16000) < heard.size < audio.size - 8000 * 0.5


async def test_a_provider_failure_is_the_result(spoken):
    provider = FakeProvider(SpeechError("service down"))
    recognizer = StreamingRecognizer(provider, RecognitionOptions(end_silence_s=0.2))
    feed_all(recognizer, spoken("hello there"))
    assert provider.sessions  # the words were taken for speech and sent to the provider
    with pytest.raises(SpeechError, match="service down"):
        await recognizer.result


async def test_end_recognizes_what_was_heard_and_close_cancels(spoken):
    provider = FakeProvider()
    recognizer = StreamingRecognizer(provider, RecognitionOptions(end_silence_s=5.0))
    feed_all(recognizer, spoken("good morning", tail_s=0.2))
    assert recognizer.speaking and not recognizer.result.done()
    recognizer.end()  # the audio stopped coming: the call's timer ends it
    assert (await recognizer.result).text == "hello"
    other = StreamingRecognizer(provider, RecognitionOptions(end_silence_s=5.0))
    feed_all(other, spoken("good morning", tail_s=0.2))
    other.close()
    assert provider.sessions[-1].cancelled and other.result.cancelled()


async def test_the_embedded_provider_end_to_end(spoken):
    """PocketSphinx in a worker process: words, partials, confidence, CPU measured."""
    speech = EmbeddedSpeech(workers=1, decoders_per_worker=2)
    try:
        partials: list[Hypothesis] = []
        options = RecognitionOptions(hints=("yes", "no"), end_silence_s=0.8, partials=True)
        recognizer = StreamingRecognizer(speech, options, on_partial=partials.append)
        audio = spoken("yes", lead_s=0.5, tail_s=1.2)
        for start in range(0, audio.size, 160):
            recognizer.feed(audio[start : start + 160])
            await asyncio.sleep(0)  # the media clock's pace, compressed
        final = await asyncio.wait_for(recognizer.result, 60)
        assert final is not None and final.text.split()[:1] == ["yes"], final
        assert 0.0 < final.confidence <= 1.0
        assert all(not p.final and 0.0 <= p.stability <= 1.0 for p in partials)
        cpu, audio_s = await speech.stats()
        assert audio_s > 0.5 and 0.0 < cpu / audio_s < 2.0
    finally:
        speech.close()
