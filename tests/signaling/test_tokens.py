"""Access tokens (signaling/tokens.py) against the official twilio library's AccessToken."""

from __future__ import annotations

import base64
import json
import time

import pytest
from hypothesis import given
from hypothesis import strategies as st
from twilio.jwt.access_token import AccessToken as TwilioAccessToken
from twilio.jwt.access_token.grants import VoiceGrant

from signaling.tokens import (
    ExpiredToken,
    InvalidGrants,
    InvalidHeader,
    InvalidIssuer,
    InvalidSignature,
    MalformedToken,
    TokenError,
    TokenNotYetValid,
    issuer_of,
    mint,
    verify,
)

ACCOUNT = "AC" + "a" * 32
OTHER_ACCOUNT = "AC" + "b" * 32
KEY = "SK" + "c" * 32
SECRET = "s3cr3t-of-the-key-0123456789abcd"
APP = "AP" + "d" * 32


def twilio_token(identity="alice", ttl=3600, secret=SECRET, account=ACCOUNT, **grant) -> str:
    token = TwilioAccessToken(account, KEY, secret, identity=identity, ttl=ttl)
    token.add_grant(VoiceGrant(**grant))
    return token.to_jwt()


def test_a_token_minted_by_the_twilio_library_verifies():
    token = twilio_token(
        outgoing_application_sid=APP,
        outgoing_application_params={"team": "support", "n": 7},
        incoming_allow=True,
    )
    assert issuer_of(token) == (KEY, ACCOUNT)
    claims = verify(token, secret=SECRET, account_sid=ACCOUNT, now=time.time())
    assert claims.identity == "alice"
    assert claims.account_sid == ACCOUNT
    assert claims.key_sid == KEY
    assert claims.incoming_allow is True
    assert claims.application_sid == APP
    assert claims.params == {"team": "support", "n": "7"}
    assert claims.expires > time.time() + 3500


def test_incoming_not_allowed_unless_granted():
    claims = verify(
        twilio_token(outgoing_application_sid=APP),
        secret=SECRET,
        account_sid=ACCOUNT,
        now=time.time(),
    )
    assert claims.incoming_allow is False


def test_our_own_tokens_have_the_twilio_shape():
    now = time.time()
    token = mint(
        account_sid=ACCOUNT,
        key_sid=KEY,
        secret=SECRET,
        identity="bob",
        now=now,
        ttl=600,
        application_sid=APP,
        params={"a": "1"},
    )
    header = json.loads(base64.urlsafe_b64decode(token.split(".")[0] + "=="))
    assert header == {"typ": "JWT", "alg": "HS256", "cty": "twilio-fpa;v=1"}
    claims = verify(token, secret=SECRET, account_sid=ACCOUNT, now=now)
    assert (claims.identity, claims.application_sid, claims.params) == ("bob", APP, {"a": "1"})
    assert claims.expires == int(now) + 600


def test_forged_signature_is_refused():
    token = twilio_token(incoming_allow=True)
    with pytest.raises(InvalidSignature):
        verify(token, secret="another secret", account_sid=ACCOUNT, now=time.time())
    # Claims swapped under the original signature: the identity is not believed.
    head, claims, signature = token.split(".")
    body = json.loads(base64.urlsafe_b64decode(claims + "=" * (-len(claims) % 4)))
    body["grants"]["identity"] = "mallory"
    forged = base64.urlsafe_b64encode(json.dumps(body).encode()).rstrip(b"=").decode()
    with pytest.raises(InvalidSignature):
        verify(f"{head}.{forged}.{signature}", secret=SECRET, account_sid=ACCOUNT, now=time.time())


def test_expired_token_is_refused():
    token = twilio_token(ttl=60, incoming_allow=True)
    with pytest.raises(ExpiredToken):
        verify(token, secret=SECRET, account_sid=ACCOUNT, now=time.time() + 61)


def test_a_token_that_lives_more_than_a_day_is_refused():
    token = twilio_token(ttl=3 * 24 * 3600, incoming_allow=True)
    with pytest.raises(ExpiredToken):
        verify(token, secret=SECRET, account_sid=ACCOUNT, now=time.time())


def test_not_yet_valid_token_is_refused():
    now = time.time()
    token = TwilioAccessToken(ACCOUNT, KEY, SECRET, identity="alice", nbf=int(now) + 300)
    token.add_grant(VoiceGrant(incoming_allow=True))
    with pytest.raises(TokenNotYetValid):
        verify(token.to_jwt(), secret=SECRET, account_sid=ACCOUNT, now=now)


def test_wrong_account_is_refused():
    token = twilio_token(account=OTHER_ACCOUNT, incoming_allow=True)
    with pytest.raises(InvalidIssuer):
        verify(token, secret=SECRET, account_sid=ACCOUNT, now=time.time())


def test_a_token_without_identity_is_refused():
    token = TwilioAccessToken(ACCOUNT, KEY, SECRET)
    token.add_grant(VoiceGrant(incoming_allow=True))
    with pytest.raises(InvalidGrants):
        verify(token.to_jwt(), secret=SECRET, account_sid=ACCOUNT, now=time.time())


def test_a_plain_jwt_without_the_twilio_content_type_is_refused():
    import jwt

    token = jwt.encode(
        {"iss": KEY, "sub": ACCOUNT, "exp": int(time.time()) + 60, "grants": {"identity": "a"}},
        SECRET,
        algorithm="HS256",
    )
    with pytest.raises(InvalidHeader):
        verify(token, secret=SECRET, account_sid=ACCOUNT, now=time.time())
    none_alg = jwt.encode(
        {"iss": KEY, "sub": ACCOUNT}, None, algorithm="none", headers={"cty": "twilio-fpa;v=1"}
    )
    with pytest.raises(InvalidHeader):
        verify(none_alg, secret=SECRET, account_sid=ACCOUNT, now=time.time())


@pytest.mark.parametrize("bad", ["", "a.b", "a.b.c.d", "!!.??.**", "e30.W10.AA", "x" * 9000])
def test_malformed_tokens_are_refused(bad):
    with pytest.raises(MalformedToken):
        verify(bad, secret=SECRET, account_sid=ACCOUNT, now=time.time())


@given(st.text(max_size=300))
def test_any_text_is_refused_with_a_token_error(text):
    with pytest.raises(TokenError):
        verify(text, secret=SECRET, account_sid=ACCOUNT, now=time.time())


@given(st.binary(max_size=200), st.binary(max_size=200))
def test_any_parts_are_refused_with_a_token_error(header, claims):
    def part(data: bytes) -> str:
        return base64.urlsafe_b64encode(data).rstrip(b"=").decode()

    with pytest.raises(TokenError):
        verify(f"{part(header)}.{part(claims)}.AAAA", secret=SECRET, account_sid=ACCOUNT, now=0)
