"""SRTP with keys exchanged in SDP (SDES, RFC 4568) over libsrtp (RFC 3711, RFC 7714).

`CryptoAttribute` is the value of one ``a=crypto:`` line; `choose_crypto` and `SdesAnswerer`
do the answerer's part of RFC 4568 §5.1.2, `offer_crypto`, `context_from_answer` and
`SdesOffer` the offerer's. `SrtpContext` protects what we send with our key and checks what
we receive with the peer's, one pylibsrtp session each way; `SrtpContext.rekey` takes up the
keys a later offer or answer brings (RFC 4568 §7.1.4) without a gap in the audio.
"""

from __future__ import annotations

import base64
import re
import secrets
from collections.abc import Iterable
from dataclasses import dataclass

import pylibsrtp

__all__ = [
    "OLD_KEY_GRACE",
    "SUITES",
    "CryptoAttribute",
    "SdesAnswerer",
    "SdesOffer",
    "SrtpContext",
    "SrtpError",
    "SrtpRefused",
    "choose_crypto",
    "context_from_answer",
    "offer_crypto",
]

# Suite name -> (libsrtp profile, master key + master salt length in octets).
# RFC 4568 §6.2.1 (AES_CM_128: 16 + 14) and RFC 7714 §12 (AEAD_AES_128_GCM: 16 + 12).
SUITES: dict[str, tuple[int, int]] = {
    "AES_CM_128_HMAC_SHA1_80": (pylibsrtp.Policy.SRTP_PROFILE_AES128_CM_SHA1_80, 30),
    "AES_CM_128_HMAC_SHA1_32": (pylibsrtp.Policy.SRTP_PROFILE_AES128_CM_SHA1_32, 30),
    "AEAD_AES_128_GCM": (pylibsrtp.Policy.SRTP_PROFILE_AEAD_AES_128_GCM, 28),
}

# RFC 4568 §9.1: tag 1*9DIGIT, suite a token, key-params, session-params (1*VCHAR each);
# §9.2: an inline key-param is base64(key || salt), then |lifetime and |MKI:length.
_CRYPTO = re.compile(r"([0-9]{1,9})[ \t]+([A-Za-z0-9_]+)[ \t]+([!-~]+)((?:[ \t]+[!-~]+)*)")
_INLINE = re.compile(
    r"inline:([A-Za-z0-9+/]+={0,2})(?:\|((?:2\^)?[0-9]+))?(?:\|([0-9]+):([0-9]{1,3}))?"
)


class SrtpError(Exception):
    """A packet failed SRTP/SRTCP processing: bad authentication tag, replay, or garbage."""


class SrtpRefused(ValueError):
    """The answer to an offer of ours does not agree on SRTP as the offer required."""


@dataclass(frozen=True)
class CryptoAttribute:
    """One ``a=crypto`` value (RFC 4568 §4, §9.2) with an inline key.

    `key` is the master key followed by the master salt. The first key-param's lifetime
    (``2^20``) and MKI (``1:4``) are kept as written; further key-params and session
    parameters are kept verbatim so that `serialize` gives back what was parsed.
    """

    tag: int
    suite: str
    key: bytes
    lifetime: str | None = None
    mki: str | None = None
    more_keys: tuple[str, ...] = ()
    session_params: tuple[str, ...] = ()

    @classmethod
    def parse(cls, value: str) -> CryptoAttribute:
        """Parse the text after ``a=crypto:``; raises ValueError when it breaks §9.1."""
        match = _CRYPTO.fullmatch(value.strip(" \t"))
        if match is None:
            raise ValueError(f"bad crypto attribute {value[:60]!r}")
        tag, suite, key_params, rest = match.groups()
        first, *more = key_params.split(";")
        key, lifetime, mki = _parse_inline(first)
        for other in more:
            _parse_inline(other)  # validated, kept verbatim
        expected = SUITES.get(suite, (0, None))[1]
        if expected is not None and len(key) != expected:
            raise ValueError(f"{suite} needs {expected} octets of key and salt, got {len(key)}")
        return cls(int(tag), suite, key, lifetime, mki, tuple(more), tuple(rest.split()))

    def serialize(self) -> str:
        """The text to put after ``a=crypto:``."""
        inline = "inline:" + base64.b64encode(self.key).decode("ascii")
        if self.lifetime is not None:
            inline += f"|{self.lifetime}"
        if self.mki is not None:
            inline += f"|{self.mki}"
        key_params = ";".join([inline, *self.more_keys])
        return " ".join([str(self.tag), self.suite, key_params, *self.session_params])

    @classmethod
    def generate(cls, tag: int, suite: str) -> CryptoAttribute:
        """Fresh random master key and salt for `suite` (RFC 3711 §8.1: from a strong RNG)."""
        if suite not in SUITES:
            raise ValueError(f"unsupported crypto suite {suite}")
        return cls(tag, suite, secrets.token_bytes(SUITES[suite][1]))

    @property
    def usable(self) -> bool:
        """Whether we can run this attribute: a suite we know, a single key without MKI (we do
        not put MKIs in packets) and no session parameters (RFC 4568 §5.1.2: an answerer must
        not accept parameters it does not understand)."""
        return (
            self.suite in SUITES
            and self.mki is None
            and not self.more_keys
            and not self.session_params
        )


