import warnings

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from media.g711 import (
    SILENCE_ALAW,
    SILENCE_ULAW,
    alaw_decode,
    alaw_encode,
    ulaw_decode,
    ulaw_encode,
)

with warnings.catch_warnings():
    warnings.simplefilter("ignore", DeprecationWarning)
    import audioop  # independent reference implementation, removed in 3.13

ALL_CODES = bytes(range(256))
ALL_SAMPLES = np.arange(-32768, 32768, dtype=np.int16)


def reference_decode(function, data: bytes) -> np.ndarray:
    return np.frombuffer(function(data, 2), dtype=np.int16)


def pcm(samples: np.ndarray) -> bytes:
    return samples.astype(np.int16).tobytes()  # audioop uses native byte order


def test_ulaw_decode_matches_audioop_for_all_codes():
    decoded = ulaw_decode(ALL_CODES)
    assert decoded.dtype == np.int16
    assert np.array_equal(decoded, reference_decode(audioop.ulaw2lin, ALL_CODES))


def test_alaw_decode_matches_audioop_for_all_codes():
    decoded = alaw_decode(ALL_CODES)
    assert decoded.dtype == np.int16
    assert np.array_equal(decoded, reference_decode(audioop.alaw2lin, ALL_CODES))


def test_ulaw_encode_matches_audioop_for_every_sample_value():
    assert ulaw_encode(ALL_SAMPLES) == audioop.lin2ulaw(pcm(ALL_SAMPLES), 2)


def test_alaw_encode_matches_audioop_for_every_sample_value():
    assert alaw_encode(ALL_SAMPLES) == audioop.lin2alaw(pcm(ALL_SAMPLES), 2)


@given(hnp.arrays(np.int16, st.integers(0, 400)))
def test_random_input_matches_audioop(samples):
    assert ulaw_encode(samples) == audioop.lin2ulaw(pcm(samples), 2)
    assert alaw_encode(samples) == audioop.lin2alaw(pcm(samples), 2)


@given(st.binary(max_size=400))
def test_random_codes_match_audioop(data):
    assert np.array_equal(ulaw_decode(data), reference_decode(audioop.ulaw2lin, data))
    assert np.array_equal(alaw_decode(data), reference_decode(audioop.alaw2lin, data))


def test_known_code_points():
    # G.711 Table 2a/2b extremes and the smallest steps around zero.
    assert ulaw_decode(b"\x00\x80\x7f\xff\x7e\xfe").tolist() == [-32124, 32124, 0, 0, -8, 8]
    assert alaw_decode(b"\x2a\xaa\x55\xd5").tolist() == [-32256, 32256, -8, 8]


def test_silence():
    zeros = np.zeros(160, dtype=np.int16)
    assert ulaw_encode(zeros) == bytes([SILENCE_ULAW]) * 160
    assert alaw_encode(zeros) == bytes([SILENCE_ALAW]) * 160
    assert not ulaw_decode(bytes([SILENCE_ULAW]) * 4).any()
    assert alaw_decode(bytes([SILENCE_ALAW]) * 4).tolist() == [8] * 4


def test_encoding_a_decoded_frame_is_lossless():
    assert ulaw_encode(ulaw_decode(ALL_CODES)) == ALL_CODES.replace(b"\x7f", b"\xff")
    assert alaw_encode(alaw_decode(ALL_CODES)) == ALL_CODES


def test_encode_accepts_views_and_rejects_other_dtypes():
    stereo = np.array([[1000, -1000], [2000, -2000]], dtype=np.int16)
    assert ulaw_encode(stereo[:, 0]) == audioop.lin2ulaw(pcm(np.array([1000, 2000])), 2)
    with pytest.raises(TypeError):
        ulaw_encode(np.zeros(4, dtype=np.float32))
    with pytest.raises(TypeError):
        alaw_encode(np.zeros(4, dtype=np.int32))


def test_decoded_array_is_writable_copy():
    decoded = ulaw_decode(b"\x00\x01")
    decoded[0] = 1
    assert ulaw_decode(b"\x00")[0] == -32124
