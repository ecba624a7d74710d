"""Decoding <Play> files: WAV flavours, MP3, FLAC, Opus; hostile and broken input."""

from __future__ import annotations

import io
import struct
import time
import wave

import av
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from media.audio_file import AudioDecodeError, decode_audio, resample_frames
from media.g711 import alaw_decode, alaw_encode, ulaw_decode, ulaw_encode
from media.tones import dominant_frequency, level_dbfs, sine


def pcm_wav(samples: np.ndarray, rate: int, channels: int = 1, width: int = 2) -> bytes:
    """A WAV written by the stdlib; ``samples`` interleaved, int16 or uint8 for width 1."""
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as writer:
        writer.setnchannels(channels)
        writer.setsampwidth(width)
        writer.setframerate(rate)
        writer.writeframes(samples.tobytes())
    return buffer.getvalue()


def g711_wav(payload: bytes, format_tag: int, rate: int = 8000) -> bytes:
    """A WAVE_FORMAT_MULAW (7) or WAVE_FORMAT_ALAW (6) file, which `wave` cannot write."""
    fmt = struct.pack("<HHIIHHH", format_tag, 1, rate, rate, 1, 8, 0)
    body = (
        b"WAVE"
        + b"fmt "
        + struct.pack("<I", len(fmt))
        + fmt
        + b"fact"
        + struct.pack("<II", 4, len(payload))
        + b"data"
        + struct.pack("<I", len(payload))
        + payload
    )
    return b"RIFF" + struct.pack("<I", len(body)) + body


def encode_with_av(container: str, codec: str, samples: np.ndarray, rate: int) -> bytes:
    buffer = io.BytesIO()
    with av.open(buffer, "w", format=container) as out:
        stream = out.add_stream(codec, rate=rate, layout="mono")
        frame = av.AudioFrame.from_ndarray(samples.reshape(1, -1), format="s16", layout="mono")
        frame.rate = rate
        for packet in stream.encode(frame):
            out.mux(packet)
        for packet in stream.encode(None):
            out.mux(packet)
    return buffer.getvalue()


def magnitude_at(samples: np.ndarray, frequency: float, rate: int = 8000) -> float:
    spectrum = np.abs(np.fft.rfft(samples.astype(np.float64) * np.hanning(samples.size)))
    bins = np.fft.rfftfreq(samples.size, 1 / rate)
    near = np.abs(bins - frequency) < 10
    return float(spectrum[near].max())


def test_16khz_stereo_wav_becomes_8khz_mono():
    tone = sine(440, 1.0, rate=16000, amplitude=0.5)
    stereo = np.stack([tone, tone], axis=1).reshape(-1)
    samples = decode_audio(pcm_wav(stereo, 16000, channels=2))
    assert samples.dtype == np.int16 and samples.ndim == 1
    assert abs(samples.size - 8000) <= 16  # one second
    assert dominant_frequency(samples) == pytest.approx(440, abs=1)
    assert level_dbfs(samples) == pytest.approx(level_dbfs(tone), abs=0.5)


def test_stereo_is_downmixed_not_one_channel_kept():
    left = sine(440, 1.0, rate=16000, amplitude=0.4)
    right = sine(1000, 1.0, rate=16000, amplitude=0.4)
    samples = decode_audio(pcm_wav(np.stack([left, right], axis=1).reshape(-1), 16000, 2))
    low, high = magnitude_at(samples, 440), magnitude_at(samples, 1000)
    assert low > 0 and high > 0
    assert 0.7 < low / high < 1.4


def test_output_rate_follows_the_argument():
    samples = decode_audio(pcm_wav(sine(1000, 0.5, rate=44100), 44100), rate=16000)
    assert abs(samples.size - 8000) <= 32
    assert dominant_frequency(samples, rate=16000) == pytest.approx(1000, abs=2)


def test_8_bit_unsigned_pcm_wav():
    tone = sine(700, 0.5, rate=11025, amplitude=0.5)
    unsigned = ((tone.astype(np.int32) >> 8) + 128).astype(np.uint8)
    samples = decode_audio(pcm_wav(unsigned, 11025, width=1))
    assert abs(samples.size - 4000) <= 16
    assert dominant_frequency(samples) == pytest.approx(700, abs=2)
    assert level_dbfs(samples) == pytest.approx(level_dbfs(tone), abs=1.0)


@pytest.mark.parametrize(
    ("tag", "encode", "decode"), [(7, ulaw_encode, ulaw_decode), (6, alaw_encode, alaw_decode)]
)
def test_g711_wav_at_8khz_decodes_to_exactly_the_g711_samples(tag, encode, decode):
    payload = encode(sine(440, 0.5, amplitude=0.3))
    samples = decode_audio(g711_wav(payload, tag))
    np.testing.assert_array_equal(samples, decode(payload))


def test_mulaw_wav_at_another_rate_is_resampled():
    payload = ulaw_encode(sine(500, 1.0, rate=16000, amplitude=0.3))
    samples = decode_audio(g711_wav(payload, 7, rate=16000))
    assert abs(samples.size - 8000) <= 16
    assert dominant_frequency(samples) == pytest.approx(500, abs=1)


def test_mp3_made_with_lame():
    mp3 = encode_with_av("mp3", "libmp3lame", sine(440, 1.0, rate=16000), 16000)
    assert mp3[:3] == b"ID3" or mp3[0] == 0xFF
    samples = decode_audio(mp3)
    assert abs(samples.size - 8000) <= 800  # encoder delay and padding, at most a frame
    assert dominant_frequency(samples[800:-800]) == pytest.approx(440, abs=1)
    assert level_dbfs(samples[800:-800]) == pytest.approx(level_dbfs(sine(440, 1.0)), abs=1.0)


