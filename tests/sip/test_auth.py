"""Digest authentication (sip/auth.py): RFC vectors, real peers, UAC/UAS loop, fuzzing."""

from __future__ import annotations

import contextlib
import hashlib
import string

import pytest
from hypothesis import given
from hypothesis import strategies as st

from sip.auth import (
    ALGORITHMS,
    Authenticator,
    Challenge,
    Credentials,
    Verdict,
    authorize,
    digest_response,
    ha1,
)
from sip.errors import SipParseError

SECRET = b"0123456789abcdef-shared-secret"
URI = "sip:bob@biloxi.example.com"
_AP = {"username": "a", "password": "p"}

# --- RFC vectors ----------------------------------------------------------------

RFC2617_AUTHORIZATION = (
    'Digest username="Mufasa", realm="testrealm@host.com", '
    'nonce="dcd98b7102dd2f0e8b11d0f600bfb0c093", uri="/dir/index.html", qop=auth, '
    'nc=00000001, cnonce="0a4f113b", response="6629fae49393a05397450978507c4ef1", '
    'opaque="5ccc069c403ebaf9f0171e9517f40e41"'
)


def test_rfc2617_example():
    # RFC 2617 §3.5.
    creds = Credentials.parse(RFC2617_AUTHORIZATION)
    assert creds == Credentials(
        username="Mufasa",
        realm="testrealm@host.com",
        nonce="dcd98b7102dd2f0e8b11d0f600bfb0c093",
        uri="/dir/index.html",
        response="6629fae49393a05397450978507c4ef1",
        algorithm="MD5",
        cnonce="0a4f113b",
        nc="00000001",
        qop="auth",
        opaque="5ccc069c403ebaf9f0171e9517f40e41",
    )
    response = digest_response(
        algorithm="MD5",
        username="Mufasa",
        realm="testrealm@host.com",
        password="Circle Of Life",
        method="GET",
        uri="/dir/index.html",
        nonce="dcd98b7102dd2f0e8b11d0f600bfb0c093",
        qop="auth",
        nc="00000001",
        cnonce="0a4f113b",
    )
    assert response == "6629fae49393a05397450978507c4ef1"


# RFC 7616 §3.9.1, as unfolded by the header parser (folds become spaces).
RFC7616_CHALLENGE = (
    'Digest realm="http-auth@example.org", qop="auth, auth-int", algorithm={alg}, '
    'nonce="7ypf/xlj9XXwfDPEoM4URrv/xwf94BcCAzFZH4GiTo0v", '
    'opaque="FQhe/qaU925kfnzjCev0ciny7QMkPqMAFRtzCUYo5tdS"'
)


@pytest.mark.parametrize(
    ("algorithm", "expected"),
    [
        ("MD5", "8ca523f5e9506fed4657c9700eebdbec"),
        ("SHA-256", "753927fa0e85d155564e2e272a28d1802ca10daf4496794697cf8db5856cb6c1"),
    ],
)
def test_rfc7616_examples(algorithm, expected):
    challenge = Challenge.parse(RFC7616_CHALLENGE.format(alg=algorithm))
    assert challenge.qop == ("auth", "auth-int")
    assert challenge.algorithm == algorithm
    creds = authorize(
        challenge,
        method="GET",
        uri="/dir/index.html",
        username="Mufasa",
        password="Circle of Life",
        cnonce="f2/wE4q74E6zIJEtWaHKaf5wv/H5QzzpXusqGemxURZJ",
    )
    assert creds.qop == "auth"
    assert creds.nc == "00000001"
    assert creds.opaque == "FQhe/qaU925kfnzjCev0ciny7QMkPqMAFRtzCUYo5tdS"
    assert creds.response == expected


