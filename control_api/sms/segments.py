"""SMS segments as carriers count them (3GPP TS 23.038 §6.2.1 and TS 23.040 §9.2.3.24.1).

A body written entirely in the GSM 03.38 default alphabet travels as GSM-7: 160
septets fit one segment; a longer body is cut into parts of 153 septets, because the
6-octet concatenation header (UDH) takes 7 septets of each part. The characters of
the extension table (``^ { } \\ [ ~ ] | €`` and form feed) are an escape septet plus
one, so they count twice and are never cut in half.

Any other body travels as UCS-2, counted in UTF-16 code units (a character outside
the Basic Multilingual Plane, such as most emoji, takes two): 70 fit one segment,
longer bodies are cut into parts of 67, never between the two halves of a surrogate
pair.

Pure functions, no I/O. ``encode_gsm7`` / ``decode_gsm7`` give the unpacked septets
(one per octet) that SMPP's ``data_coding=0`` carries.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = [
    "GSM7",
    "UCS2",
    "Segmentation",
    "decode_gsm7",
    "encode_gsm7",
    "encode_ucs2",
    "is_gsm7",
    "segment",
]

GSM7 = "GSM-7"
UCS2 = "UCS-2"

GSM7_SINGLE = 160
GSM7_PART = 153
UCS2_SINGLE = 70
UCS2_PART = 67

ESCAPE = 0x1B

# TS 23.038 §6.2.1: the default alphabet, by septet value (0x1B is the escape to the
# extension table and has no character of its own).
_DEFAULT = (
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞ\x1bÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
assert len(_DEFAULT) == 128
_BASIC: dict[str, int] = {ch: code for code, ch in enumerate(_DEFAULT) if code != ESCAPE}
# TS 23.038 §6.2.1.1: the extension table, reached by the escape septet.
_EXTENSION: dict[str, int] = {
    "\f": 0x0A,
    "^": 0x14,
    "{": 0x28,
    "}": 0x29,
    "\\": 0x2F,
    "[": 0x3C,
    "~": 0x3D,
    "]": 0x3E,
    "|": 0x40,
    "€": 0x65,
}
_BASIC_BY_CODE = {code: ch for ch, code in _BASIC.items()}
_EXTENSION_BY_CODE = {code: ch for ch, code in _EXTENSION.items()}


@dataclass(frozen=True, slots=True)
class Segmentation:
    """How a body is sent: its encoding and the text of each segment, in order."""

    encoding: str
    parts: tuple[str, ...]

    @property
    def count(self) -> int:
        return len(self.parts)


def is_gsm7(text: str) -> bool:
    """True if every character is in the default alphabet or its extension table."""
    return all(ch in _BASIC or ch in _EXTENSION for ch in text)


def _septets(ch: str) -> int:
    return 2 if ch in _EXTENSION else 1


def _units(ch: str) -> int:
    return 2 if ord(ch) > 0xFFFF else 1


def segment(body: str) -> Segmentation:
    """The encoding of ``body`` and its cut into segments (an empty body is one)."""
    if is_gsm7(body):
        return Segmentation(GSM7, _cut(body, _septets, GSM7_SINGLE, GSM7_PART))
    return Segmentation(UCS2, _cut(body, _units, UCS2_SINGLE, UCS2_PART))


def _cut(body: str, size, single: int, part: int) -> tuple[str, ...]:
    sizes = [size(ch) for ch in body]
    if sum(sizes) <= single:
        return (body,)
    parts: list[str] = []
    start = used = 0
    for index, width in enumerate(sizes):
        # A character that does not fit whole starts the next part: an escape pair or
        # a surrogate pair is never split across two segments.
        if used + width > part:
            parts.append(body[start:index])
            start, used = index, 0
        used += width
    parts.append(body[start:])
    return tuple(parts)


def encode_gsm7(text: str) -> bytes:
    """Unpacked GSM-7: one septet per octet, extension characters as escape + code.

    Raises ``ValueError`` for a character outside the alphabet.
    """
    out = bytearray()
    for ch in text:
        code = _BASIC.get(ch)
        if code is not None:
            out.append(code)
            continue
        code = _EXTENSION.get(ch)
        if code is None:
            raise ValueError(f"{ch!r} is not in the GSM 03.38 alphabet")
        out += bytes((ESCAPE, code))
    return bytes(out)


def decode_gsm7(data: bytes) -> str:
    """Text of unpacked GSM-7 septets; unknown codes read as '?' (never raises)."""
    out: list[str] = []
    escaped = False
    for octet in data:
        code = octet & 0x7F
        if escaped:
            # An undefined extension code shows the default character (TS 23.038 §6.2.1.1).
            out.append(_EXTENSION_BY_CODE.get(code) or _BASIC_BY_CODE.get(code, "?"))
            escaped = False
        elif code == ESCAPE:
            escaped = True
        else:
            out.append(_BASIC_BY_CODE.get(code, "?"))
    if escaped:
        out.append(" ")  # a lone trailing escape reads as a space, as handsets show it
    return "".join(out)


def encode_ucs2(text: str) -> bytes:
    """UCS-2 as carriers send it today: UTF-16 big-endian (surrogate pairs kept)."""
    return text.encode("utf-16-be", errors="surrogatepass")
