"""Parse TwiML documents into typed verbs (Twilio TwiML voice and messaging reference).

Pure: a document (``str`` or ``bytes``) goes in, a ``Response`` of verbs (voice) or
a tuple of ``Message``/``Redirect`` (messaging) comes out. Twilio's two document
errors are the only exceptions a caller sees:

- 12100 "Document parse failure": not well-formed XML, a root other than
  ``<Response>``, a DOCTYPE or entity declaration, a document over
  ``MAX_DOCUMENT_SIZE`` bytes or nested deeper than ``MAX_DEPTH`` elements;
- 12200 "Schema validation warning": an unknown verb or noun, one nested where it
  may not be, a missing required value, or an attribute value that is not allowed.

Attribute names are case-sensitive as in Twilio; a name the parser does not know is
ignored and reported in ``Response.warnings``.

The documents come from application servers we do not control, so the XML layer is
expat driven directly: DTDs are refused before any entity can expand (no "billion
laughs", no external entities), and the element tree is built by hand so depth is
bounded while parsing, not after.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, NoReturn, TypeVar
from xml.parsers import expat

from control_api.twiml.verbs import (
    Client,
    Conference,
    Connect,
    ConnectRelay,
    ConversationRelay,
    Dial,
    DialNoun,
    Enqueue,
    Gather,
    GatherChild,
    Hangup,
    Leave,
    Message,
    Number,
    Pause,
    Play,
    Queue,
    Record,
    Redirect,
    Refer,
    Reject,
    RelayLanguage,
    Response,
    Say,
    Sip,
    Start,
    StartTranscription,
    Stop,
    StopTranscription,
    Stream,
    Transcription,
    Verb,
)

__all__ = [
    "DOCUMENT_PARSE_FAILURE",
    "MAX_DEPTH",
    "MAX_DOCUMENT_SIZE",
    "SCHEMA_VALIDATION_WARNING",
    "TwimlError",
    "parse_messaging_twiml",
    "parse_voice_twiml",
]

DOCUMENT_PARSE_FAILURE = 12100
SCHEMA_VALIDATION_WARNING = 12200

_T = TypeVar("_T")

MAX_DOCUMENT_SIZE = 64 * 1024
# <Response> is depth 1; real documents stay under 8 (Response/Gather/Say/SSML...).
MAX_DEPTH = 32

_TITLES = {
    DOCUMENT_PARSE_FAILURE: "Document parse failure",
    SCHEMA_VALIDATION_WARNING: "Schema validation warning",
}


class TwimlError(ValueError):
    """The application's TwiML cannot be run; Twilio ends the call with ``code``.

    ``message`` is Twilio's title for the code ("Document parse failure",
    "Schema validation warning"), ``detail`` says what in the document is wrong.
    """

    def __init__(self, code: int, detail: str) -> None:
        self.code = code
        self.message = _TITLES.get(code, "TwiML error")
        self.detail = detail
        super().__init__(f"{code} {self.message}: {detail}")


def _schema_error(detail: str) -> NoReturn:
    raise TwimlError(SCHEMA_VALIDATION_WARNING, detail)


# --- XML ------------------------------------------------------------------------


@dataclass(slots=True, eq=False)
class _Element:
    name: str
    attrs: dict[str, str]
    content: list[str | _Element] = field(default_factory=list)

    def elements(self) -> list[_Element]:
        return [item for item in self.content if isinstance(item, _Element)]

    def text(self) -> str:
        """The element's own text (not its children's), stripped."""
        return "".join(item for item in self.content if isinstance(item, str)).strip()


class _TreeBuilder:
    def __init__(self) -> None:
        self.stack: list[_Element] = []
        self.root: _Element | None = None

    def start(self, name: str, attrs: dict[str, str]) -> None:
        if len(self.stack) >= MAX_DEPTH:
            raise TwimlError(DOCUMENT_PARSE_FAILURE, f"elements nested deeper than {MAX_DEPTH}")
        element = _Element(name, attrs)
        if self.stack:
            self.stack[-1].content.append(element)
        else:
            self.root = element
        self.stack.append(element)

    def end(self, name: str) -> None:
        self.stack.pop()

    def data(self, text: str) -> None:
        if self.stack:
            self.stack[-1].content.append(text)


def _refuse_dtd(*args: Any) -> NoReturn:
    raise TwimlError(DOCUMENT_PARSE_FAILURE, "DOCTYPE and entity declarations are not allowed")


def _read_document(document: str | bytes) -> _Element:
    """Well-formed XML to an element tree, or TwimlError 12100."""
    encoding: str | None = None
    if isinstance(document, str):
        try:
            data = document.encode("utf-8")
        except UnicodeEncodeError:
            raise TwimlError(DOCUMENT_PARSE_FAILURE, "text is not valid Unicode") from None
        # The text is already decoded: whatever the XML declaration says, read UTF-8.
        encoding = "utf-8"
    elif isinstance(document, bytes | bytearray | memoryview):
        data = bytes(document)
    else:
        raise TwimlError(DOCUMENT_PARSE_FAILURE, "document is neither text nor bytes")
    if len(data) > MAX_DOCUMENT_SIZE:
        raise TwimlError(
            DOCUMENT_PARSE_FAILURE, f"document is larger than {MAX_DOCUMENT_SIZE} bytes"
        )
    builder = _TreeBuilder()
    parser = expat.ParserCreate(encoding)
    parser.buffer_text = True
    parser.SetParamEntityParsing(expat.XML_PARAM_ENTITY_PARSING_NEVER)
    parser.StartDoctypeDeclHandler = _refuse_dtd
    parser.EntityDeclHandler = _refuse_dtd
    parser.UnparsedEntityDeclHandler = _refuse_dtd
    parser.NotationDeclHandler = _refuse_dtd
    parser.ExternalEntityRefHandler = _refuse_dtd
    parser.StartElementHandler = builder.start
    parser.EndElementHandler = builder.end
    parser.CharacterDataHandler = builder.data
    try:
        parser.Parse(data, True)
    except TwimlError:
        raise
    except expat.ExpatError as exc:
        reason = expat.errors.messages.get(exc.code, "not well-formed")
        raise TwimlError(
            DOCUMENT_PARSE_FAILURE, f"{reason} (line {exc.lineno}, column {exc.offset})"
        ) from None
    except (LookupError, UnicodeError, ValueError) as exc:
        # An encoding named in the XML declaration that Python cannot decode.
        raise TwimlError(DOCUMENT_PARSE_FAILURE, f"cannot decode the document: {exc}") from None
    if builder.root is None:
        raise TwimlError(DOCUMENT_PARSE_FAILURE, "no root element")
    if builder.root.name != "Response":
        raise TwimlError(
            DOCUMENT_PARSE_FAILURE, f"root element is <{builder.root.name}>, not <Response>"
        )
    return builder.root


# --- attribute values -----------------------------------------------------------


class _BadValue(Exception):
    """An attribute value outside its allowed set; the reason completes a sentence."""


Converter = Callable[[str], Any]

_INTEGER = re.compile(r"[0-9]{1,9}")
_DIGITS = re.compile(r"[0-9*#w]+")
_KEYS = frozenset("0123456789*#")


def _string(value: str) -> str:
    return value.strip()


def _method(value: str) -> str:
    method = value.strip().upper()
    if method not in ("GET", "POST"):
        raise _BadValue("must be GET or POST")
    return method


def _boolean(value: str) -> bool:
    lowered = value.strip().lower()
    if lowered == "true":
        return True
    if lowered == "false":
        return False
    raise _BadValue("must be true or false")


def _integer(minimum: int, maximum: int | None = None) -> Converter:
    def convert(value: str) -> int:
        text = value.strip()
        if _INTEGER.fullmatch(text):
            number = int(text)
            if number >= minimum and (maximum is None or number <= maximum):
                return number
        upper = f" and at most {maximum}" if maximum is not None else ""
        raise _BadValue(f"must be a whole number of at least {minimum}{upper}")

    return convert


def _interruptible(value: str) -> str:
    """ConversationRelay's who-may-interrupt: any, none, speech, dtmf (true is any,
    false none)."""
    text = value.strip().lower()
    text = {"true": "any", "false": "none"}.get(text, text)
    if text not in ("any", "none", "speech", "dtmf"):
        raise _BadValue("must be one of any, none, speech, dtmf, true, false")
    return text


def _choice(*allowed: str) -> Converter:
    canonical = {value.lower(): value for value in allowed}

    def convert(value: str) -> str:
        try:
            return canonical[value.strip().lower()]
        except KeyError:
            raise _BadValue("must be one of " + ", ".join(allowed)) from None

    return convert


def _list(*allowed: str, empty_ok: bool = True) -> Converter:
    """A space- (or comma-) separated list, each item one of ``allowed``."""

    def convert(value: str) -> tuple[str, ...]:
        items = tuple(value.replace(",", " ").split())
        if not items and not empty_ok:
            raise _BadValue("must not be empty")
        for item in items:
            if item not in allowed:
                raise _BadValue("must be made of " + ", ".join(allowed))
        return items

    return convert


def _digits(value: str) -> str:
    text = value.strip()
    if not _DIGITS.fullmatch(text):
        raise _BadValue("must be made of 0-9, *, # and w")
    return text


def _gather_key(value: str) -> str:
    text = value.strip()
    if len(text) > 1 or not set(text) <= _KEYS:
        raise _BadValue("must be one of 0-9, * and #, or empty")
    return text


def _record_keys(value: str) -> str:
    text = value.strip()
    if not set(text) <= _KEYS:
        raise _BadValue("must be made of 0-9, * and #")
    return text


def _speech_timeout(value: str) -> str:
    text = value.strip()
    if text.lower() == "auto":
        return "auto"
    if _INTEGER.fullmatch(text):
        return str(int(text))
    raise _BadValue("must be auto or a whole number of seconds")


# The legacy record="true"/"false" of <Dial> predate the named modes.
_DIAL_RECORD = _choice(
    "do-not-record",
    "record-from-answer",
    "record-from-ringing",
    "record-from-answer-dual",
    "record-from-ringing-dual",
)


def _dial_record(value: str) -> str:
    legacy = {"true": "record-from-answer", "false": "do-not-record"}
    return legacy.get(value.strip().lower()) or _DIAL_RECORD(value)


Spec = dict[str, tuple[str, Converter]]

_ACTION: Spec = {"action": ("action", _string), "method": ("method", _method)}
_CALL_PROGRESS = _list("initiated", "ringing", "answered", "completed")
_RECORDING_EVENTS = _list("in-progress", "completed", "absent")
_NOUN_CALLBACKS: Spec = {
    "url": ("url", _string),
    "method": ("method", _method),
    "statusCallback": ("status_callback", _string),
    "statusCallbackEvent": ("status_callback_event", _CALL_PROGRESS),
    "statusCallbackMethod": ("status_callback_method", _method),
}
# Answering-machine detection on a dialled <Number> or <Sip> (its result goes to
# amdStatusCallback; the callee is bridged meanwhile).
_MACHINE_DETECTION: Spec = {
    "machineDetection": ("machine_detection", _choice("Enable", "DetectMessageEnd")),
    "machineDetectionTimeout": ("machine_detection_timeout", _integer(3, 59)),
    "machineDetectionSpeechThreshold": ("machine_detection_speech_threshold", _integer(1000, 6000)),
    "machineDetectionSpeechEndThreshold": (
        "machine_detection_speech_end_threshold",
        _integer(500, 5000),
    ),
    "machineDetectionSilenceTimeout": ("machine_detection_silence_timeout", _integer(2000, 10000)),
    "amdStatusCallback": ("amd_status_callback", _string),
    "amdStatusCallbackMethod": ("amd_status_callback_method", _method),
}
# Calls' names for asynchronous detection, which a dialled party does not take
# (it is always asynchronous, with amdStatusCallback): warning 21263 when the call runs.
_CALLS_ONLY_AMD = ("asyncAmd", "asyncAmdStatusCallback", "asyncAmdStatusCallbackMethod")
_RECORDING_CALLBACKS: Spec = {
    "recordingStatusCallback": ("recording_status_callback", _string),
    "recordingStatusCallbackMethod": ("recording_status_callback_method", _method),
    "recordingStatusCallbackEvent": ("recording_status_callback_event", _RECORDING_EVENTS),
}

_SPECS: dict[str, Spec] = {
    "Response": {},
    "Say": {
        "voice": ("voice", _string),
        "language": ("language", _string),
        "loop": ("loop", _integer(0)),
    },
    "Play": {"loop": ("loop", _integer(0)), "digits": ("digits", _digits)},
    "Pause": {"length": ("length", _integer(1))},
    "Gather": {
        **_ACTION,
        "input": ("input", _list("dtmf", "speech", empty_ok=False)),
        "timeout": ("timeout", _integer(1)),
        "finishOnKey": ("finish_on_key", _gather_key),
        "numDigits": ("num_digits", _integer(1)),
        "actionOnEmptyResult": ("action_on_empty_result", _boolean),
        "speechTimeout": ("speech_timeout", _speech_timeout),
        "language": ("language", _string),
        "hints": ("hints", _string),
        "partialResultCallback": ("partial_result_callback", _string),
        "partialResultCallbackMethod": ("partial_result_callback_method", _method),
        "bargeIn": ("barge_in", _boolean),
        "profanityFilter": ("profanity_filter", _boolean),
        "speechModel": ("speech_model", _string),
        "enhanced": ("enhanced", _boolean),
        "maxSpeechTime": ("max_speech_time", _integer(1)),
    },
    "Dial": {
        **_ACTION,
        **_RECORDING_CALLBACKS,
        "timeout": ("timeout", _integer(1)),
        "callerId": ("caller_id", _string),
        "record": ("record", _dial_record),
        "trim": ("trim", _choice("trim-silence", "do-not-trim")),
        "hangupOnStar": ("hangup_on_star", _boolean),
        "timeLimit": ("time_limit", _integer(1)),
        "answerOnBridge": ("answer_on_bridge", _boolean),
        "ringTone": ("ring_tone", _string),
        "recordingTrack": ("recording_track", _choice("both", "inbound", "outbound")),
        "sequential": ("sequential", _boolean),
        "referUrl": ("refer_url", _string),
        "referMethod": ("refer_method", _method),
    },
    "Number": {**_NOUN_CALLBACKS, **_MACHINE_DETECTION, "sendDigits": ("send_digits", _digits)},
    "Sip": {
        **_NOUN_CALLBACKS,
        **_MACHINE_DETECTION,
        "username": ("username", _string),
        "password": ("password", _string),
    },
    "Client": dict(_NOUN_CALLBACKS),
    "Conference": {
        **_RECORDING_CALLBACKS,
        "muted": ("muted", _boolean),
        "beep": ("beep", _choice("true", "false", "onEnter", "onExit")),
        "startConferenceOnEnter": ("start_conference_on_enter", _boolean),
        "endConferenceOnExit": ("end_conference_on_exit", _boolean),
        # Empty is meaningful (silence), so no stripping to "" versus None games.
        "waitUrl": ("wait_url", _string),
        "waitMethod": ("wait_method", _method),
        "maxParticipants": ("max_participants", _integer(1, 250)),
        "record": ("record", _choice("do-not-record", "record-from-start")),
        "trim": ("trim", _choice("trim-silence", "do-not-trim")),
        "coach": ("coach", _string),
        "participantLabel": ("participant_label", _string),
        "statusCallback": ("status_callback", _string),
        "statusCallbackEvent": (
            "status_callback_event",
            _list(
                "start",
                "end",
                "join",
                "leave",
                "mute",
                "hold",
                "modify",
                "speaker",
                "announcement",
            ),
        ),
        "statusCallbackMethod": ("status_callback_method", _method),
    },
    "Queue": {
        "url": ("url", _string),
        "method": ("method", _method),
        "reservationSid": ("reservation_sid", _string),
        "postWorkActivitySid": ("post_work_activity_sid", _string),
    },
    "Record": {
        **_ACTION,
        **_RECORDING_CALLBACKS,
        "timeout": ("timeout", _integer(0)),
        "finishOnKey": ("finish_on_key", _record_keys),
        "maxLength": ("max_length", _integer(1)),
        "playBeep": ("play_beep", _boolean),
        "trim": ("trim", _choice("trim-silence", "do-not-trim")),
        "transcribe": ("transcribe", _boolean),
        "transcribeCallback": ("transcribe_callback", _string),
    },
    "Hangup": {},
    "Leave": {},
    "Reject": {"reason": ("reason", _choice("rejected", "busy"))},
    "Redirect": {"method": ("method", _method)},
    "Refer": dict(_ACTION),
    "Connect": dict(_ACTION),
    "Start": dict(_ACTION),
    "Stop": {},
    "Transcription": {
        "name": ("name", _string),
        "track": ("track", _choice("inbound_track", "outbound_track", "both_tracks")),
        "statusCallbackUrl": ("status_callback_url", _string),
        "statusCallbackMethod": ("status_callback_method", _method),
        "languageCode": ("language_code", _string),
        "partialResults": ("partial_results", _boolean),
        "hints": ("hints", _string),
        "inboundTrackLabel": ("inbound_track_label", _string),
        "outboundTrackLabel": ("outbound_track_label", _string),
        "transcriptionEngine": ("transcription_engine", _string),
        "speechModel": ("speech_model", _string),
        "profanityFilter": ("profanity_filter", _boolean),
        "enableAutomaticPunctuation": ("enable_automatic_punctuation", _boolean),
        "intelligenceService": ("", _string),
    },
    "Stream": {
        "url": ("url", _string),
        "name": ("name", _string),
        "track": ("track", _choice("inbound_track", "outbound_track", "both_tracks")),
        "statusCallback": ("status_callback", _string),
        "statusCallbackMethod": ("status_callback_method", _method),
    },
    "Parameter": {"name": ("name", _string), "value": ("value", _string)},
    "ConversationRelay": {
        "url": ("url", _string),
        "welcomeGreeting": ("welcome_greeting", _string),
        "welcomeGreetingInterruptible": ("welcome_greeting_interruptible", _interruptible),
        "language": ("language", _string),
        "ttsLanguage": ("tts_language", _string),
        "transcriptionLanguage": ("transcription_language", _string),
        "voice": ("voice", _string),
        "ttsProvider": ("tts_provider", _string),
        "transcriptionProvider": ("transcription_provider", _string),
        "speechModel": ("speech_model", _string),
        "interruptible": ("interruptible", _interruptible),
        "interruptSensitivity": ("interrupt_sensitivity", _choice("low", "medium", "high")),
        "dtmfDetection": ("dtmf_detection", _boolean),
        "reportInputDuringAgentSpeech": ("report_input_during_agent_speech", _interruptible),
        "preemptible": ("preemptible", _boolean),
        "partialPrompts": ("partial_prompts", _boolean),
        "hints": ("hints", _string),
        "debug": ("debug", _string),
        # Accepted without effect here: Twilio's own services.
        "elevenlabsTextNormalization": ("", _string),
        "intelligenceService": ("", _string),
    },
    "Language": {
        "code": ("code", _string),
        "ttsProvider": ("tts_provider", _string),
        "voice": ("voice", _string),
        "transcriptionProvider": ("transcription_provider", _string),
        "speechModel": ("speech_model", _string),
    },
    "Identity": {},
    "Enqueue": {
        **_ACTION,
        "waitUrl": ("wait_url", _string),
        "waitUrlMethod": ("wait_url_method", _method),
        "maxQueueSize": ("max_queue_size", _integer(1)),
        "workflowSid": ("workflow_sid", _string),
    },
    "Message": {
        **_ACTION,
        "to": ("to", _string),
        "from": ("from_", _string),
        "statusCallback": ("status_callback", _string),
    },
    "Body": {},
    "Media": {},
}


class _Context:
    """What one parse collects besides the verbs."""

    def __init__(self) -> None:
        self.warnings: list[str] = []

    def attributes(self, element: _Element) -> dict[str, Any]:
        """The element's known attributes, converted, keyed by dataclass field."""
        spec = _SPECS[element.name]
        values: dict[str, Any] = {}
        for name, raw in element.attrs.items():
            entry = spec.get(name)
            if name in _CALLS_ONLY_AMD and "machineDetection" in element.attrs:
                values["misplaced_async_amd"] = (*values.get("misplaced_async_amd", ()), name)
                continue
            if entry is None:
                if name != "xmlns" and not name.startswith("xmlns:"):
                    self.warnings.append(f"<{element.name}>: unknown attribute {name!r} ignored")
                continue
            field_name, convert = entry
            try:
                values[field_name] = convert(raw)
            except _BadValue as exc:
                _schema_error(f"<{element.name}> attribute {name}={raw!r} {exc}")
        return values


