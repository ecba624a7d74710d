"""Who may call a SIP domain: the source address or a digest, decided without I/O.

An INVITE to a domain (its Request-URI host is the domain's name) is admitted when its
source address lies in one of the IP access control lists mapped to the domain for
calls, or when it carries a digest (``Proxy-Authorization``, or ``Authorization``) of
a credential in one of the credential lists mapped for calls. Otherwise:

- no credential list is mapped: **403** (nothing could admit it);
- no digest of our realm: **407** with a fresh challenge (MD5, qop auth);
- an old or replayed nonce with the right password: **407** ``stale=true``;
- a wrong password or unknown username: **403**, counted per (username, source) as
  the registrar counts REGISTERs; past ``max_failures`` in the window the pair is
  locked out (**403** at once, ``auth.lockout``).

The digest realm is the one the credentials' HA1s were stored for
(:data:`~control_api.sip_realm.SIP_REALM`), whatever the domain's name.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from control_api.lookup import Lookup
from control_api.store import SipCredential, SipDomain
from sip.auth import Authenticator, Credentials, Verdict
from sip.errors import SipParseError
from sip.message import Request
from sip.source_limits import FailureLockout, source_group

__all__ = [
    "FRESH_S",
    "Admission",
    "DomainDirectory",
    "DomainGate",
    "caller_ip",
    "insecure",
    "is_ip_literal",
    "listed",
]

Network = ipaddress.IPv4Network | ipaddress.IPv6Network
FRESH_S = 1.0  # how old the domains a request is matched against may be


class DomainDirectory:
    """Which SIP domain a request's host names, if any.

    The node's domain names are read at most once a second whatever the traffic, so
    requests naming hosts that are no domain (a scanner's random names) cost no query;
    a domain's settings are read when a request names it, at most a second old.
    """

    def __init__(self, store) -> None:
        self._names: Lookup[str, frozenset[str]] = Lookup(
            lambda _all: store.sip_domains.names(), fresh=FRESH_S, expire=FRESH_S
        )
        self._domains: Lookup[str, SipDomain | None] = Lookup(
            store.sip_domains.find, fresh=FRESH_S, expire=FRESH_S
        )

    async def find(self, host: str) -> SipDomain | None:
        host = host.lower()
        if not host or is_ip_literal(host) or host not in await self._names.get(""):
            return None
        return await self._domains.get(host)


@dataclass(frozen=True, slots=True)
class Admission:
    """What to do with an INVITE: admit it (``status`` 0), or answer ``status`` with
    ``headers``. ``refusal`` names a guard's reason for the refusals log, if any."""

    status: int = 0
    headers: tuple[tuple[str, str], ...] = ()
    reason: str | None = None
    username: str | None = None  # the credential that admitted it
    refusal: str | None = None

    @property
    def admitted(self) -> bool:
        return self.status == 0


SECURE_TRANSPORTS = frozenset({"TLS", "WSS"})


def insecure(transport: str, offer: bytes | None) -> Admission | None:
    """Why a ``secure`` domain refuses an INVITE, or None: it must come over TLS (403)
    and offer SRTP (RTP/SAVP with SDES keys; 488 otherwise)."""
    if transport.upper() not in SECURE_TRANSPORTS:
        return Admission(403, reason="TLS Required", refusal="sip.domain_insecure")
    if offer is None or b"RTP/SAVP" not in offer or b"a=crypto:" not in offer:
        return Admission(488, reason="SRTP Required", refusal="sip.domain_insecure")
    return None


def is_ip_literal(host: str) -> bool:
    try:
        ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return False
    return True


def caller_ip(source: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    """The source address as an IP (an IPv4-mapped IPv6 one as IPv4), or None."""
    try:
        ip = ipaddress.ip_address(source.strip("[]").split("%", 1)[0])
    except ValueError:
        return None
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    return ip


def listed(source: str, networks: Iterable[Network]) -> bool:
    ip = caller_ip(source)
    return ip is not None and any(ip in network for network in networks)


class DomainGate:
    """Digest checks of INVITEs to domains, with their own failure lockout."""

    def __init__(self, authenticator: Authenticator, *, max_failures: int, lockout: float) -> None:
        self.authenticator = authenticator
        self._failures = FailureLockout(max_failures, lockout)

    def credentials(self, request: Request) -> Credentials | None:
        """The request's Digest credentials of our realm, or None (bad ones too)."""
        for name in ("Proxy-Authorization", "Authorization"):
            for value in request.headers.get_lines(name):
                scheme = value.strip().split(None, 1)[0] if value.strip() else ""
                if scheme.lower() != "digest":
                    continue
                try:
                    credentials = Credentials.parse(value)
                except SipParseError:
                    continue
                if credentials.realm == self.authenticator.realm:
                    return credentials
        return None

    def challenge(self, *, stale: bool = False, reason: str | None = None) -> Admission:
        value = str(self.authenticator.challenge(stale=stale, algorithm="MD5"))
        return Admission(407, (("Proxy-Authenticate", value),), reason)

    def screen(
        self, request: Request, source: str, *, has_credentials: bool, now: float
    ) -> Admission | Credentials:
        """The answer that needs no credential lookup, or the credentials to look up."""
        if not has_credentials:
            return Admission(403, reason="Forbidden", refusal="sip.domain_forbidden")
        credentials = self.credentials(request)
        if credentials is None:
            return self.challenge()
        if self._failures.locked((credentials.username, source_group(source)), now):
            return Admission(403, refusal="auth.lockout", username=credentials.username)
        return credentials

    def verify(
        self,
        request: Request,
        source: str,
        credentials: Credentials,
        candidates: Sequence[SipCredential],
        now: float,
    ) -> Admission:
        """Check the digest against each candidate's HA1 for its hash function."""
        algorithm = credentials.algorithm.lower()
        verdict = Verdict.BAD_CREDENTIALS
        for candidate in candidates:
            ha1 = candidate.ha1_sha256 if algorithm.startswith("sha-256") else candidate.ha1_md5
            if not algorithm.startswith(("md5", "sha-256")):
                break
            verdict = self.authenticator.verify(
                credentials, method=request.method, ha1=ha1, body=request.body
            )
            if verdict is not Verdict.BAD_CREDENTIALS:
                break
        key = (credentials.username, source_group(source))
        if verdict is Verdict.OK:
            self._failures.succeeded(key)
            return Admission(username=credentials.username)
        if verdict is Verdict.STALE:
            return self.challenge(stale=True)
        if verdict is Verdict.BAD_NONCE:
            return self.challenge()
        locked = self._failures.failed(key, now)
        return Admission(
            403,
            reason="Forbidden",
            refusal="auth.lockout" if locked else "sip.domain_auth_failed",
            username=credentials.username,
        )
