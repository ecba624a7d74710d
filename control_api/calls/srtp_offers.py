"""SDES-SRTP on the calls we place: what a destination is offered, and what its answer means.

A trunk's ``srtp`` (``off``, ``optional``, ``mandatory``; docs/routing.md) gives the
:class:`~media.srtp.SdesOffer` of a call; :func:`take_answer` puts the answered stream's
keys to use on the call's RTP leg, or says why the call cannot go on: the notification it
is worth (32208 when SRTP was mandatory, 32011 for keys that do not match our offer).
"""

from __future__ import annotations

from media.sdp import MediaDescription
from media.session import RtpSession
from media.srtp import SdesOffer, SrtpRefused

__all__ = ["SrtpAnswerRefused", "offer_for", "take_answer"]

SECURE_MEDIA_REQUIRED = 32208  # Twilio's "SIP: Secure media required"
BAD_ANSWER = 32011  # Twilio's "Error communicating with your SIP communications infrastructure"


class SrtpAnswerRefused(Exception):
    """The answer does not agree on SRTP as our offer required: the call fails."""

    def __init__(self, reason: str, mandatory: bool) -> None:
        super().__init__(reason)
        self.reason = reason
        self.mandatory = mandatory

    @property
    def problem(self) -> tuple[int, str]:
        """(code, text) for the call's notifications."""
        if self.mandatory:
            return SECURE_MEDIA_REQUIRED, f"SIP: Secure media required: {self.reason}"
        return BAD_ANSWER, f"SIP: invalid SRTP answer: {self.reason}"


def offer_for(mode: str) -> SdesOffer | None:
    """The SDES offer of a call whose destination's ``srtp`` is ``mode``; None for off."""
    return None if mode == "off" else SdesOffer(mandatory=mode == "mandatory")


def take_answer(sdes: SdesOffer | None, leg: RtpSession, audio: MediaDescription) -> str | None:
    """Put the keys of the answered ``audio`` stream to use on ``leg`` (RFC 4568 §5.1.3).

    Returns the suite when SRTP starts now, else None. A later answer of the same call
    (the 200 after a 183's early media) brings its keys in with ``rekey``. Raises
    `SrtpAnswerRefused`."""
    if sdes is None:
        return None
    try:
        context = sdes.context(audio.protocol, audio.crypto)
        if context is None and leg.srtp is not None:
            raise SrtpRefused("the answer dropped the SRTP its early media had")
    except SrtpRefused as exc:
        raise SrtpAnswerRefused(str(exc), sdes.mandatory) from None
    if context is None:
        return None  # optional, and the peer answered plain RTP
    if leg.srtp is not None:
        leg.srtp.rekey(context.ours, context.theirs)
        return None
    leg.use_srtp(context)
    return context.ours.suite
