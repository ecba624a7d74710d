"""Call recording: WAV on disk, dual channel alignment, trim-silence, MP3, silence timeout."""

from __future__ import annotations

import wave
from pathlib import Path

import av
import numpy as np
import pytest

from media.g711 import alaw_encode, ulaw_encode
from media.recorder import Recorder, SilenceDetector, wav_to_mp3
from media.tones import ToneGenerator, dominant_frequency, sine

FRAME = 160


def read_wav(path: Path) -> tuple[wave._wave_params, np.ndarray]:
    with wave.open(str(path), "rb") as wav:
        params = wav.getparams()
        data = np.frombuffer(wav.readframes(params.nframes), dtype="<i2")
    return params, data.reshape(-1, params.nchannels)


def record_tone(path: Path, seconds: float, frequency: float = 1000.0, **options) -> Recorder:
    recorder = Recorder(path, **options)
    tone = ToneGenerator(frequency)
    for _ in range(round(seconds * 50)):
        recorder.feed("PCMU", ulaw_encode(tone.next_frame()))
        recorder.tick()
    return recorder


def test_two_seconds_of_pcmu_make_a_two_second_8khz_wav(tmp_path):
    recorder = record_tone(tmp_path / "call.wav", 2.0)
    info = recorder.close()
    assert info.path == tmp_path / "call.wav"
    assert info.duration_seconds == pytest.approx(2.0, abs=0.02)
    params, data = read_wav(info.path)
    assert (params.nchannels, params.sampwidth, params.framerate) == (1, 2, 8000)
    assert params.nframes / params.framerate == pytest.approx(2.0, abs=0.02)
    assert dominant_frequency(data[:, 0]) == pytest.approx(1000.0, abs=2.0)
    assert np.abs(data).max() == pytest.approx(0.5 * 32767, rel=0.05)


def test_the_wav_is_written_to_disk_while_recording(tmp_path):
    path = tmp_path / "live.wav"
    recorder = record_tone(path, 1.0)
    # Header and the second of audio, less at most one write buffer, are on disk before close.
    assert path.stat().st_size >= 44 + 8000 * 2 - 8192
    assert recorder.duration_seconds == pytest.approx(1.0)
    recorder.close()
    assert path.stat().st_size == 44 + 8000 * 2


def test_mono_without_ticks_and_in_pcma(tmp_path):
    recorder = Recorder(tmp_path / "a.wav")
    tone = ToneGenerator(440)
    for _ in range(25):
        recorder.feed("PCMA", alaw_encode(tone.next_frame()))
    info = recorder.close()
    assert info.duration_seconds == pytest.approx(0.5)
    _, data = read_wav(info.path)
    assert dominant_frequency(data[:, 0]) == pytest.approx(440.0, abs=2.0)
    assert recorder.close() is info


def test_a_tick_without_frames_records_silence(tmp_path):
    recorder = record_tone(tmp_path / "gap.wav", 0.2)
    for _ in range(10):
        recorder.tick()
    info = recorder.close()
    assert info.duration_seconds == pytest.approx(0.4)
    _, data = read_wav(info.path)
    assert np.any(data[:1600]) and not np.any(data[1600:])


def test_dual_channel_keeps_each_leg_in_its_channel_and_aligned(tmp_path):
    recorder = Recorder(tmp_path / "dual.wav", channels=2)
    caller, callee = ToneGenerator(440), ToneGenerator(1000)
    for tick in range(100):
        recorder.feed("PCMU", ulaw_encode(caller.next_frame()), channel=0)
        if not 40 <= tick < 60:  # the other leg goes quiet for 400 ms: padded, not shifted
            recorder.feed("PCMU", ulaw_encode(callee.next_frame()), channel=1)
        recorder.tick()
    info = recorder.close()
    assert info.duration_seconds == pytest.approx(2.0, abs=0.02)
    params, data = read_wav(info.path)
    assert (params.nchannels, params.framerate) == (2, 8000)
    assert dominant_frequency(data[:, 0]) == pytest.approx(440.0, abs=2.0)
    assert dominant_frequency(data[:, 1]) == pytest.approx(1000.0, abs=2.0)
    assert not np.any(data[40 * FRAME : 60 * FRAME, 1])
    assert np.count_nonzero(data[60 * FRAME : 61 * FRAME, 1]) > 100
    # The 1 kHz leg resumes exactly at tick 60, as the caller's tone continued throughout.
    assert np.count_nonzero(data[40 * FRAME : 60 * FRAME, 0]) > 0.9 * 20 * FRAME


def test_dual_channel_write_and_channel_checks(tmp_path):
    recorder = Recorder(tmp_path / "d.wav", channels=2)
    recorder.write(np.full(FRAME, 100, np.int16), channel=1)
    recorder.tick()
    recorder.tick()  # both legs quiet: time still passes
    with pytest.raises(ValueError):
        recorder.write(np.zeros(FRAME, np.int16), channel=2)
    info = recorder.close()
    _, data = read_wav(info.path)
    assert data.shape == (2 * FRAME, 2)
    assert not np.any(data[:, 0]) and np.all(data[:FRAME, 1] == 100)
    assert not np.any(data[FRAME:])
    with pytest.raises(ValueError):
        recorder.write(np.zeros(FRAME, np.int16))
    with pytest.raises(ValueError):
        Recorder(tmp_path / "x.wav", channels=3)