def _reference(algorithm, qop, body=b""):
    """The RFC 7616 §3.4 formulas written out longhand, to check digest_response."""
    name = {"MD5": "md5", "SHA-256": "sha256", "SHA-512-256": "sha512_256"}[
        algorithm.removesuffix("-sess")
    ]

    def h(data):
        return hashlib.new(name, data.encode() if isinstance(data, str) else data).hexdigest()

    a1 = h("alice:atlanta.example.com:pässword")
    if algorithm.endswith("-sess"):
        a1 = h(f"{a1}:n0nce:c0nce")
    a2 = h(f"INVITE:{URI}:{h(body)}") if qop == "auth-int" else h(f"INVITE:{URI}")
    if qop is None:
        return h(f"{a1}:n0nce:{a2}")
    return h(f"{a1}:n0nce:0000002a:c0nce:{qop}:{a2}")


@pytest.mark.parametrize("algorithm", ALGORITHMS)
@pytest.mark.parametrize("qop", [None, "auth", "auth-int"])
def test_digest_response_matches_formulas(algorithm, qop):
    body = b"v=0\r\no=- 1 1 IN IP4 192.0.2.1\r\n"
    got = digest_response(
        algorithm=algorithm,
        username="alice",
        realm="atlanta.example.com",
        password="pässword",
        method="INVITE",
        uri=URI,
        nonce="n0nce",
        qop=qop,
        nc=42,
        cnonce="c0nce",
        body=body,
    )
    assert got == _reference(algorithm, qop, body)


def test_sha512_256_is_not_truncated_sha512():
    # FIPS 180-4 SHA-512/256 has its own initial values; truncating SHA-512 is wrong.
    assert hashlib.new("sha512_256", b"abc").hexdigest() == (
        "53048e2681941ef99b2e29b76b4c7dabe4c2d0c634fc6d46e0e2f13107e7af23"
    )
    assert ha1("a", "r", "p", "SHA-512-256") == hashlib.new("sha512_256", b"a:r:p").hexdigest()
    assert ha1("a", "r", "p", "SHA-512-256") != hashlib.sha512(b"a:r:p").hexdigest()[:64]


def test_digest_response_misuse():
    kwargs = dict(username="u", realm="r", password="p", method="M", uri="u", nonce="n")
    with pytest.raises(ValueError, match="unsupported digest algorithm"):
        digest_response(algorithm="SHA-1", **kwargs)
    with pytest.raises(ValueError, match="qop"):
        digest_response(algorithm="MD5", qop="auth-conf", nc=1, cnonce="c", **kwargs)
    with pytest.raises(ValueError, match="nc and cnonce"):
        digest_response(algorithm="MD5", qop="auth", **kwargs)
    with pytest.raises(ValueError, match="cnonce"):
        digest_response(algorithm="MD5-sess", **kwargs)


# --- Parsing real challenges ------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        # Asterisk chan_pjsip (PJSIP writes the algorithm in lower case).
        (
            'Digest realm="asterisk",nonce="1566907325/0a3d3c9b0dbb7ca43a3b8cf2ab1f02a3",'
            'opaque="2b5c0e5f6c0f1f5e",algorithm=md5,qop="auth"',
            Challenge(
                "asterisk",
                "1566907325/0a3d3c9b0dbb7ca43a3b8cf2ab1f02a3",
                "MD5",
                ("auth",),
                "2b5c0e5f6c0f1f5e",
            ),
        ),
        # Asterisk chan_sip: no qop, algorithm first.
        (
            'Digest algorithm=MD5, realm="asterisk", nonce="4f2a1c3e"',
            Challenge("asterisk", "4f2a1c3e"),
        ),
        # Kamailio auth module, RFC 8760 SHA-256 offered as a second header.
        (
            'Digest realm="sip.example.com", nonce="ZeT3bWXk9kHlvZ1lp0QvjRHbCYmYuL5J", '
            'qop="auth", algorithm=SHA-256',
            Challenge(
                "sip.example.com",
                "ZeT3bWXk9kHlvZ1lp0QvjRHbCYmYuL5J",
                "SHA-256",
                ("auth",),
            ),
        ),
        # Kamailio re-challenging an expired nonce; stale in upper case.
        (
            'DIGEST realm="sip.example.com", nonce="ZeT3", stale=TRUE, qop="auth,,auth-int,"',
            Challenge("sip.example.com", "ZeT3", qop=("auth", "auth-int"), stale=True),
        ),
        # Unknown directives are ignored; an unknown algorithm still parses.
        (
            'Digest realm="r", domain="sip:ss1.carrier.com", nonce="n", algorithm=AKAv1-MD5',
            Challenge("r", "n", "AKAv1-MD5"),
        ),
        # Quoted-pair escapes, and LWS around "=" and ",".
        (
            'Digest realm = "say \\"hi\\" \\\\ bye" ,\tnonce="a,b"',
            Challenge('say "hi" \\ bye', "a,b"),
        ),
    ],
)
def test_parse_real_challenges(value, expected):
    challenge = Challenge.parse(value)
    assert challenge == expected
    assert Challenge.parse(str(challenge)) == challenge