# --- content checks -------------------------------------------------------------


def _leaf_text(element: _Element) -> str:
    """The text of an element that may hold no elements."""
    children = element.elements()
    if children:
        _schema_error(f"<{children[0].name}> is not allowed inside <{element.name}>")
    return element.text()


def _child_elements(element: _Element) -> list[_Element]:
    """The children of an element that may hold no text."""
    if element.text():
        _schema_error(f"<{element.name}> may not contain text")
    return element.elements()


def _empty(element: _Element) -> None:
    """Check an element that may hold neither text nor elements."""
    if _leaf_text(element):
        _schema_error(f"<{element.name}> may not contain text")


def _required_text(element: _Element, what: str) -> str:
    text = _leaf_text(element)
    if not text:
        _schema_error(f"<{element.name}> needs {what}")
    return text


def _misplaced(child: _Element, parent: _Element) -> NoReturn:
    """Fail for ``child``, which ``parent`` may not hold, saying what it is."""
    if child.name in _KNOWN_NAMES:
        _schema_error(f"<{child.name}> is not allowed inside <{parent.name}>")
    if child.name in _UNSUPPORTED_VERBS:
        _schema_error(f"<{child.name}> is a TwiML verb callswitch does not support")
    _schema_error(f"<{child.name}> is not a TwiML element")


