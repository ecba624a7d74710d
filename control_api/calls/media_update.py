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
- another codec among ours → the leg switches (a bridge re-plans itself);
- SRTP (SDES, RFC 4568 §7.1.4): new keys of the peer, in its offer or in its
  answer to ours, are taken up at once (packets under its old key still pass
  for a moment, so the audio has no gap); we answer with the key we already
  send with when the offer has its suite (a fresh one only otherwise), and an
  offer without SRTP on a call that has it is refused (488: a secure call is
  not downgraded). A plain call whose peer offers SDES keys turns SRTP on.

Our local port never changes, and the answer's o= version goes up only when
the answer differs from the previous one (RFC 3264 §8). Our own re-offers
(session refresh, the offer in a 2xx to an empty re-INVITE) repeat
``local_sdp``: once the first answer is in, that describes the session as it
runs, with the one key we send with (or none on plain RTP).
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
from media.srtp import CryptoAttribute, SdesAnswerer, SrtpContext

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
        self.local: SessionDescription | None = None  # our description as the session runs
        self.session_id = leg.ssrc  # our o= line, kept in the re-offers we make (versioned)
        self.username = "-"
        self.origin_address = public_address
        # Read on the first offer of the call, not when it is answered: most calls have none.
        self._local_sdp = local_sdp
        self._sdp_remote = leg.destination  # where the SDP said to send, before NAT latching
        self.held = False

    def _describe(self) -> None:
        """Read our first description (its origin, version and content) once."""
        local_sdp, self._local_sdp = self._local_sdp, None
        if not local_sdp:
            return
        try:
            self.local = SessionDescription.parse(local_sdp)
        except SdpParseError:
            return
        self.version = self.local.session_version
        self.session_id = self.local.session_id
        self.username = self.local.username
        self.origin_address = self.local.address
        self._last_key = _content_key(self.local)

    # -- the session callbacks

    def answer(self, offer: bytes) -> bytes | None:
        """``on_offer``: our answer to a re-INVITE/UPDATE offer, or None for 488."""
        leg = self.leg
        current = leg.srtp
        sdes = SdesAnswerer(keep=current.ours if current is not None else None)
        try:
            sdp = SessionDescription.parse(offer)
            answer, codec, dtmf = negotiate_answer(
                sdp, self.codecs, self.public_address, leg.port, leg.ssrc, crypto_answer=sdes
            )
        except (SdpParseError, SdpNegotiationError):
            return None
        if sdes.ours is None or sdes.theirs is None:
            if current is not None:
                log.info("call.srtp_downgrade_refused", extra={"port": leg.port})
                return None  # 488: the session goes on as it was (RFC 3264 §8)
        elif not self._take_keys(sdes.ours, sdes.theirs):
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
        self._answered_keys(audio.crypto)
        self._apply(sdp, audio, codec, dtmf, is_hold(sdp, audio))

    def running(self) -> bytes | None:
        """Our description with only the key we send with (none on plain RTP): what our
        re-offers repeat once the first answer settled the keys. None when our first
        description was that already (an answer of ours; no key offered)."""
        pending = self._local_sdp
        if pending is not None and self.leg.srtp is None and b"a=crypto" not in pending:
            return None  # no key offered and none in use: nothing to take out
        self._describe()
        local = self.local
        audio = None if local is None else next((m for m in local.media if m.port), None)
        if local is None or audio is None:
            return None
        srtp = self.leg.srtp
        crypto = [] if srtp is None else [srtp.ours.serialize()]
        if audio.crypto == crypto:
            return None
        audio.crypto = crypto
        return self._versioned(local).serialize()

    # -- SRTP keys (RFC 4568 §7.1.4)

    def _take_keys(self, ours: CryptoAttribute, theirs: CryptoAttribute) -> bool:
        """The keys an offer of the peer's and our answer agreed on, put to use."""
        leg = self.leg
        current = leg.srtp
        try:
            if current is None:
                leg.use_srtp(SrtpContext(ours, theirs))
                log.info("call.srtp_started", extra={"port": leg.port, "suite": ours.suite})
            elif current.rekey(ours, theirs):
                log.info("call.srtp_rekeyed", extra={"port": leg.port, "suite": ours.suite})
        except ValueError:
            return False
        return True

    def _answered_keys(self, answered: list[str]) -> None:
        """The peer's key in its answer to our offer (which carried the key we send with)."""
        current = self.leg.srtp
        if current is None:
            return  # we offered no key: an a=crypto in the answer means nothing
        try:
            if len(answered) != 1:
                raise ValueError(f"{len(answered)} crypto attributes")
            theirs = CryptoAttribute.parse(answered[0])
            if (theirs.tag, theirs.suite) != (current.ours.tag, current.ours.suite):
                raise ValueError(f"tag {theirs.tag} {theirs.suite} was not offered")
            if current.rekey(current.ours, theirs):
                log.info("call.srtp_rekeyed", extra={"port": self.leg.port, "suite": theirs.suite})
        except ValueError as exc:  # the keys in use stay
            log.info("call.bad_answer", extra={"reason": f"SRTP answer unusable: {exc}"})

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
        self._describe()
        sdp.session_id = self.session_id
        sdp.username = self.username
        sdp.address = self.origin_address
        return self._versioned(sdp).serialize()

    def _versioned(self, answer: SessionDescription) -> SessionDescription:
        self._describe()
        key = _content_key(answer)
        if key != self._last_key:
            self.version += 1
            self._last_key = key
        answer.session_version = self.version
        return answer


def attach_media_updates(
    session, leg: RtpSession, public_address: str, codecs: list[Codec]
) -> MediaUpdater:
    """Answer ``session``'s mid-call offers from ``leg`` (either session kind)."""
    updater = MediaUpdater(leg, public_address, session.local_sdp, codecs)
    running = updater.running()
    if running is not None:
        session.local_sdp = running
    session.on_offer = updater.answer
    session.on_answer = updater.apply_answer
    return updater
