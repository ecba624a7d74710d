"""Speech test audio: words synthesized with eSpeak NG (tests/speech_audio.py)."""

import pytest

from tests.speech_audio import spoken_fixture

spoken = pytest.fixture(spoken_fixture, name="spoken")
