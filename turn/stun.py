"""STUN messages (RFC 8489) with the TURN attributes (RFC 8656), sans-I/O.

A message is a method, a class, a transaction ID and a list of attributes.
Attributes are decoded and encoded through one table (type → name, unpack,
pack), so adding one is a row, not a branch. ``parse`` never raises anything
but ``StunParseError``: whatever a peer sends, the caller gets a message or a
named error carrying what is needed to answer it (400 or 420).

Integrity (§14.5, §14.6) and FINGERPRINT (§14.7) are checked against the raw
bytes the message arrived in, which ``parse`` keeps with the attribute offsets.
"""

from __future__ import annotations

import binascii
import hashlib
import hmac
import ipaddress
import struct
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypedDict

__all__ = [
    "ALLOCATE",
    "BINDING",
    "CHANNEL_BIND",
    "CREATE_PERMISSION",
    "DATA",
    "ERROR",
    "INDICATION",
    "MAGIC_COOKIE",
    "REFRESH",
    "REQUEST",
    "SEND",
    "SUCCESS",
    "Attr",
    "Message",
    "StunParseError",
    "UnknownAttributes",
    "is_channel_data",
    "long_term_key",
    "parse",
]

MAGIC_COOKIE = 0x2112A442
_COOKIE_BYTES = struct.pack("!I", MAGIC_COOKIE)
HEADER_LENGTH = 20
FINGERPRINT_XOR = 0x5354554E

# Methods (RFC 8489 §18.2, RFC 8656 §17).
BINDING = 0x001
ALLOCATE = 0x003
REFRESH = 0x004
SEND = 0x006
DATA = 0x007
CREATE_PERMISSION = 0x008
CHANNEL_BIND = 0x009

# Classes, already in their bit positions of the message type (§5).
REQUEST = 0x000
INDICATION = 0x010
SUCCESS = 0x100
ERROR = 0x110

REASONS = {
    300: "Try Alternate",
    400: "Bad Request",
    401: "Unauthorized",
    403: "Forbidden",
    420: "Unknown Attribute",
    437: "Allocation Mismatch",
    438: "Stale Nonce",
    440: "Address Family not Supported",
    441: "Wrong Credentials",
    442: "Unsupported Transport Protocol",
    443: "Peer Address Family Mismatch",
    486: "Allocation Quota Reached",
    500: "Server Error",
    508: "Insufficient Capacity",
}


class Attr:
    """Attribute types (RFC 8489 §18.3, RFC 8656 §18)."""

    MAPPED_ADDRESS = 0x0001
    USERNAME = 0x0006
    MESSAGE_INTEGRITY = 0x0008
    ERROR_CODE = 0x0009
    UNKNOWN_ATTRIBUTES = 0x000A
    CHANNEL_NUMBER = 0x000C
    LIFETIME = 0x000D
    XOR_PEER_ADDRESS = 0x0012
    DATA = 0x0013
    REALM = 0x0014
    NONCE = 0x0015
    XOR_RELAYED_ADDRESS = 0x0016
    REQUESTED_ADDRESS_FAMILY = 0x0017
    EVEN_PORT = 0x0018
    REQUESTED_TRANSPORT = 0x0019
    DONT_FRAGMENT = 0x001A
    MESSAGE_INTEGRITY_SHA256 = 0x001C
    PASSWORD_ALGORITHM = 0x001D
    USERHASH = 0x001E
    XOR_MAPPED_ADDRESS = 0x0020
    RESERVATION_TOKEN = 0x0022
    PRIORITY = 0x0024
    USE_CANDIDATE = 0x0025
    ADDITIONAL_ADDRESS_FAMILY = 0x8000
    ADDRESS_ERROR_CODE = 0x8001
    PASSWORD_ALGORITHMS = 0x8002
    ALTERNATE_DOMAIN = 0x8003
    ICMP = 0x8004
    SOFTWARE = 0x8022
    ALTERNATE_SERVER = 0x8023
    FINGERPRINT = 0x8028
    ICE_CONTROLLED = 0x8029
    ICE_CONTROLLING = 0x802A
    RESPONSE_ORIGIN = 0x802B
    OTHER_ADDRESS = 0x802C


