"""Who is speaking: starts after a few loud ticks, stops after half a second of quiet."""

from __future__ import annotations

from control_api.voice.conference_speakers import LOUD, START_TICKS, STOP_TICKS, SpeechDetector


def feed(detector: SpeechDetector, peaks: list[int]) -> list[tuple[int, bool]]:
    return [(i, c) for i, p in enumerate(peaks) if (c := detector.tick(p)) is not None]


def test_speech_starts_after_loud_ticks_in_a_row_and_stops_after_quiet_ones():
    detector = SpeechDetector()
    loud, quiet = LOUD * 2, 0
    assert feed(detector, [loud, quiet, loud, loud, quiet]) == []  # a click is not speech
    changes = feed(detector, [loud] * START_TICKS + [quiet] * 10 + [loud] + [quiet] * STOP_TICKS)
    assert changes == [(START_TICKS - 1, True), (START_TICKS + 10 + STOP_TICKS, False)]
    assert not detector.speaking
