"""media/rtpengine/bencode.py: round trips, rtpengine's own examples, bad input."""

from __future__ import annotations

import contextlib

import pytest
from hypothesis import given
from hypothesis import strategies as st

from media.rtpengine.bencode import MAX_DEPTH, BencodeError, decode, encode

values = st.recursive(
    st.integers(min_value=-(10**19), max_value=10**19) | st.text(max_size=20),
    lambda inner: (
        st.lists(inner, max_size=5) | st.dictionaries(st.text(max_size=8), inner, max_size=5)
    ),
    max_leaves=20,
)


def test_the_ping_of_the_ng_documentation():
    assert encode({"command": "ping"}) == b"d7:command4:pinge"
    assert decode(b"d6:result4:ponge") == {"result": "pong"}


def test_keys_are_sorted_and_nesting_kept():
    data = encode({"sdp": "v=0", "flags": ["asymmetric"], "codec": {"mask": ["all"]}, "n": -3})
    assert data == b"d5:codecd4:maskl3:allee5:flagsl10:asymmetrice1:ni-3e3:sdp3:v=0e"
    assert decode(data) == {
        "sdp": "v=0",
        "flags": ["asymmetric"],
        "codec": {"mask": ["all"]},
        "n": -3,
    }


def test_bytes_encode_as_strings_and_undecodable_bytes_survive():
    assert encode(b"\xff\x00") == b"2:\xff\x00"
    assert encode(decode(b"2:\xff\x00")) == b"2:\xff\x00"


@given(values)
def test_every_value_round_trips(value):
    assert decode(encode(value)) == value


@given(st.binary(max_size=200))
def test_garbage_raises_only_bencode_errors(data):
    with contextlib.suppress(BencodeError):
        decode(data)


@given(values)
def test_every_proper_prefix_is_rejected(value):
    data = encode(value)
    for end in range(len(data)):
        with pytest.raises(BencodeError):
            decode(data[:end])


@pytest.mark.parametrize(
    ("data", "fault"),
    [
        (b"i01e", "leading zero"),
        (b"i-0e", "leading zero"),
        (b"ie", "integer is invalid"),
        (b"i1x2e", "integer is invalid"),
        (b"03:abc", "string length is invalid"),
        (b"5:abc", "string is truncated"),
        (b"di1ei2ee", "dictionary key is not a string"),
        (b"x", "unknown value type"),
        (b"i1ei2e", "trailing data"),
        (b"l" * (MAX_DEPTH + 1) + b"e" * (MAX_DEPTH + 1), "nesting is deeper"),
    ],
)
def test_faults_are_named(data, fault):
    with pytest.raises(BencodeError, match=fault):
        decode(data)


def test_booleans_and_floats_are_refused():
    with pytest.raises(TypeError):
        encode(True)
    with pytest.raises(TypeError):
        encode(1.5)  # type: ignore[arg-type]
