"""The default hold music: a short, soft, seamless loop of the chords it says."""

from __future__ import annotations

import numpy as np

from media.hold_music import HOLD_MUSIC_CHORDS, HOLD_MUSIC_SECONDS, hold_music
from media.tones import level_dbfs


def test_it_is_eight_seconds_of_8khz_int16_made_once():
    music = hold_music()
    assert music.dtype == np.int16 and music.size == HOLD_MUSIC_SECONDS * 8000
    assert hold_music() is music and not music.flags.writeable


def test_it_is_audible_but_soft_and_never_clips():
    music = hold_music()
    assert -30 < level_dbfs(music) < -10
    assert np.max(np.abs(music.astype(np.int32))) < 0.4 * 32767


def test_each_chord_sounds_its_bass_note():
    music = hold_music().astype(np.float64)
    step = len(music) // len(HOLD_MUSIC_CHORDS)
    for index, (bass, _tones) in enumerate(HOLD_MUSIC_CHORDS):
        chord = music[index * step : index * step + 4000]  # its first half second
        spectrum = np.abs(np.fft.rfft(chord))
        frequencies = np.fft.rfftfreq(chord.size, 1 / 8000)
        bass_hz = 440.0 * 2 ** ((bass - 69) / 12)
        near = np.abs(frequencies - bass_hz) < 4
        assert spectrum[near].max() > 0.2 * spectrum.max()


def test_the_loop_ends_and_starts_quietly_so_it_does_not_click():
    music = hold_music().astype(np.int32)
    assert abs(int(music[-1])) < 200 and abs(int(music[0])) < 200