def test_flac_is_lossless_through_the_decoder():
    tone = sine(1234, 0.5, amplitude=0.7)
    flac = encode_with_av("flac", "flac", tone, 8000)
    np.testing.assert_array_equal(decode_audio(flac), tone)


def test_ogg_opus():
    ogg = encode_with_av("ogg", "libopus", sine(440, 1.0, rate=48000), 48000)
    samples = decode_audio(ogg)
    assert abs(samples.size - 8000) <= 400
    assert dominant_frequency(samples[400:-400]) == pytest.approx(440, abs=1)


def test_decoding_stops_at_max_seconds():
    samples = decode_audio(pcm_wav(sine(440, 3.0), 8000), max_seconds=1.0)
    assert samples.size == 8000


def test_resampler_follows_a_format_change_midway():
    def frame(samples: np.ndarray, rate: int, layout: str) -> av.AudioFrame:
        channels = 2 if layout == "stereo" else 1
        interleaved = np.repeat(samples, channels).reshape(1, -1)
        made = av.AudioFrame.from_ndarray(interleaved, format="s16", layout=layout)
        made.rate = rate
        return made

    first = sine(440, 0.5, rate=16000)
    second = sine(1000, 0.5, rate=22050)
    frames = [frame(first, 16000, "mono"), frame(second, 22050, "stereo")]
    samples = resample_frames(frames)
    assert abs(samples.size - 8000) <= 32
    assert dominant_frequency(samples[:3500]) == pytest.approx(440, abs=2)
    assert dominant_frequency(samples[-3500:]) == pytest.approx(1000, abs=2)


def test_video_only_file_has_no_audio():
    buffer = io.BytesIO()
    with av.open(buffer, "w", format="mp4") as out:
        stream = out.add_stream("mpeg4", rate=10)
        stream.width, stream.height, stream.pix_fmt = 64, 48, "yuv420p"
        for i in range(5):
            picture = np.full((48, 64, 3), i * 40, dtype=np.uint8)
            for packet in stream.encode(av.VideoFrame.from_ndarray(picture, format="rgb24")):
                out.mux(packet)
        for packet in stream.encode(None):
            out.mux(packet)
    with pytest.raises(AudioDecodeError, match="no audio stream"):
        decode_audio(buffer.getvalue())


@pytest.mark.parametrize(
    "data",
    [
        b"",
        b"<!DOCTYPE html><html><head><title>404 Not Found</title></head>"
        b"<body><h1>Not Found</h1></body></html>\n",
        b'{"code": 20404, "message": "The requested resource was not found"}',
        b"RIFF\x24\x00\x00\x00WAVEfmt ",  # a WAV cut off in its header
        b"\x00" * 4096,
    ],
    ids=["empty", "html", "json", "truncated-wav", "zeros"],
)
def test_non_audio_raises_audio_decode_error(data):
    with pytest.raises(AudioDecodeError):
        decode_audio(data)


def test_audio_in_a_container_not_on_the_allowlist_is_refused():
    # FFmpeg's own NUT format holds plain PCM here and FFmpeg would read it gladly.
    nut = encode_with_av("nut", "pcm_s16le", sine(440, 0.5), 8000)
    with av.open(io.BytesIO(nut)) as container:
        assert container.streams.audio
    with pytest.raises(AudioDecodeError):
        decode_audio(nut)


def test_sdp_is_refused_without_opening_sockets():
    # Sniffed as SDP, FFmpeg would bind RTP ports and wait for packets for 10 s.
    sdp = (
        b"v=0\r\no=- 0 0 IN IP4 127.0.0.1\r\ns=x\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n"
        b"m=audio 5004 RTP/AVP 0\r\n"
    )
    started = time.monotonic()
    with pytest.raises(AudioDecodeError):
        decode_audio(sdp)
    assert time.monotonic() - started < 2.0


def test_playlists_are_refused():
    playlist = (
        b"#EXTM3U\n#EXT-X-TARGETDURATION:10\n#EXTINF:10,\nfile:///etc/passwd\n#EXT-X-ENDLIST\n"
    )
    concat = b"ffconcat version 1.0\nfile /etc/passwd\n"
    for data in (playlist, concat):
        with pytest.raises(AudioDecodeError):
            decode_audio(data)


def check_garbage(data: bytes) -> None:
    try:
        samples = decode_audio(data)
    except AudioDecodeError:
        return
    # Random bytes can happen to be valid MP3 frames; then we get noise, but well-formed.
    assert samples.dtype == np.int16 and samples.ndim == 1 and samples.size > 0


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(max_size=4096))
def test_random_bytes_raise_only_audio_decode_error(data):
    check_garbage(data)


@settings(max_examples=200, deadline=None)
@given(
    format_tag=st.sampled_from([1, 3, 6, 7, 0x11, 0x55, 0xFFFE, 0]),
    channels=st.integers(0, 9),
    rate=st.integers(0, 200_000),
    bits=st.sampled_from([0, 4, 8, 16, 24, 32, 33]),
    payload=st.binary(max_size=2048),
)
def test_wav_headers_with_random_fields_raise_only_audio_decode_error(
    format_tag, channels, rate, bits, payload
):
    block = max(1, channels * bits // 8)
    fmt = struct.pack("<HHIIHH", format_tag, channels, rate, rate * block, block, bits)
    body = b"WAVEfmt " + struct.pack("<I", len(fmt)) + fmt + b"data"
    body += struct.pack("<I", len(payload)) + payload
    check_garbage(b"RIFF" + struct.pack("<I", len(body)) + body)


def test_errors_are_value_errors_for_callers_that_catch_broadly():
    assert issubclass(AudioDecodeError, ValueError)
