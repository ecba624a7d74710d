"""Access tokens for browser clients: Twilio's JWT (reference §10, RFC 7519, RFC 7515).

A token is ``base64url(header).base64url(claims).base64url(HMAC-SHA256)``, the
header ``{"typ": "JWT", "alg": "HS256", "cty": "twilio-fpa;v=1"}``, signed with
an API key's secret. The claims name the key (``iss``, SK…), the account
(``sub``, AC…), the validity (``nbf``/``exp``) and the grants: an identity and
a voice grant (``incoming.allow``, ``outgoing.application_sid`` and
``outgoing.params``). Tokens made by the official library's ``AccessToken`` and
``VoiceGrant`` have exactly this shape.

Pure functions: the caller passes the time and looks the key's secret up.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import re
from dataclasses import dataclass, field
from typing import Any

__all__ = [
    "AccessToken",
    "ExpiredToken",
    "InvalidGrants",
    "InvalidHeader",
    "InvalidIssuer",
    "InvalidSignature",
    "MalformedToken",
    "TokenError",
    "TokenNotYetValid",
    "issuer_of",
    "mint",
    "verify",
]

CONTENT_TYPE = "twilio-fpa;v=1"
MAX_TOKEN_LENGTH = 8192  # Twilio's Voice SDK refuses anything longer, so do we
MAX_TTL = 24 * 3600  # the longest life Twilio gives an access token
_SID = re.compile(r"[A-Z]{2}[0-9a-f]{32}")
# Identities go into SIP-like addresses (client:alice) and JSON; keep them printable.
_IDENTITY = re.compile(r"[A-Za-z0-9_.@+\-]{1,121}")


class TokenError(Exception):
    """A token that cannot be accepted; ``code`` is Twilio's error code for it."""

    code = 20101  # Invalid Access Token


class MalformedToken(TokenError):
    """Not three base64url parts of JSON objects."""

    code = 20101


class InvalidHeader(TokenError):
    """The header is not HS256 with ``cty: twilio-fpa;v=1``."""

    code = 20102


class InvalidIssuer(TokenError):
    """``iss`` names no key we know, or ``sub`` is not the key's account."""

    code = 20103


class ExpiredToken(TokenError):
    """``exp`` has passed, is missing, or lies too far ahead."""

    code = 20104


class TokenNotYetValid(TokenError):
    """``nbf`` is still in the future."""

    code = 20105


class InvalidGrants(TokenError):
    """No identity, or grants of the wrong shape."""

    code = 20106


class InvalidSignature(TokenError):
    """The HMAC does not match the key's secret: forged or signed with another key."""

    code = 20107


@dataclass(frozen=True, slots=True)
class AccessToken:
    """The claims of a verified token that callswitch acts on."""

    account_sid: str
    key_sid: str
    identity: str
    expires: int
    not_before: int = 0
    incoming_allow: bool = False
    application_sid: str | None = None
    params: dict[str, str] = field(default_factory=dict)


def _b64decode(part: str) -> bytes:
    try:
        return base64.urlsafe_b64decode(part + "=" * (-len(part) % 4))
    except (binascii.Error, ValueError):
        raise MalformedToken("a part is not base64url") from None


def _b64encode(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _json_object(part: str) -> dict[str, Any]:
    try:
        value = json.loads(_b64decode(part))
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError):
        raise MalformedToken("a part is not JSON") from None
    if not isinstance(value, dict):
        raise MalformedToken("a part is not a JSON object")
    return value


def _split(token: str) -> tuple[dict[str, Any], dict[str, Any], bytes, bytes]:
    if not isinstance(token, str) or len(token) > MAX_TOKEN_LENGTH:
        raise MalformedToken("not a token")
    parts = token.strip().split(".")
    if len(parts) != 3:
        raise MalformedToken("a token has three parts")
    header, claims = _json_object(parts[0]), _json_object(parts[1])
    signed = f"{parts[0]}.{parts[1]}".encode("ascii", "replace")
    return header, claims, signed, _b64decode(parts[2])


def issuer_of(token: str) -> tuple[str, str]:
    """The (key SID, account SID) a token claims, before its signature is checked:
    what to look the secret up by."""
    header, claims, _, _ = _split(token)
    _check_header(header)
    issuer, subject = claims.get("iss"), claims.get("sub")
    if not (isinstance(issuer, str) and _SID.fullmatch(issuer) and issuer.startswith("SK")):
        raise InvalidIssuer("iss is not an API key SID")
    if not (isinstance(subject, str) and _SID.fullmatch(subject) and subject.startswith("AC")):
        raise InvalidIssuer("sub is not an account SID")
    return issuer, subject