class _Header(TypedDict):
    """What a parse error reports of a readable header."""

    method: int
    cls: int
    transaction_id: bytes


class StunParseError(ValueError):
    """The bytes are not a well-formed STUN message.

    When the header was readable, ``method``, ``cls`` and ``transaction_id`` say
    what to answer (a request gets ``code``, 400 unless set otherwise).
    """

    def __init__(
        self,
        reason: str,
        *,
        method: int | None = None,
        cls: int | None = None,
        transaction_id: bytes | None = None,
        code: int = 400,
    ) -> None:
        super().__init__(reason)
        self.reason = reason
        self.method = method
        self.cls = cls
        self.transaction_id = transaction_id
        self.code = code


class UnknownAttributes(StunParseError):
    """Comprehension-required attributes we do not know (§6.3.1: answer 420)."""

    def __init__(self, types: list[int], **header: Any) -> None:
        super().__init__("unknown comprehension-required attribute", code=420, **header)
        self.types = types


# --- attribute codecs --------------------------------------------------------------


class _BadValue(ValueError):
    pass


def _unpack_address(data: bytes, tid: bytes) -> tuple[str, int]:
    if len(data) < 4 or data[0] != 0:
        raise _BadValue("address")
    family = data[1]
    (port,) = struct.unpack_from("!H", data, 2)
    if family == 1 and len(data) == 8:
        return str(ipaddress.IPv4Address(data[4:8])), port
    if family == 2 and len(data) == 20:
        return str(ipaddress.IPv6Address(data[4:20])), port
    raise _BadValue("address family")


def _pack_address(value: tuple[str, int], tid: bytes) -> bytes:
    host, port = value[0], value[1]
    ip = ipaddress.ip_address(host)
    family = 1 if ip.version == 4 else 2
    return struct.pack("!BBH", 0, family, port) + ip.packed


def _xor_bytes(packed: bytes, tid: bytes) -> bytes:
    mask = _COOKIE_BYTES + tid
    return bytes(a ^ b for a, b in zip(packed, mask, strict=False))


def _unpack_xor_address(data: bytes, tid: bytes) -> tuple[str, int]:
    if len(data) < 4 or data[0] != 0:
        raise _BadValue("address")
    family = data[1]
    (port,) = struct.unpack_from("!H", data, 2)
    port ^= MAGIC_COOKIE >> 16
    if family == 1 and len(data) == 8:
        return str(ipaddress.IPv4Address(_xor_bytes(data[4:8], tid))), port
    if family == 2 and len(data) == 20:
        return str(ipaddress.IPv6Address(_xor_bytes(data[4:20], tid))), port
    raise _BadValue("address family")


def _pack_xor_address(value: tuple[str, int], tid: bytes) -> bytes:
    host, port = value[0], value[1]
    ip = ipaddress.ip_address(host)
    family = 1 if ip.version == 4 else 2
    return struct.pack("!BBH", 0, family, port ^ (MAGIC_COOKIE >> 16)) + _xor_bytes(ip.packed, tid)


def _unpack_text(data: bytes, tid: bytes) -> str:
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise _BadValue("text") from exc


def _pack_text(value: str, tid: bytes) -> bytes:
    return value.encode("utf-8")


def _unpack_bytes(data: bytes, tid: bytes) -> bytes:
    return bytes(data)


def _pack_bytes(value: bytes, tid: bytes) -> bytes:
    return bytes(value)


def _unpack_u32(data: bytes, tid: bytes) -> int:
    if len(data) != 4:
        raise _BadValue("length")
    value: int = struct.unpack("!I", data)[0]
    return value


def _pack_u32(value: int, tid: bytes) -> bytes:
    return struct.pack("!I", value)


def _unpack_u64(data: bytes, tid: bytes) -> int:
    if len(data) != 8:
        raise _BadValue("length")
    value: int = struct.unpack("!Q", data)[0]
    return value


