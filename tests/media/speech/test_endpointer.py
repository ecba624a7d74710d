"""The endpointer: speech starts on a run of voiced frames, ends on a pause."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from media.speech.endpointer import AUTO_END_SILENCE_S, Endpoint, Endpointer

FRAME = 0.02


def feed(endpointer: Endpointer, pattern: str) -> list[tuple[int, Endpoint]]:
    """``pattern``: one character a frame, ``x`` voiced, ``.`` not."""
    events = []
    for i, mark in enumerate(pattern):
        event = endpointer.feed(mark == "x", FRAME)
        if event is not None:
            events.append((i, event))
    return events


def test_three_voiced_frames_of_five_start_speech():
    assert feed(Endpointer(1.0, 5.0), "x.x.x") == [(4, Endpoint.STARTED)]


def test_a_click_is_not_speech_and_silence_times_out():
    endpointer = Endpointer(1.0, no_input_s=1.0)
    events = feed(endpointer, "x" + "." * 10 + "x...." + "." * 40)
    assert events == [(49, Endpoint.NO_INPUT)]  # 50 frames = 1 s
    assert not endpointer.speaking


def test_speech_ends_after_the_pause_of_speech_timeout():
    events = feed(Endpointer(0.5, 5.0), "xxx" + "x" * 20 + "." * 24 + "x" + "." * 30)
    assert events == [(2, Endpoint.STARTED), (72, Endpoint.ENDED)]  # 25 quiet frames


def test_auto_is_a_natural_pause():
    endpointer = Endpointer(None, 5.0)
    assert endpointer.end_silence_s == AUTO_END_SILENCE_S
    frames = round(AUTO_END_SILENCE_S / FRAME)
    events = feed(endpointer, "xxx" + "." * frames)
    assert events[-1] == (2 + frames, Endpoint.ENDED)


def test_max_speech_time_ends_a_long_utterance():
    events = feed(Endpointer(1.0, 5.0, max_speech_s=1.0), "x" * 100)
    assert events == [(2, Endpoint.STARTED), (52, Endpoint.ENDED)]


@given(st.lists(st.booleans(), max_size=400), st.sampled_from([None, 0.2, 1.0]))
def test_events_come_in_order_and_once(frames, end_silence):
    endpointer = Endpointer(end_silence, no_input_s=2.0, max_speech_s=3.0)
    events = [e for e in (endpointer.feed(v, FRAME) for v in frames) if e is not None]
    assert events in (
        [],
        [Endpoint.STARTED],
        [Endpoint.STARTED, Endpoint.ENDED],
        [Endpoint.NO_INPUT],
    )
    if Endpoint.NO_INPUT in events:
        assert endpointer.waited_s >= 2.0 - 1e-9
