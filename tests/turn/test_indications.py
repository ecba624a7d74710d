"""The relay path's Send/Data indication codec agrees with the full one, and aioice."""

from __future__ import annotations

import os

import pytest
from aioice import stun as aioice_stun
from hypothesis import given, settings
from hypothesis import strategies as st

from turn.indications import read_send, write_data
from turn.stun import DATA, INDICATION, SEND, Attr, Message, parse

PEERS = [("198.51.100.20", 4000), ("2001:db8::7", 5004)]


@pytest.mark.parametrize("peer", PEERS)
@pytest.mark.parametrize("fingerprint", [False, True])
@pytest.mark.parametrize("payload", [b"", b"a", b"hello", b"x" * 101])
def test_read_send_agrees_with_the_parser(peer, fingerprint, payload):
    message = Message(SEND, INDICATION, os.urandom(12))
    message.add(Attr.XOR_PEER_ADDRESS, peer).add(Attr.DATA, payload)
    message.add(Attr.DONT_FRAGMENT, True).add(Attr.SOFTWARE, "x")
    raw = message.encode(fingerprint=fingerprint)
    assert read_send(raw) == (peer, payload)
    assert read_send(raw) == (peer, payload)  # the second time from the cache


def test_read_send_refuses_what_the_rfc_discards():
    good = Message(SEND, INDICATION, os.urandom(12)).add(Attr.XOR_PEER_ADDRESS, PEERS[0])
    assert read_send(good.encode()) is None  # no DATA
    assert (
        read_send(Message(SEND, INDICATION, os.urandom(12)).add(Attr.DATA, b"x").encode()) is None
    )
    raw = bytearray(good.add(Attr.DATA, b"payload").encode())
    raw[-1] ^= 1  # FINGERPRINT wrong
    assert read_send(bytes(raw)) is None
    unknown = Message(SEND, INDICATION, os.urandom(12)).add(Attr.XOR_PEER_ADDRESS, PEERS[0])
    unknown.add(Attr.DATA, b"x").add(0x7F00, b"")
    assert read_send(unknown.encode(fingerprint=False)) is None
    request = Message(SEND, 0, os.urandom(12)).add(Attr.XOR_PEER_ADDRESS, PEERS[0])
    assert read_send(request.add(Attr.DATA, b"x").encode()) is None  # a request, not an indication


@pytest.mark.parametrize("peer", PEERS)
@pytest.mark.parametrize("payload", [b"", b"abc", b"x" * 100])
def test_write_data_is_a_data_indication_both_parsers_read(peer, payload):
    raw = write_data(peer, payload)
    message = parse(raw)
    assert (message.method, message.cls) == (DATA, INDICATION)
    assert message.get(Attr.XOR_PEER_ADDRESS) == peer and message.get(Attr.DATA) == payload
    theirs = aioice_stun.parse_message(raw)
    assert theirs.attributes["XOR-PEER-ADDRESS"] == peer
    assert theirs.attributes["DATA"] == payload
    assert write_data(peer, payload)[8:20] != raw[8:20]  # a fresh transaction ID each time


@settings(max_examples=500, deadline=None)
@given(st.binary(max_size=120))
def test_read_send_never_raises(data):
    read_send(b"\x00\x16" + data[:2] + b"\x21\x12\xa4\x42" + data[2:])
    read_send(data)
