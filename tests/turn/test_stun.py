"""STUN messages: RFC 5769 vectors, aioice as an independent codec, and fuzzing."""

from __future__ import annotations

import hashlib
import struct

import pytest
from aioice import stun as aioice_stun
from hypothesis import given, settings
from hypothesis import strategies as st

from turn.stun import (
    ALLOCATE,
    BINDING,
    CHANNEL_BIND,
    ERROR,
    REQUEST,
    SUCCESS,
    Attr,
    Message,
    StunParseError,
    UnknownAttributes,
    is_channel_data,
    long_term_key,
    parse,
)

# RFC 5769 §2.4: a request with long-term authentication. The password
# "The<U+00AD>M<U+00AA>tr<U+2168>" is "TheMatrIX" after SASLprep.
RFC5769_LONG_TERM = bytes.fromhex(
    "000100602112a44278ad3433c6ad72c029da412e"
    "00060012e3839ee38388e383aae38383e382afe382b90000"
    "0015001c662f2f3439396b39353464364f4c33346f4c39465354767936347341"
    "0014000b6578616d706c652e6f726700"
    "00080014f67024656dd64a3e02b8e0712e85c9a28ca89666"
)
TID = bytes(range(12))


def test_rfc5769_long_term_request_parses_and_its_integrity_checks():
    message = parse(RFC5769_LONG_TERM)
    assert (message.method, message.cls) == (BINDING, REQUEST)
    assert message.get(Attr.USERNAME) == "\u30de\u30c8\u30ea\u30c3\u30af\u30b9"
    assert message.get(Attr.NONCE) == "f//499k954d6OL34oL9FSTvy64sA"
    assert message.get(Attr.REALM) == "example.org"
    key = long_term_key(message.get(Attr.USERNAME), "example.org", "TheMatrIX")
    assert (
        key
        == hashlib.md5(
            "\u30de\u30c8\u30ea\u30c3\u30af\u30b9:example.org:TheMatrIX".encode()
        ).digest()
    )
    assert message.check_integrity(key)
    assert not message.check_integrity(long_term_key("x", "example.org", "TheMatrIX"))


def test_message_type_interleaves_method_and_class_bits():
    raw = Message(CHANNEL_BIND, ERROR, TID).encode(fingerprint=False)
    assert raw[:2] == b"\x01\x19"  # RFC 8489 §5: 0b00_0001_0001_1001
    raw = Message(ALLOCATE, SUCCESS, TID).encode(fingerprint=False)
    assert raw[:2] == b"\x01\x03"


@pytest.mark.parametrize("sha256", [False, True])
def test_our_integrity_and_fingerprint_round_trip(sha256):
    key = long_term_key("alice", "callswitch", "secret")
    message = Message(ALLOCATE, REQUEST, TID)
    message.add(Attr.USERNAME, "alice").add(Attr.REQUESTED_TRANSPORT, 17)
    message.add(Attr.XOR_PEER_ADDRESS, ("192.0.2.1", 5000))
    message.add(Attr.XOR_PEER_ADDRESS, ("2001:db8::1", 5001))
    raw = message.encode(key, sha256=sha256)
    back = parse(raw)
    assert back.fingerprint_ok is True
    assert back.check_integrity(key)
    assert not back.check_integrity(b"k" * 16)
    assert back.get_all(Attr.XOR_PEER_ADDRESS) == [("192.0.2.1", 5000), ("2001:db8::1", 5001)]
    assert back.get(Attr.REQUESTED_TRANSPORT) == 17
    # One bit flipped in the username: integrity fails, not the parser (after
    # refreshing FINGERPRINT, which would catch it first).
    tampered = bytearray(raw)
    tampered[24] ^= 0x01
    with pytest.raises(StunParseError):
        parse(bytes(tampered))


def test_aioice_reads_what_we_write_and_we_read_what_it_writes():
    key = long_term_key("bob", "callswitch", "pw")
    ours = Message(BINDING, SUCCESS, TID)
    ours.add(Attr.XOR_MAPPED_ADDRESS, ("198.51.100.7", 40000))
    theirs = aioice_stun.parse_message(ours.encode(key))
    assert theirs.attributes["XOR-MAPPED-ADDRESS"] == ("198.51.100.7", 40000)
    assert "FINGERPRINT" in theirs.attributes
    assert theirs.check_message_integrity(key)
    assert not theirs.check_message_integrity(b"other key")

    request = aioice_stun.Message(
        message_method=aioice_stun.Method.ALLOCATE,
        message_class=aioice_stun.Class.REQUEST,
    )
    request.attributes["REQUESTED-TRANSPORT"] = 0x11000000
    request.attributes["USERNAME"] = "bob"
    request.attributes["XOR-PEER-ADDRESS"] = ("203.0.113.9", 3480)
    request.add_message_integrity(key)
    request.add_fingerprint()
    message = parse(bytes(request))
    assert (message.method, message.cls) == (ALLOCATE, REQUEST)
    assert message.get(Attr.REQUESTED_TRANSPORT) == 17
    assert message.get(Attr.XOR_PEER_ADDRESS) == ("203.0.113.9", 3480)
    assert message.check_integrity(key) and message.fingerprint_ok


