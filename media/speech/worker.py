"""The embedded recognizer's worker process: decoders, keyed by utterance.

Functions here run in a process of :class:`media.speech.embedded.EmbeddedSpeech`'s
pool (one process each, jobs in order); they keep the process's decoders in
module state. A decoder freed by one utterance is reused by the next.
"""

from __future__ import annotations

import numpy as np

from media.speech.sphinx import SphinxEngine
from media.speech.types import Hypothesis

__all__ = ["abort", "begin", "end", "process", "stats", "warm"]

_idle: list[SphinxEngine] = []
_busy: dict[int, SphinxEngine] = {}


def warm(sample_rate: int) -> None:
    """Load one decoder ahead of the first call."""
    if not _idle and not _busy:
        engine = SphinxEngine(sample_rate)
        engine.load()
        _idle.append(engine)


def begin(utterance: int, sample_rate: int, hints: tuple[str, ...]) -> None:
    engine = _idle.pop() if _idle else SphinxEngine(sample_rate)
    _busy[utterance] = engine
    engine.begin(hints)


def process(utterance: int, pcm: bytes) -> str:
    engine = _busy.get(utterance)
    if engine is None:
        return ""
    return engine.process(np.frombuffer(pcm, dtype=np.int16))


def end(utterance: int) -> Hypothesis:
    engine = _busy.pop(utterance, None)
    if engine is None:
        return Hypothesis("", 0.0)
    try:
        return engine.end()
    finally:
        _idle.append(engine)


def abort(utterance: int) -> None:
    engine = _busy.pop(utterance, None)
    if engine is not None:
        engine.abort()
        _idle.append(engine)


def stats() -> tuple[float, float, int]:
    """(CPU seconds, audio seconds, decoders) of this process."""
    engines = _idle + list(_busy.values())
    return (
        sum(engine.cpu_s for engine in engines),
        sum(engine.audio_s for engine in engines),
        len(engines),
    )