def _built(
    parent: _Element,
    children: list[_Element],
    builders: dict[str, Callable[[_Element, _Context], _T]],
    ctx: _Context,
) -> list[_T]:
    """Each child built by the builder of its name; a child with none is misplaced."""
    built: list[_T] = []
    for child in children:
        build = builders.get(child.name)
        if build is None:
            _misplaced(child, parent)
        built.append(build(child, ctx))
    return built


def _single_child(element: _Element, name: str) -> _Element:
    children = _child_elements(element)
    if len(children) != 1:
        _schema_error(f"<{element.name}> needs exactly one <{name}>")
    (child,) = children
    if child.name != name:
        _misplaced(child, element)
    return child


# --- voice verbs ----------------------------------------------------------------

# SSML inside <Say> is reduced to its text. Builders abut text and elements
# (``Your code is<say-as>1234</say-as>``), so every element boundary separates words.
_SSML = frozenset(
    {
        "break",
        "emphasis",
        "lang",
        "p",
        "phoneme",
        "prosody",
        "s",
        "say-as",
        "sub",
        "w",
        "amazon:domain",
        "amazon:effect",
    }
)


def _ssml_text(element: _Element, pieces: list[str]) -> None:
    for item in element.content:
        if isinstance(item, str):
            pieces.append(item)
        elif item.name in _SSML:
            pieces.append(" ")
            _ssml_text(item, pieces)
            pieces.append(" ")
        else:
            _schema_error(f"<{item.name}> is not allowed inside <Say>")


