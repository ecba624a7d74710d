"""SMPP 3.4 for an ESME, sans-I/O (SMPP v3.4 Issue 1.2, 12-Oct-1999).

- ``Pdu`` and ``parse_pdu`` / ``Pdu.serialize``: the §3.2 header and the bodies of
  bind_transceiver (§4.1.5), submit_sm (§4.4.1), deliver_sm (§4.6.1), enquire_link
  (§4.11), unbind (§4.2), generic_nack (§4.3) and their responses; optional
  parameters (§5.3) as raw TLVs.
- ``split_parts``: a message cut into submit_sm bodies, concatenated by a UDH with
  an 8-bit reference (3GPP TS 23.040 §9.2.3.24.1), GSM-7 unpacked (data_coding 0)
  or UCS-2 (data_coding 8).
- ``parse_receipt``: the delivery receipt text of Appendix B.
- ``EsmeConnection``: one ESME session. Feed it bytes with ``receive_data(data, now)``,
  take bytes with ``data_to_send()`` and events with ``events()``; it keeps the
  enquire_link timer and response timeouts (``next_deadline()``, ``handle_timer``),
  answers deliver_sm and enquire_link itself, and bounds outstanding submit_sm by
  the window. No socket, no clock of its own.
"""

from __future__ import annotations

import re
import struct
from dataclasses import KW_ONLY, dataclass, field

from control_api.sms.segments import GSM7, decode_gsm7, encode_gsm7, encode_ucs2, segment

__all__ = [
    "BIND_TRANSCEIVER",
    "DELIVER_SM",
    "ENQUIRE_LINK",
    "GENERIC_NACK",
    "SUBMIT_SM",
    "UNBIND",
    "BindFailed",
    "Bound",
    "Concatenation",
    "ConnectionLost",
    "DeliverSm",
    "EsmeConnection",
    "FieldValue",
    "Pdu",
    "Receipt",
    "SmppError",
    "SubmitResult",
    "WindowFull",
    "decode_short_message",
    "parse_pdu",
    "parse_receipt",
    "relative_validity",
    "split_parts",
]

# A body field's value: an integer ("b"), a C-octet string ("c") or octets ("m", short_message).
FieldValue = int | str | bytes

HEADER = struct.Struct(">IIII")
MAX_PDU = 64 * 1024
RESPONSE = 0x80000000

GENERIC_NACK = 0x80000000
BIND_TRANSCEIVER = 0x00000009
SUBMIT_SM = 0x00000004
DELIVER_SM = 0x00000005
UNBIND = 0x00000006
ENQUIRE_LINK = 0x00000015

# §5.1.3 command_status values used here.
ESME_ROK = 0x00
ESME_RINVMSGLEN = 0x01
ESME_RINVCMDLEN = 0x02
ESME_RINVCMDID = 0x03
ESME_RTHROTTLED = 0x58
ESME_RMSGQFUL = 0x14
ESME_RSYSERR = 0x08

ESM_UDHI = 0x40
ESM_RECEIPT = 0x04  # §5.2.12: bits 5-2 = 0001, SMSC delivery receipt
DATA_GSM7 = 0x00
DATA_UCS2 = 0x08
TLV_RECEIPTED_MESSAGE_ID = 0x001E
TLV_MESSAGE_STATE = 0x0427
MAX_SHORT_MESSAGE = 254


class SmppError(ValueError):
    """The peer sent bytes that are not a valid SMPP 3.4 PDU; ``status`` to nack with."""

    def __init__(self, message: str, status: int = ESME_RINVCMDLEN) -> None:
        super().__init__(message)
        self.status = status


class WindowFull(Exception):
    """As many submit_sm are outstanding as the window allows."""


