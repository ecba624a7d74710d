"""ConversationRelay's WebSocket messages, both ways (docs/conversation-relay.md).

Pure: what we send is built here as JSON bytes (``setup``, ``prompt``, ``dtmf``,
``interrupt``, ``error``); what the application sends is parsed here into one of
:data:`AppMessage` (``text``, ``play``, ``sendDigits``, ``language``, ``end``), or
refused with :class:`RelayMessageError` saying why, which the session reports back
as an ``error`` message (Twilio's 64107) and otherwise ignores.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

__all__ = [
    "MAX_MESSAGE",
    "AppMessage",
    "End",
    "Language",
    "Play",
    "RelayMessageError",
    "SendDigits",
    "Text",
    "dtmf",
    "error",
    "interrupt",
    "parse_app_message",
    "prompt",
    "setup",
]

MAX_MESSAGE = 64 * 1024  # a text token or a play request is far smaller
_INTERRUPTIBLE = ("any", "none", "speech", "dtmf")
_DIGITS = frozenset("0123456789*#ABCDabcdw")


class RelayMessageError(ValueError):
    """The application sent something that is not a message of the protocol."""


@dataclass(frozen=True, slots=True)
class Text:
    """Words to speak; ``last`` ends the talk cycle."""

    token: str
    last: bool = False
    lang: str | None = None
    interruptible: str | None = None
    preemptible: bool | None = None


@dataclass(frozen=True, slots=True)
class Play:
    """An audio file to play (``loop`` times; 0: until interrupted)."""

    source: str
    loop: int = 1
    interruptible: str | None = None
    preemptible: bool | None = None


@dataclass(frozen=True, slots=True)
class SendDigits:
    digits: str


@dataclass(frozen=True, slots=True)
class Language:
    tts_language: str | None = None
    transcription_language: str | None = None


@dataclass(frozen=True, slots=True)
class End:
    """The application ends the session; ``handoff_data`` goes to the action URL."""

    handoff_data: str | None = None


AppMessage = Text | Play | SendDigits | Language | End


def parse_app_message(data: bytes | str) -> AppMessage:
    """One message of the application; :class:`RelayMessageError` when it is not one."""
    if len(data) > MAX_MESSAGE:
        raise RelayMessageError(f"message longer than {MAX_MESSAGE} bytes")
    try:
        body = json.loads(data)
    except (ValueError, UnicodeDecodeError):
        raise RelayMessageError("not JSON") from None
    if not isinstance(body, dict):
        raise RelayMessageError("not a JSON object")
    kind = body.get("type")
    if kind == "text":
        return Text(
            token=_string(body, "token", required=True) or "",
            last=_boolean(body, "last") or False,
            lang=_string(body, "lang"),
            interruptible=_interruptible(body),
            preemptible=_boolean(body, "preemptible"),
        )
    if kind == "play":
        loop = body.get("loop", 1)
        if not isinstance(loop, int) or isinstance(loop, bool) or not 0 <= loop <= 1000:
            raise RelayMessageError("play: loop must be a whole number from 0 to 1000")
        source = _string(body, "source", required=True) or ""
        if not source.lower().startswith(("http://", "https://")):
            raise RelayMessageError("play: source must be an http(s) URL")
        return Play(source, loop, _interruptible(body), _boolean(body, "preemptible"))
    if kind == "sendDigits":
        digits = _string(body, "digits", required=True) or ""
        if not digits or len(digits) > 32 or not set(digits) <= _DIGITS:
            raise RelayMessageError("sendDigits: digits must be 1-32 of 0-9 * # A-D w")
        return SendDigits(digits)
    if kind == "language":
        tts, stt = _string(body, "ttsLanguage"), _string(body, "transcriptionLanguage")
        if tts is None and stt is None:
            raise RelayMessageError("language: needs ttsLanguage or transcriptionLanguage")
        return Language(tts, stt)
    if kind == "end":
        handoff = body.get("handoffData")
        if handoff is not None and not isinstance(handoff, str):
            handoff = json.dumps(handoff)  # an object is passed on as its JSON
        return End(handoff)
    raise RelayMessageError(f"unknown message type {kind!r}")


def _string(body: dict[str, Any], name: str, *, required: bool = False) -> str | None:
    value = body.get(name)
    if value is None:
        if required:
            raise RelayMessageError(f"{body.get('type')}: {name} is missing")
        return None
    if not isinstance(value, str):
        raise RelayMessageError(f"{body.get('type')}: {name} must be a string")
    return value


def _boolean(body: dict[str, Any], name: str) -> bool | None:
    value = body.get(name)
    if value is None or isinstance(value, bool):
        return value
    raise RelayMessageError(f"{body.get('type')}: {name} must be true or false")


def _interruptible(body: dict[str, Any]) -> str | None:
    value = body.get("interruptible")
    if value is None:
        return None
    if isinstance(value, bool):
        return "any" if value else "none"
    if value in _INTERRUPTIBLE:
        return str(value)
    raise RelayMessageError(f"{body.get('type')}: interruptible must be any, none, speech, dtmf")


# -- what we send


def _dump(body: dict[str, Any]) -> bytes:
    return json.dumps(body, separators=(",", ":")).encode()


def setup(
    *,
    session_id: str,
    account_sid: str,
    call_sid: str,
    parent_call_sid: str,
    from_: str,
    to: str,
    forwarded_from: str,
    caller_name: str,
    direction: str,
    call_type: str,
    call_status: str,
    custom_parameters: dict[str, str],
) -> bytes:
    """The first message, once the socket is open."""
    return _dump(
        {
            "type": "setup",
            "sessionId": session_id,
            "accountSid": account_sid,
            "parentCallSid": parent_call_sid,
            "callSid": call_sid,
            "from": from_,
            "to": to,
            "forwardedFrom": forwarded_from,
            "callerName": caller_name,
            "direction": direction,
            "callType": call_type,
            "callStatus": call_status,
            "customParameters": custom_parameters,
        }
    )


def prompt(words: str, lang: str, *, last: bool = True) -> bytes:
    """What the caller said (one utterance)."""
    return _dump({"type": "prompt", "voicePrompt": words, "lang": lang, "last": last})


def dtmf(digit: str) -> bytes:
    return _dump({"type": "dtmf", "digit": digit})


def interrupt(utterance: str, duration_ms: int) -> bytes:
    """The caller cut the agent short: what had been spoken, and for how long."""
    return _dump(
        {
            "type": "interrupt",
            "utteranceUntilInterrupt": utterance,
            "durationUntilInterruptMs": duration_ms,
        }
    )


def error(description: str) -> bytes:
    return _dump({"type": "error", "description": description})