def _say(element: _Element, ctx: _Context) -> Say:
    pieces: list[str] = []
    _ssml_text(element, pieces)
    text = " ".join("".join(pieces).split())
    return Say(text, **ctx.attributes(element))


def _play(element: _Element, ctx: _Context) -> Play:
    values = ctx.attributes(element)
    url = _leaf_text(element) or None
    if url is None and values.get("digits") is None:
        _schema_error("<Play> needs a URL or digits")
    return Play(url=url, **values)


def _pause(element: _Element, ctx: _Context) -> Pause:
    _empty(element)
    return Pause(**ctx.attributes(element))


_GATHER_CHILDREN: dict[str, Callable[[_Element, _Context], GatherChild]] = {
    "Say": _say,
    "Play": _play,
    "Pause": _pause,
}


def _gather(element: _Element, ctx: _Context) -> Gather:
    values = ctx.attributes(element)
    children = _built(element, _child_elements(element), _GATHER_CHILDREN, ctx)
    return Gather(children=tuple(children), **values)


def _number(element: _Element, ctx: _Context) -> Number:
    return Number(_required_text(element, "a phone number"), **ctx.attributes(element))


def _sip(element: _Element, ctx: _Context) -> Sip:
    uri = _required_text(element, "a SIP URI")
    if not uri.lower().startswith(("sip:", "sips:")):
        _schema_error(f"<Sip> {uri!r} is not a sip: or sips: URI")
    return Sip(uri, **ctx.attributes(element))