def _parse_inline(key_param: str) -> tuple[bytes, str | None, str | None]:
    match = _INLINE.fullmatch(key_param)
    if match is None:
        raise ValueError(f"bad or unsupported key parameter {key_param[:60]!r}")
    text, lifetime, mki_value, mki_length = match.groups()
    if mki_length is not None and not 1 <= int(mki_length) <= 128:
        raise ValueError(f"MKI length {mki_length} out of 1..128")
    key = base64.b64decode(text + "=" * (-len(text) % 4), validate=True)
    mki = None if mki_value is None else f"{mki_value}:{mki_length}"
    return key, lifetime, mki


def _session(attribute: CryptoAttribute, ssrc_type: int) -> pylibsrtp.Session:
    if not attribute.usable:
        raise ValueError(f"cannot run crypto attribute {attribute.serialize()!r}")
    profile, _ = SUITES[attribute.suite]
    policy = pylibsrtp.Policy(key=attribute.key, ssrc_type=ssrc_type, srtp_profile=profile)
    return pylibsrtp.Session(policy)


# After the peer's key changed, packets under its previous key are still accepted until this
# many have authenticated under the new one: they may be in flight, or sent until the peer
# had our answer (RFC 4568 §7.1.4), and dropping them would be a gap in the audio.
OLD_KEY_GRACE = 50


