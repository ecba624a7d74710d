"""Softphones registering to callswitch: the registrar fed from the store.

A phone logs in with a username and password of the account's SIP
credential lists (the ``SIP/CredentialLists`` resource, or
``callswitch sip-credentials add``). The store keeps only HA1 digests in the
realm :data:`~control_api.sip_realm.SIP_REALM`. Usernames are unique per
account only; bindings are kept per account, so ``<Dial><Client>`` and
``<Dial><Sip>`` ring only the phones of the calling account.

A REGISTER whose Request-URI host is a SIP domain's name is the domain's: with
``sip_registration`` it is checked against the credential lists mapped to the
domain's Auth/Registrations (and binds in the domain's account); without, no
credential admits it. Any other host (the node's address, a name that is no
domain) is checked against every account's credentials, as before domains existed.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable
from pathlib import Path

from control_api.lookup import Lookup
from control_api.sip_domain_access import DomainDirectory
from control_api.sip_realm import SIP_REALM
from control_api.store import SipCredential
from sip.auth import Authenticator
from sip.registrar import AUTH_LOCKOUT, MAX_AUTH_FAILURES, Account, Registrar
from sip.ua import UserAgent

__all__ = ["CHALLENGE_ALGORITHMS", "start_registrar"]

# Offer MD5 only: many deployed phones (baresip with libre 1.1, older Polycoms)
# give up on a REGISTER when any challenge names SHA-256 (RFC 8760), even with
# an MD5 one beside it. Our UAC side answers SHA-256 challenges of carriers.
CHALLENGE_ALGORITHMS = ("MD5",)
NONCE_KEY_FILE = "sip-nonce.key"


def _nonce_secret(data_dir: Path) -> bytes:
    """The key of our stateless nonces, kept so nonces survive a restart."""
    path = data_dir / NONCE_KEY_FILE
    try:
        secret = path.read_bytes()
        if len(secret) >= 16:
            return secret
    except FileNotFoundError:
        pass
    secret = secrets.token_bytes(32)
    path.write_bytes(secret)
    path.chmod(0o600)
    return secret


def start_registrar(
    ua: UserAgent,
    store,
    data_dir: Path,
    *,
    max_failures: int = MAX_AUTH_FAILURES,
    lockout: float = AUTH_LOCKOUT,
    refused: Callable[..., None] | None = None,
) -> Registrar:
    """A registrar on ``ua`` whose users are the store's SIP credentials.

    A username may exist in several accounts: the lookup returns each one's
    credential and the registrar keeps the one whose digest verifies, so a
    phone always registers into its own account. ``max_failures`` wrong digests
    per (username, source) within ``lockout`` seconds lock that pair out for
    ``lockout`` seconds (``refused("auth.lockout", source_ip)``).
    """

    async def load(username: str) -> list[SipCredential] | None:
        return await store.sip_credentials.find_all(username) or None  # None: never kept stale

    credentials = Lookup(load, fresh=1.0)
    domains = DomainDirectory(store)

    async def lookup(username: str, host: str = "") -> list[Account] | None:
        domain = await domains.find(host)
        if domain is not None:
            if not domain.sip_registration:
                return None
            found = await store.domain_mappings.credentials(
                domain.sid, ("registrations",), username
            )
        else:
            found = await credentials.get(username)
        if not found:
            return None
        return [Account(c.ha1_md5, c.ha1_sha256, owner=c.account_sid) for c in found]

    return Registrar(
        ua,
        Authenticator(SIP_REALM, _nonce_secret(data_dir)),
        lookup,
        challenge_algorithms=CHALLENGE_ALGORITHMS,
        max_failures=max_failures,
        lockout=lockout,
        refused=refused,
        by_domain=True,
    )