def test_challenge_str():
    challenge = Challenge("sip.example.com", "abc", "SHA-256", ("auth",), "op", stale=True)
    assert str(challenge) == (
        'Digest realm="sip.example.com", nonce="abc", opaque="op", stale=true, '
        'algorithm=SHA-256, qop="auth"'
    )
    assert str(Challenge('a"b', "n")) == r'Digest realm="a\"b", nonce="n", algorithm=MD5'


def test_credentials_str_writes_qop_and_nc_as_tokens():
    creds = Credentials.parse(RFC2617_AUTHORIZATION)
    text = str(creds)
    assert "qop=auth" in text
    assert 'qop="auth"' not in text
    assert "nc=00000001" in text
    assert Credentials.parse(text) == creds


def test_credentials_parse_accepts_quoted_qop_and_escaped_username():
    creds = Credentials.parse(
        'digest username="a\\"lice", realm="r", nonce="n", uri="sip:x", '
        'response="00", qop="AUTH", nc=0000000A, cnonce="c", algorithm="sha-256-SESS"'
    )
    assert creds.username == 'a"lice'
    assert creds.qop == "auth"
    assert creds.nc == "0000000A"
    assert creds.algorithm == "SHA-256-sess"


@pytest.mark.parametrize(
    "value",
    [
        "",
        "Digest",
        'Basic realm="r", nonce="n"',
        'Digestrealm="r", nonce="n"',
        'Digest nonce="n"',  # no realm
        'Digest realm="r"',  # no nonce
        'Digest realm="r, nonce="n"',  # unterminated quote
        'Digest realm="r" nonce="n"',  # no comma
        'Digest realm="r", nonce="n",',  # trailing comma
        'Digest realm="r", realm="s", nonce="n"',
        'Digest realm="r", nonce="n", stale=maybe',
        'Digest realm="r", nonce="n", qop="auth,,x y"',
        'Digest realm="r", nonce="n", qop=""',
        'Digest realm="r", nonce="n", algorithm="MD 5"',
        'Digest realm="r", nonce=a/b',  # unquoted non-token
        'Digest realm="r\r\n", nonce="n"',
        'Digest realm="r\\\nx", nonce="n"',
        'Digest realm="r", nonce="n" x',
        'Digest realm=, nonce="n"',
    ],
)
def test_challenge_parse_rejects(value):
    with pytest.raises(SipParseError):
        Challenge.parse(value)


CREDS = 'Digest username="u", realm="r", nonce="n", uri="sip:x", response="00"'


@pytest.mark.parametrize(
    "value",
    [
        CREDS.replace('username="u", ', ""),
        CREDS.replace('uri="sip:x", ', ""),
        CREDS.replace(', response="00"', ""),
        CREDS + ", qop=auth",  # no nc, no cnonce
        CREDS + ', qop=auth, cnonce="c"',  # no nc
        CREDS + ", qop=auth, nc=00000001",  # no cnonce
        CREDS + ', qop=auth, nc=1, cnonce="c"',  # nc is 8 hex digits
        CREDS + ', qop=auth, nc=0000000g, cnonce="c"',
        CREDS + ', qop="auth int", nc=00000001, cnonce="c"',
        CREDS.replace("Digest", "Basic"),
    ],
)
def test_credentials_parse_rejects(value):
    Credentials.parse(CREDS)  # the base is fine: only the change can fail it
    with pytest.raises(SipParseError):
        Credentials.parse(value)