def _parameter(element: _Element, ctx: _Context) -> tuple[str, str]:
    _empty(element)
    values = ctx.attributes(element)
    name = values.get("name")
    if not name:
        _schema_error("<Parameter> needs a name")
    return name, values.get("value", "")


def _client(element: _Element, ctx: _Context) -> Client:
    values = ctx.attributes(element)
    identity = element.text()
    parameters: list[tuple[str, str]] = []
    for child in element.elements():
        if child.name == "Identity":
            ctx.attributes(child)
            if identity:
                _schema_error("<Client> has more than one identity")
            identity = _required_text(child, "an identity")
        elif child.name == "Parameter":
            parameters.append(_parameter(child, ctx))
        else:
            _misplaced(child, element)
    if not identity:
        _schema_error("<Client> needs an identity")
    return Client(identity, parameters=tuple(parameters), **values)


def _conference(element: _Element, ctx: _Context) -> Conference:
    return Conference(_required_text(element, "a conference name"), **ctx.attributes(element))


def _queue(element: _Element, ctx: _Context) -> Queue:
    return Queue(_required_text(element, "a queue name"), **ctx.attributes(element))


_DIAL_NOUNS: dict[str, Callable[[_Element, _Context], DialNoun]] = {
    "Number": _number,
    "Sip": _sip,
    "Client": _client,
    "Conference": _conference,
    "Queue": _queue,
}


