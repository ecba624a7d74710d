"""The browser signaling protocol: JSON text messages over one WebSocket (docs/webrtc.md).

Every message is a JSON object with a ``type``. A client first sends
``register`` with its access token; after ``registered`` it may place calls
(``call`` with an SDP offer, answered by ``answer``), accept or reject incoming
ones (``incoming`` carries our SDP offer; ``accept`` carries the client's
answer), trickle ICE candidates, send DTMF digits, mute and hang up. The server
reports call progress with ``status``, ends calls with ``hangup`` or ``cancel``
and refuses what it cannot take with ``error``.

Pure: :func:`parse` turns text into a message dataclass or raises
:class:`ProtocolError` carrying the error code to answer with; :func:`serialize`
turns a message into text.
"""

from __future__ import annotations

import json
import re
from dataclasses import asdict, dataclass, field, fields
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from _typeshed import DataclassInstance

__all__ = [
    "Accept",
    "Answer",
    "Cancel",
    "Candidate",
    "Dial",
    "Dtmf",
    "Error",
    "Hangup",
    "Incoming",
    "Mute",
    "ProtocolError",
    "Register",
    "Registered",
    "Reject",
    "Status",
    "parse",
    "serialize",
]

MAX_MESSAGE = 64 * 1024
MAX_SDP = 32 * 1024
# Error codes, after Twilio's Voice SDK where one fits (20101-20107 are the token's).
MALFORMED = 31100  # not JSON, no such type, a field missing or of the wrong kind
NOT_REGISTERED = 31201  # anything but register before registering
NO_SUCH_CALL = 31404  # a call this client does not have
CALL_FAILED = 31005  # the call could not be set up (bad SDP, nothing routes there)
INCOMING_NOT_ALLOWED = 20106  # the token's grant does not allow being called

_CALL_ID = re.compile(r"[A-Za-z0-9_-]{1,64}")
_DIGITS = re.compile(r"[0-9*#A-Dw]{1,64}")
_ADDRESS = re.compile(r"[^\x00-\x1f]{1,256}")


