"""Segment counts by the rules of reference §7 (TS 23.038 / 23.040)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from control_api.sms.segments import (
    GSM7,
    UCS2,
    decode_gsm7,
    encode_gsm7,
    encode_ucs2,
    is_gsm7,
    segment,
)

EXTENSION = "^{}\\[~]|€\f"

# body, encoding, segments
TABLE = [
    ("", GSM7, 1),
    ("hello", GSM7, 1),
    ("a" * 160, GSM7, 1),
    ("a" * 161, GSM7, 2),
    ("a" * 306, GSM7, 2),
    ("a" * 307, GSM7, 3),
    ("a" * 400, GSM7, 3),
    ("€" * 80, GSM7, 1),  # 160 septets
    ("€" * 81, GSM7, 2),  # 162 septets
    ("a" * 159 + "€", GSM7, 2),  # 161 septets
    ("a" * 158 + "[", GSM7, 1),  # 160 septets
    # The escape pair would straddle septets 153/154: it moves whole to part 2.
    ("a" * 152 + "{" + "a" * 10, GSM7, 2),
    ("a" * 152 + "{" * 77, GSM7, 3),
    ("@£$¥èéùìòÇØøÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ¡ÄÖÑÜ§¿äöñüà", GSM7, 1),
    ("ç", UCS2, 1),  # lowercase c-cedilla is not in the alphabet (only Ç is)
    ("á" * 70, UCS2, 1),
    ("á" * 71, UCS2, 2),
    ("á" * 134, UCS2, 2),
    ("á" * 135, UCS2, 3),
    ("😀" * 35, UCS2, 1),  # 70 UTF-16 code units
    ("😀" * 36, UCS2, 2),  # 72 code units
    ("a" * 69 + "😀", UCS2, 2),  # 71 code units
    ("a" * 66 + "😀" + "a" * 5, UCS2, 2),  # the pair moves whole to part 2
    ("a" * 159 + "é", GSM7, 1),  # é is in the default alphabet
    ("Привет", UCS2, 1),
    ("`", UCS2, 1),  # backtick is not GSM-7
]


@pytest.mark.parametrize(("body", "encoding", "count"), TABLE)
def test_tricky_bodies(body, encoding, count):
    result = segment(body)
    assert (result.encoding, result.count) == (encoding, count)
    assert "".join(result.parts) == body


def test_extension_pair_moves_whole():
    parts = segment("a" * 152 + "{" + "a" * 10).parts
    assert parts[0] == "a" * 152
    assert parts[1].startswith("{")


def test_gsm7_round_trip_and_escape():
    assert encode_gsm7("@") == b"\x00"
    assert encode_gsm7("€") == b"\x1b\x65"
    assert encode_gsm7("A{") == b"\x41\x1b\x28"
    assert decode_gsm7(encode_gsm7("Hi {there} €5 " + EXTENSION)) == "Hi {there} €5 " + EXTENSION
    with pytest.raises(ValueError):
        encode_gsm7("😀")


def test_ucs2_keeps_surrogate_pairs():
    assert encode_ucs2("😀") == b"\xd8\x3d\xde\x00"
    parts = segment("a" * 66 + "😀" + "a" * 5).parts
    assert parts == ("a" * 66, "😀" + "a" * 5)


@given(st.text(max_size=600))
def test_parts_fit_and_join(body):
    result = segment(body)
    assert "".join(result.parts) == body
    assert result.count >= 1
    if result.encoding == GSM7:
        assert is_gsm7(body)
        sizes = [len(encode_gsm7(part)) for part in result.parts]
        limit = 160 if result.count == 1 else 153
        assert all(size <= limit for size in sizes)
        assert decode_gsm7(encode_gsm7(body)) == body
    else:
        assert not is_gsm7(body)
        sizes = [len(encode_ucs2(part)) // 2 for part in result.parts]
        limit = 70 if result.count == 1 else 67
        assert all(size <= limit for size in sizes)
    if result.count > 1:
        # greedy: every part but the last is full to within one character
        for size in sizes[:-1]:
            assert size >= limit - 1


@given(st.binary(max_size=300))
def test_decode_never_raises(data):
    assert isinstance(decode_gsm7(data), str)