def _dial(element: _Element, ctx: _Context) -> Dial:
    values = ctx.attributes(element)
    nouns = _built(element, element.elements(), _DIAL_NOUNS, ctx)
    number_text = element.text() or None
    if number_text is not None and nouns:
        _schema_error("<Dial> holds either a number as text or nouns, not both")
    if number_text is None and not nouns:
        _schema_error("<Dial> needs something to dial")
    if len(nouns) > 1 and any(isinstance(noun, Conference | Queue) for noun in nouns):
        _schema_error("<Conference> and <Queue> must be the only noun in <Dial>")
    return Dial(nouns=tuple(nouns), number_text=number_text, **values)


def _record(element: _Element, ctx: _Context) -> Record:
    _empty(element)
    return Record(**ctx.attributes(element))


def _hangup(element: _Element, ctx: _Context) -> Hangup:
    _empty(element)
    ctx.attributes(element)
    return Hangup()


def _leave(element: _Element, ctx: _Context) -> Leave:
    _empty(element)
    ctx.attributes(element)
    return Leave()


def _reject(element: _Element, ctx: _Context) -> Reject:
    _empty(element)
    return Reject(**ctx.attributes(element))


def _redirect(element: _Element, ctx: _Context) -> Redirect:
    return Redirect(_required_text(element, "a URL"), **ctx.attributes(element))


