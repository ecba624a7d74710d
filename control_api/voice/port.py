"""The voice runtime's control port: what the REST API and the cluster ask of calls
in progress (:class:`LiveCalls`), in plain request and answer types.

The HTTP layer (control_api/api/) parses forms into these and maps
:class:`Unroutable` to Twilio's error codes; the cluster (control_api/cluster/)
forwards them to the node that holds a call. Neither reaches past this port.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from control_api.store import CallRecord, ParticipantRecord
    from control_api.voice.live import LiveCall

__all__ = [
    "LiveCalls",
    "NewCall",
    "NewMachineDetection",
    "NewParticipant",
    "NewRecording",
    "NewStream",
    "NewTranscription",
    "NewTwiml",
    "StreamInfo",
    "TranscriptionInfo",
    "Unavailable",
    "Unroutable",
]


class Unroutable(Exception):
    """A call's ``To`` cannot be placed: no route, or (``refused``) a dial guard
    turned it away."""

    def __init__(self, message: str, *, refused: bool = False) -> None:
        super().__init__(message)
        self.refused = refused


class Unavailable(Exception):
    """Calls cannot be placed or reached here now: this node drains, or the node that
    holds the call did not answer (the API answers Twilio's 20503)."""


@dataclass(frozen=True, slots=True)
class NewMachineDetection:
    """``MachineDetection`` and its tuning (reference §2; Twilio's ranges checked)."""

    detect_message_end: bool = False  # MachineDetection=DetectMessageEnd (else Enable)
    timeout_s: int = 30
    speech_threshold_ms: int = 2400
    speech_end_threshold_ms: int = 1200
    silence_timeout_ms: int = 5000
    asynchronous: bool = False  # AsyncAmd
    callback: str | None = None  # AsyncAmdStatusCallback (amdStatusCallback on <Number>)
    callback_method: str = "POST"
    # AsyncAmd parameters sent where they do not belong (a participant): warning 21263
    misplaced_async: bool = False


@dataclass(frozen=True, slots=True)
class NewCall:
    """The checked parameters of ``POST Calls.json`` (reference §2)."""

    to: str
    from_: str
    url: str | None = None
    method: str = "POST"
    twiml: str | None = None
    fallback_url: str | None = None
    fallback_method: str = "POST"
    status_callback: str | None = None
    status_callback_method: str = "POST"
    status_callback_events: frozenset[str] = frozenset({"completed"})
    send_digits: str | None = None
    timeout: int = 60
    time_limit: int = 14400
    record: bool = False
    recording_status_callback: str | None = None
    caller_id: str | None = None
    sip_auth_username: str | None = None
    sip_auth_password: str | None = None
    machine_detection: NewMachineDetection | None = None
    source_ip: str = ""  # the REST client's address (not a parameter)


@dataclass(frozen=True, slots=True)
class NewParticipant:
    """The checked parameters of ``POST Conferences/{CF or name}/Participants.json``:
    the call placed (``call``: its To, From, StatusCallback…, no Url) and how it joins."""

    call: NewCall
    label: str | None = None
    beep: str = "true"
    muted: bool = False
    start_conference_on_enter: bool = True
    end_conference_on_exit: bool = False
    wait_url: str | None = None  # None: the local hold music; "": silence
    wait_method: str = "POST"
    max_participants: int = 250
    early_media: bool = True
    coaching: bool = False
    call_sid_to_coach: str | None = None
    conference_record: str | None = None  # record-from-start, do-not-record
    conference_status_callback: str | None = None
    conference_status_callback_method: str = "POST"
    conference_status_callback_events: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class NewStream:
    """The checked parameters of ``POST Calls/{CallSid}/Streams.json``."""

    url: str
    name: str | None = None
    track: str = "inbound_track"
    status_callback: str | None = None
    status_callback_method: str = "POST"
    parameters: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True, slots=True)
class NewTranscription:
    """The checked parameters of ``POST Calls/{CallSid}/Transcriptions.json``: the
    attributes of a ``<Start><Transcription>``, by the same names."""

    name: str | None = None
    track: str = "inbound_track"
    status_callback_url: str | None = None
    status_callback_method: str = "POST"
    language_code: str = "en-US"
    partial_results: bool = False
    hints: str | None = None
    inbound_track_label: str | None = None
    outbound_track_label: str | None = None
    transcription_engine: str | None = None
    speech_model: str | None = None
    profanity_filter: bool = True
    enable_automatic_punctuation: bool = True


