"""Long-term credentials for TURN (RFC 8489 §9.2, RFC 8656 §5), sans-I/O.

Two kinds of users share one realm:

- static users, ``USER:PASS`` pairs from the settings;
- TURN REST API users (draft-uberti-behave-turn-rest, coturn's
  ``use-auth-secret``): the username is ``<expiry unix time>:<user>`` and the
  password is base64(HMAC-SHA1(secret, username)), so any holder of the shared
  secret can mint credentials that stop working at ``expiry``.

Nonces are stateless: ``<expiry hex><mac>``, the MAC binding the expiry to the
client's address with a per-process key, so a nonce cannot be forged, moved to
another client, or used after it expired (that gets 438 Stale Nonce and a new one).
Times here are wall-clock (unix) seconds, passed in.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
from dataclasses import dataclass, field
from typing import Any

from turn.stun import Attr, Message, long_term_key

__all__ = ["AuthError", "Authenticated", "Credentials", "rest_credentials"]

NONCE_LIFETIME_S = 600
_MAC_HEX = 24


class AuthError(Exception):
    """A request fails authentication; ``code`` is the STUN error to answer
    (400, 401, 438), which carries REALM and NONCE (§9.2.4)."""

    def __init__(self, code: int, reason: str) -> None:
        super().__init__(reason)
        self.code = code
        self.reason = reason


@dataclass(frozen=True, slots=True)
class Authenticated:
    """Who sent a request that passed the integrity check, and the key to sign the answer."""

    username: str
    key: bytes
    sha256: bool  # the request used MESSAGE-INTEGRITY-SHA256; the answer does too
    owner: str = ""  # whose quota it counts against (Credentials.owner); else username

    def __post_init__(self) -> None:
        if not self.owner:
            object.__setattr__(self, "owner", self.username)


def rest_credentials(secret: str, user: str, expires_at: int) -> tuple[str, str]:
    """A TURN REST API username and password valid until ``expires_at`` (unix seconds)."""
    username = f"{int(expires_at)}:{user}"
    digest = hmac.new(secret.encode(), username.encode(), hashlib.sha1).digest()
    return username, base64.b64encode(digest).decode()


@dataclass(slots=True)
class Credentials:
    """The realm's users and nonces: checks a request and says what to answer (§9.2.4)."""

    realm: str = "callswitch"
    users: dict[str, str] = field(default_factory=dict)
    secret: str | None = None
    nonce_lifetime: float = NONCE_LIFETIME_S
    nonce_key: bytes = field(default_factory=lambda: os.urandom(16))
    _keys: dict[str, bytes] = field(default_factory=dict)

    @classmethod
    def from_settings(
        cls, realm: str, users: list[str], secret: str | None, **options: Any
    ) -> Credentials:
        pairs = dict(item.split(":", 1) for item in users)
        return cls(realm=realm, users=pairs, secret=secret, **options)

    # -- nonces ---------------------------------------------------------------------

    def nonce(self, client: str, wall: float) -> str:
        expiry = "%08x" % int(wall + self.nonce_lifetime)
        return expiry + self._nonce_mac(expiry, client)

    def _nonce_mac(self, expiry: str, client: str) -> str:
        return hmac.new(self.nonce_key, f"{expiry}|{client}".encode(), hashlib.sha256).hexdigest()[
            :_MAC_HEX
        ]

    def nonce_valid(self, nonce: str, client: str, wall: float) -> bool:
        if len(nonce) != 8 + _MAC_HEX:
            return False
        expiry, mac = nonce[:8], nonce[8:]
        if not hmac.compare_digest(mac, self._nonce_mac(expiry, client)):
            return False
        try:
            return int(expiry, 16) > wall
        except ValueError:
            return False

    # -- passwords ------------------------------------------------------------------

    def password(self, username: str, wall: float) -> str | None:
        """The password of ``username`` now: a static user's, or a REST user's
        while its expiry is in the future; None for anyone else."""
        if username in self.users:
            return self.users[username]
        if self.secret is None:
            return None
        expiry, sep, _ = username.partition(":")
        if not sep or not expiry.isdigit() or int(expiry) <= wall:
            return None
        return rest_credentials(self.secret, username.split(":", 1)[1], int(expiry))[1]

    def key(self, username: str, wall: float) -> bytes | None:
        password = self.password(username, wall)
        if password is None:
            return None
        # Static users' keys are stable; REST keys change with the username anyway.
        cache_key = f"{username}\0{password}"
        key = self._keys.get(cache_key)
        if key is None:
            if len(self._keys) > 4096:
                self._keys.clear()
            key = self._keys[cache_key] = long_term_key(username, self.realm, password)
        return key

    # -- the check ------------------------------------------------------------------

    def authenticate(self, request: Message, client: str, wall: float) -> Authenticated:
        """§9.2.4 in order: no integrity → 401; missing USERNAME, REALM or NONCE → 400;
        a nonce not ours or expired → 438; unknown user or wrong integrity → 401."""
        if not request.has_integrity:
            raise AuthError(401, "Unauthorized")
        username = request.get(Attr.USERNAME)
        realm = request.get(Attr.REALM)
        nonce = request.get(Attr.NONCE)
        if username is None or realm is None or nonce is None:
            raise AuthError(400, "Bad Request")
        if not self.nonce_valid(nonce, client, wall):
            raise AuthError(438, "Stale Nonce")
        key = self.key(username, wall) if realm == self.realm else None
        if key is None or not request.check_integrity(key):
            raise AuthError(401, "Unauthorized")
        return Authenticated(username, key, request.sha256_offset >= 0, self.owner(username))

    def owner(self, username: str) -> str:
        """Whose quota an allocation of ``username`` counts against: a static user is
        itself; a REST username ``<expiry>:<user>`` is its user (an account SID), so
        that every token minted for one account shares the account's quota."""
        if username in self.users:
            return username
        return username.partition(":")[2] or username

    def challenge(self, answer: Message, client: str, wall: float) -> Message:
        """Add REALM and a fresh NONCE to an error answer (401, 438)."""
        answer.add(Attr.REALM, self.realm)
        answer.add(Attr.NONCE, self.nonce(client, wall))
        return answer