class SrtpContext:
    """Both directions of one SRTP session (RFC 3711 §3.3, §3.4).

    Outgoing packets are protected with `ours` (the key we announced), incoming ones checked
    and decrypted with `theirs`. Any SSRC is accepted each way, as SDES keys are per stream
    rather than per source; libsrtp keeps the rollover counter and replay window per SSRC.
    """

    def __init__(self, ours: CryptoAttribute, theirs: CryptoAttribute) -> None:
        self.ours = ours
        self.theirs = theirs
        self._outbound = _session(ours, pylibsrtp.Policy.SSRC_ANY_OUTBOUND)
        self._inbound = _session(theirs, pylibsrtp.Policy.SSRC_ANY_INBOUND)
        self._previous: pylibsrtp.Session | None = None  # the peer's key before a rekey
        self._grace = 0

    def rekey(self, ours: CryptoAttribute, theirs: CryptoAttribute) -> bool:
        """Take up the keys a new offer/answer agreed on (RFC 4568 §7.1.4).

        A direction whose suite and key are unchanged keeps its libsrtp session, with its
        rollover counter and replay window (rebuilding it would reuse keystream). A new key
        of ours starts a new outbound session (a new crypto context: ROC 0); a new key of
        the peer's a new inbound one, while packets under its old key are still accepted
        for a moment (`OLD_KEY_GRACE`). Returns whether a key changed; raises ValueError,
        changing nothing, when an attribute cannot be run."""
        for attribute in (ours, theirs):
            if not attribute.usable:
                raise ValueError(f"cannot run crypto attribute {attribute.serialize()!r}")
        outbound = inbound = None
        if (ours.suite, ours.key) != (self.ours.suite, self.ours.key):
            outbound = _session(ours, pylibsrtp.Policy.SSRC_ANY_OUTBOUND)
        if (theirs.suite, theirs.key) != (self.theirs.suite, self.theirs.key):
            inbound = _session(theirs, pylibsrtp.Policy.SSRC_ANY_INBOUND)
        self.ours, self.theirs = ours, theirs
        if outbound is not None:
            self._outbound = outbound
        if inbound is not None:
            self._previous, self._grace = self._inbound, OLD_KEY_GRACE
            self._inbound = inbound
        return outbound is not None or inbound is not None

    def protect(self, rtp: bytes) -> bytes:
        """Encrypt an RTP packet's payload and append the authentication tag."""
        try:
            return self._outbound.protect(rtp)
        except (pylibsrtp.Error, ValueError) as exc:
            raise SrtpError(f"cannot protect RTP: {exc}") from None

    def unprotect(self, srtp: bytes) -> bytes:
        """Check an SRTP packet's tag and replay window, and return the plain RTP packet."""
        try:
            plain = self._inbound.unprotect(srtp)
        except (pylibsrtp.Error, ValueError) as exc:
            if self._previous is None:
                raise SrtpError(f"SRTP packet rejected: {exc}") from None
            try:
                return self._previous.unprotect(srtp)
            except (pylibsrtp.Error, ValueError):
                raise SrtpError(f"SRTP packet rejected: {exc}") from None
        if self._previous is not None:
            self._new_key_verified()
        return plain

    def protect_rtcp(self, rtcp: bytes) -> bytes:
        """Encrypt a compound RTCP packet and add the SRTCP index and tag (§3.4)."""
        try:
            return self._outbound.protect_rtcp(rtcp)
        except (pylibsrtp.Error, ValueError) as exc:
            raise SrtpError(f"cannot protect RTCP: {exc}") from None

    def unprotect_rtcp(self, srtcp: bytes) -> bytes:
        """Check an SRTCP packet and return the plain compound RTCP packet."""
        try:
            return self._inbound.unprotect_rtcp(srtcp)
        except (pylibsrtp.Error, ValueError) as exc:
            if self._previous is None:
                raise SrtpError(f"SRTCP packet rejected: {exc}") from None
            try:
                return self._previous.unprotect_rtcp(srtcp)
            except (pylibsrtp.Error, ValueError):
                raise SrtpError(f"SRTCP packet rejected: {exc}") from None

    def _new_key_verified(self) -> None:
        self._grace -= 1
        if self._grace <= 0:
            self._previous = None  # the peer has moved to its new key for good


def choose_crypto(
    offered: list[CryptoAttribute],
) -> tuple[CryptoAttribute, CryptoAttribute] | None:
    """The answerer's choice (RFC 4568 §5.1.2): the first offered attribute we can run,
    answered with the same tag and suite and a fresh key. Returns (theirs, ours) or None."""
    for theirs in offered:
        if theirs.usable:
            return theirs, CryptoAttribute.generate(theirs.tag, theirs.suite)
    return None


class SdesAnswerer:
    """The ``crypto_answer`` hook for `media.sdp.negotiate_answer`.

    Called with the offered ``a=crypto`` values of the stream being accepted, it skips the
    lines it cannot parse, picks one with `choose_crypto` and returns our answer line; it
    remembers both sides so that `context()` can build the `SrtpContext` afterwards.

    In a re-offer (RFC 4568 §7.1.4), `keep` is the key we send with: an offered attribute of
    its suite is answered with it (under the offer's tag), so our direction goes on unchanged;
    only an offer without that suite gets a fresh key of ours.
    """

    def __init__(self, keep: CryptoAttribute | None = None) -> None:
        self.keep = keep
        self.theirs: CryptoAttribute | None = None
        self.ours: CryptoAttribute | None = None

    def __call__(self, offered: list[str]) -> str | None:
        attributes = []
        for value in offered:
            try:
                attributes.append(CryptoAttribute.parse(value))
            except ValueError:
                continue  # a line we cannot read is one we cannot choose (RFC 4568 §5.1.2)
        chosen = self._kept(attributes) or choose_crypto(attributes)
        if chosen is None:
            return None
        self.theirs, self.ours = chosen
        return self.ours.serialize()

    def _kept(
        self, offered: list[CryptoAttribute]
    ) -> tuple[CryptoAttribute, CryptoAttribute] | None:
        keep = self.keep
        if keep is None:
            return None
        for theirs in offered:
            if theirs.usable and theirs.suite == keep.suite:
                return theirs, CryptoAttribute(theirs.tag, keep.suite, keep.key)
        return None

    def context(self) -> SrtpContext:
        if self.theirs is None or self.ours is None:
            raise ValueError("no crypto attribute was agreed")
        return SrtpContext(self.ours, self.theirs)