@dataclass(frozen=True, slots=True)
class NewRecording:
    """The checked parameters of ``POST Calls/{CallSid}/Recordings.json``."""

    channels: str = "mono"  # mono or dual
    track: str = "both"  # inbound (what the caller says), outbound (what it hears), both
    trim: str = "do-not-trim"
    status_callback: str | None = None
    status_callback_method: str = "POST"
    status_callback_events: tuple[str, ...] = ("completed",)


@dataclass(frozen=True, slots=True)
class NewTwiml:
    """The TwiML a REST update gives a live call in place of its own (``Url`` and
    ``Method``, or ``Twiml``)."""

    url: str | None = None
    method: str = "POST"
    twiml: str | None = None


@dataclass(frozen=True, slots=True)
class StreamInfo:
    """A stream as the resource shows it; ``status`` is in-progress or stopped."""

    sid: str
    name: str | None
    status: str
    date_updated: datetime


@dataclass(frozen=True, slots=True)
class TranscriptionInfo:
    """A live transcription as the resource shows it; ``status`` is in-progress or
    stopped."""

    sid: str
    name: str | None
    status: str
    date_updated: datetime


class LiveCalls(Protocol):
    """What the REST API asks of the call engine about calls in progress.

    Each method answers False when the account has no such live call (it has ended, or
    never was), which the API reports as Twilio's 21220. Return once the change has
    been made, and the store updated where the change shows there (status, end time),
    so that the call the API answers with is fresh.
    """

    def live_of(self, account_sid: str) -> Sequence[LiveCall]:
        """The account's calls in progress on this node (the console's live view)."""
        ...

    async def hangup(self, account_sid: str, call_sid: str) -> bool:
        """``Status=completed``: end the call, whatever state it is in."""
        ...

    async def cancel(self, account_sid: str, call_sid: str) -> bool:
        """``Status=canceled``: end a queued or ringing call; one answered already goes on."""
        ...

    async def create(self, account_sid: str, call: NewCall) -> CallRecord | None:
        """Place a call; the record (status queued) once stored, None when this node can't."""
        ...

    async def redirect(self, account_sid: str, call_sid: str, to: NewTwiml) -> bool:
        """Replace the running TwiML: fetch it from ``to.url`` with ``to.method``, or
        run ``to.twiml``."""
        ...

    async def add_participant(
        self, account_sid: str, conference: str, participant: NewParticipant
    ) -> ParticipantRecord | None:
        """Dial a participant into the live conference ``conference`` (a CF sid) or the
        one of that friendly name (made when none runs): its row (status queued), None
        when this node places no calls. Raises LookupError when no conference with that
        sid is live here, Unroutable when its To cannot be called."""
        ...

    async def start_stream(
        self, account_sid: str, call_sid: str, stream: NewStream
    ) -> StreamInfo | None:
        """Fork the call's audio to a Media Stream (the Streams resource); None when the
        call is not live. Raises ValueError when ``stream.name`` is taken on the call or
        the call has as many streams as it may."""
        ...

    async def stop_stream(
        self, account_sid: str, call_sid: str, sid_or_name: str
    ) -> StreamInfo | None:
        """Stop the call's stream with that MZ sid or name; None when the call is not
        live. Raises LookupError when the live call has no such stream."""
        ...

    async def start_transcription(
        self, account_sid: str, call_sid: str, transcription: NewTranscription
    ) -> TranscriptionInfo | None:
        """Transcribe the call as it goes (the call's Transcriptions resource, what
        ``<Start><Transcription>`` does); None when the call is not live and answered.
        Raises ValueError when the name is taken on the call or the call has as many
        transcriptions as it may."""
        ...

    async def stop_transcription(
        self, account_sid: str, call_sid: str, sid_or_name: str
    ) -> TranscriptionInfo | None:
        """Stop the call's live transcription with that GT sid or name; None when the
        call is not live. Raises LookupError when the live call has no such
        transcription."""
        ...

    async def start_recording(
        self, account_sid: str, call_sid: str, recording: NewRecording
    ) -> str | None:
        """Start recording the call (voice/live_recording.py): the RE sid once its row
        is stored; None when the call is not live or not answered. Raises ValueError
        when the call has as many recordings in progress as it may."""
        ...

    async def update_recording(
        self, account_sid: str, call_sid: str, sid: str, status: str, pause_behavior: str
    ) -> str | None:
        """Pause, resume or stop the call's recording ``sid`` (or ``Twilio.CURRENT``):
        its RE sid once the row shows the change; None when the call is not live.
        Raises LookupError when the live call has no such recording."""
        ...
