"""rtpengine's DTMF log (``--dtmf-log-dest=IP:PORT``): one UDP datagram of JSON
per DTMF event it saw end, sans-I/O.

rtpengine (daemon/dtmf.c) sends, for every RFC 4733 event (or in-band tone it
detected while transcoding) when the event ends::

    {"callid":"…","source_tag":"…","tags":["…","…"],"type":"DTMF",
     "timestamp":1700000000,"source_ip":"…","event":10,"duration":250,"volume":10}

``source_tag`` is the ng tag of the party that sent the digit, ``event`` the RFC
4733 event code (0-9, 10 ``*``, 11 ``#``, 12-15 ``A``-``D``), ``duration`` in
milliseconds. Newer versions add ``source_label``. rtpengine writes the call-id
and tags into the JSON without escaping them; callswitch keeps its ng call-ids
and tags free of characters that would need it (engine_bridge.py).

With ``--dtmf-log-ng-tcp``, rtpengine sends the same fields instead to every
client connected to its ng TCP port (``--listen-tcp-ng``), bencoded as
``COOKIE {"notify": "onDTMF", "data": {...}}`` back to back on the stream:
:class:`NgNotifications` cuts the stream into those.

Anything else that reaches the socket (a stranger's datagram, a future field of
another type, an event code outside 0-15) raises :class:`DtmfLogError`: the
listener counts it and drops it.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from media.rtpengine.bencode import BencodeError, BencodeTruncated, decode_prefix

__all__ = [
    "DIGITS",
    "MAX_DATAGRAM",
    "DtmfEvent",
    "DtmfLogError",
    "NgNotifications",
    "dtmf_event_of",
    "parse_dtmf_event",
]

DIGITS = "0123456789*#ABCD"  # RFC 4733 §3.2: event codes 0-15
MAX_DATAGRAM = 4096  # rtpengine's events are a few hundred bytes
MAX_COOKIE = 64  # rtpengine's are 16 hex digits


class DtmfLogError(ValueError):
    """A datagram that is not an rtpengine DTMF event."""


@dataclass(frozen=True, slots=True)
class DtmfEvent:
    """One digit rtpengine saw: on its call ``call_id``, sent by the party ``source_tag``."""

    call_id: str
    source_tag: str
    digit: str
    duration_ms: int = 0
    volume: int = 0


def _text(body: dict[str, object], key: str) -> str:
    value = body.get(key)
    if not isinstance(value, str) or not value:
        raise DtmfLogError(f"{key} is missing or not a string")
    return value


def _count(body: dict[str, object], key: str) -> int:
    value = body.get(key, 0)
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value < 2**32:
        raise DtmfLogError(f"{key} is not a count")
    return value


def parse_dtmf_event(data: bytes) -> DtmfEvent:
    """The event one datagram of rtpengine's DTMF log carries."""
    if len(data) > MAX_DATAGRAM:
        raise DtmfLogError(f"datagram is too long ({len(data)} bytes)")
    try:
        body = json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:
        raise DtmfLogError(f"not JSON: {str(exc)[:80]}") from None
    return dtmf_event_of(body)


def dtmf_event_of(body: object) -> DtmfEvent:
    """The event of one DTMF log entry (decoded JSON, or the ng notification's ``data``)."""
    if not isinstance(body, dict):
        raise DtmfLogError("not a JSON object")
    if body.get("type", "DTMF") != "DTMF":
        raise DtmfLogError("type is not DTMF")
    event = body.get("event")
    if isinstance(event, bool) or not isinstance(event, int) or not 0 <= event < len(DIGITS):
        raise DtmfLogError("event is not a DTMF event code (0-15)")
    return DtmfEvent(
        call_id=_text(body, "callid"),
        source_tag=_text(body, "source_tag"),
        digit=DIGITS[event],
        duration_ms=_count(body, "duration"),
        volume=_count(body, "volume"),
    )


class NgNotifications:
    """rtpengine's notifications on an ng TCP connection, cut out of the stream.

    :meth:`feed` takes what arrived and returns the DTMF events completed by it;
    other notifications (and DTMF ones with bad fields) are counted in
    ``ignored``. A stream that is not ng (no cookie, a value that cannot be
    bencode, more than ``MAX_DATAGRAM`` bytes without completing one) raises
    :class:`DtmfLogError`: the connection is then closed and made anew.
    """

    def __init__(self) -> None:
        self._buffer = bytearray()
        self.ignored = 0

    def feed(self, data: bytes) -> list[DtmfEvent]:
        self._buffer += data
        events: list[DtmfEvent] = []
        while self._buffer:
            space = self._buffer.find(b" ", 0, MAX_COOKIE + 1)
            if space < 0:
                if len(self._buffer) > MAX_COOKIE:
                    raise DtmfLogError("no ng cookie")
                break
            try:
                value, end = decode_prefix(bytes(self._buffer), space + 1)
            except BencodeTruncated:
                if len(self._buffer) > MAX_DATAGRAM:
                    raise DtmfLogError("ng message is too long") from None
                break
            except BencodeError as exc:
                raise DtmfLogError(f"not bencode: {exc}") from None
            del self._buffer[:end]
            try:
                if not isinstance(value, dict) or value.get("notify") != "onDTMF":
                    raise DtmfLogError("not an onDTMF notification")
                events.append(dtmf_event_of(value.get("data")))
            except DtmfLogError:
                self.ignored += 1
        return events
