"""SIP digest authentication (RFC 3261 §22; RFC 2617; RFC 7616 §3.4; RFC 8760); sans-I/O.

``Challenge`` and ``Credentials`` are the values of the WWW-Authenticate /
Proxy-Authenticate and Authorization / Proxy-Authorization headers.
``digest_response`` is the RFC 7616 §3.4.1 computation; ``authorize`` answers a
challenge (UAC, RFC 3261 §22.2-§22.3); ``Authenticator`` issues challenges and
checks credentials (UAS or registrar, RFC 3261 §22.1, §22.4).

Nothing here touches a socket or reads the clock except through the
``Authenticator``'s injected ``clock``. Anything a peer sends raises
``SipParseError`` or parses.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import secrets
import struct
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from enum import Enum

from sip.errors import SipParseError
from sip.headers import is_token
from sip.message import Response

__all__ = [
    "ALGORITHMS",
    "Authenticator",
    "Challenge",
    "Credentials",
    "SipParseError",
    "Verdict",
    "answer_challenge",
    "authorize",
    "digest_response",
    "ha1",
]


@dataclass(frozen=True, slots=True)
class _Algorithm:
    name: str  # canonical spelling, as in the IANA registry (RFC 7616 §6.1)
    hash: str  # hashlib name
    session: bool  # the "-sess" variant: HA1 also covers nonce and cnonce


_ALGORITHM_TABLE = {
    a.name.lower(): a
    for a in (
        _Algorithm("MD5", "md5", False),
        _Algorithm("MD5-sess", "md5", True),
        _Algorithm("SHA-256", "sha256", False),
        _Algorithm("SHA-256-sess", "sha256", True),
        _Algorithm("SHA-512-256", "sha512_256", False),
        _Algorithm("SHA-512-256-sess", "sha512_256", True),
    )
}
ALGORITHMS: tuple[str, ...] = tuple(a.name for a in _ALGORITHM_TABLE.values())
_QOPS = ("auth", "auth-int")

_TOKEN = r"A-Za-z0-9\-.!%*_+`'~"
_SCHEME_RE = re.compile(f"([{_TOKEN}]++)(?:[ \\t]++|\\Z)")
# auth-param (RFC 3261 §25.1, RFC 7235 §2.1): token or quoted-string value.
# CR, LF and other controls may not appear raw nor escaped (RFC 3261 §25.1
# quoted-pair excludes CR and LF); possessive groups keep matching linear.
_PARAM_RE = re.compile(
    f"([{_TOKEN}]++)[ \\t]*+=[ \\t]*+"
    r'(?:"((?:[^"\\\x00-\x08\x0a-\x1f\x7f]|\\[^\r\n])*+)"'
    f"|([{_TOKEN}]++))[ \\t]*+"
)
_COMMA_RE = re.compile(r",[ \t]*+")
_UNESCAPE_RE = re.compile(r"\\(.)", re.S)
# Controls are written as quoted-pairs; CR and LF cannot be (RFC 3261 §25.1)
# and are left for Headers to refuse rather than silently changed.
_ESCAPE_RE = re.compile(r'["\\\x00-\x08\x0b\x0c\x0e-\x1f\x7f]')
_NC_RE = re.compile(r"[0-9A-Fa-f]{8}")


def _lookup(algorithm: str) -> _Algorithm | None:
    return _ALGORITHM_TABLE.get(algorithm.lower())


def _algorithm(algorithm: str) -> _Algorithm:
    found = _lookup(algorithm)
    if found is None:
        raise ValueError(f"unsupported digest algorithm {algorithm!r}")
    return found


def _quote(text: str) -> str:
    return '"' + _ESCAPE_RE.sub(lambda m: "\\" + m.group(0), text) + '"'


def _parse_params(value: str) -> dict[str, str]:
    """Parse ``Digest LWS auth-param *(COMMA auth-param)`` into lower-cased names.

    Quoted values are unescaped. Quoted and token forms are both accepted for
    every directive: peers disagree (``algorithm="MD5"``, ``qop=auth`` in a
    challenge) and the meaning is the same.
    """
    text = value.strip(" \t")
    m = _SCHEME_RE.match(text)
    if m is None or m.group(1).lower() != "digest":
        raise SipParseError("Not a Digest challenge or credentials")
    pos = m.end()
    end = len(text)
    params: dict[str, str] = {}
    while True:
        m = _PARAM_RE.match(text, pos)
        if m is None:
            raise SipParseError("Bad auth-param")
        name, quoted, token = m.groups()
        name = name.lower()
        if name in params:
            # Two nonces or two realms leave no single right reading.
            raise SipParseError(f"Duplicate {name}")
        if quoted is not None:
            params[name] = _UNESCAPE_RE.sub(r"\1", quoted) if "\\" in quoted else quoted
        else:
            params[name] = token
        pos = m.end()
        if pos == end:
            return params
        m = _COMMA_RE.match(text, pos)
        if m is None:
            raise SipParseError("Bad auth-param")
        pos = m.end()


def _required(params: dict[str, str], name: str) -> str:
    value = params.get(name)
    if value is None:
        raise SipParseError(f"Missing {name}")
    return value


def _parse_algorithm(params: dict[str, str]) -> str:
    # RFC 2617 §3.2.1: absent means MD5. Unknown algorithms still parse, so a
    # UAC can skip that challenge and answer another one (RFC 8760 §2.4).
    text = params.get("algorithm", "MD5")
    if not is_token(text):
        raise SipParseError("Bad algorithm")
    found = _lookup(text)
    return found.name if found is not None else text


@dataclass(slots=True)
class Challenge:
    """A Digest challenge (RFC 3261 §20.27, §20.44, §22.1; RFC 2617 §3.2.1; RFC 8760 §2).

    ``algorithm`` uses the registry spelling for the known ones (``md5`` from
    PJSIP becomes ``MD5``); ``qop`` holds the lower-cased options offered.
    Directives other than these (``domain``, ``charset``, ``userhash``) are
    ignored, as RFC 2617 §3.2.1 asks of unknown ones.
    """

    realm: str
    nonce: str
    algorithm: str = "MD5"
    qop: tuple[str, ...] = ()
    opaque: str | None = None
    stale: bool = False

    @classmethod
    def parse(cls, value: str) -> Challenge:
        params = _parse_params(value)
        qop: tuple[str, ...] = ()
        if "qop" in params:
            # A list (RFC 7235 §7): empty elements are allowed and mean nothing.
            qop = tuple(q for q in (q.strip(" \t").lower() for q in params["qop"].split(",")) if q)
            if not qop or not all(is_token(q) for q in qop):
                raise SipParseError("Bad qop")
        stale = params.get("stale", "false").lower()
        if stale not in ("true", "false"):
            raise SipParseError("Bad stale")
        return cls(
            realm=_required(params, "realm"),
            nonce=_required(params, "nonce"),
            algorithm=_parse_algorithm(params),
            qop=qop,
            opaque=params.get("opaque"),
            stale=stale == "true",
        )

    def __str__(self) -> str:
        parts = [f"realm={_quote(self.realm)}", f"nonce={_quote(self.nonce)}"]
        if self.opaque is not None:
            parts.append(f"opaque={_quote(self.opaque)}")
        if self.stale:
            parts.append("stale=true")
        parts.append(f"algorithm={self.algorithm}")
        if self.qop:
            parts.append(f"qop={_quote(','.join(self.qop))}")
        return "Digest " + ", ".join(parts)


@dataclass(slots=True)
class Credentials:
    """Digest credentials (RFC 3261 §20.7, §20.28, §22.2; RFC 2617 §3.2.2).

    ``nc`` is kept as the 8 hex digits sent, because the digest covers that
    text. When ``qop`` is present, ``cnonce`` and ``nc`` are too (RFC 2617
    §3.2.2 makes them mandatory then; parsing refuses credentials without).
    """

    username: str
    realm: str
    nonce: str
    uri: str
    response: str
    algorithm: str = "MD5"
    cnonce: str | None = None
    nc: str | None = None
    qop: str | None = None
    opaque: str | None = None

    @classmethod
    def parse(cls, value: str) -> Credentials:
        params = _parse_params(value)
        qop = params.get("qop")
        nc = params.get("nc")
        cnonce = params.get("cnonce")
        if qop is not None:
            qop = qop.lower()
            if not is_token(qop):
                raise SipParseError("Bad qop")
            if nc is None or cnonce is None:
                raise SipParseError("Missing nc or cnonce")
        if nc is not None and _NC_RE.fullmatch(nc) is None:
            raise SipParseError("Bad nc")
        return cls(
            username=_required(params, "username"),
            realm=_required(params, "realm"),
            nonce=_required(params, "nonce"),
            uri=_required(params, "uri"),
            response=_required(params, "response"),
            algorithm=_parse_algorithm(params),
            cnonce=cnonce,
            nc=nc,
            qop=qop,
            opaque=params.get("opaque"),
        )

    def __str__(self) -> str:
        parts = [
            f"username={_quote(self.username)}",
            f"realm={_quote(self.realm)}",
            f"nonce={_quote(self.nonce)}",
            f"uri={_quote(self.uri)}",
            f"response={_quote(self.response)}",
            f"algorithm={self.algorithm}",
        ]
        if self.cnonce is not None:
            parts.append(f"cnonce={_quote(self.cnonce)}")
        if self.opaque is not None:
            parts.append(f"opaque={_quote(self.opaque)}")
        # message-qop and nonce-count are tokens, never quoted (RFC 2617 §3.2.2);
        # some servers reject qop="auth".
        if self.qop is not None:
            parts.append(f"qop={self.qop}")
        if self.nc is not None:
            parts.append(f"nc={self.nc}")
        return "Digest " + ", ".join(parts)


def _h(algo: _Algorithm, data: str | bytes) -> str:
    if isinstance(data, str):
        # RFC 7616 §4 and RFC 3261 §25: SIP text is UTF-8.
        data = data.encode()
    return hashlib.new(algo.hash, data).hexdigest()


def ha1(username: str, realm: str, password: str, algorithm: str = "MD5") -> str:
    """H(username:realm:password), what a registrar stores instead of passwords.

    RFC 7616 §3.4.2. For a ``-sess`` algorithm this is the stored part: the
    session HA1 also covers the nonce and cnonce, so it is derived per request.
    One value per hash function: an MD5 HA1 cannot check SHA-256 credentials.
    """
    return _h(_algorithm(algorithm), f"{username}:{realm}:{password}")


def _response(
    algo: _Algorithm,
    ha1_: str,
    *,
    method: str,
    uri: str,
    nonce: str,
    qop: str | None,
    nc: str | None,
    cnonce: str | None,
    body: bytes,
) -> str:
    """RFC 7616 §3.4.1-§3.4.3 (RFC 2617 §3.2.2.1-§3.2.2.3) from a stored HA1."""
    if algo.session:
        if cnonce is None:
            raise ValueError(f"{algo.name} needs a cnonce")
        ha1_ = _h(algo, f"{ha1_}:{nonce}:{cnonce}")
    if qop is None or qop == "auth":
        ha2 = _h(algo, f"{method}:{uri}")
    elif qop == "auth-int":
        ha2 = _h(algo, f"{method}:{uri}:{_h(algo, body)}")
    else:
        raise ValueError(f"unsupported qop {qop!r}")
    if qop is None:
        # RFC 2069 compatibility: no qop, no cnonce or nonce count.
        return _h(algo, f"{ha1_}:{nonce}:{ha2}")
    if nc is None or cnonce is None:
        raise ValueError("qop needs nc and cnonce")
    return _h(algo, f"{ha1_}:{nonce}:{nc}:{cnonce}:{qop}:{ha2}")


def _nc_text(nc: int | str | None) -> str | None:
    if isinstance(nc, int):
        if not 0 < nc <= 0xFFFFFFFF:
            raise ValueError(f"nonce count out of range: {nc}")
        return f"{nc:08x}"
    return nc


def digest_response(
    *,
    algorithm: str,
    username: str,
    realm: str,
    password: str,
    method: str,
    uri: str,
    nonce: str,
    qop: str | None = None,
    nc: int | str | None = None,
    cnonce: str | None = None,
    body: bytes = b"",
) -> str:
    """The request-digest (RFC 7616 §3.4.1; RFC 2617 §3.2.2.1; RFC 8760 §2.3).

    ``nc`` is an int (written as 8 lower-case hex digits) or the text sent.
    ``body`` matters only for qop auth-int. Raises ValueError for an unknown
    algorithm or qop, or a missing nc/cnonce that the qop or algorithm needs.
    """
    algo = _algorithm(algorithm)
    return _response(
        algo,
        _h(algo, f"{username}:{realm}:{password}"),
        method=method,
        uri=uri,
        nonce=nonce,
        qop=qop,
        nc=_nc_text(nc),
        cnonce=cnonce,
        body=body,
    )


def authorize(
    challenge: Challenge,
    *,
    method: str,
    uri: str,
    username: str,
    password: str,
    nc: int = 1,
    cnonce: str | None = None,
    body: bytes = b"",
) -> Credentials:
    """Answer a challenge (RFC 3261 §22.2, §22.3; RFC 2617 §3.2.2).

    ``uri`` is the Request-URI. qop ``auth`` is chosen when offered, else
    ``auth-int`` (over ``body``), else none (an RFC 2069 server). A random
    cnonce is made when the qop or a ``-sess`` algorithm needs one and none is
    given. Raises ValueError for an algorithm or qop set this module cannot do:
    pick another challenge (``challenge.algorithm in ALGORITHMS``).
    """
    algo = _algorithm(challenge.algorithm)
    if "auth" in challenge.qop:
        qop: str | None = "auth"
    elif "auth-int" in challenge.qop:
        qop = "auth-int"
    elif challenge.qop:
        raise ValueError(f"no supported qop in {challenge.qop!r}")
    else:
        qop = None
    if qop is None and not algo.session:
        cnonce = None
    elif cnonce is None:
        cnonce = secrets.token_hex(8)
    nc_text = _nc_text(nc) if qop is not None else None
    response = _response(
        algo,
        _h(algo, f"{username}:{challenge.realm}:{password}"),
        method=method,
        uri=uri,
        nonce=challenge.nonce,
        qop=qop,
        nc=nc_text,
        cnonce=cnonce,
        body=body,
    )
    return Credentials(
        username=username,
        realm=challenge.realm,
        nonce=challenge.nonce,
        uri=uri,
        response=response,
        algorithm=algo.name,
        cnonce=cnonce,
        nc=nc_text,
        qop=qop,
        opaque=challenge.opaque,
    )


def answer_challenge(
    response: Response,
    *,
    method: str,
    uri: str,
    username: str,
    password: str,
    body: bytes = b"",
) -> tuple[str, str] | None:
    """The header that answers a 401's WWW-Authenticate or a 407's Proxy-Authenticate
    (RFC 3261 §22.2, §22.3), choosing the strongest algorithm we support among those
    offered (RFC 8760 §2.4); None when nothing offered can be answered.

    """
    proxy = response.status == 407
    header = "Proxy-Authenticate" if proxy else "WWW-Authenticate"
    challenges = []
    for value in response.headers.get_all(header):
        try:
            challenge = Challenge.parse(value)
        except SipParseError:
            continue
        if challenge.algorithm in ALGORITHMS:
            challenges.append(challenge)
    if not challenges:
        return None
    challenge = max(challenges, key=lambda c: ALGORITHMS.index(c.algorithm))
    try:
        credentials = authorize(
            challenge, method=method, uri=uri, username=username, password=password, body=body
        )
    except ValueError:
        return None
    return ("Proxy-Authorization" if proxy else "Authorization", str(credentials))


class Verdict(Enum):
    """The outcome of ``Authenticator.verify`` and what the UAS answers."""

    OK = "ok"
    BAD_CREDENTIALS = "bad-credentials"  # 401 afresh, or 403 after a few tries
    STALE = "stale"  # right password, but an expired nonce or a used nonce count: stale=true
    BAD_NONCE = "bad-nonce"  # not a nonce of ours: challenge again


# Nonces whose highest nonce count is remembered (~150 bytes each); see Authenticator.
MAX_TRACKED_NONCES = 100_000
# Nonce layout: 8-byte issue time (seconds), 8 random bytes, 16 bytes of MAC.
_NONCE = struct.Struct(">Q8s16s")
_NONCE_RE = re.compile(r"[A-Za-z0-9_-]{43}")  # 32 bytes, base64url, unpadded


class Authenticator:
    """UAS side of digest authentication (RFC 3261 §22.1, §22.4; RFC 2617 §3.2.1).

    Nonces are stateless (RFC 2617 §3.2.1 suggests this shape): the issue
    time, random bytes and an HMAC-SHA256 with ``secret`` over them, the realm
    and the algorithm. Any node sharing the secret verifies them, and an
    answer using another algorithm than the one challenged (a downgrade) fails.
    Issuing a challenge keeps no state, so a flood of unauthenticated requests
    costs nothing here.

    Nonce counts are tracked once a nonce has been used with a right digest
    (RFC 7616 §3.4.5): each later use must carry a higher ``nc``, so a captured
    Authorization replayed (with another Contact, say) is STALE and the client
    is challenged afresh. The table holds at most ``max_nonces`` nonces; when
    one is forgotten early, every nonce issued no later than it counts as
    stale from then on (the issue time is in the nonce), so forgetting never
    lets a replay through. The counts live in this process: nodes sharing the
    secret do not share them.
    """

    def __init__(
        self,
        realm: str,
        secret: bytes,
        nonce_ttl: float = 300.0,
        clock: Callable[[], float] = time.time,
        *,
        max_nonces: int = MAX_TRACKED_NONCES,
    ) -> None:
        if len(secret) < 16:
            raise ValueError("secret too short: use at least 16 random bytes")
        self.realm = realm
        self._secret = secret
        self.nonce_ttl = nonce_ttl
        self._clock = clock
        self._max_nonces = max_nonces
        # nonce -> (issue time, highest nc seen), in order of first use.
        self._counts: OrderedDict[str, tuple[int, int]] = OrderedDict()
        self._forgotten_up_to = -1  # nonces issued at or before this are stale unless tracked

    def _mac(self, issued: int, salt: bytes, algorithm: str) -> bytes:
        data = b"%d\x00%s\x00%s\x00%s" % (issued, salt, self.realm.encode(), algorithm.encode())
        return hmac.new(self._secret, data, hashlib.sha256).digest()[:16]

    def challenge(self, stale: bool = False, algorithm: str = "MD5") -> Challenge:
        """A fresh challenge for a 401/407 (RFC 3261 §22.1), always offering qop auth."""
        algo = _algorithm(algorithm)
        issued = int(self._clock())
        salt = secrets.token_bytes(8)
        raw = _NONCE.pack(issued, salt, self._mac(issued, salt, algo.name))
        nonce = base64.urlsafe_b64encode(raw).rstrip(b"=").decode()
        return Challenge(self.realm, nonce, algo.name, qop=("auth",), stale=stale)

    def _issued(self, nonce: str) -> int:
        issued: int = _NONCE.unpack(base64.urlsafe_b64decode(nonce + "="))[0]
        return issued

    def _count_use(self, nonce: str, nc: str) -> Verdict:
        """OK if ``nc`` is above every count seen with ``nonce``; records it."""
        count = int(nc, 16)
        now = self._clock()
        counts = self._counts
        while counts:  # drop the expired from the front (first use is near issue time)
            first, (issued, _) = next(iter(counts.items()))
            if now - issued <= self.nonce_ttl:
                break
            del counts[first]
        seen = counts.get(nonce)
        if seen is None:
            issued = self._issued(nonce)
            if issued <= self._forgotten_up_to:
                return Verdict.STALE
            while len(counts) >= self._max_nonces:
                _, (old_issued, _) = counts.popitem(last=False)
                self._forgotten_up_to = max(self._forgotten_up_to, old_issued)
            counts[nonce] = (issued, count)
            return Verdict.OK
        issued, highest = seen
        if count <= highest:
            return Verdict.STALE  # a replay, or a reordered request: challenge afresh
        counts[nonce] = (issued, count)
        return Verdict.OK

    def _check_nonce(self, nonce: str, algorithm: str) -> Verdict:
        if _NONCE_RE.fullmatch(nonce) is None:
            return Verdict.BAD_NONCE
        raw = base64.urlsafe_b64decode(nonce + "=")
        # The last character carries two unused bits: refuse the other three
        # spellings so one nonce has exactly one text.
        if base64.urlsafe_b64encode(raw).rstrip(b"=").decode() != nonce:
            return Verdict.BAD_NONCE
        issued, salt, mac = _NONCE.unpack(raw)
        if not hmac.compare_digest(mac, self._mac(issued, salt, algorithm)):
            return Verdict.BAD_NONCE
        # Both directions: a node whose clock runs far ahead is as wrong as an old nonce.
        if abs(self._clock() - issued) > self.nonce_ttl:
            return Verdict.STALE
        return Verdict.OK

    def verify(
        self,
        credentials: Credentials,
        *,
        method: str,
        password: str | None = None,
        ha1: str | None = None,
        body: bytes = b"",
    ) -> Verdict:
        """Check credentials against a password or a stored ``ha1`` (RFC 3261 §22.4).

        ``ha1`` must be computed with the credentials' hash function (see
        ``ha1()``). ``body`` is the message body, used only for qop auth-int.
        Credentials without qop are refused: our challenges offer it, and
        RFC 2617 §3.2.2 then requires the client to use it. STALE is reported
        only when the digest is right, so a wrong password is never retried
        silently (RFC 2617 §3.2.1 "stale").
        """
        if (password is None) == (ha1 is None):
            raise ValueError("give exactly one of password and ha1")
        algo = _lookup(credentials.algorithm)
        if (
            algo is None
            or credentials.realm != self.realm
            or credentials.qop not in _QOPS
            or credentials.nc is None
            or credentials.cnonce is None
        ):
            return Verdict.BAD_CREDENTIALS
        nonce_verdict = self._check_nonce(credentials.nonce, algo.name)
        if nonce_verdict is Verdict.BAD_NONCE:
            return nonce_verdict
        if ha1 is None:
            ha1 = _h(algo, f"{credentials.username}:{self.realm}:{password}")
        expected = _response(
            algo,
            ha1.lower(),
            method=method,
            uri=credentials.uri,
            nonce=credentials.nonce,
            qop=credentials.qop,
            nc=credentials.nc,
            cnonce=credentials.cnonce,
            body=body,
        )
        # Bytes, not str: compare_digest refuses non-ASCII str, and the
        # response is peer text.
        if not hmac.compare_digest(expected.encode(), credentials.response.lower().encode()):
            return Verdict.BAD_CREDENTIALS
        if nonce_verdict is Verdict.OK:
            return self._count_use(credentials.nonce, credentials.nc)
        return nonce_verdict
