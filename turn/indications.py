"""Send and Data indications (RFC 8656 §11) on the relay path, without a ``Message``.

A client that has not bound a channel sends every datagram as a Send
indication and gets every answer as a Data indication, so these are as hot as
ChannelData. Reading one walks the attributes in place and keeps only
XOR-PEER-ADDRESS and DATA; writing one joins a header, the peer's
XOR-PEER-ADDRESS (for IPv4 it does not depend on the transaction ID, so it is
encoded once per peer and cached) and the payload. Anything unusual (an
unknown comprehension-required attribute, a bad FINGERPRINT, a length that
does not add up) makes ``read_send`` return None: §11.2 says to discard it.
"""

from __future__ import annotations

import binascii
import os
import struct

from turn.stun import (
    ATTRIBUTES,
    FINGERPRINT_XOR,
    MAGIC_COOKIE,
    Attr,
    _pack_xor_address,
    _unpack_xor_address,
)

__all__ = ["read_send", "write_data"]

_COOKIE = struct.pack("!I", MAGIC_COOKIE)
_SEND_INDICATION = b"\x00\x16"
_DATA_INDICATION = 0x0017
_HEADER = struct.Struct("!HHI")
_ATTR = struct.Struct("!HH")
_PADDING = (b"", b"\0\0\0", b"\0\0", b"\0")
_CACHE_LIMIT = 4096
_peer_of: dict[bytes, tuple[str, int]] = {}  # IPv4 XOR-PEER-ADDRESS value → peer
_attribute_of: dict[tuple[str, int], bytes] = {}  # IPv4 peer → encoded attribute


def read_send(data: bytes) -> tuple[tuple[str, int], bytes] | None:
    """(peer, payload) of a well-formed Send indication, else None."""
    size = len(data)
    if size < 20 or data[:2] != _SEND_INDICATION or data[4:8] != _COOKIE:
        return None
    if ((data[2] << 8) | data[3]) + 20 != size:
        return None
    peer = payload = None
    offset = 20
    while offset + 4 <= size:
        kind, length = _ATTR.unpack_from(data, offset)
        start = offset + 4
        end = start + length
        if end > size:
            return None
        if kind == Attr.XOR_PEER_ADDRESS:
            if peer is None:
                raw = data[start:end]
                peer = _peer_of.get(raw)
                if peer is None:
                    try:
                        peer = _unpack_xor_address(raw, data[8:20])
                    except ValueError:
                        return None
                    if length == 8:
                        if len(_peer_of) > _CACHE_LIMIT:
                            _peer_of.clear()
                        _peer_of[raw] = peer
        elif kind == Attr.DATA:
            if payload is None:
                payload = data[start:end]
        elif kind == Attr.FINGERPRINT:
            check = data[:2] + struct.pack("!H", end - 20) + data[4:offset]
            crc = (binascii.crc32(check) ^ FINGERPRINT_XOR) & 0xFFFFFFFF
            if length != 4 or crc != int.from_bytes(data[start:end], "big"):
                return None
        elif kind < 0x8000 and kind not in ATTRIBUTES:
            return None
        offset = end + (-length % 4)
    if peer is None or payload is None:
        return None
    return peer, payload


def write_data(peer: tuple[str, int], payload: bytes | memoryview) -> bytes:
    """A Data indication carrying ``payload`` from ``peer`` (§11.4)."""
    tid = os.urandom(12)
    attribute = _attribute_of.get(peer)
    if attribute is None:
        value = _pack_xor_address(peer, tid)
        attribute = _ATTR.pack(Attr.XOR_PEER_ADDRESS, len(value)) + value
        if len(value) == 8:  # IPv4: the same for every transaction ID
            if len(_attribute_of) > _CACHE_LIMIT:
                _attribute_of.clear()
            _attribute_of[peer] = attribute
    size = len(payload)
    padding = _PADDING[size % 4]
    length = len(attribute) + 4 + size + len(padding)
    return b"".join(
        (
            _HEADER.pack(_DATA_INDICATION, length, MAGIC_COOKIE),
            tid,
            attribute,
            _ATTR.pack(Attr.DATA, size),
            payload,
            padding,
        )
    )