def _pack_u64(value: int, tid: bytes) -> bytes:
    return struct.pack("!Q", value)


def _unpack_first_byte(data: bytes, tid: bytes) -> int:
    """REQUESTED-TRANSPORT, REQUESTED-ADDRESS-FAMILY: one byte then RFFU."""
    if len(data) != 4:
        raise _BadValue("length")
    return data[0]


def _pack_first_byte(value: int, tid: bytes) -> bytes:
    return bytes((value, 0, 0, 0))


def _unpack_channel(data: bytes, tid: bytes) -> int:
    if len(data) != 4:
        raise _BadValue("length")
    value: int = struct.unpack_from("!H", data)[0]
    return value


def _pack_channel(value: int, tid: bytes) -> bytes:
    return struct.pack("!HH", value, 0)


def _unpack_even_port(data: bytes, tid: bytes) -> bool:
    """EVEN-PORT: the R bit asks to reserve the next port too (RFC 8656 §18.6)."""
    if len(data) != 1:
        raise _BadValue("length")
    return bool(data[0] & 0x80)


def _pack_even_port(value: bool, tid: bytes) -> bytes:
    return b"\x80" if value else b"\x00"


def _unpack_empty(data: bytes, tid: bytes) -> bool:
    if data:
        raise _BadValue("length")
    return True


def _pack_empty(value: Any, tid: bytes) -> bytes:
    return b""


def _unpack_error_code(data: bytes, tid: bytes) -> tuple[int, str]:
    if len(data) < 4:
        raise _BadValue("length")
    code = (data[2] & 0x7) * 100 + data[3]
    return code, _unpack_text(data[4:], tid)


