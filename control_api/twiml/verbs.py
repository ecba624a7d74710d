"""TwiML verbs and nouns as typed values (Twilio TwiML voice and messaging reference).

Every class is a frozen dataclass whose attribute names are the snake_case form of
Twilio's camelCase XML attributes (``finishOnKey`` → ``finish_on_key``) and whose
defaults are Twilio's documented defaults, so a verb built from ``<Gather/>`` equals
``Gather()``. Values are already checked and converted by the parser: integers are
``int``, booleans are ``bool``, HTTP methods are upper case, and space-separated
lists (``input``, ``statusCallbackEvent``) are tuples.

``None`` means "not given", where Twilio's behaviour then depends on the call (an
``action`` left out means the URL of the current document).
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = [
    "Client",
    "Conference",
    "Connect",
    "ConnectRelay",
    "ConversationRelay",
    "Dial",
    "DialNoun",
    "Enqueue",
    "Gather",
    "GatherChild",
    "Hangup",
    "Leave",
    "Message",
    "Number",
    "Pause",
    "Play",
    "Queue",
    "Record",
    "Redirect",
    "Refer",
    "Reject",
    "RelayLanguage",
    "Response",
    "Say",
    "Sip",
    "Start",
    "StartTranscription",
    "Stop",
    "StopTranscription",
    "Stream",
    "Transcription",
    "Verb",
]

Parameters = tuple[tuple[str, str], ...]


@dataclass(frozen=True, slots=True)
class Say:
    """``<Say>``: speak ``text``; ``loop`` 0 repeats until the call ends.

    SSML children are reduced to their text content, in document order.
    """

    text: str
    voice: str = "man"
    language: str = "en-US"
    loop: int = 1


@dataclass(frozen=True, slots=True)
class Play:
    """``<Play>``: play the audio at ``url``, or send ``digits`` as DTMF (``w`` = 0.5 s)."""

    url: str | None = None
    loop: int = 1
    digits: str | None = None


@dataclass(frozen=True, slots=True)
class Pause:
    """``<Pause>``: silence for ``length`` seconds."""

    length: int = 1


GatherChild = Say | Play | Pause


@dataclass(frozen=True, slots=True)
class Gather:
    """``<Gather>``: collect DTMF and/or speech while the nested prompts play.

    ``finish_on_key`` is one key, or ``""`` for none; ``timeout`` is the seconds of
    silence that end input; ``speech_timeout`` is ``"auto"`` or whole seconds.
    """

    children: tuple[GatherChild, ...] = ()
    input: tuple[str, ...] = ("dtmf",)
    action: str | None = None
    method: str = "POST"
    timeout: int = 5
    finish_on_key: str = "#"
    num_digits: int | None = None
    action_on_empty_result: bool = False
    speech_timeout: str | None = None
    language: str = "en-US"
    hints: str | None = None
    partial_result_callback: str | None = None
    partial_result_callback_method: str = "POST"
    barge_in: bool = True
    profanity_filter: bool = True
    speech_model: str | None = None
    enhanced: bool = False
    max_speech_time: int = 60


@dataclass(frozen=True, slots=True, kw_only=True)
class _Party:
    """What ``<Number>``, ``<Sip>`` and ``<Client>`` take alike: the TwiML the called
    party runs before it is bridged (``url``) and the status callbacks of its leg."""

    url: str | None = None
    method: str = "POST"
    status_callback: str | None = None
    status_callback_event: tuple[str, ...] = ("completed",)
    status_callback_method: str = "POST"
    # Answering-machine detection (<Number> and <Sip> only): Enable or DetectMessageEnd.
    machine_detection: str | None = None
    machine_detection_timeout: int = 30
    machine_detection_speech_threshold: int = 2400
    machine_detection_speech_end_threshold: int = 1200
    machine_detection_silence_timeout: int = 5000
    amd_status_callback: str | None = None
    amd_status_callback_method: str = "POST"
    # Calls' asyncAmd, asyncAmdStatusCallback, asyncAmdStatusCallbackMethod given to
    # a <Number>/<Sip> (which takes amdStatusCallback): names of those given, for
    # warning 21263.
    misplaced_async_amd: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Number(_Party):
    """``<Number>`` in ``<Dial>``: a phone number (E.164)."""

    number: str
    send_digits: str | None = None


@dataclass(frozen=True, slots=True)
class Sip(_Party):
    """``<Sip>`` in ``<Dial>`` or ``<Refer>``: a ``sip:`` or ``sips:`` URI."""

    uri: str
    username: str | None = None
    password: str | None = None


@dataclass(frozen=True, slots=True)
class Client(_Party):
    """``<Client>`` in ``<Dial>``: a browser or SDK client by identity.

    The identity is the text content or an ``<Identity>`` child; ``<Parameter>``
    children become ``parameters`` (name, value) in document order.
    """

    identity: str
    parameters: Parameters = ()


@dataclass(frozen=True, slots=True)
class Conference:
    """``<Conference>`` in ``<Dial>``: join the conference room ``name``.

    ``beep`` is ``"true"``, ``"false"``, ``"onEnter"`` or ``"onExit"``.
    ``wait_url`` ``None`` means the default hold music; ``""`` means silence.
    """

    name: str
    muted: bool = False
    beep: str = "true"
    start_conference_on_enter: bool = True
    end_conference_on_exit: bool = False
    wait_url: str | None = None
    wait_method: str = "POST"
    max_participants: int = 250
    record: str = "do-not-record"
    trim: str = "trim-silence"
    coach: str | None = None
    participant_label: str | None = None
    status_callback: str | None = None
    status_callback_event: tuple[str, ...] = ()
    status_callback_method: str = "POST"
    recording_status_callback: str | None = None
    recording_status_callback_method: str = "POST"
    recording_status_callback_event: tuple[str, ...] = ("completed",)


@dataclass(frozen=True, slots=True)
class Queue:
    """``<Queue>`` in ``<Dial>``: bridge to the caller at the front of queue ``name``."""

    name: str
    url: str | None = None
    method: str = "POST"
    reservation_sid: str | None = None
    post_work_activity_sid: str | None = None


DialNoun = Number | Sip | Client | Conference | Queue


@dataclass(frozen=True, slots=True)
class Dial:
    """``<Dial>``: connect the call to ``number_text`` (the text content) or to ``nouns``.

    Several nouns ring in parallel and the first to answer wins; a ``Conference`` or
    ``Queue`` noun stands alone. ``record`` is one of do-not-record,
    record-from-answer, record-from-ringing, record-from-answer-dual or
    record-from-ringing-dual (the legacy ``true``/``false`` are mapped to the first two).
    """

    nouns: tuple[DialNoun, ...] = ()
    number_text: str | None = None
    action: str | None = None
    method: str = "POST"
    timeout: int = 30
    caller_id: str | None = None
    record: str = "do-not-record"
    trim: str = "do-not-trim"
    hangup_on_star: bool = False
    time_limit: int = 14400
    answer_on_bridge: bool = False
    ring_tone: str | None = None
    recording_status_callback: str | None = None
    recording_status_callback_method: str = "POST"
    recording_status_callback_event: tuple[str, ...] = ("completed",)
    recording_track: str = "both"
    sequential: bool = False
    refer_url: str | None = None
    refer_method: str = "POST"


@dataclass(frozen=True, slots=True)
class Record:
    """``<Record>``: record the caller until silence, a key, hang-up or ``max_length``.

    ``finish_on_key`` is a set of keys (any one ends the recording), ``""`` for none;
    ``timeout`` is seconds of silence, 0 to never stop on silence.
    """

    action: str | None = None
    method: str = "POST"
    timeout: int = 5
    finish_on_key: str = "1234567890*#"
    max_length: int = 3600
    play_beep: bool = True
    trim: str = "trim-silence"
    recording_status_callback: str | None = None
    recording_status_callback_method: str = "POST"
    recording_status_callback_event: tuple[str, ...] = ("completed",)
    transcribe: bool = False
    transcribe_callback: str | None = None


@dataclass(frozen=True, slots=True)
class Hangup:
    """``<Hangup>``: end the call."""


@dataclass(frozen=True, slots=True)
class Reject:
    """``<Reject>``: refuse an inbound call before answering it (``rejected`` or ``busy``)."""

    reason: str = "rejected"


@dataclass(frozen=True, slots=True)
class Redirect:
    """``<Redirect>``: fetch the TwiML at ``url`` and run it instead (voice and messaging)."""

    url: str
    method: str = "POST"


@dataclass(frozen=True, slots=True)
class Stream:
    """``<Stream>``: a Media Streams WebSocket (``ws://`` or ``wss://``).

    ``url`` is required in ``<Start>`` and ``<Connect>``; in ``<Stop>`` the stream is
    named by ``name`` (or ``url``). ``track`` is inbound_track, outbound_track or
    both_tracks (``<Connect>`` takes inbound_track only). ``<Parameter>`` children are
    ``parameters`` (name, value), sent as ``customParameters``.
    """

    url: str | None = None
    name: str | None = None
    track: str = "inbound_track"
    status_callback: str | None = None
    status_callback_method: str = "POST"
    parameters: Parameters = ()


@dataclass(frozen=True, slots=True)
class Refer:
    """``<Refer>``: transfer a SIP call with a REFER to ``sip.uri``."""

    sip: Sip
    action: str | None = None
    method: str = "POST"


@dataclass(frozen=True, slots=True)
class _StreamVerb:
    """What ``<Connect>`` and ``<Start>`` both take: a ``<Stream>`` and an ``action``."""

    stream: Stream
    action: str | None = None
    method: str = "POST"


@dataclass(frozen=True, slots=True)
class Connect(_StreamVerb):
    """``<Connect><Stream>``: a bidirectional media stream; TwiML resumes when it ends."""


@dataclass(frozen=True, slots=True)
class RelayLanguage:
    """``<Language>`` in ``<ConversationRelay>``: a language the session may switch to,
    with its own voice and providers (accepted; speech here is ours)."""

    code: str
    tts_provider: str | None = None
    voice: str | None = None
    transcription_provider: str | None = None
    speech_model: str | None = None


@dataclass(frozen=True, slots=True)
class ConversationRelay:
    """``<ConversationRelay>``: the platform listens and speaks, the application
    exchanges text over a WebSocket (docs/conversation-relay.md)."""

    url: str
    welcome_greeting: str | None = None
    welcome_greeting_interruptible: str = "any"  # any, none, speech, dtmf
    language: str = "en-US"
    tts_language: str | None = None
    transcription_language: str | None = None
    voice: str | None = None
    tts_provider: str | None = None
    transcription_provider: str | None = None
    speech_model: str | None = None
    interruptible: str = "any"  # any, none, speech, dtmf
    interrupt_sensitivity: str = "high"
    dtmf_detection: bool = False
    report_input_during_agent_speech: str = "none"  # none, any, speech, dtmf
    preemptible: bool = False  # the greeting's, and a reply's that does not say
    partial_prompts: bool = False  # prompt messages with last=false as the caller speaks
    hints: str | None = None
    debug: str | None = None
    languages: tuple[RelayLanguage, ...] = ()
    parameters: Parameters = ()


@dataclass(frozen=True, slots=True)
class ConnectRelay:
    """``<Connect><ConversationRelay>``: a conversation until either side ends it; then
    ``action`` (with the session's outcome) or the next verb."""

    relay: ConversationRelay
    action: str | None = None
    method: str = "POST"


@dataclass(frozen=True, slots=True)
class Transcription:
    """``<Transcription>`` in ``<Start>`` or ``<Stop>``: live transcription of the call."""

    name: str | None = None
    track: str = "inbound_track"  # inbound_track, outbound_track, both_tracks
    status_callback_url: str | None = None
    status_callback_method: str = "POST"
    language_code: str = "en-US"
    partial_results: bool = False
    hints: str | None = None
    inbound_track_label: str | None = None
    outbound_track_label: str | None = None
    transcription_engine: str | None = None  # accepted: the node's recognizer runs
    speech_model: str | None = None
    profanity_filter: bool = True
    enable_automatic_punctuation: bool = True


@dataclass(frozen=True, slots=True)
class StartTranscription:
    """``<Start><Transcription>``: transcribe beside the TwiML, which goes on at once."""

    transcription: Transcription
    action: str | None = None
    method: str = "POST"


@dataclass(frozen=True, slots=True)
class StopTranscription:
    """``<Stop><Transcription name=…>``: stop the live transcription of that name."""

    transcription: Transcription


@dataclass(frozen=True, slots=True)
class Start(_StreamVerb):
    """``<Start><Stream>``: fork the call's audio to a stream; TwiML continues at once."""


@dataclass(frozen=True, slots=True)
class Stop:
    """``<Stop><Stream>``: stop the stream started under the same name (or URL)."""

    stream: Stream


@dataclass(frozen=True, slots=True)
class Enqueue:
    """``<Enqueue>``: put the caller in queue ``name``, playing ``wait_url`` meanwhile."""

    name: str
    action: str | None = None
    method: str = "POST"
    wait_url: str | None = None
    wait_url_method: str = "POST"
    max_queue_size: int | None = None
    workflow_sid: str | None = None


@dataclass(frozen=True, slots=True)
class Leave:
    """``<Leave>``: leave the queue; TwiML continues after the ``<Enqueue>``."""


Verb = (
    Say
    | Play
    | Pause
    | Gather
    | Dial
    | Record
    | Hangup
    | Reject
    | Redirect
    | Refer
    | Connect
    | ConnectRelay
    | Start
    | StartTranscription
    | Stop
    | StopTranscription
    | Enqueue
    | Leave
)


@dataclass(frozen=True, slots=True)
class Response:
    """A parsed voice ``<Response>``: its verbs in order, and what the parser ignored.

    ``warnings`` names attributes the parser did not recognise (Twilio ignores them
    too); each is one human-readable line.
    """

    verbs: tuple[Verb, ...] = ()
    warnings: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Message:
    """Messaging ``<Message>``: a reply SMS/MMS with ``body`` and ``media`` URLs.

    ``to`` and ``from_`` default to the sender and the receiving number of the
    inbound message when ``None``.
    """

    body: str = ""
    to: str | None = None
    from_: str | None = None
    action: str | None = None
    method: str = "POST"
    media: tuple[str, ...] = ()
    status_callback: str | None = None
