"""PStream: the signaling protocol of Twilio's official Voice JS SDK (docs/webrtc.md).

The SDK (npm ``@twilio/voice-sdk`` 2.x) opens ``wss://HOST/signal`` and speaks
JSON text frames ``{"type": T, "version": "1.6", "payload": {...}}``; a frame
that is exactly ``"\\n"`` is a heartbeat. This module is the wire format only,
pure: :func:`parse` turns a client frame into a message dataclass (or
:data:`HEARTBEAT`) or raises :class:`PStreamError`; :func:`frame` builds a
server frame; :func:`wire_code` maps our token error codes to the signaling
codes the SDK turns into its own errors (31204 → AccessTokenInvalid 20101,
31205 → AccessTokenExpired 20104). The session (signaling/pstream_session.py)
decides what to send.

Client messages (what the SDK sends):

- ``listen`` (token, reconnectTimeout): the first frame of every socket; again
  on the same socket it is a token update.
- ``register`` (media.audio true/false): be rung / stop being rung.
- ``invite`` (callsid, sdp, twilio.params, reconnect?): place a call (callsid a
  temporary ``TJS…`` id), or resume one after a reconnect (the real CallSid and
  the reconnect token we gave).
- ``answer``, ``reject``, ``hangup``, ``dtmf``, ``reinvite``, ``message``: on one call.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any, Final
from urllib.parse import parse_qsl, quote

__all__ = [
    "HEARTBEAT",
    "VERSION",
    "Answer",
    "ClientMessage",
    "Dtmf",
    "Hangup",
    "Invite",
    "Listen",
    "Message",
    "PStreamError",
    "Register",
    "Reinvite",
    "Reject",
    "decode_params",
    "encode_params",
    "error_frame",
    "frame",
    "parse",
    "wire_code",
]

VERSION: Final = "1.6"
HEARTBEAT: Final = "\n"

MAX_FRAME = 64 * 1024
MAX_SDP = 32 * 1024
MAX_PARAMS = 32
MAX_RECONNECT_TIMEOUT = 30  # seconds, as the SDK caps maxCallSignalingTimeoutMs

# Signaling error codes (the SDK's own table: lib/twilio/errors).
MALFORMED = 31100  # not JSON, unknown type, a field missing or of the wrong kind
AUTHENTICATION_FAILED = 31201  # anything before a good listen
TOKEN_INVALID = 31204  # the app sees AccessTokenInvalid (20101)
TOKEN_EXPIRED = 31205  # the app sees AccessTokenExpired (20104)
NOT_FOUND = 31404  # a call this socket does not have
APPLICATION_NOT_FOUND = 31001  # the token names no (usable) outgoing application
CONNECTION_FAILED = 31003  # the media path is lost (ICE restart declined)
CALL_FAILED = 31005  # the call could not be set up (bad SDP, too many calls)

_CALL_ID = re.compile(r"[A-Za-z0-9_-]{1,64}")
_DIGITS = re.compile(r"[0-9*#A-Dw]{1,256}")
_EVENT_ID = re.compile(r"[A-Za-z0-9_-]{1,64}")


class PStreamError(Exception):
    """A client frame we cannot take: answered with ``error`` (``code``, ``message``)."""

    def __init__(self, code: int, message: str, *, callsid: str | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.callsid = callsid


@dataclass(frozen=True, slots=True)
class Listen:
    token: str
    reconnect_timeout: int = 0  # seconds the SDK asks a dropped call to be held


@dataclass(frozen=True, slots=True)
class Register:
    audio: bool  # True: ring this socket; False: stop (answered by ``offline``)


@dataclass(frozen=True, slots=True)
class Invite:
    """A new call (``reconnect`` None, ``callsid`` the SDK's ``TJS…`` id), or a call
    resumed on a new socket (``reconnect`` the token we gave, ``callsid`` its CallSid)."""

    callsid: str
    sdp: str
    params: dict[str, str] = field(default_factory=dict)
    reconnect: str | None = None


@dataclass(frozen=True, slots=True)
class Answer:
    callsid: str
    sdp: str


@dataclass(frozen=True, slots=True)
class Reject:
    callsid: str


@dataclass(frozen=True, slots=True)
class Hangup:
    callsid: str
    message: str = ""


@dataclass(frozen=True, slots=True)
class Dtmf:
    callsid: str
    digits: str  # 0-9 * # (A-D from other clients), w = a 500 ms pause


@dataclass(frozen=True, slots=True)
class Reinvite:
    """An ICE restart: a new offer for an established call."""

    callsid: str
    sdp: str


@dataclass(frozen=True, slots=True)
class Message:
    """``call.sendMessage()``: acknowledged by ``ack`` naming ``voiceeventsid``."""

    callsid: str
    voiceeventsid: str
    content: str
    contenttype: str = "application/json"
    messagetype: str = "user-defined-message"


ClientMessage = Listen | Register | Invite | Answer | Reject | Hangup | Dtmf | Reinvite | Message


def _malformed(message: str, callsid: object = None) -> PStreamError:
    """A 31100 error naming the call only when ``callsid`` is a valid id."""
    if isinstance(callsid, str) and _CALL_ID.fullmatch(callsid):
        return PStreamError(MALFORMED, message, callsid=callsid)
    return PStreamError(MALFORMED, message)


def _text(payload: dict[str, Any], name: str, limit: int = 4096) -> str:
    value = payload.get(name)
    if not isinstance(value, str) or len(value) > limit:
        raise _malformed(f"{name} must be a string", payload.get("callsid"))
    return value


def _matching(payload: dict[str, Any], name: str, pattern: re.Pattern[str]) -> str:
    value = _text(payload, name)
    if not pattern.fullmatch(value):
        raise _malformed(f"{name} is not valid", payload.get("callsid"))
    return value


def decode_params(text: str) -> dict[str, str]:
    """The SDK's ``twilio.params`` (``k=v&k2=v2``, URL-encoded) as a dict; raises
    PStreamError past :data:`MAX_PARAMS` or for over-long names or values."""
    pairs = parse_qsl(text, keep_blank_values=True, max_num_fields=MAX_PARAMS)
    params = {}
    for key, value in pairs:
        if not key or len(key) > 128 or len(value) > 1024:
            raise _malformed("params: names are 1-128 characters, values at most 1024")
        params[key] = value
    return params


def encode_params(params: dict[str, str]) -> str:
    """Parameters as the SDK reads ``Params`` (each key and value percent-encoded)."""
    return "&".join(f"{quote(k, safe='')}={quote(v, safe='')}" for k, v in params.items())


def _listen(payload: dict[str, Any]) -> Listen:
    timeout = payload.get("reconnectTimeout", 0)
    if isinstance(timeout, bool) or not isinstance(timeout, int | float):
        timeout = 0
    return Listen(_text(payload, "token", 8192), int(max(0, min(timeout, MAX_RECONNECT_TIMEOUT))))


def _register(payload: dict[str, Any]) -> Register:
    media = payload.get("media")
    audio = media.get("audio") if isinstance(media, dict) else None
    if not isinstance(audio, bool):
        raise _malformed("register needs media.audio true or false")
    return Register(audio)


def _invite(payload: dict[str, Any]) -> Invite:
    callsid = _matching(payload, "callsid", _CALL_ID)
    twilio = payload.get("twilio", {})
    if not isinstance(twilio, dict):
        raise _malformed("twilio must be an object", callsid)
    raw = twilio.get("params", "")
    if not isinstance(raw, str) or len(raw) > 16 * 1024:
        raise _malformed("twilio.params must be a string", callsid)
    try:
        params = decode_params(raw)
    except ValueError:  # parse_qsl: too many fields
        raise _malformed(f"at most {MAX_PARAMS} params", callsid) from None
    reconnect = payload.get("reconnect")
    if reconnect is not None:
        reconnect = _text(payload, "reconnect", 256)
    return Invite(callsid, _text(payload, "sdp", MAX_SDP), params, reconnect)


def _message(payload: dict[str, Any], callsid: str) -> Message:
    content = payload.get("content", "")
    if not isinstance(content, str):
        content = json.dumps(content)
    if len(content) > 8192:
        raise _malformed("content is at most 8192 characters", callsid)
    return Message(
        callsid,
        _matching(payload, "voiceeventsid", _EVENT_ID),
        content,
        str(payload.get("contenttype") or "application/json")[:128],
        str(payload.get("messagetype") or "user-defined-message")[:128],
    )


def _on_call(kind: str, payload: dict[str, Any]) -> ClientMessage:
    callsid = _matching(payload, "callsid", _CALL_ID)
    if kind == "answer":
        return Answer(callsid, _text(payload, "sdp", MAX_SDP))
    if kind == "reject":
        return Reject(callsid)
    if kind == "hangup":
        message = payload.get("message")
        return Hangup(callsid, message[:256] if isinstance(message, str) else "")
    if kind == "dtmf":
        return Dtmf(callsid, _matching(payload, "dtmf", _DIGITS))
    if kind == "reinvite":
        return Reinvite(callsid, _text(payload, "sdp", MAX_SDP))
    return _message(payload, callsid)


_CALL_MESSAGES = frozenset({"answer", "reject", "hangup", "dtmf", "reinvite", "message"})


def parse(text: str | bytes) -> ClientMessage | None:
    """One client frame: a message, or None for a heartbeat; raises PStreamError."""
    if isinstance(text, bytes):
        raise _malformed("binary frames are not PStream")
    if text == HEARTBEAT:
        return None
    if len(text) > MAX_FRAME:
        raise _malformed("frame too long")
    try:
        data = json.loads(text)
    except (ValueError, RecursionError):
        raise _malformed("not JSON") from None
    if not isinstance(data, dict):
        raise _malformed("a frame is a JSON object")
    kind = data.get("type")
    payload = data.get("payload", {})
    if not isinstance(payload, dict):
        raise _malformed("payload must be an object")
    if kind == "listen":
        return _listen(payload)
    if kind == "register":
        return _register(payload)
    if kind == "invite":
        return _invite(payload)
    if isinstance(kind, str) and kind in _CALL_MESSAGES:
        return _on_call(kind, payload)
    raise _malformed(f"unknown message type {str(kind)[:40]!r}", payload.get("callsid"))


def frame(kind: str, **payload: Any) -> str:
    """A server frame: ``type``, ``version`` and the payload (None values left out)."""
    body = {k: v for k, v in payload.items() if v is not None}
    return json.dumps({"type": kind, "version": VERSION, "payload": body}, separators=(",", ":"))


def error_frame(code: int, message: str, callsid: str | None = None, **extra: Any) -> str:
    """``error``: a Device error event (with the Call when ``callsid`` is one of its)."""
    return frame("error", error={"code": code, "message": message}, callsid=callsid, **extra)


# Our token error codes (signaling/tokens.py) to the wire: the SDK maps 31204 to
# AccessTokenInvalid (20101) and 31205 to AccessTokenExpired (20104) for the app.
_TOKEN_CODES = {20104: TOKEN_EXPIRED}


def wire_code(token_code: int) -> int:
    """The signaling code for a refused token (malformed, forged, revoked... → 31204)."""
    return _TOKEN_CODES.get(token_code, TOKEN_INVALID)