def test_attributes_after_integrity_are_ignored_but_fingerprint_counts():
    key = b"0123456789abcdef"
    raw = Message(BINDING, REQUEST, TID).add(Attr.USERNAME, "u").encode(key, fingerprint=False)
    extra = struct.pack("!HH", Attr.SOFTWARE, 4) + b"evil"
    raw = raw[:2] + struct.pack("!H", len(raw) - 20 + len(extra)) + raw[4:] + extra
    message = parse(raw)
    assert message.get(Attr.SOFTWARE) is None and message.check_integrity(key)


def test_unknown_comprehension_required_attribute_is_420_optional_is_ignored():
    body = struct.pack("!HH", 0x7777, 4) + b"abcd" + struct.pack("!HH", 0xC001, 0)
    raw = struct.pack("!HHI", 0x0001, len(body), 0x2112A442) + TID + body
    with pytest.raises(UnknownAttributes) as caught:
        parse(raw)
    assert caught.value.types == [0x7777] and caught.value.code == 420
    assert caught.value.transaction_id == TID
    body = struct.pack("!HH", 0xC001, 0)
    assert parse(struct.pack("!HHI", 1, 4, 0x2112A442) + TID + body).attributes == []


@pytest.mark.parametrize(
    "raw",
    [
        b"",
        b"\x00\x01\x00\x00" + b"\x00" * 16,  # bad cookie
        struct.pack("!HHI", 1, 4, 0x2112A442) + TID,  # length past the end
        struct.pack("!HHI", 1, 3, 0x2112A442) + TID + b"abc",  # not a multiple of 4
        struct.pack("!HHI", 0xC001, 0, 0x2112A442) + TID,  # top bits set
        struct.pack("!HHI", 1, 8, 0x2112A442) + TID + struct.pack("!HH", 0x0020, 8) + b"\0" * 4,
        struct.pack("!HHI", 1, 8, 0x2112A442) + TID + struct.pack("!HHI", 0x000D, 2, 0),
    ],
)
def test_malformed_messages_raise_parse_errors(raw):
    with pytest.raises(StunParseError):
        parse(raw)


def test_channel_data_is_told_apart_from_stun():
    assert is_channel_data(b"\x40\x00\x00\x00")
    assert not is_channel_data(Message(BINDING, REQUEST, TID).encode())


# --- fuzzing -----------------------------------------------------------------------


def _valid_messages() -> list[bytes]:
    key = long_term_key("alice", "callswitch", "secret")
    out = []
    for method in (BINDING, ALLOCATE, CHANNEL_BIND):
        m = Message(method, REQUEST, TID)
        m.add(Attr.USERNAME, "alice").add(Attr.REALM, "callswitch").add(Attr.NONCE, "n" * 32)
        m.add(Attr.XOR_PEER_ADDRESS, ("192.0.2.1", 5000)).add(Attr.CHANNEL_NUMBER, 0x4001)
        m.add(Attr.LIFETIME, 600).add(Attr.EVEN_PORT, True).add(Attr.DATA, b"hello")
        m.add(Attr.ERROR_CODE, (438, "Stale Nonce")).add(Attr.RESERVATION_TOKEN, 7)
        out.append(m.encode(key))
        out.append(m.encode(key, sha256=True, fingerprint=False))
    return [*out, RFC5769_LONG_TERM]


VALID = _valid_messages()


def _never_raises_anything_else(data: bytes) -> None:
    try:
        message = parse(data)
    except StunParseError:
        return
    message.check_integrity(b"key")
    message.encode()


@settings(max_examples=800, deadline=None)
@given(st.binary(max_size=300))
def test_random_bytes_never_raise_out_of_the_parser(data):
    _never_raises_anything_else(data)


@settings(max_examples=1500, deadline=None)
@given(
    st.sampled_from(VALID),
    st.lists(st.tuples(st.integers(0, 400), st.integers(0, 255)), min_size=1, max_size=6),
    st.integers(0, 200),
)
def test_mutated_valid_messages_never_raise_out_of_the_parser(raw, flips, cut):
    data = bytearray(raw)
    for position, value in flips:
        data[position % len(data)] = value
    _never_raises_anything_else(bytes(data))
    _never_raises_anything_else(bytes(data[: max(0, len(data) - cut)]))