# The C-Octet String and integer fields of each body, in order (§4).
_BIND_FIELDS = (
    ("system_id", "c", 16),
    ("password", "c", 9),
    ("system_type", "c", 13),
    ("interface_version", "b", 0),
    ("addr_ton", "b", 0),
    ("addr_npi", "b", 0),
    ("address_range", "c", 41),
)
_SM_FIELDS = (
    ("service_type", "c", 6),
    ("source_addr_ton", "b", 0),
    ("source_addr_npi", "b", 0),
    ("source_addr", "c", 21),
    ("dest_addr_ton", "b", 0),
    ("dest_addr_npi", "b", 0),
    ("destination_addr", "c", 21),
    ("esm_class", "b", 0),
    ("protocol_id", "b", 0),
    ("priority_flag", "b", 0),
    ("schedule_delivery_time", "c", 17),
    ("validity_period", "c", 17),
    ("registered_delivery", "b", 0),
    ("replace_if_present_flag", "b", 0),
    ("data_coding", "b", 0),
    ("sm_default_msg_id", "b", 0),
    ("short_message", "m", 0),
)
_ID_FIELDS = (("message_id", "c", 65),)
_SYSTEM_ID_FIELDS = (("system_id", "c", 16),)
BODIES: dict[int, tuple] = {
    BIND_TRANSCEIVER: _BIND_FIELDS,
    BIND_TRANSCEIVER | RESPONSE: _SYSTEM_ID_FIELDS,
    SUBMIT_SM: _SM_FIELDS,
    SUBMIT_SM | RESPONSE: _ID_FIELDS,
    DELIVER_SM: _SM_FIELDS,
    DELIVER_SM | RESPONSE: _ID_FIELDS,
    UNBIND: (),
    UNBIND | RESPONSE: (),
    ENQUIRE_LINK: (),
    ENQUIRE_LINK | RESPONSE: (),
    GENERIC_NACK: (),
}


@dataclass(slots=True)
class Pdu:
    """One SMPP PDU: header, body fields by name, optional TLVs (tag → value)."""

    command_id: int
    sequence: int
    status: int = ESME_ROK
    fields: dict[str, FieldValue] = field(default_factory=dict)
    tlvs: dict[int, bytes] = field(default_factory=dict)

    def integer(self, name: str) -> int:
        """An integer field ("b" in ``BODIES``); 0 when absent."""
        return int(self.fields.get(name, 0))

    def text(self, name: str) -> str:
        """A C-octet string field ("c" in ``BODIES``); "" when absent."""
        return str(self.fields.get(name, ""))

    def octets(self, name: str) -> bytes:
        """An octet string field (``short_message``); b"" when absent."""
        return _octets(name, self.fields.get(name))

    def serialize(self) -> bytes:
        body = bytearray()
        layout = BODIES.get(self.command_id, ())
        # A response with an error status carries no body (§3.2 / §4 notes).
        if not (self.command_id & RESPONSE and self.status != ESME_ROK):
            for name, kind, size in layout:
                value = self.fields.get(name)
                if kind == "b":
                    body.append(int(value or 0) & 0xFF)
                elif kind == "c":
                    text = (
                        value.encode("latin-1") if isinstance(value, str) else _octets(name, value)
                    )
                    if len(text) >= size:
                        raise ValueError(f"{name} is longer than {size - 1} octets")
                    body += text + b"\x00"
                else:
                    data = _octets(name, value)
                    if len(data) > MAX_SHORT_MESSAGE:
                        raise ValueError("short_message is longer than 254 octets")
                    body.append(len(data))
                    body += data
            for tag, value in self.tlvs.items():
                body += struct.pack(">HH", tag, len(value)) + value
        return (
            HEADER.pack(HEADER.size + len(body), self.command_id, self.status, self.sequence) + body
        )


def _octets(name: str, value: FieldValue | None) -> bytes:
    """A field's octets: a missing or empty field has none; a number has no octets."""
    if not value:
        return b""
    if isinstance(value, bytes | bytearray):
        return bytes(value)
    raise TypeError(f"{name} must be octets, not {type(value).__name__}")


