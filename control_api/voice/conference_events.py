"""A conference's status callbacks: ``<Conference statusCallback>`` (or the Participants
API's ``ConferenceStatusCallback``), as Twilio sends them.

The first participant to join with a ``statusCallback`` sets the conference's (later
ones are ignored, as on Twilio). ``statusCallbackEvent`` picks which of these are
sent (``start end`` when none is given):

===============  ==============================================================
asked as         ``StatusCallbackEvent`` sent
===============  ==============================================================
``start``        ``conference-start``
``end``          ``conference-end`` (``ReasonConferenceEnded``, ``Reason``,
                 ``CallSidEndingConference``)
``join``         ``participant-join``
``leave``        ``participant-leave`` (``ReasonParticipantLeft``)
``mute``         ``participant-mute``, ``participant-unmute``
``hold``         ``participant-hold``, ``participant-unhold``
``modify``       ``participant-modify`` (coaching, endConferenceOnExit changed)
``speaker``      ``participant-speech-start``, ``participant-speech-stop``
``announcement`` ``announcement-end``, ``announcement-fail``
===============  ==============================================================

Every callback has ``AccountSid``, ``ConferenceSid``, ``FriendlyName``,
``StatusCallbackEvent``, ``Timestamp`` (RFC 2822) and ``SequenceNumber`` (from 1,
per conference); those about a participant also ``CallSid``, ``Muted``, ``Hold``,
``Coaching``, ``EndConferenceOnExit``, ``StartConferenceOnEnter``, and
``ParticipantLabel`` and ``CallSidToCoach`` when set. They go through the outbox
(signed, retried), in order: the conference's SID is their order key.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime

from control_api.sids import rfc2822

__all__ = [
    "DEFAULT_EVENTS",
    "EVENT_FILTERS",
    "REASON_TEXT",
    "ConferenceCallbacks",
    "ParticipantView",
    "parse_events",
]

EVENT_FILTERS = {
    "conference-start": "start",
    "conference-end": "end",
    "participant-join": "join",
    "participant-leave": "leave",
    "participant-mute": "mute",
    "participant-unmute": "mute",
    "participant-hold": "hold",
    "participant-unhold": "hold",
    "participant-modify": "modify",
    "participant-speech-start": "speaker",
    "participant-speech-stop": "speaker",
    "announcement-end": "announcement",
    "announcement-fail": "announcement",
}
DEFAULT_EVENTS = frozenset({"start", "end"})

# reason_conference_ended (the spec's enum) -> the Reason text of conference-end.
REASON_TEXT = {
    "conference-ended-via-api": "Conference ended via API",
    "participant-with-end-conference-on-exit-left": ("Participant with 'endConferenceOnExit' left"),
    "participant-with-end-conference-on-exit-kicked": (
        "Participant with 'endConferenceOnExit' was kicked"
    ),
    "last-participant-left": "Last participant left",
    "last-participant-kicked": "Last participant was kicked",
}


def parse_events(events: tuple[str, ...] | frozenset[str] | str) -> frozenset[str]:
    """``statusCallbackEvent`` (space or comma separated) as a set; the default when empty."""
    if isinstance(events, str):
        events = tuple(events.replace(",", " ").split())
    wanted = frozenset(e.strip() for e in events if e.strip())
    return wanted or DEFAULT_EVENTS


@dataclass(frozen=True, slots=True)
class ParticipantView:
    """A participant as its callbacks show it."""

    call_sid: str
    label: str | None = None
    muted: bool = False
    hold: bool = False
    coaching: bool = False
    call_sid_to_coach: str | None = None
    start_conference_on_enter: bool = True
    end_conference_on_exit: bool = False

    def params(self) -> list[tuple[str, str]]:
        fields = [
            ("CallSid", self.call_sid),
            ("Muted", _bool(self.muted)),
            ("Hold", _bool(self.hold)),
            ("Coaching", _bool(self.coaching)),
            ("EndConferenceOnExit", _bool(self.end_conference_on_exit)),
            ("StartConferenceOnEnter", _bool(self.start_conference_on_enter)),
        ]
        if self.label:
            fields.append(("ParticipantLabel", self.label))
        if self.call_sid_to_coach:
            fields.append(("CallSidToCoach", self.call_sid_to_coach))
        return fields


Enqueue = Callable[..., Awaitable[object]]  # Outbox.enqueue


@dataclass(slots=True)
class ConferenceCallbacks:
    """The status callbacks of one conference."""

    enqueue: Enqueue
    account_sid: str
    conference_sid: str
    friendly_name: str
    url: str
    method: str = "POST"
    events: frozenset[str] = DEFAULT_EVENTS
    sequence: int = 0

    def wants(self, event: str) -> bool:
        return EVENT_FILTERS.get(event, "") in self.events

    def delivery(
        self,
        event: str,
        participant: ParticipantView | None = None,
        **extra: str,
    ) -> Callable[[], Awaitable[object]] | None:
        """The write that queues ``event``'s callback (for the conference's journal), or
        None when it was not asked for. Its number and time are taken now."""
        if not self.wants(event):
            return None
        self.sequence += 1
        params = [
            ("AccountSid", self.account_sid),
            ("ConferenceSid", self.conference_sid),
            ("FriendlyName", self.friendly_name),
            ("StatusCallbackEvent", event),
            ("Timestamp", rfc2822(datetime.now(UTC))),
            ("SequenceNumber", str(self.sequence)),
        ]
        if participant is not None:
            params += participant.params()
        params += [(name, value) for name, value in extra.items() if value]
        url, method = self.url, self.method

        def write() -> Awaitable[object]:
            return self.enqueue(
                account_sid=self.account_sid,
                url=url,
                method=method,
                params=params,
                call_sid=self.conference_sid,  # the order key: this conference's events
            )

        return write


def _bool(value: bool) -> str:
    return "true" if value else "false"