def _pack_error_code(value: tuple[int, str], tid: bytes) -> bytes:
    code, reason = value
    return struct.pack("!HBB", 0, code // 100, code % 100) + reason.encode("utf-8")


def _unpack_attribute_list(data: bytes, tid: bytes) -> list[int]:
    if len(data) % 2:
        raise _BadValue("length")
    return [struct.unpack_from("!H", data, i)[0] for i in range(0, len(data), 2)]


def _pack_attribute_list(value: list[int], tid: bytes) -> bytes:
    return b"".join(struct.pack("!H", t) for t in value)


def _unpack_fixed(size: int) -> Callable[[bytes, bytes], bytes]:
    def unpack(data: bytes, tid: bytes) -> bytes:
        if len(data) != size:
            raise _BadValue("length")
        return bytes(data)

    return unpack


def _unpack_sha256_integrity(data: bytes, tid: bytes) -> bytes:
    if not 16 <= len(data) <= 32 or len(data) % 4:
        raise _BadValue("length")
    return bytes(data)


Codec = tuple[str, Callable[[bytes, bytes], Any], Callable[[Any, bytes], bytes]]

ATTRIBUTES: dict[int, Codec] = {
    Attr.MAPPED_ADDRESS: ("MAPPED-ADDRESS", _unpack_address, _pack_address),
    Attr.USERNAME: ("USERNAME", _unpack_text, _pack_text),
    Attr.MESSAGE_INTEGRITY: ("MESSAGE-INTEGRITY", _unpack_fixed(20), _pack_bytes),
    Attr.ERROR_CODE: ("ERROR-CODE", _unpack_error_code, _pack_error_code),
    Attr.UNKNOWN_ATTRIBUTES: ("UNKNOWN-ATTRIBUTES", _unpack_attribute_list, _pack_attribute_list),
    Attr.CHANNEL_NUMBER: ("CHANNEL-NUMBER", _unpack_channel, _pack_channel),
    Attr.LIFETIME: ("LIFETIME", _unpack_u32, _pack_u32),
    Attr.XOR_PEER_ADDRESS: ("XOR-PEER-ADDRESS", _unpack_xor_address, _pack_xor_address),
    Attr.DATA: ("DATA", _unpack_bytes, _pack_bytes),
    Attr.REALM: ("REALM", _unpack_text, _pack_text),
    Attr.NONCE: ("NONCE", _unpack_text, _pack_text),
    Attr.XOR_RELAYED_ADDRESS: ("XOR-RELAYED-ADDRESS", _unpack_xor_address, _pack_xor_address),
    Attr.REQUESTED_ADDRESS_FAMILY: (
        "REQUESTED-ADDRESS-FAMILY",
        _unpack_first_byte,
        _pack_first_byte,
    ),
    Attr.EVEN_PORT: ("EVEN-PORT", _unpack_even_port, _pack_even_port),
    Attr.REQUESTED_TRANSPORT: ("REQUESTED-TRANSPORT", _unpack_first_byte, _pack_first_byte),
    Attr.DONT_FRAGMENT: ("DONT-FRAGMENT", _unpack_empty, _pack_empty),
    Attr.MESSAGE_INTEGRITY_SHA256: (
        "MESSAGE-INTEGRITY-SHA256",
        _unpack_sha256_integrity,
        _pack_bytes,
    ),
    Attr.PASSWORD_ALGORITHM: ("PASSWORD-ALGORITHM", _unpack_bytes, _pack_bytes),
    Attr.USERHASH: ("USERHASH", _unpack_fixed(32), _pack_bytes),
    Attr.XOR_MAPPED_ADDRESS: ("XOR-MAPPED-ADDRESS", _unpack_xor_address, _pack_xor_address),
    Attr.RESERVATION_TOKEN: ("RESERVATION-TOKEN", _unpack_u64, _pack_u64),
    Attr.PRIORITY: ("PRIORITY", _unpack_u32, _pack_u32),
    Attr.USE_CANDIDATE: ("USE-CANDIDATE", _unpack_empty, _pack_empty),
    Attr.ADDITIONAL_ADDRESS_FAMILY: (
        "ADDITIONAL-ADDRESS-FAMILY",
        _unpack_first_byte,
        _pack_first_byte,
    ),
    Attr.ADDRESS_ERROR_CODE: ("ADDRESS-ERROR-CODE", _unpack_bytes, _pack_bytes),
    Attr.PASSWORD_ALGORITHMS: ("PASSWORD-ALGORITHMS", _unpack_bytes, _pack_bytes),
    Attr.ALTERNATE_DOMAIN: ("ALTERNATE-DOMAIN", _unpack_text, _pack_text),
    Attr.ICMP: ("ICMP", _unpack_bytes, _pack_bytes),
    Attr.SOFTWARE: ("SOFTWARE", _unpack_text, _pack_text),
    Attr.ALTERNATE_SERVER: ("ALTERNATE-SERVER", _unpack_address, _pack_address),
    Attr.FINGERPRINT: ("FINGERPRINT", _unpack_u32, _pack_u32),
    Attr.ICE_CONTROLLED: ("ICE-CONTROLLED", _unpack_u64, _pack_u64),
    Attr.ICE_CONTROLLING: ("ICE-CONTROLLING", _unpack_u64, _pack_u64),
    Attr.RESPONSE_ORIGIN: ("RESPONSE-ORIGIN", _unpack_address, _pack_address),
    Attr.OTHER_ADDRESS: ("OTHER-ADDRESS", _unpack_address, _pack_address),
}

# Attributes that may appear more than once and all count (RFC 8656 §9.1).
_REPEATABLE = frozenset({Attr.XOR_PEER_ADDRESS})


# --- message -----------------------------------------------------------------------


def _message_type(method: int, cls: int) -> int:
    return (method & 0x000F) | ((method & 0x0070) << 1) | ((method & 0x0F80) << 2) | cls


def _split_type(message_type: int) -> tuple[int, int]:
    method = (
        (message_type & 0x000F) | ((message_type & 0x00E0) >> 1) | ((message_type & 0x3E00) >> 2)
    )
    return method, message_type & 0x0110


def long_term_key(username: str, realm: str, password: str) -> bytes:
    """The long-term credential key, MD5(username ":" realm ":" password) (§9.2.2).

    RFC 8489 asks for OpaqueString (SASLprep's successor) first; usernames and
    passwords here are ASCII, where it changes nothing.
    """
    return hashlib.md5(f"{username}:{realm}:{password}".encode()).digest()


@dataclass(slots=True)
class Message:
    """A STUN message (RFC 8489 §5) and, after ``parse``, where it came from.

    ``attributes`` keeps arrival order; repeated XOR-PEER-ADDRESS all count, any
    other repeated attribute counts once (the first, §14).
    """

    method: int
    cls: int
    transaction_id: bytes
    attributes: list[tuple[int, Any]] = field(default_factory=list)
    raw: bytes = b""
    integrity_offset: int = -1  # offset of MESSAGE-INTEGRITY in raw, -1 if absent
    sha256_offset: int = -1  # offset of MESSAGE-INTEGRITY-SHA256
    fingerprint_ok: bool | None = None  # None: no FINGERPRINT attribute

    def get(self, attr: int, default: Any = None) -> Any:
        for kind, value in self.attributes:
            if kind == attr:
                return value
        return default

    def get_all(self, attr: int) -> list[Any]:
        return [value for kind, value in self.attributes if kind == attr]

    def __contains__(self, attr: int) -> bool:
        return any(kind == attr for kind, _ in self.attributes)

    def add(self, attr: int, value: Any = True) -> Message:
        self.attributes.append((attr, value))
        return self

    # -- integrity ------------------------------------------------------------------

    def check_integrity(self, key: bytes) -> bool:
        """True when the received MESSAGE-INTEGRITY-SHA256, or else MESSAGE-INTEGRITY,
        matches ``key``; False when neither is present or neither matches (§14.5, §14.6)."""
        raw = self.raw
        if self.sha256_offset >= 0:
            offset = self.sha256_offset
            (size,) = struct.unpack_from("!H", raw, offset + 2)
            expected = raw[offset + 4 : offset + 4 + size]
            digest = hmac.new(key, _with_length(raw, offset, 4 + size), hashlib.sha256).digest()
            return hmac.compare_digest(digest[:size], expected)
        if self.integrity_offset >= 0:
            offset = self.integrity_offset
            expected = raw[offset + 4 : offset + 24]
            digest = hmac.new(key, _with_length(raw, offset, 24), hashlib.sha1).digest()
            return hmac.compare_digest(digest, expected)
        return False

    @property
    def has_integrity(self) -> bool:
        return self.integrity_offset >= 0 or self.sha256_offset >= 0

    # -- encoding -------------------------------------------------------------------

    def encode(
        self, key: bytes | None = None, *, sha256: bool = False, fingerprint: bool = True
    ) -> bytes:
        """The message on the wire; with ``key``, MESSAGE-INTEGRITY (or its SHA-256
        variant) is appended, then FINGERPRINT when asked."""
        tid = self.transaction_id
        body = bytearray()
        for attr, value in self.attributes:
            if attr in (Attr.MESSAGE_INTEGRITY, Attr.MESSAGE_INTEGRITY_SHA256, Attr.FINGERPRINT):
                continue
            codec = ATTRIBUTES.get(attr)
            data = codec[2](value, tid) if codec else bytes(value)
            body += struct.pack("!HH", attr, len(data)) + data
            body += bytes(-len(data) % 4)
        header_type = _message_type(self.method, self.cls)
        if key is not None:
            size = 32 if sha256 else 20
            head = struct.pack("!HHI", header_type, len(body) + 4 + size, MAGIC_COOKIE) + tid
            algorithm = hashlib.sha256 if sha256 else hashlib.sha1
            digest = hmac.new(key, head + body, algorithm).digest()[:size]
            attr = Attr.MESSAGE_INTEGRITY_SHA256 if sha256 else Attr.MESSAGE_INTEGRITY
            body += struct.pack("!HH", attr, size) + digest
        if fingerprint:
            head = struct.pack("!HHI", header_type, len(body) + 8, MAGIC_COOKIE) + tid
            crc = (binascii.crc32(head + body) ^ FINGERPRINT_XOR) & 0xFFFFFFFF
            body += struct.pack("!HHI", Attr.FINGERPRINT, 4, crc)
        return struct.pack("!HHI", header_type, len(body), MAGIC_COOKIE) + tid + bytes(body)

    def response(self, cls: int = SUCCESS) -> Message:
        return Message(self.method, cls, self.transaction_id)

    def error(self, code: int, reason: str | None = None) -> Message:
        answer = Message(self.method, ERROR, self.transaction_id)
        answer.add(Attr.ERROR_CODE, (code, reason or REASONS.get(code, "Error")))
        return answer


def _with_length(raw: bytes, offset: int, attribute_size: int) -> bytes:
    """The bytes before ``offset`` with the header length as if the message
    ended after an attribute of ``attribute_size`` bytes there (§14.5)."""
    length = offset - HEADER_LENGTH + attribute_size
    return raw[:2] + struct.pack("!H", length) + raw[4:offset]


def is_channel_data(data: bytes) -> bool:
    """ChannelData starts with a channel number 0x4000-0x4FFF (RFC 8656 §12.4)."""
    return len(data) >= 4 and 0x40 <= data[0] <= 0x4F


def parse(data: bytes) -> Message:
    """Decode one STUN message from ``data``; raise ``StunParseError`` otherwise."""
    data = bytes(data)
    if len(data) < HEADER_LENGTH:
        raise StunParseError("shorter than a STUN header")
    message_type, length, cookie = struct.unpack_from("!HHI", data)
    if message_type & 0xC000 or cookie != MAGIC_COOKIE:
        raise StunParseError("not a STUN message")
    if length % 4 or len(data) != HEADER_LENGTH + length:
        raise StunParseError("length does not match the datagram")
    method, cls = _split_type(message_type)
    tid = data[8:20]
    header: _Header = {"method": method, "cls": cls, "transaction_id": tid}
    message = Message(method, cls, tid, raw=data)
    unknown: list[int] = []
    seen: set[int] = set()
    offset = HEADER_LENGTH
    after_integrity = False
    while offset < len(data):
        if offset + 4 > len(data):
            raise StunParseError("truncated attribute header", **header)
        attr, size = struct.unpack_from("!HH", data, offset)
        value_at = offset + 4
        if value_at + size > len(data):
            raise StunParseError("attribute runs past the message", **header)
        raw_value = data[value_at : value_at + size]
        if message.fingerprint_ok is not None:
            raise StunParseError("attribute after FINGERPRINT", **header)
        if attr == Attr.FINGERPRINT:
            if size != 4:
                raise StunParseError("bad FINGERPRINT", **header)
            check = data[:2] + struct.pack("!H", value_at + 4 - HEADER_LENGTH) + data[4:offset]
            crc = (binascii.crc32(check) ^ FINGERPRINT_XOR) & 0xFFFFFFFF
            message.fingerprint_ok = crc == struct.unpack("!I", raw_value)[0]
        elif after_integrity and attr != Attr.MESSAGE_INTEGRITY_SHA256:
            pass  # §14.5: attributes after MESSAGE-INTEGRITY are ignored, FINGERPRINT aside
        else:
            codec = ATTRIBUTES.get(attr)
            if codec is None:
                if attr < 0x8000:
                    unknown.append(attr)
            elif attr not in seen or attr in _REPEATABLE:
                try:
                    value = codec[1](raw_value, tid)
                except (_BadValue, ValueError) as exc:
                    raise StunParseError(f"bad {codec[0]}: {exc}", **header) from None
                message.attributes.append((attr, value))
                seen.add(attr)
                if attr == Attr.MESSAGE_INTEGRITY:
                    message.integrity_offset = offset
                    after_integrity = True
                elif attr == Attr.MESSAGE_INTEGRITY_SHA256:
                    if message.sha256_offset < 0:
                        message.sha256_offset = offset
                    after_integrity = True
        offset = value_at + size + (-size % 4)
    if message.fingerprint_ok is False:
        raise StunParseError("FINGERPRINT does not match", **header)
    if unknown:
        raise UnknownAttributes(unknown, **header)
    return message