# --- Round trips and fuzzing ----------------------------------------------------

_text = st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters="\r\n"))
_tokens = st.text(string.ascii_letters + string.digits + "-.!%*_+`'~", min_size=1)
_algorithms = st.sampled_from(ALGORITHMS)


@given(
    st.builds(
        Challenge,
        realm=_text,
        nonce=_text,
        algorithm=_algorithms,
        qop=st.lists(st.sampled_from(["auth", "auth-int"]), max_size=2).map(tuple),
        opaque=st.none() | _text,
        stale=st.booleans(),
    )
)
def test_challenge_round_trip(challenge):
    assert Challenge.parse(str(challenge)) == challenge


@given(
    st.builds(
        Credentials,
        username=_text,
        realm=_text,
        nonce=_text,
        uri=_text,
        response=_text,
        algorithm=_algorithms,
        opaque=st.none() | _text,
    ),
    st.none() | st.tuples(st.sampled_from(["auth", "auth-int"]), _text, st.integers(1, 2**32 - 1)),
)
def test_credentials_round_trip(creds, qop):
    if qop is not None:
        creds.qop, creds.cnonce, nc = qop
        creds.nc = f"{nc:08x}"
    assert Credentials.parse(str(creds)) == creds


_near = st.lists(
    st.sampled_from(['"', "\\", ",", "=", " ", "\t", "realm", "nonce", "Digest ", "qop", "a"])
    | st.text(max_size=3),
    max_size=20,
).map("".join)


@given(st.text() | _near.map(lambda s: "Digest " + s))
def test_fuzz_parse_raises_only_sip_parse_error(value):
    for parse in (Challenge.parse, Credentials.parse):
        with contextlib.suppress(SipParseError):
            parse(value)


# --- UAC authorize, UAS verify --------------------------------------------------


