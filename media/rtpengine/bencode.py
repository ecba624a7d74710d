"""Bencode, the encoding of rtpengine's ng control protocol (BEP 3).

Four kinds of value: integers (``i42e``), byte strings (``4:spam``), lists
(``l…e``) and dictionaries (``d…e``, keys byte strings). Strings decode to
``str`` (UTF-8, undecodable bytes kept as surrogates, so any input re-encodes to
the same bytes); ``bytes`` encode as they are. Pure: no I/O.

:func:`decode` raises only :class:`BencodeError`, whose message names the fault
and where it is; it bounds nesting so that a datagram cannot exhaust the stack.
:func:`decode_prefix` reads one value off the front of a stream (ng over TCP),
raising :class:`BencodeTruncated` while the value is not all there yet.
"""

from __future__ import annotations

__all__ = ["BencodeError", "BencodeTruncated", "Value", "decode", "decode_prefix", "encode"]

Value = int | str | bytes | list["Value"] | dict[str, "Value"]

MAX_DEPTH = 32  # rtpengine's replies nest a few levels; more is garbage or an attack


class BencodeError(ValueError):
    """Input that is not one well-formed bencoded value."""


class BencodeTruncated(BencodeError):
    """The input ends before its value does: more may make it whole."""


def encode(value: Value) -> bytes:
    """``value`` bencoded; dictionary keys sorted as BEP 3 asks."""
    out: list[bytes] = []
    _encode(value, out)
    return b"".join(out)


def _encode(value: Value, out: list[bytes]) -> None:
    if isinstance(value, bool):
        raise TypeError("bencode has no booleans")
    if isinstance(value, int):
        out.append(b"i%de" % value)
    elif isinstance(value, str):
        data = value.encode("utf-8", "surrogateescape")
        out.append(b"%d:%s" % (len(data), data))
    elif isinstance(value, bytes):
        out.append(b"%d:%s" % (len(value), value))
    elif isinstance(value, list):
        out.append(b"l")
        for item in value:
            _encode(item, out)
        out.append(b"e")
    elif isinstance(value, dict):
        out.append(b"d")
        keys = sorted((key.encode("utf-8", "surrogateescape"), key) for key in value)
        for raw, key in keys:
            out.append(b"%d:%s" % (len(raw), raw))
            _encode(value[key], out)
        out.append(b"e")
    else:
        raise TypeError(f"cannot bencode {type(value).__name__}")


def decode(data: bytes) -> Value:
    """The one value ``data`` holds (nothing may follow it)."""
    value, end = _decode(data, 0, 0)
    if end != len(data):
        raise BencodeError(f"trailing data at offset {end}")
    return value


def decode_prefix(data: bytes, at: int = 0) -> tuple[Value, int]:
    """The value that starts at ``at`` and the offset just past it (more may follow)."""
    return _decode(data, at, 0)


def _decode(data: bytes, at: int, depth: int) -> tuple[Value, int]:
    if at >= len(data):
        raise BencodeTruncated(f"value is truncated at offset {at}")
    lead = data[at]
    if lead == 0x69:  # i
        return _integer(data, at)
    if 0x30 <= lead <= 0x39:
        raw, end = _string(data, at)
        return raw.decode("utf-8", "surrogateescape"), end
    if depth >= MAX_DEPTH:
        raise BencodeError(f"nesting is deeper than {MAX_DEPTH} at offset {at}")
    if lead == 0x6C:  # l
        items: list[Value] = []
        at += 1
        while at < len(data) and data[at] != 0x65:
            item, at = _decode(data, at, depth + 1)
            items.append(item)
        if at >= len(data):
            raise BencodeTruncated("list is truncated")
        return items, at + 1
    if lead == 0x64:  # d
        mapping: dict[str, Value] = {}
        at += 1
        while at < len(data) and data[at] != 0x65:
            if not 0x30 <= data[at] <= 0x39:
                raise BencodeError(f"dictionary key is not a string at offset {at}")
            raw, at = _string(data, at)
            mapping[raw.decode("utf-8", "surrogateescape")], at = _decode(data, at, depth + 1)
        if at >= len(data):
            raise BencodeTruncated("dictionary is truncated")
        return mapping, at + 1
    raise BencodeError(f"unknown value type {chr(lead)!r} at offset {at}")


def _integer(data: bytes, at: int) -> tuple[int, int]:
    end = data.find(b"e", at + 1)
    if end < 0:
        raise BencodeTruncated(f"integer is truncated at offset {at}")
    digits = data[at + 1 : end]
    body = digits[1:] if digits.startswith(b"-") else digits
    if not body or not body.isdigit() or len(body) > 20:
        raise BencodeError(f"integer is invalid at offset {at}")
    if (body.startswith(b"0") and len(body) > 1) or digits == b"-0":
        raise BencodeError(f"integer has a leading zero at offset {at}")
    return int(digits), end + 1


def _string(data: bytes, at: int) -> tuple[bytes, int]:
    colon = data.find(b":", at)
    if colon < 0 and len(data) - at <= 10 and data[at:].isdigit():
        raise BencodeTruncated(f"string length is truncated at offset {at}")
    if colon < 0 or colon - at > 10:
        raise BencodeError(f"string length is invalid at offset {at}")
    digits = data[at:colon]
    if not digits.isdigit() or (digits.startswith(b"0") and len(digits) > 1):
        raise BencodeError(f"string length is invalid at offset {at}")
    end = colon + 1 + int(digits)
    if end > len(data):
        raise BencodeTruncated(f"string is truncated at offset {at}")
    return data[colon + 1 : end], end