def _check_header(header: dict[str, Any]) -> None:
    if header.get("alg") != "HS256":
        raise InvalidHeader("alg must be HS256")
    if header.get("cty") != CONTENT_TYPE:
        raise InvalidHeader(f"cty must be {CONTENT_TYPE}")
    if header.get("typ", "JWT") != "JWT":
        raise InvalidHeader("typ must be JWT")


def _number(claims: dict[str, Any], name: str) -> int | None:
    value = claims.get(name)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise MalformedToken(f"{name} is not a number")
    return int(value)


def verify(
    token: str,
    *,
    secret: str,
    account_sid: str,
    now: float,
    leeway: float = 0.0,
) -> AccessToken:
    """Check ``token`` against the key ``secret`` of account ``account_sid`` at ``now``.

    Raises a :class:`TokenError` naming what is wrong; the signature is checked
    before any claim is believed.
    """
    header, claims, signed, signature = _split(token)
    _check_header(header)
    expected = hmac.new(secret.encode(), signed, hashlib.sha256).digest()
    if not hmac.compare_digest(expected, signature):
        raise InvalidSignature("the signature does not match the key")
    key_sid, subject = issuer_of(token)
    if subject != account_sid:
        raise InvalidIssuer("the token is for another account than its key")
    expires = _number(claims, "exp")
    if expires is None or now > expires + leeway:
        raise ExpiredToken("the token has expired")
    issued = _number(claims, "iat") or int(now)
    if expires - min(issued, int(now)) > MAX_TTL + leeway:
        raise ExpiredToken("the token lives longer than 24 hours")
    not_before = _number(claims, "nbf") or 0
    if now + leeway < not_before:
        raise TokenNotYetValid("the token is not valid yet")
    return _grants(claims.get("grants"), account_sid, key_sid, expires, not_before)


def _grants(
    grants: object, account_sid: str, key_sid: str, expires: int, not_before: int
) -> AccessToken:
    if not isinstance(grants, dict):
        raise InvalidGrants("no grants")
    identity = grants.get("identity")
    if not isinstance(identity, str) or not _IDENTITY.fullmatch(identity):
        raise InvalidGrants("the identity is missing or not of A-Z a-z 0-9 _.@+-")
    voice = grants.get("voice", {})
    if not isinstance(voice, dict):
        raise InvalidGrants("the voice grant is not an object")
    incoming = voice.get("incoming", {})
    outgoing = voice.get("outgoing", {})
    if not isinstance(incoming, dict) or not isinstance(outgoing, dict):
        raise InvalidGrants("voice.incoming and voice.outgoing must be objects")
    application_sid = outgoing.get("application_sid")
    if application_sid is not None and not (
        isinstance(application_sid, str)
        and _SID.fullmatch(application_sid)
        and application_sid.startswith("AP")
    ):
        raise InvalidGrants("outgoing.application_sid is not an application SID")
    params = outgoing.get("params", {})
    if not isinstance(params, dict):
        raise InvalidGrants("outgoing.params is not an object")
    return AccessToken(
        account_sid=account_sid,
        key_sid=key_sid,
        identity=identity,
        expires=expires,
        not_before=not_before,
        incoming_allow=incoming.get("allow") is True,
        application_sid=application_sid,
        params={str(k): str(v) for k, v in params.items()},
    )


def mint(
    *,
    account_sid: str,
    key_sid: str,
    secret: str,
    identity: str,
    now: float,
    ttl: int = 3600,
    incoming_allow: bool = True,
    application_sid: str | None = None,
    params: dict[str, str] | None = None,
) -> str:
    """A token of the same shape as the official library's ``AccessToken.to_jwt()``."""
    if not _IDENTITY.fullmatch(identity):
        raise ValueError("an identity is 1 to 121 of A-Z a-z 0-9 _.@+-")
    voice: dict[str, Any] = {}
    if incoming_allow:
        voice["incoming"] = {"allow": True}
    if application_sid:
        outgoing: dict[str, Any] = {"application_sid": application_sid}
        if params:
            outgoing["params"] = params
        voice["outgoing"] = outgoing
    issued = int(now)
    claims = {
        "jti": f"{key_sid}-{issued}",
        "grants": {"identity": identity, "voice": voice},
        "iss": key_sid,
        "sub": account_sid,
        "iat": issued,
        "nbf": issued,
        "exp": issued + ttl,
    }
    header = {"typ": "JWT", "alg": "HS256", "cty": CONTENT_TYPE}
    signed = ".".join(
        _b64encode(json.dumps(part, separators=(",", ":")).encode()) for part in (header, claims)
    )
    signature = hmac.new(secret.encode(), signed.encode(), hashlib.sha256).digest()
    return f"{signed}.{_b64encode(signature)}"