def _refer(element: _Element, ctx: _Context) -> Refer:
    values = ctx.attributes(element)
    return Refer(_sip(_single_child(element, "Sip"), ctx), **values)


def _stream(element: _Element, ctx: _Context) -> Stream:
    values = ctx.attributes(element)
    parameters: list[tuple[str, str]] = []
    for child in _child_elements(element):
        if child.name != "Parameter":
            _misplaced(child, element)
        parameters.append(_parameter(child, ctx))
    url = values.get("url")
    if url is not None and not url.lower().startswith(("ws://", "wss://")):
        _schema_error(f"<Stream> url {url!r} is not a ws:// or wss:// URL")
    return Stream(parameters=tuple(parameters), **values)


def _media_stream(element: _Element, ctx: _Context) -> Stream:
    """The <Stream> that <Connect> or <Start> opens: it needs a URL."""
    stream = _stream(_single_child(element, "Stream"), ctx)
    if not stream.url:
        _schema_error(f"<Stream> in <{element.name}> needs a url")
    return stream


def _conversation_relay(element: _Element, ctx: _Context) -> ConversationRelay:
    values = {k: v for k, v in ctx.attributes(element).items() if k}
    languages: list[RelayLanguage] = []
    parameters: list[tuple[str, str]] = []
    for child in _child_elements(element):
        if child.name == "Parameter":
            parameters.append(_parameter(child, ctx))
        elif child.name == "Language":
            _empty(child)
            language = ctx.attributes(child)
            if not language.get("code"):
                _schema_error("<Language> needs a code")
            languages.append(RelayLanguage(**language))
        else:
            _misplaced(child, element)
    url = values.get("url")
    if not url or not url.lower().startswith(("ws://", "wss://")):
        _schema_error("<ConversationRelay> needs a ws:// or wss:// url")
    return ConversationRelay(languages=tuple(languages), parameters=tuple(parameters), **values)


def _connect(element: _Element, ctx: _Context) -> Connect | ConnectRelay:
    values = ctx.attributes(element)
    children = _child_elements(element)
    if len(children) == 1 and children[0].name == "ConversationRelay":
        return ConnectRelay(_conversation_relay(children[0], ctx), **values)
    stream = _media_stream(element, ctx)
    if stream.track != "inbound_track":
        _schema_error("<Connect><Stream> takes only track inbound_track")
    return Connect(stream, **values)