def test_trim_silence_drops_leading_and_trailing_silence_only(tmp_path):
    recorder = Recorder(tmp_path / "trim.wav", trim_silence=True)
    noise = (sine(50, 0.02, amplitude=10 ** (-60 / 20) * 1.4)).astype(np.int16)  # ~ -60 dBFS
    tone = ToneGenerator(1000)

    def ticks(count: int, speaking: bool) -> None:
        for _ in range(count):
            recorder.write(tone.next_frame() if speaking else noise)
            recorder.tick()

    ticks(25, False)  # 0.5 s leading
    ticks(50, True)  # 1 s
    ticks(35, False)  # 0.7 s inside: kept
    ticks(50, True)  # 1 s
    ticks(100, False)  # 2 s trailing
    info = recorder.close()
    assert info.duration_seconds == pytest.approx(2.7, abs=0.02)
    _, data = read_wav(info.path)
    assert data.shape[0] == 2.7 * 8000
    first, last = data[:FRAME, 0], data[-FRAME:, 0]
    assert np.abs(first).max() > 10000 and np.abs(last).max() > 10000
    middle = data[50 * FRAME : 85 * FRAME, 0]
    assert np.abs(middle).max() < 100  # the inner silence, as recorded


def test_trim_silence_of_a_silent_recording_is_empty(tmp_path):
    recorder = Recorder(tmp_path / "empty.wav", trim_silence=True)
    for _ in range(20):
        recorder.tick()
    info = recorder.close()
    assert info.duration_seconds == 0.0
    params, _ = read_wav(info.path)
    assert params.nframes == 0


def test_mp3_conversion_decodes_back_to_the_same_tone_and_length(tmp_path):
    info = record_tone(tmp_path / "call.wav", 2.0).close()
    mp3 = wav_to_mp3(info.path, tmp_path / "call.mp3")
    assert mp3.read_bytes()[:3] in (b"ID3", b"\xff\xf3", b"\xff\xf2", b"\xff\xfb")
    with av.open(str(mp3)) as container:
        stream = container.streams.audio[0]
        assert stream.codec_context.name.startswith("mp3")
        rate = stream.rate
        pcm = np.concatenate([frame.to_ndarray().reshape(-1) for frame in container.decode(stream)])
    assert rate == 8000
    assert pcm.size / rate == pytest.approx(2.0, abs=0.1)
    assert dominant_frequency(pcm, rate) == pytest.approx(1000.0, abs=5.0)


def test_mp3_of_a_dual_channel_recording_is_stereo(tmp_path):
    recorder = Recorder(tmp_path / "dual.wav", channels=2)
    for _ in range(25):
        recorder.write(sine(440, 0.02), 0)
        recorder.write(sine(1000, 0.02), 1)
        recorder.tick()
    mp3 = wav_to_mp3(recorder.close().path, tmp_path / "dual.mp3")
    with av.open(str(mp3)) as container:
        assert container.streams.audio[0].channels == 2


# -- SilenceDetector


def frames_of(level: str, count: int) -> list[np.ndarray]:
    if level == "speech":
        tone = ToneGenerator(300, amplitude=0.1)  # about -23 dBFS
        return [tone.next_frame() for _ in range(count)]
    return [np.full(FRAME, 20 if level == "noise" else 0, np.int16) for _ in range(count)]


def test_silence_detector_times_out_after_speech():
    detector = SilenceDetector(2.0)
    assert not any(detector.feed(f) for f in frames_of("speech", 50))
    assert detector.heard_speech
    results = [detector.feed(f) for f in frames_of("noise", 100)]
    assert results[:99] == [False] * 99 and results[99]
    assert detector.timed_out and detector.silence_seconds == pytest.approx(2.0)


def test_silence_detector_speech_resets_the_clock_and_clicks_do_not():
    detector = SilenceDetector(1.0)
    detector.feed(frames_of("speech", 1)[0])
    assert not detector.heard_speech  # a single loud frame is a click, not speech
    for f in frames_of("silence", 40):
        detector.feed(f)
    for f in frames_of("speech", 3):
        detector.feed(f)
    assert detector.heard_speech and detector.silence_seconds == 0
    results = [detector.feed(f) for f in frames_of("silence", 50)]
    assert results.index(True) == 49


def test_silence_detector_without_speech():
    detector = SilenceDetector(1.0)
    assert [detector.feed(f) for f in frames_of("silence", 50)][-1]
    assert not detector.heard_speech
    waiting = SilenceDetector(1.0, wait_for_speech=True)
    assert not any(waiting.feed(f) for f in frames_of("silence", 200))
    waiting.feed(frames_of("speech", 1)[0])
    assert not any(waiting.feed(f) for f in frames_of("silence", 200))
    waiting.reset()
    assert not waiting.timed_out