class Clock:
    def __init__(self, now: float = 1_700_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def _loop(auth, algorithm="MD5", password="secret", **kwargs):
    """Challenge on the wire, answer on the wire, as a real exchange would."""
    challenge = Challenge.parse(str(auth.challenge(algorithm=algorithm)))
    creds = authorize(
        challenge, method="INVITE", uri=URI, username="alice", password=password, **kwargs
    )
    return Credentials.parse(str(creds))


@pytest.mark.parametrize("algorithm", ALGORITHMS)
def test_authorize_then_verify(algorithm):
    auth = Authenticator("atlanta.example.com", SECRET)
    creds = _loop(auth, algorithm)
    assert creds.algorithm == algorithm
    assert auth.verify(creds, method="INVITE", password="secret") is Verdict.OK
    stored = ha1("alice", "atlanta.example.com", "secret", algorithm)
    again = _loop(auth, algorithm)
    assert auth.verify(again, method="INVITE", ha1=stored) is Verdict.OK
    # The method is covered by the digest: a REGISTER answer cannot pass as INVITE.
    assert auth.verify(creds, method="BYE", password="secret") is Verdict.BAD_CREDENTIALS


@pytest.mark.parametrize("algorithm", ALGORITHMS)
def test_wrong_password(algorithm):
    auth = Authenticator("atlanta.example.com", SECRET)
    creds = _loop(auth, algorithm, password="guess")
    assert auth.verify(creds, method="INVITE", password="secret") is Verdict.BAD_CREDENTIALS
    stored = ha1("alice", "atlanta.example.com", "secret", algorithm)
    assert auth.verify(creds, method="INVITE", ha1=stored) is Verdict.BAD_CREDENTIALS


def test_ha1_of_another_hash_does_not_verify():
    auth = Authenticator("atlanta.example.com", SECRET)
    creds = _loop(auth, "SHA-256")
    md5_ha1 = ha1("alice", "atlanta.example.com", "secret", "MD5")
    assert auth.verify(creds, method="INVITE", ha1=md5_ha1) is Verdict.BAD_CREDENTIALS


def test_auth_int_covers_the_body():
    auth = Authenticator("r", SECRET)
    challenge = auth.challenge()
    challenge.qop = ("auth-int",)
    creds = authorize(challenge, method="MESSAGE", uri=URI, username="a", password="p", body=b"hi")
    assert creds.qop == "auth-int"
    assert auth.verify(creds, method="MESSAGE", password="p", body=b"hi") is Verdict.OK
    assert auth.verify(creds, method="MESSAGE", password="p", body=b"ho") is (
        Verdict.BAD_CREDENTIALS
    )


def _flip(text: str, i: int) -> str:
    return text[:i] + ("B" if text[i] == "A" else "A") + text[i + 1 :]


@pytest.mark.parametrize(
    "tamper",
    [
        lambda n: _flip(n, 0),  # the timestamp
        lambda n: _flip(n, 15),  # the random part
        lambda n: _flip(n, 30),  # the MAC
        lambda n: n[:-1],
        lambda n: n + "A",
        lambda n: n[:10] + "+" + n[11:],  # not base64url
        lambda n: n[:10] + "é" + n[11:],
        lambda n: "",
    ],
)
def test_tampered_nonce(tamper):
    auth = Authenticator("atlanta.example.com", SECRET)
    challenge = auth.challenge()
    forged = Challenge(challenge.realm, tamper(challenge.nonce), qop=("auth",))
    assert forged.nonce != challenge.nonce
    creds = authorize(forged, method="INVITE", uri=URI, username="alice", password="secret")
    # Right password, so only the nonce can be what is refused.
    assert auth.verify(creds, method="INVITE", password="secret") is Verdict.BAD_NONCE
    good = authorize(challenge, method="INVITE", uri=URI, username="alice", password="secret")
    assert auth.verify(good, method="INVITE", password="secret") is Verdict.OK


def test_spare_bits_of_last_nonce_character_are_refused():
    auth = Authenticator("r", SECRET)
    nonce = auth.challenge().nonce
    # 32 bytes in 43 characters: the last one carries 4 data bits and 2 spare ones.
    alphabet = string.ascii_uppercase + string.ascii_lowercase + string.digits + "-_"
    value = alphabet.index(nonce[-1])
    for spare in (1, 2, 3):
        other = nonce[:-1] + alphabet[value ^ spare]
        creds = authorize(Challenge("r", other, qop=("auth",)), method="M", uri=URI, **_AP)
        assert auth.verify(creds, method="M", password="p") is Verdict.BAD_NONCE


def test_nonce_from_another_secret_or_realm():
    clock = Clock()
    issuer = Authenticator("r", b"another-secret-of-16+", clock=clock)
    creds = _loop(issuer, password="p")
    assert Authenticator("r", SECRET, clock=clock).verify(creds, method="INVITE", password="p") is (
        Verdict.BAD_NONCE
    )
    # Another node with the same secret accepts it: nonces are stateless.
    peer = Authenticator("r", b"another-secret-of-16+", clock=clock)
    assert peer.verify(creds, method="INVITE", password="p") is Verdict.OK


def test_nonce_is_bound_to_the_challenged_algorithm():
    auth = Authenticator("r", SECRET)
    challenge = auth.challenge(algorithm="SHA-256")
    challenge.algorithm = "MD5"  # a downgrade by a man in the middle
    creds = authorize(challenge, method="INVITE", uri=URI, **_AP)
    assert auth.verify(creds, method="INVITE", password="p") is Verdict.BAD_NONCE


def test_expired_nonce_is_stale():
    clock = Clock()
    auth = Authenticator("r", SECRET, nonce_ttl=300.0, clock=clock)
    challenge = Challenge.parse(str(auth.challenge()))

    def use(nc: int) -> Verdict:
        creds = authorize(challenge, method="INVITE", uri=URI, nc=nc, **_AP)
        return auth.verify(creds, method="INVITE", password="p")

    clock.now += 300
    assert use(1) is Verdict.OK
    clock.now += 1
    assert use(2) is Verdict.STALE
    # A node whose clock is far behind the issuer's also calls it stale.
    clock.now -= 602
    assert use(3) is Verdict.STALE
    clock.now += 2
    assert use(4) is Verdict.OK


def test_expired_nonce_with_wrong_password_is_bad_credentials():
    # RFC 2617 §3.2.1: stale only when the digest was right, else a client
    # would retry a wrong password without asking the user.
    clock = Clock()
    auth = Authenticator("r", SECRET, clock=clock)
    creds = _loop(auth, password="wrong")
    clock.now += 1000
    assert auth.verify(creds, method="INVITE", password="p") is Verdict.BAD_CREDENTIALS


def test_stale_rechallenge_then_retry_succeeds():
    clock = Clock()
    auth = Authenticator("r", SECRET, clock=clock)
    creds = _loop(auth, password="p")
    clock.now += 1000
    assert auth.verify(creds, method="INVITE", password="p") is Verdict.STALE
    fresh = Challenge.parse(str(auth.challenge(stale=True)))
    assert fresh.stale
    retry = authorize(fresh, method="INVITE", uri=URI, **_AP)
    assert auth.verify(retry, method="INVITE", password="p") is Verdict.OK


def test_realm_mismatch():
    auth = Authenticator("atlanta.example.com", SECRET)
    creds = _loop(auth, password="p")
    other = Authenticator("biloxi.example.com", SECRET)
    assert other.verify(creds, method="INVITE", password="p") is Verdict.BAD_CREDENTIALS
    # Relabelled to the verifier's realm, the nonce (bound to its realm) fails instead.
    creds.realm = "biloxi.example.com"
    assert other.verify(creds, method="INVITE", password="p") is Verdict.BAD_NONCE


@pytest.mark.parametrize(
    "change",
    [
        {"qop": None, "nc": None, "cnonce": None},  # RFC 2069 answer to a qop challenge
        {"qop": "auth-conf"},
        {"algorithm": "AKAv1-MD5"},
        {"response": "é" * 32},  # non-ASCII: compare_digest on str would raise
        {"response": ""},
        {"nc": "00000002"},  # the digest covers the nonce count
        {"cnonce": "other"},
        {"uri": "sip:mallory@evil.example.com"},
    ],
)
def test_altered_credentials_are_refused(change):
    auth = Authenticator("r", SECRET)
    creds = _loop(auth, password="p")
    assert auth.verify(creds, method="INVITE", password="p") is Verdict.OK
    for name, value in change.items():
        setattr(creds, name, value)
    assert auth.verify(creds, method="INVITE", password="p") is Verdict.BAD_CREDENTIALS


def test_response_case_is_ignored():
    auth = Authenticator("r", SECRET)
    creds = _loop(auth, password="p")
    creds.response = creds.response.upper()
    assert auth.verify(creds, method="INVITE", password="p") is Verdict.OK


def test_challenge_offers_auth_and_fresh_nonces():
    auth = Authenticator("r", SECRET, clock=Clock())
    first, second = auth.challenge(), auth.challenge(algorithm="sha-512-256")
    assert first.qop == ("auth",)
    assert second.algorithm == "SHA-512-256"
    assert first.nonce != second.nonce
    assert not first.stale
    assert auth.challenge(stale=True).stale


def test_authorize_choices():
    challenge = Challenge("r", "n")
    creds = authorize(challenge, method="REGISTER", uri=URI, **_AP)
    # RFC 2069 server: no qop, so no cnonce and no nonce count.
    assert (creds.qop, creds.nc, creds.cnonce) == (None, None, None)
    assert creds.response == digest_response(
        algorithm="MD5", realm="r", method="REGISTER", uri=URI, nonce="n", **_AP
    )
    creds = authorize(Challenge("r", "n", "MD5-sess"), method="REGISTER", uri=URI, **_AP)
    assert creds.cnonce and creds.qop is None
    creds = authorize(Challenge("r", "n", qop=("auth",)), method="M", uri=URI, nc=255, **_AP)
    assert creds.nc == "000000ff"
    assert (
        creds.cnonce
        and creds.cnonce
        != authorize(Challenge("r", "n", qop=("auth",)), method="M", uri=URI, **_AP).cnonce
    )


@pytest.mark.parametrize(
    ("challenge", "kwargs"),
    [
        (Challenge("r", "n", "AKAv1-MD5"), {}),
        (Challenge("r", "n", qop=("auth-conf",)), {}),
        (Challenge("r", "n", qop=("auth",)), {"nc": 0}),
        (Challenge("r", "n", qop=("auth",)), {"nc": 2**32}),
    ],
)
def test_authorize_refuses(challenge, kwargs):
    with pytest.raises(ValueError):
        authorize(challenge, method="M", uri=URI, **_AP, **kwargs)


def test_authenticator_misuse():
    auth = Authenticator("r", SECRET)
    creds = _loop(auth, password="p")
    with pytest.raises(ValueError, match="exactly one"):
        auth.verify(creds, method="INVITE")
    with pytest.raises(ValueError, match="exactly one"):
        auth.verify(creds, method="INVITE", password="p", ha1="00")
    with pytest.raises(ValueError, match="unsupported"):
        auth.challenge(algorithm="SHA-1")
    with pytest.raises(ValueError, match="secret"):
        Authenticator("r", b"short")


# -- nonce counts (RFC 7616 §3.4.5): a captured Authorization cannot be replayed


def _answer(auth, challenge, nc, password="p"):
    creds = authorize(challenge, method="REGISTER", uri=URI, nc=nc, **{**_AP, "password": password})
    return auth.verify(creds, method="REGISTER", password="p")


def test_a_replayed_authorization_is_stale():
    auth = Authenticator("r", SECRET)
    challenge = Challenge.parse(str(auth.challenge()))
    creds = authorize(challenge, method="REGISTER", uri=URI, nc=1, **_AP)
    assert auth.verify(creds, method="REGISTER", password="p") is Verdict.OK
    assert auth.verify(creds, method="REGISTER", password="p") is Verdict.STALE
    # The client's next request on the same nonce counts up, and passes.
    assert _answer(auth, challenge, 2) is Verdict.OK
    assert _answer(auth, challenge, 2) is Verdict.STALE
    assert _answer(auth, challenge, 1) is Verdict.STALE
    assert _answer(auth, challenge, 7) is Verdict.OK


def test_a_wrong_digest_does_not_use_up_a_nonce_count():
    auth = Authenticator("r", SECRET)
    challenge = Challenge.parse(str(auth.challenge()))
    assert _answer(auth, challenge, 1, password="guess") is Verdict.BAD_CREDENTIALS
    assert _answer(auth, challenge, 1) is Verdict.OK


def test_forgotten_nonce_counts_never_let_a_replay_through():
    clock = Clock()
    auth = Authenticator("r", SECRET, clock=clock, max_nonces=2)
    challenges = []
    for _ in range(3):
        challenges.append(Challenge.parse(str(auth.challenge())))
        clock.now += 1
    for challenge in challenges:
        assert _answer(auth, challenge, 1) is Verdict.OK
    # The first nonce's count was forgotten to make room: it is stale, not replayable.
    assert _answer(auth, challenges[0], 1) is Verdict.STALE
    assert _answer(auth, challenges[0], 2) is Verdict.STALE
    assert _answer(auth, challenges[2], 2) is Verdict.OK
    assert len(auth._counts) <= 2


def test_expired_nonce_counts_are_dropped():
    clock = Clock()
    auth = Authenticator("r", SECRET, nonce_ttl=60, clock=clock)
    for _ in range(5):
        assert _answer(auth, Challenge.parse(str(auth.challenge())), 1) is Verdict.OK
    clock.now += 61
    assert _answer(auth, Challenge.parse(str(auth.challenge())), 1) is Verdict.OK
    assert len(auth._counts) == 1


@given(st.lists(st.integers(1, 0xFFFFFFFF), min_size=1, max_size=20))
def test_only_increasing_nonce_counts_pass(counts):
    auth = Authenticator("r", SECRET)
    challenge = Challenge.parse(str(auth.challenge()))
    highest = 0
    for nc in counts:
        expected = Verdict.OK if nc > highest else Verdict.STALE
        assert _answer(auth, challenge, nc) is expected
        highest = max(highest, nc)
