"""Speech recognition: a streaming recognizer over pluggable providers.

Audio goes in as 8 kHz int16 frames; voice activity (``webrtcvad``) endpoints
one utterance; a provider recognizes it: the embedded PocketSphinx
(:mod:`media.speech.embedded`, no network) or a remote service implementing
:class:`SpeechProvider` (control_api's OpenAI-compatible client). See
docs/speech.md.
"""

from media.speech.embedded import EmbeddedSession, EmbeddedSpeech
from media.speech.endpointer import AUTO_END_SILENCE_S, Endpoint, Endpointer
from media.speech.recognizer import StreamingRecognizer
from media.speech.types import (
    Hypothesis,
    RecognitionOptions,
    RecognitionSession,
    SpeechError,
    SpeechProvider,
)
from media.speech.vad import VoiceActivityDetector

__all__ = [
    "AUTO_END_SILENCE_S",
    "EmbeddedSession",
    "EmbeddedSpeech",
    "Endpoint",
    "Endpointer",
    "Hypothesis",
    "RecognitionOptions",
    "RecognitionSession",
    "SpeechError",
    "SpeechProvider",
    "StreamingRecognizer",
    "VoiceActivityDetector",
]