def parse_pdu(data: bytes) -> Pdu:
    """One whole PDU (header included). Raises ``SmppError``."""
    if len(data) < HEADER.size:
        raise SmppError("PDU shorter than its header")
    length, command_id, status, sequence = HEADER.unpack_from(data)
    if length != len(data):
        raise SmppError("command_length does not match the PDU")
    layout = BODIES.get(command_id)
    if layout is None:
        raise SmppError(f"unknown command_id 0x{command_id:08x}", ESME_RINVCMDID)
    pdu = Pdu(command_id, sequence, status)
    offset = HEADER.size
    if command_id & RESPONSE and status != ESME_ROK and offset == length:
        return pdu
    for name, kind, size in layout:
        if kind == "b":
            if offset >= length:
                raise SmppError(f"{name} missing", ESME_RINVMSGLEN)
            pdu.fields[name] = data[offset]
            offset += 1
        elif kind == "c":
            end = data.find(b"\x00", offset, min(offset + size, length))
            if end < 0:
                raise SmppError(
                    f"{name} is not a terminated string of at most {size} octets", ESME_RINVMSGLEN
                )
            pdu.fields[name] = data[offset:end].decode("latin-1")
            offset = end + 1
        else:
            if offset >= length:
                raise SmppError("sm_length missing", ESME_RINVMSGLEN)
            size = data[offset]
            offset += 1
            if offset + size > length:
                raise SmppError("short_message runs past the PDU", ESME_RINVMSGLEN)
            pdu.fields[name] = bytes(data[offset : offset + size])
            offset += size
    while offset < length:
        if offset + 4 > length:
            raise SmppError("truncated optional parameter", ESME_RINVMSGLEN)
        tag, size = struct.unpack_from(">HH", data, offset)
        offset += 4
        if offset + size > length:
            raise SmppError("optional parameter runs past the PDU", ESME_RINVMSGLEN)
        pdu.tlvs[tag] = bytes(data[offset : offset + size])
        offset += size
    return pdu