def offer_crypto(
    suites: Iterable[str] = ("AES_CM_128_HMAC_SHA1_80", "AES_CM_128_HMAC_SHA1_32"),
) -> list[CryptoAttribute]:
    """Our offer (RFC 4568 §5.1.1): one attribute per suite in order of preference, tags 1..n,
    each with its own fresh key."""
    return [CryptoAttribute.generate(tag, suite) for tag, suite in enumerate(suites, 1)]


def context_from_answer(offered: list[CryptoAttribute], answered: list[str]) -> SrtpContext:
    """The offerer's side of RFC 4568 §5.1.3: the answer must carry exactly one crypto attribute
    whose tag and suite match one we offered. Raises ValueError otherwise."""
    if len(answered) != 1:
        raise ValueError(f"the answer must carry one crypto attribute, not {len(answered)}")
    theirs = CryptoAttribute.parse(answered[0])
    for ours in offered:
        if ours.tag == theirs.tag:
            if ours.suite != theirs.suite:
                raise ValueError(f"answered suite {theirs.suite} for tag {ours.tag} ({ours.suite})")
            return SrtpContext(ours, theirs)
    raise ValueError(f"answered crypto tag {theirs.tag} was not offered")


class SdesOffer:
    """The offerer's part of SDES for one call we place (RFC 4568 §5.1.1, §5.1.3).

    One fresh key per suite (AES_CM_128_HMAC_SHA1_80, then _32). `mandatory` offers them on
    ``RTP/SAVP`` and refuses an answer without SRTP. Otherwise they ride on ``RTP/AVP``:
    best-effort SRTP as Asterisk (``media_encryption_optimistic``: "optimistic encryption
    places crypto in the normal RTP/AVP profile") and baresip (``mediaenc=srtp``) offer it,
    where a peer that knows SDES answers with one ``a=crypto`` line and SRTP runs, and one
    that does not ignores the lines and answers plain RTP.
    """

    def __init__(
        self,
        mandatory: bool,
        suites: Iterable[str] = ("AES_CM_128_HMAC_SHA1_80", "AES_CM_128_HMAC_SHA1_32"),
    ) -> None:
        self.mandatory = mandatory
        self.offered = offer_crypto(suites)

    @property
    def protocol(self) -> str:
        """The transport of our m= line."""
        return "RTP/SAVP" if self.mandatory else "RTP/AVP"

    @property
    def lines(self) -> list[str]:
        """Our ``a=crypto`` values, in order of preference."""
        return [attribute.serialize() for attribute in self.offered]

    def context(self, protocol: str, answered: list[str]) -> SrtpContext | None:
        """The SRTP context the answered stream (its transport, its ``a=crypto`` values)
        agrees on, or None for plain RTP, which only an optional offer accepts.
        Raises `SrtpRefused` when the answer does not agree as the offer requires."""
        if not answered:
            if self.mandatory:
                raise SrtpRefused(f"the answer ({protocol}) declined SRTP: no a=crypto line")
            if protocol.upper() in ("RTP/SAVP", "RTP/SAVPF"):
                raise SrtpRefused(f"the answer is {protocol} without an a=crypto line")
            return None
        try:
            return context_from_answer(self.offered, answered)
        except ValueError as exc:
            raise SrtpRefused(str(exc)) from None
