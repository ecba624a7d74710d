"""SIP dialogs whose media is WebRTC: browser phones over SIP WebSocket (RFC 7118).

JsSIP and SIP.js phones send INVITEs over a WebSocket with a WebRTC offer
(ICE, DTLS-SRTP, ``UDP/TLS/RTP/SAVPF``, rtcp-mux) and expect one when they are
called. Such a dialog gets a :class:`~signaling.webrtc_leg.WebRtcLeg` (the same
aiortc leg a ``/signaling`` tab has) instead of an RTP session; everything
above the leg (bridges, TwiML, conferences, Media Streams) is the same.

Which one a dialog gets: an INVITE whose SDP is WebRTC's is answered by a
WebRTC leg; a call placed on a WebSocket flow (a phone that registered over
one) offers WebRTC. Our SDP carries every candidate: no trickle ICE.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import TYPE_CHECKING

from media.sdp import SessionDescription

if TYPE_CHECKING:
    from signaling.webrtc_leg import WebRtcLeg

__all__ = [
    "WEBSOCKET_TRANSPORTS",
    "MidCallOffers",
    "WebRtcLegs",
    "attach_midcall_offers",
    "end_with_leg",
    "is_webrtc_offer",
]

WEBSOCKET_TRANSPORTS = frozenset({"WS", "WSS"})  # RFC 7118 Via transports

# Makes a fresh WebRTC leg (ICE servers and the media clock given at wiring).
WebRtcLegs = Callable[[], "WebRtcLeg"]


def is_webrtc_offer(offer: SessionDescription, raw: bytes) -> bool:
    """Whether an offer's audio is WebRTC's: DTLS-SRTP (RFC 5764: ``UDP/TLS/RTP/SAVPF``,
    or a certificate fingerprint), which an RTP session cannot answer."""
    audio = next((m for m in offer.media if m.media == "audio" and m.port), None)
    if audio is None:
        return False
    return "TLS" in audio.protocol.upper().split("/") or b"a=fingerprint:" in raw


def end_with_leg(leg: WebRtcLeg, hangup: Callable[[], None]) -> None:
    """Hang the call up once the browser's media is gone (ICE or DTLS failed)."""

    def changed(state: str) -> None:
        if state == "failed":
            hangup()

    leg.on_connection_state = changed


_DIRECTION = re.compile(rb"^a=(sendrecv|sendonly|recvonly|inactive)(?=\r?$)", re.M)
_UFRAG = re.compile(rb"^a=ice-ufrag:(\S+)", re.M)
_SETUP = re.compile(rb"^a=setup:(\w+)", re.M)
_ORIGIN = re.compile(rb"^(o=\S+ \S+ )(\d+)", re.M)
_MIRRORED = {  # RFC 3264 §6.1: the answer's direction for the offer's
    b"sendrecv": b"sendrecv",
    b"sendonly": b"recvonly",
    b"recvonly": b"sendonly",
    b"inactive": b"inactive",
}
_OUR_ROLE = {b"active": b"passive", b"passive": b"active"}  # RFC 4145 §4.1


def _first(pattern: re.Pattern[bytes], sdp: bytes) -> bytes | None:
    match = pattern.search(sdp)
    return match.group(1) if match else None


class MidCallOffers:
    """Answers a browser phone's re-INVITE or UPDATE offers (hold, resume, a session
    timer's refresh) from the description ICE and DTLS were set up with.

    The transport stays as it is: our candidates, credentials and fingerprint,
    the DTLS role we took (``passive`` or ``active``, never ``actpass`` in an
    answer), and the direction mirrors the offer's (a phone that holds with
    ``sendonly`` gets ``recvonly``). An offer with new ICE credentials (an ICE
    restart) is not done: None, which the dialog answers 488, and the call
    goes on as it was. The o= version goes up when the answer changes (RFC 3264 §8).
    """

    def __init__(self, local: bytes, remote: bytes) -> None:
        self._ufrag = _first(_UFRAG, remote)
        role = _first(_SETUP, remote)
        if role in _OUR_ROLE:
            local = _SETUP.sub(b"a=setup:" + _OUR_ROLE[role], local)
        self._base = local
        origin = _ORIGIN.search(local)
        self._version = int(origin.group(2)) if origin else 0
        self._last = local

    def answer(self, offer: bytes) -> bytes | None:
        """``on_offer``: our answer, or None for 488."""
        if _first(_UFRAG, offer) != self._ufrag:
            return None
        direction = _first(_DIRECTION, offer) or b"sendrecv"
        body = _DIRECTION.sub(b"a=" + _MIRRORED[direction], self._base)
        if body != self._last:
            self._version += 1
            self._last = body
        return _ORIGIN.sub(lambda m: m.group(1) + str(self._version).encode(), body, count=1)


def attach_midcall_offers(session, local: bytes, remote: bytes) -> MidCallOffers:
    """Answer ``session``'s mid-call offers from a WebRTC dialog's first exchange."""
    offers = MidCallOffers(local, remote)
    session.on_offer = offers.answer
    return offers
