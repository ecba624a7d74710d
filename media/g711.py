"""G.711 mu-law and A-law (ITU-T G.711) through numpy lookup tables built at import.

The segment/quantisation rules follow G.711 as implemented by the classic Sun reference code
(and the stdlib `audioop`), which is what every SIP peer we talk to uses: 16-bit input is first
reduced to 14 bits (mu-law) or 13 bits (A-law) by an arithmetic right shift.
"""

from __future__ import annotations

import numpy as np

__all__ = [
    "SILENCE_ALAW",
    "SILENCE_ULAW",
    "alaw_decode",
    "alaw_encode",
    "ulaw_decode",
    "ulaw_encode",
]

SILENCE_ULAW = 0xFF
SILENCE_ALAW = 0xD5

_MULAW_BIAS = 33  # 0x84 >> 2: keeps segment boundaries at powers of two
_MULAW_CLIP = 8159


def _bit_length(values: np.ndarray) -> np.ndarray:
    # frexp's exponent is exactly the bit length for positive integers below 2**53.
    return np.frexp(values.astype(np.float64))[1].astype(np.int32)


def _build_ulaw_decode() -> np.ndarray:
    code = ~np.arange(256, dtype=np.int32) & 0xFF
    magnitude = (((code & 0x0F) << 3) + 0x84) << ((code & 0x70) >> 4)
    return np.where(code & 0x80, 0x84 - magnitude, magnitude - 0x84).astype(np.int16)


def _build_alaw_decode() -> np.ndarray:
    code = np.arange(256, dtype=np.int32) ^ 0x55
    segment = (code & 0x70) >> 4
    mantissa = (code & 0x0F) << 4
    magnitude = np.where(
        segment == 0,
        mantissa + 8,
        (mantissa + 0x108) << np.maximum(segment - 1, 0),
    )
    return np.where(code & 0x80, magnitude, -magnitude).astype(np.int16)


def _all_int16() -> np.ndarray:
    # Index i of a 65536-entry table is the int16 whose uint16 view is i.
    return np.arange(65536, dtype=np.uint32).astype(np.uint16).view(np.int16).astype(np.int32)


def _build_ulaw_encode() -> np.ndarray:
    value = _all_int16() >> 2
    negative = value < 0
    magnitude = np.minimum(np.abs(value), _MULAW_CLIP) + _MULAW_BIAS
    segment = _bit_length(magnitude) - 6
    code = np.where(
        segment >= 8,
        0x7F,
        (np.minimum(segment, 7) << 4) | ((magnitude >> (np.minimum(segment, 7) + 1)) & 0x0F),
    )
    return (code ^ np.where(negative, 0x7F, 0xFF)).astype(np.uint8)


def _build_alaw_encode() -> np.ndarray:
    value = _all_int16() >> 3
    negative = value < 0
    # A-law is symmetric around -0.5, hence the one's complement for negatives.
    magnitude = np.where(negative, -value - 1, value)
    segment = np.maximum(_bit_length(magnitude) - 5, 0)
    shift = np.maximum(segment, 1)
    code = np.where(
        segment >= 8,
        0x7F,
        (np.minimum(segment, 7) << 4) | ((magnitude >> shift) & 0x0F),
    )
    return (code ^ np.where(negative, 0x55, 0xD5)).astype(np.uint8)


_ULAW_DECODE = _build_ulaw_decode()
_ALAW_DECODE = _build_alaw_decode()
_ULAW_ENCODE = _build_ulaw_encode()
_ALAW_ENCODE = _build_alaw_encode()
for _table in (_ULAW_DECODE, _ALAW_DECODE, _ULAW_ENCODE, _ALAW_ENCODE):
    _table.flags.writeable = False


def _as_index(samples: np.ndarray) -> np.ndarray:
    samples = np.asarray(samples)
    if samples.dtype != np.int16:
        raise TypeError(f"G.711 encoding takes int16 samples, not {samples.dtype}")
    return samples.view(np.uint16)


def ulaw_decode(data: bytes) -> np.ndarray:
    """mu-law octets to int16 linear samples."""
    return _ULAW_DECODE[np.frombuffer(data, dtype=np.uint8)]


def ulaw_encode(samples: np.ndarray) -> bytes:
    """int16 linear samples to mu-law octets."""
    result: bytes = _ULAW_ENCODE[_as_index(samples)].tobytes()
    return result


def alaw_decode(data: bytes) -> np.ndarray:
    """A-law octets to int16 linear samples."""
    return _ALAW_DECODE[np.frombuffer(data, dtype=np.uint8)]


def alaw_encode(samples: np.ndarray) -> bytes:
    """int16 linear samples to A-law octets."""
    result: bytes = _ALAW_ENCODE[_as_index(samples)].tobytes()
    return result
