"""Long-term credentials: static users, TURN REST users, nonces (RFC 8489 §9.2)."""

from __future__ import annotations

import base64
import hashlib
import hmac

import pytest

from turn.auth import AuthError, Credentials, rest_credentials
from turn.stun import ALLOCATE, REQUEST, Attr, Message, long_term_key, parse

WALL = 1_800_000_000.0
TID = b"t" * 12


def request(
    creds: Credentials,
    username: str,
    password: str,
    *,
    nonce=None,
    realm=None,
    client="198.51.100.1",
    sha256=False,
) -> Message:
    m = Message(ALLOCATE, REQUEST, TID)
    m.add(Attr.USERNAME, username)
    m.add(Attr.REALM, realm or creds.realm)
    m.add(Attr.NONCE, nonce or creds.nonce(client, WALL))
    key = long_term_key(username, realm or creds.realm, password)
    return parse(m.encode(key, sha256=sha256))


def test_rest_password_is_coturns_base64_hmac_sha1_of_the_username():
    username, password = rest_credentials("s3cret", "alice", 1_900_000_000)
    assert username == "1900000000:alice"
    expected = hmac.new(b"s3cret", b"1900000000:alice", hashlib.sha1).digest()
    assert base64.b64decode(password) == expected


@pytest.mark.parametrize("sha256", [False, True])
def test_a_static_user_with_the_right_password_passes(sha256):
    creds = Credentials(users={"alice": "pw"})
    auth = creds.authenticate(request(creds, "alice", "pw", sha256=sha256), "198.51.100.1", WALL)
    assert auth.username == "alice" and auth.sha256 is sha256
    assert auth.key == long_term_key("alice", "callswitch", "pw")


def test_wrong_password_unknown_user_and_wrong_realm_are_401():
    creds = Credentials(users={"alice": "pw"})
    for username, password, realm in (
        ("alice", "nope", None),
        ("eve", "pw", None),
        ("alice", "pw", "other"),
    ):
        with pytest.raises(AuthError) as caught:
            creds.authenticate(
                request(creds, username, password, realm=realm), "198.51.100.1", WALL
            )
        assert caught.value.code == 401


def test_no_integrity_is_401_and_missing_nonce_is_400():
    creds = Credentials(users={"alice": "pw"})
    with pytest.raises(AuthError) as caught:
        creds.authenticate(parse(Message(ALLOCATE, REQUEST, TID).encode()), "h", WALL)
    assert caught.value.code == 401
    m = Message(ALLOCATE, REQUEST, TID).add(Attr.USERNAME, "alice").add(Attr.REALM, "callswitch")
    with pytest.raises(AuthError) as caught:
        creds.authenticate(parse(m.encode(b"k")), "h", WALL)
    assert caught.value.code == 400


def test_an_expired_forged_or_moved_nonce_is_438():
    creds = Credentials(users={"alice": "pw"}, nonce_lifetime=60)
    old = creds.nonce("198.51.100.1", WALL - 61)
    forged = "%08x" % int(WALL + 60) + "0" * 24
    moved = creds.nonce("203.0.113.5", WALL)
    for nonce in (old, forged, moved, "short"):
        with pytest.raises(AuthError) as caught:
            creds.authenticate(request(creds, "alice", "pw", nonce=nonce), "198.51.100.1", WALL)
        assert caught.value.code == 438
    fresh = creds.nonce("198.51.100.1", WALL - 59)
    creds.authenticate(request(creds, "alice", "pw", nonce=fresh), "198.51.100.1", WALL)


def test_rest_users_pass_until_their_expiry():
    creds = Credentials(secret="s3cret")
    username, password = rest_credentials("s3cret", "bob", int(WALL) + 10)
    assert creds.authenticate(request(creds, username, password), "198.51.100.1", WALL).username
    with pytest.raises(AuthError) as caught:
        creds.authenticate(request(creds, username, password), "198.51.100.1", WALL + 11)
    assert caught.value.code in (401, 438)  # the nonce may outlive it; the user does not
    stale_user, stale_password = rest_credentials("s3cret", "bob", int(WALL) - 1)
    with pytest.raises(AuthError):
        creds.authenticate(request(creds, stale_user, stale_password), "198.51.100.1", WALL)
    other_user, other_password = rest_credentials("not ours", "bob", int(WALL) + 10)
    with pytest.raises(AuthError):
        creds.authenticate(request(creds, other_user, other_password), "198.51.100.1", WALL)


def test_without_a_secret_rest_style_usernames_are_unknown():
    creds = Credentials(users={"alice": "pw"})
    assert creds.password(f"{int(WALL) + 10}:bob", WALL) is None
    assert creds.password("alice", WALL) == "pw"