def relative_validity(seconds: int) -> str:
    """§7.1.1 relative time ``YYMMDDhhmmss000R`` for a number of seconds."""
    days, rest = divmod(max(int(seconds), 0), 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    years, days = divmod(days, 365)
    months, days = divmod(days, 30)
    return f"{years:02d}{months:02d}{days:02d}{hours:02d}{minutes:02d}{secs:02d}000R"


def split_parts(text: str, reference: int) -> tuple[int, list[bytes]]:
    """``(data_coding, short_message of each part)``; several parts carry a UDH with
    the 8-bit concatenation reference ``reference`` (IEI 0x00)."""
    cut = segment(text)
    coding = DATA_GSM7 if cut.encoding == GSM7 else DATA_UCS2
    encode = encode_gsm7 if coding == DATA_GSM7 else encode_ucs2
    if cut.count == 1:
        return coding, [encode(text)]
    total = cut.count
    if total > 255:
        raise ValueError("a message has at most 255 parts")
    return coding, [
        bytes((5, 0x00, 3, reference & 0xFF, total, number)) + encode(part)
        for number, part in enumerate(cut.parts, start=1)
    ]


@dataclass(frozen=True, slots=True)
class Concatenation:
    """The concatenation information element of a UDH (TS 23.040 §9.2.3.24.1/.8)."""

    reference: int
    total: int
    number: int


def decode_short_message(pdu: Pdu) -> tuple[str, Concatenation | None]:
    """The text of a submit_sm/deliver_sm and, with a UDH, its concatenation header."""
    data = pdu.octets("short_message")
    concat = None
    if pdu.integer("esm_class") & ESM_UDHI and data:
        header_length = data[0]
        header = data[1 : 1 + header_length]
        data = data[1 + header_length :]
        index = 0
        while index + 2 <= len(header):
            iei, size = header[index], header[index + 1]
            value = header[index + 2 : index + 2 + size]
            if iei == 0x00 and size == 3 and len(value) == 3:
                concat = Concatenation(value[0], value[1], value[2])
            elif iei == 0x08 and size == 4 and len(value) == 4:
                concat = Concatenation(value[0] << 8 | value[1], value[2], value[3])
            index += 2 + size
    coding = pdu.integer("data_coding")
    if coding == DATA_UCS2:
        text = data.decode("utf-16-be", errors="replace")
    elif coding in (0x03, 0x04):  # Latin-1, 8-bit binary shown as Latin-1
        text = data.decode("latin-1")
    else:
        text = decode_gsm7(data)
    return text, concat


@dataclass(frozen=True, slots=True)
class Receipt:
    """A delivery receipt (Appendix B): the SMSC's id of the message and its state."""

    message_id: str
    stat: str
    err: str

    @property
    def delivered(self) -> bool:
        return self.stat == "DELIVRD"

    @property
    def final(self) -> bool:
        return self.stat not in ("ENROUTE", "ACCEPTD")


_RECEIPT_FIELD = re.compile(r"(id|sub|dlvrd|submit date|done date|stat|err):(\S*)", re.I)
# §5.2.28 message_state → Appendix B stat
_STATES = {
    1: "ENROUTE",
    2: "DELIVRD",
    3: "EXPIRED",
    4: "DELETED",
    5: "UNDELIV",
    6: "ACCEPTD",
    7: "UNKNOWN",
    8: "REJECTD",
}


def parse_receipt(pdu: Pdu) -> Receipt | None:
    """The receipt a deliver_sm carries, or None when it is a message."""
    if not pdu.integer("esm_class") & ESM_RECEIPT:
        return None
    text = pdu.octets("short_message").decode("latin-1")
    found = {name.lower(): value for name, value in _RECEIPT_FIELD.findall(text)}
    message_id = found.get("id", "")
    stat = found.get("stat", "").upper()
    if TLV_RECEIPTED_MESSAGE_ID in pdu.tlvs:
        message_id = pdu.tlvs[TLV_RECEIPTED_MESSAGE_ID].rstrip(b"\x00").decode("latin-1")
    if pdu.tlvs.get(TLV_MESSAGE_STATE):
        stat = _STATES.get(pdu.tlvs[TLV_MESSAGE_STATE][0], stat or "UNKNOWN")
    return Receipt(message_id, stat or "UNKNOWN", found.get("err", ""))


# Events


@dataclass(frozen=True, slots=True)
class Bound:
    """bind_transceiver_resp with ESME_ROK: submit_sm may flow (§4.1.6)."""

    system_id: str


@dataclass(frozen=True, slots=True)
class BindFailed:
    """bind_transceiver_resp with an error status (§4.1.6, §5.1.3)."""

    status: int


@dataclass(frozen=True, slots=True)
class SubmitResult:
    """submit_sm_resp (§4.4.2): the SMSC's message_id, or an error status."""

    sequence: int
    status: int
    message_id: str


@dataclass(frozen=True, slots=True)
class DeliverSm:
    """A deliver_sm (§4.6.1), already answered: a receipt or a message."""

    pdu: Pdu


@dataclass(frozen=True, slots=True)
class ConnectionLost:
    """The session is over (unbind, a timeout, a refused bind, the link closed)."""

    reason: str


@dataclass(eq=False)
class EsmeConnection:
    """One bind_transceiver session of an ESME, as a pure state machine.

    Made with the bind's credentials (``system_id``, ``password``) and, by keyword, its
    ``system_type``, the submit_sm ``window`` and the timers; the rest is its state.
    """

    system_id: str
    password: str = field(repr=False)
    _: KW_ONLY
    system_type: str = ""
    window: int = 10
    enquire_interval: float = 30.0
    response_timeout: float = 10.0
    state: str = field(default="open", init=False)  # open → binding → bound → closed
    _buffer: bytearray = field(default_factory=bytearray, init=False, repr=False)
    _out: bytearray = field(default_factory=bytearray, init=False, repr=False)
    _events: list = field(default_factory=list, init=False, repr=False)
    _sequence: int = field(default=0, init=False, repr=False)
    # sequence → (command, deadline)
    _pending: dict[int, tuple[int, float]] = field(default_factory=dict, init=False, repr=False)
    _submits: int = field(default=0, init=False, repr=False)
    _last_activity: float = field(default=0.0, init=False, repr=False)

    def _next_sequence(self) -> int:
        self._sequence = self._sequence % 0x7FFFFFFF + 1
        return self._sequence

    def _send(self, pdu: Pdu) -> None:
        self._out += pdu.serialize()

    def _request(self, command_id: int, now: float, **fields) -> int:
        sequence = self._next_sequence()
        self._send(Pdu(command_id, sequence, fields=fields))
        self._pending[sequence] = (command_id, now + self.response_timeout)
        return sequence

    def bind(self, now: float) -> None:
        self.state = "binding"
        self._last_activity = now
        self._request(
            BIND_TRANSCEIVER,
            now,
            system_id=self.system_id,
            password=self.password,
            system_type=self.system_type,
            interface_version=0x34,
            addr_ton=0,
            addr_npi=0,
            address_range="",
        )

    @property
    def can_submit(self) -> bool:
        return self.state == "bound" and self._submits < self.window

    @property
    def outstanding(self) -> int:
        return self._submits

    def submit(self, now: float, **fields) -> int:
        """Queue a submit_sm; its sequence number. Raises ``WindowFull`` when the
        window is full and RuntimeError when not bound."""
        if self.state != "bound":
            raise RuntimeError("not bound")
        if self._submits >= self.window:
            raise WindowFull()
        self._submits += 1
        return self._request(SUBMIT_SM, now, **fields)

    def unbind(self, now: float) -> None:
        if self.state == "bound":
            self._request(UNBIND, now)
            self.state = "unbinding"

    def receive_data(self, data: bytes, now: float) -> None:
        self._buffer += data
        self._last_activity = now
        while len(self._buffer) >= 4 and self.state != "closed":
            length = int.from_bytes(self._buffer[:4], "big")
            if length < HEADER.size or length > MAX_PDU:
                self._lost("command_length out of range")
                return
            if len(self._buffer) < length:
                return
            raw = bytes(self._buffer[:length])
            del self._buffer[:length]
            try:
                pdu = parse_pdu(raw)
            except SmppError as exc:
                sequence = HEADER.unpack_from(raw)[3]
                self._send(Pdu(GENERIC_NACK, sequence, exc.status))
                continue
            self._handle(pdu, now)

    def _handle(self, pdu: Pdu, now: float) -> None:
        command = pdu.command_id
        if command & RESPONSE:
            pending = self._pending.pop(pdu.sequence, None)
            if pending is None:
                return
            request = pending[0]
            if command == GENERIC_NACK:
                command = request | RESPONSE
            if request == BIND_TRANSCEIVER:
                if pdu.status == ESME_ROK:
                    self.state = "bound"
                    self._events.append(Bound(pdu.text("system_id")))
                else:
                    self._events.append(BindFailed(pdu.status))
                    self._lost(f"bind refused with status 0x{pdu.status:x}")
            elif request == SUBMIT_SM:
                self._submits -= 1
                self._events.append(SubmitResult(pdu.sequence, pdu.status, pdu.text("message_id")))
            elif request == UNBIND:
                self._lost("unbound")
            return
        if command == DELIVER_SM:
            self._send(Pdu(DELIVER_SM | RESPONSE, pdu.sequence, fields={"message_id": ""}))
            self._events.append(DeliverSm(pdu))
        elif command == ENQUIRE_LINK:
            self._send(Pdu(ENQUIRE_LINK | RESPONSE, pdu.sequence))
        elif command == UNBIND:
            self._send(Pdu(UNBIND | RESPONSE, pdu.sequence))
            self._lost("the SMSC unbound")
        else:
            self._send(Pdu(GENERIC_NACK, pdu.sequence, ESME_RINVCMDID))

    def _lost(self, reason: str) -> None:
        if self.state == "closed":
            return
        self.state = "closed"
        # Outstanding submits will never be answered: report them as failed so that
        # their messages go back to the queue.
        for sequence, (command, _) in list(self._pending.items()):
            if command == SUBMIT_SM:
                self._events.append(SubmitResult(sequence, ESME_RSYSERR, ""))
        self._pending.clear()
        self._submits = 0
        self._events.append(ConnectionLost(reason))

    def connection_lost(self, reason: str = "connection closed") -> None:
        self._lost(reason)

    def next_deadline(self) -> float | None:
        if self.state == "closed":
            return None
        deadlines = [deadline for _, deadline in self._pending.values()]
        if self.state == "bound":
            deadlines.append(self._last_activity + self.enquire_interval)
        return min(deadlines) if deadlines else None

    def handle_timer(self, now: float) -> None:
        if self.state == "closed":
            return
        for _sequence, (command, deadline) in list(self._pending.items()):
            if deadline <= now:
                self._lost(f"no answer to command 0x{command:08x}")
                return
        if self.state == "bound" and now >= self._last_activity + self.enquire_interval:
            self._last_activity = now
            self._request(ENQUIRE_LINK, now)

    def data_to_send(self) -> bytes:
        data = bytes(self._out)
        self._out.clear()
        return data

    def events(self) -> list:
        events, self._events = self._events, []
        return events