class ProtocolError(Exception):
    """A message we cannot take; ``code`` and ``message`` go back as an ``error``."""

    def __init__(self, code: int, message: str, *, call: str | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.call = call


# Client to server


@dataclass(frozen=True, slots=True)
class Register:
    token: str
    type: str = "register"


@dataclass(frozen=True, slots=True)
class Dial:
    """Place a call: ``sdp`` is the client's offer; ``ref`` is the client's name for it
    until the server's ``answer`` gives the CallSid."""

    ref: str
    sdp: str
    to: str = ""
    params: dict[str, str] = field(default_factory=dict)
    type: str = "call"


@dataclass(frozen=True, slots=True)
class Accept:
    """Answer an ``incoming`` call with the client's SDP answer."""

    call: str
    sdp: str
    type: str = "accept"


@dataclass(frozen=True, slots=True)
class Reject:
    call: str
    type: str = "reject"


@dataclass(frozen=True, slots=True)
class Candidate:
    """A trickled ICE candidate (the ``candidate`` line of RTCIceCandidate), or an
    empty one for the end of candidates."""

    call: str
    candidate: str = ""
    sdpMid: str | None = None  # the browser's own field names
    sdpMLineIndex: int | None = None
    type: str = "candidate"


@dataclass(frozen=True, slots=True)
class Dtmf:
    call: str
    digits: str
    type: str = "dtmf"


@dataclass(frozen=True, slots=True)
class Mute:
    call: str
    muted: bool
    type: str = "mute"


@dataclass(frozen=True, slots=True)
class Hangup:
    """Either way: the client hangs up, or the server tells it the call ended."""

    call: str
    reason: str = ""
    type: str = "hangup"


# Server to client


@dataclass(frozen=True, slots=True)
class Registered:
    identity: str
    account_sid: str
    expires: int
    incoming: bool
    outgoing: bool
    ice_servers: list[dict[str, Any]] = field(default_factory=list)
    type: str = "registered"


@dataclass(frozen=True, slots=True)
class Incoming:
    call: str
    sdp: str
    from_: str = ""
    to: str = ""
    type: str = "incoming"


@dataclass(frozen=True, slots=True)
class Answer:
    """Our SDP answer to a client's ``call``: ``call`` is the new CallSid."""

    ref: str
    call: str
    sdp: str
    type: str = "answer"


@dataclass(frozen=True, slots=True)
class Status:
    """A call's progress: ringing, in-progress, or its final Twilio status."""

    call: str
    status: str
    type: str = "status"


@dataclass(frozen=True, slots=True)
class Cancel:
    """An incoming call stopped ringing here: the caller hung up or another tab answered."""

    call: str
    reason: str = ""
    type: str = "cancel"


@dataclass(frozen=True, slots=True)
class Error:
    code: int
    message: str
    call: str | None = None
    type: str = "error"


_CLIENT_MESSAGES = {
    cls.__dataclass_fields__["type"].default: cls
    for cls in (Register, Dial, Accept, Reject, Candidate, Dtmf, Mute, Hangup)
}


def _malformed(message: str, call: object = None) -> ProtocolError:
    return ProtocolError(MALFORMED, message, call=call if isinstance(call, str) else None)


def _text(
    data: dict[str, Any], name: str, pattern: re.Pattern[str] | None = None, limit: int = 4096
) -> str:
    value = data.get(name)
    if not isinstance(value, str) or len(value) > limit:
        raise _malformed(f"{name} must be a string", data.get("call"))
    if pattern is not None and not pattern.fullmatch(value):
        raise _malformed(f"{name} is not valid", data.get("call"))
    return value


ClientMessage = Register | Dial | Accept | Reject | Candidate | Dtmf | Mute | Hangup


def parse(text: str | bytes) -> ClientMessage:
    """One client message from its JSON text."""
    if isinstance(text, bytes):
        try:
            text = text.decode("utf-8")
        except UnicodeDecodeError:
            raise _malformed("not UTF-8") from None
    if len(text) > MAX_MESSAGE:
        raise _malformed("message too long")
    try:
        data = json.loads(text)
    except (json.JSONDecodeError, RecursionError):
        raise _malformed("not JSON") from None
    if not isinstance(data, dict):
        raise _malformed("a message is a JSON object")
    kind = data.get("type")
    cls = _CLIENT_MESSAGES.get(kind) if isinstance(kind, str) else None
    if cls is None:
        raise _malformed(f"unknown message type {str(kind)[:40]!r}", data.get("call"))
    if cls is Register:
        return Register(_text(data, "token", limit=8192))
    if cls is Dial:
        params = data.get("params", {})
        if not isinstance(params, dict) or len(params) > 32:
            raise _malformed("params must be an object of at most 32 strings")
        checked = {}
        for key, value in params.items():
            if not isinstance(value, str | int | float | bool) or len(str(value)) > 1024:
                raise _malformed("params must be an object of strings")
            if len(key) > 128:
                raise _malformed("param names are at most 128 characters")
            checked[key] = str(value)
        to = data.get("to", "")
        if to != "":
            to = _text(data, "to", _ADDRESS, 256)
        return Dial(
            ref=_text(data, "ref", _CALL_ID),
            sdp=_text(data, "sdp", limit=MAX_SDP),
            to=to,
            params=checked,
        )
    call = _text(data, "call", _CALL_ID)
    if cls is Accept:
        return Accept(call, _text(data, "sdp", limit=MAX_SDP))
    if cls is Reject:
        return Reject(call)
    if cls is Candidate:
        candidate = data.get("candidate") or ""
        if not isinstance(candidate, str) or len(candidate) > 1024:
            raise _malformed("candidate must be a string", call)
        mid = data.get("sdpMid")
        index = data.get("sdpMLineIndex")
        if mid is not None and (not isinstance(mid, str) or len(mid) > 32):
            raise _malformed("sdpMid must be a string", call)
        if index is not None and (
            isinstance(index, bool) or not isinstance(index, int) or not 0 <= index < 16
        ):
            raise _malformed("sdpMLineIndex must be a small integer", call)
        return Candidate(call, candidate, mid, index)
    if cls is Dtmf:
        return Dtmf(call, _text(data, "digits", _DIGITS))
    if cls is Mute:
        muted = data.get("muted")
        if not isinstance(muted, bool):
            raise _malformed("muted must be true or false", call)
        return Mute(call, muted)
    return Hangup(call)


def serialize(message: DataclassInstance) -> str:
    """A message as JSON text; ``from_`` is sent as ``from``."""
    data = asdict(message)
    if "from_" in data:
        data["from"] = data.pop("from_")
    return json.dumps({k: v for k, v in data.items() if v is not None}, separators=(",", ":"))


def message_fields(cls: type[DataclassInstance]) -> list[str]:
    """The JSON field names of a message class (for the documentation test)."""
    return ["from" if f.name == "from_" else f.name for f in fields(cls)]
