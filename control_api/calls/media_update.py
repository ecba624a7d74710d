"""Offers in an established call: hold, resume, a new address, a new codec.

One helper for inbound (:class:`~control_api.calls.call.Call`) and outbound
(:class:`~control_api.calls.outbound_call.OutboundCall`) calls. It is plugged into
the SIP session's ``on_offer`` / ``on_answer`` (sip/midcall.py) once the RTP
leg is negotiated, and applies what a re-INVITE or UPDATE asks for
(RFC 3264 §8) to the leg:

- hold: the peer's stream is sendonly or inactive, or its address is
  0.0.0.0 (RFC 2543 style) → we answer recvonly / inactive and stop sending;
- resume (sendrecv) → we answer sendrecv and send again;
- a new remote address or port → the leg sends there;
- another codec among ours → the leg switches (a bridge re-plans itself).

Our local port never changes, and the answer's o= version goes up only when
the answer differs from the previous one (RFC 3264 §8).
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging

from media.sdp import (
    TELEPHONE_EVENT,
    Codec,
    MediaDescription,
    SdpNegotiationError,
    SdpParseError,
    SessionDescription,
    negotiate_answer,
    remote_rtp_address,
)
from media.session import RtpSession

__all__ = ["MediaUpdater", "attach_media_updates", "is_hold"]

log = logging.getLogger("callswitch.calls")

_UNSPECIFIED = ("0.0.0.0", "::")


def is_hold(sdp: SessionDescription, media: MediaDescription) -> bool:
    """Whether a stream puts us on hold (RFC 3264 §8.4, RFC 2543's c=0.0.0.0)."""
    address = media.connection_address or sdp.connection_address or ""
    return media.direction in ("sendonly", "inactive") or address.split("/")[0] in _UNSPECIFIED


def _content_key(sdp: SessionDescription) -> bytes:
    """The description without its version: what decides whether the version goes up."""
    return dataclasses.replace(sdp, session_version=0).serialize()


class MediaUpdater:
    """Answers the offers of one call's dialog and applies them to its leg."""

    def __init__(
        self, leg: RtpSession, public_address: str, local_sdp: bytes | None, codecs: list[Codec]
    ) -> None:
        self.leg = leg
        self.codecs = codecs  # ours, in preference order, telephone-event included
        self.public_address = public_address
        self.version = leg.ssrc
        self._last_key: bytes | None = None
        self._crypto: list[str] = []
        self.session_id = leg.ssrc
        self.username = "-"
        self.origin_address = public_address
        if local_sdp:
            try:
                ours = SessionDescription.parse(local_sdp)
            except SdpParseError:
                ours = None
            if ours is not None:
                self.version = ours.session_version
                self.session_id = ours.session_id
                self.username = ours.username
                self.origin_address = ours.address
                self._last_key = _content_key(ours)
                audio = next((m for m in ours.media if m.media == "audio" and m.port), None)
                self._crypto = list(getattr(audio, "crypto", []) or [])
        self._sdp_remote = leg.destination  # where the SDP said to send, before NAT latching
        self.held = False

    # -- the session callbacks

    def answer(self, offer: bytes) -> bytes | None:
        """``on_offer``: our answer to a re-INVITE/UPDATE offer, or None for 488."""
        leg = self.leg
        try:
            sdp = SessionDescription.parse(offer)
            kwargs = {}
            if self._crypto:  # keep our SDES key (RFC 4568 §7.1.4 allows reusing it)
                kwargs["crypto_answer"] = self._reuse_crypto
            answer, codec, dtmf = negotiate_answer(
                sdp, self.codecs, self.public_address, leg.port, leg.ssrc, **kwargs
            )
        except (SdpParseError, SdpNegotiationError):
            return None
        index = next(i for i, m in enumerate(answer.media) if m.port)
        offered = sdp.media[index]
        hold = is_hold(sdp, offered)
        ours = answer.media[index]
        if hold and ours.direction == "sendrecv":  # c=0.0.0.0 with sendrecv: we only receive
            ours.direction = "recvonly"
        self._apply(sdp, offered, codec, dtmf, hold)
        return self._versioned(answer).serialize()

    def apply_answer(self, body: bytes) -> None:
        """``on_answer``: the peer's answer to the offer our 2xx carried."""
        try:
            sdp = SessionDescription.parse(body)
            audio = next(m for m in sdp.media if m.media == "audio" and m.port)
            voice = [c for c in self.codecs if not c.matches(TELEPHONE_EVENT)]
            codec = next(c for c in audio.codecs if any(c.matches(o) for o in voice))
        except (SdpParseError, StopIteration):
            log.info("call.bad_answer", extra={"reason": "unusable SDP answer in ACK"})
            return
        dtmf = next((c for c in audio.codecs if c.matches(TELEPHONE_EVENT)), None)
        self._apply(sdp, audio, codec, dtmf, is_hold(sdp, audio))

    # -- applying

    def _apply(
        self,
        sdp: SessionDescription,
        media: MediaDescription,
        codec: Codec,
        dtmf: Codec | None,
        hold: bool,
    ) -> None:
        leg = self.leg
        remote = self._sdp_remote
        address = media.connection_address or sdp.connection_address or ""
        if address.split("/")[0] not in _UNSPECIFIED:
            with contextlib.suppress(SdpNegotiationError):
                remote = remote_rtp_address(sdp, media)
        codec_changed = leg.codec != codec.name.upper() or leg.payload_type != codec.payload_type
        dtmf_type = dtmf.payload_type if dtmf is not None else -1
        if remote is not None and (
            remote != self._sdp_remote or codec_changed or dtmf_type != leg.dtmf_payload_type
        ):
            leg.configure(codec, remote, dtmf=dtmf, ptime=media.ptime or 20)
            self._sdp_remote = remote
        if hold != self.held:
            log.info("call.hold" if hold else "call.resume", extra={"port": leg.port})
        leg.hold = self.held = hold
        if codec_changed:
            leg.on_reconfigured()

    def versioned(self, sdp: SessionDescription) -> bytes:
        """``sdp`` (an offer of ours in a re-INVITE) with our origin and the next version."""
        sdp.session_id = self.session_id
        sdp.username = self.username
        sdp.address = self.origin_address
        return self._versioned(sdp).serialize()

    def _versioned(self, answer: SessionDescription) -> SessionDescription:
        key = _content_key(answer)
        if key != self._last_key:
            self.version += 1
            self._last_key = key
        answer.session_version = self.version
        return answer

    def _reuse_crypto(self, offered: list[str]) -> str | None:
        ours = self._crypto[0]
        suite = ours.split()[1] if len(ours.split()) > 1 else ""
        for line in offered:
            parts = line.split()
            if len(parts) > 1 and parts[1] == suite:
                return " ".join([parts[0], *ours.split()[1:]])
        return None


def attach_media_updates(
    session, leg: RtpSession, public_address: str, codecs: list[Codec]
) -> MediaUpdater:
    """Answer ``session``'s mid-call offers from ``leg`` (either session kind)."""
    updater = MediaUpdater(leg, public_address, session.local_sdp, codecs)
    session.on_offer = updater.answer
    session.on_answer = updater.apply_answer
    return updater
