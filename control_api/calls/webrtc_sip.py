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

from collections.abc import Callable
from typing import TYPE_CHECKING

from media.sdp import SessionDescription

if TYPE_CHECKING:
    from signaling.webrtc_leg import WebRtcLeg

__all__ = ["WEBSOCKET_TRANSPORTS", "WebRtcLegs", "end_with_leg", "is_webrtc_offer"]

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