def _transcription(element: _Element, ctx: _Context) -> Transcription | None:
    """The ``<Transcription>`` that is ``element``'s only child, if that is what it is."""
    children = _child_elements(element)
    if len(children) != 1 or children[0].name != "Transcription":
        return None
    _empty(children[0])
    values = {k: v for k, v in ctx.attributes(children[0]).items() if k}
    return Transcription(**values)


def _start(element: _Element, ctx: _Context) -> Start | StartTranscription:
    values = ctx.attributes(element)
    transcription = _transcription(element, ctx)
    if transcription is not None:
        return StartTranscription(transcription, **values)
    return Start(_media_stream(element, ctx), **values)


def _stop(element: _Element, ctx: _Context) -> Stop | StopTranscription:
    ctx.attributes(element)
    transcription = _transcription(element, ctx)
    if transcription is not None:
        if not transcription.name:
            _schema_error("<Stop><Transcription> needs the name of the transcription to stop")
        return StopTranscription(transcription)
    stream = _stream(_single_child(element, "Stream"), ctx)
    if not stream.name and not stream.url:
        _schema_error("<Stop><Stream> needs the name (or url) of the stream to stop")
    return Stop(stream)


def _enqueue(element: _Element, ctx: _Context) -> Enqueue:
    values = ctx.attributes(element)
    name = _leaf_text(element)
    if not name and not values.get("workflow_sid"):
        _schema_error("<Enqueue> needs a queue name")
    return Enqueue(name, **values)


_VOICE_VERBS: dict[str, Callable[[_Element, _Context], Verb]] = {
    "Say": _say,
    "Play": _play,
    "Pause": _pause,
    "Gather": _gather,
    "Dial": _dial,
    "Record": _record,
    "Hangup": _hangup,
    "Reject": _reject,
    "Redirect": _redirect,
    "Refer": _refer,
    "Connect": _connect,
    "Start": _start,
    "Stop": _stop,
    "Enqueue": _enqueue,
    "Leave": _leave,
}

# Real Twilio verbs and nouns that callswitch does not run: named in the error.
_UNSUPPORTED_VERBS = frozenset(
    {
        "Echo",
        "Pay",
        "Prompt",
        "Sms",
        "Siprec",
        "Transcription",
        "Room",
        "ConversationRelay",
        "VirtualAgent",
        "Conversation",
        "Autopilot",
        "Sim",
        "Application",
        "WhatsApp",
        "Task",
        "Uri",
        "Headers",
    }
)
_KNOWN_NAMES = frozenset(_SPECS) | frozenset(_VOICE_VERBS)


def parse_voice_twiml(document: str | bytes) -> Response:
    """Parse a voice TwiML document into its verbs.

    Raises ``TwimlError`` (and nothing else) with code 12100 or 12200.
    """
    root = _read_document(document)
    ctx = _Context()
    ctx.attributes(root)
    verbs = _built(root, _child_elements(root), _VOICE_VERBS, ctx)
    return Response(verbs=tuple(verbs), warnings=tuple(ctx.warnings))


# --- messaging ------------------------------------------------------------------


def _message(element: _Element, ctx: _Context) -> Message:
    values = ctx.attributes(element)
    body: list[str] = []
    media: list[str] = []
    for item in element.content:
        if isinstance(item, str):
            body.append(item)
        elif item.name == "Body":
            ctx.attributes(item)
            body.append(_leaf_text(item))
        elif item.name == "Media":
            ctx.attributes(item)
            media.append(_required_text(item, "a URL"))
        else:
            _misplaced(item, element)
    text = "".join(body).strip()
    if not text and not media:
        _schema_error("<Message> needs a body or media")
    return Message(body=text, media=tuple(media), **values)


_MESSAGING_VERBS: dict[str, Callable[[_Element, _Context], Message | Redirect]] = {
    "Message": _message,
    "Redirect": _redirect,
}


def parse_messaging_twiml(document: str | bytes) -> tuple[Message | Redirect, ...]:
    """Parse a messaging TwiML document into its ``Message`` and ``Redirect`` verbs.

    Raises ``TwimlError`` (and nothing else) with code 12100 or 12200; unknown
    attribute names are ignored.
    """
    root = _read_document(document)
    ctx = _Context()
    ctx.attributes(root)
    verbs = _built(root, _child_elements(root), _MESSAGING_VERBS, ctx)
    return tuple(verbs)
