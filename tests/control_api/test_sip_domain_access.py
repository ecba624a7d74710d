"""Who may call a SIP domain: the source address, or a digest of a mapped credential."""

from __future__ import annotations

import ipaddress
from datetime import UTC, datetime

import pytest

from control_api.sip_domain_access import Admission, DomainGate, insecure, is_ip_literal, listed
from control_api.sip_realm import SIP_REALM
from control_api.store import SipCredential
from sip.auth import Authenticator, Challenge, Credentials, authorize, ha1
from sip.parser import parse_message

PASSWORD = "Secret-Pass-123"
URI = "sip:desk@acme.sip.example.com"
T0 = datetime(2026, 12, 5, tzinfo=UTC)


def invite(*headers: str) -> object:
    head = "\r\n".join(
        [
            f"INVITE {URI} SIP/2.0",
            "Via: SIP/2.0/UDP 203.0.113.9:5060;branch=z9hG4bK-1",
            "From: <sip:alice@203.0.113.9>;tag=a",
            f"To: <{URI}>",
            "Call-ID: call-1",
            "CSeq: 1 INVITE",
            "Max-Forwards: 70",
            *headers,
            "Content-Length: 0",
        ]
    )
    return parse_message((head + "\r\n\r\n").encode())


def credential(username: str = "alice", password: str = PASSWORD) -> SipCredential:
    return SipCredential(
        sid="CR" + "0" * 32,
        credential_list_sid="CL" + "0" * 32,
        account_sid="AC" + "0" * 32,
        username=username,
        ha1_md5=ha1(username, SIP_REALM, password, "MD5"),
        ha1_sha256=ha1(username, SIP_REALM, password, "SHA-256"),
        date_created=T0,
        date_updated=T0,
    )


@pytest.fixture
def gate() -> DomainGate:
    return DomainGate(Authenticator(SIP_REALM, b"k" * 32), max_failures=3, lockout=60.0)


def answer(admission: Admission, password: str = PASSWORD, username: str = "alice") -> str:
    assert admission.status == 407
    ((name, value),) = admission.headers
    assert name == "Proxy-Authenticate"
    challenge = Challenge.parse(value)
    return str(authorize(challenge, method="INVITE", uri=URI, username=username, password=password))


def test_listed_sources_and_prefixes():
    office = [ipaddress.ip_network("203.0.113.0/24")]
    assert listed("203.0.113.9", office)
    assert not listed("198.51.100.1", office)
    assert listed("::ffff:203.0.113.9", office)  # an IPv4-mapped source is its IPv4 address
    assert not listed("not-an-address", office)
    assert is_ip_literal("10.0.0.1") and is_ip_literal("[2001:db8::1]")
    assert not is_ip_literal("acme.sip.example.com")


def test_without_credential_lists_an_unlisted_source_is_forbidden(gate):
    screened = gate.screen(invite(), "198.51.100.1", has_credentials=False, now=0.0)
    assert isinstance(screened, Admission)
    assert (screened.status, screened.refusal) == (403, "sip.domain_forbidden")


def test_a_digest_is_asked_for_then_admits(gate):
    first = gate.screen(invite(), "198.51.100.1", has_credentials=True, now=0.0)
    assert isinstance(first, Admission) and first.status == 407
    request = invite(f"Proxy-Authorization: {answer(first)}")
    screened = gate.screen(request, "198.51.100.1", has_credentials=True, now=0.0)
    assert isinstance(screened, Credentials) and screened.username == "alice"
    admitted = gate.verify(request, "198.51.100.1", screened, [credential()], 0.0)
    assert admitted.admitted and admitted.username == "alice"
    # The same Proxy-Authorization again (a replay) is stale, not admitted.
    again = gate.verify(request, "198.51.100.1", screened, [credential()], 0.0)
    assert again.status == 407 and "stale=true" in again.headers[0][1]


def test_wrong_passwords_are_forbidden_then_locked_out(gate):
    challenge = gate.screen(invite(), "198.51.100.1", has_credentials=True, now=0.0)
    refusals = []
    for _ in range(3):
        request = invite(f"Proxy-Authorization: {answer(challenge, password='Wrong-Pass-999')}")
        screened = gate.screen(request, "198.51.100.1", has_credentials=True, now=1.0)
        assert isinstance(screened, Credentials)
        verdict = gate.verify(request, "198.51.100.1", screened, [credential()], 1.0)
        assert verdict.status == 403
        refusals.append(verdict.refusal)
    assert refusals == ["sip.domain_auth_failed", "sip.domain_auth_failed", "auth.lockout"]
    # Locked out: even the right password from that source is refused before any lookup.
    request = invite(f"Proxy-Authorization: {answer(challenge)}")
    locked = gate.screen(request, "198.51.100.1", has_credentials=True, now=2.0)
    assert isinstance(locked, Admission) and (locked.status, locked.refusal) == (
        403,
        "auth.lockout",
    )
    # Another source is not.
    other = gate.screen(request, "192.0.2.50", has_credentials=True, now=2.0)
    assert isinstance(other, Credentials)


def test_unknown_user_is_answered_as_a_wrong_password(gate):
    challenge = gate.screen(invite(), "198.51.100.1", has_credentials=True, now=0.0)
    request = invite(f"Proxy-Authorization: {answer(challenge, username='mallory')}")
    screened = gate.screen(request, "198.51.100.1", has_credentials=True, now=0.0)
    assert isinstance(screened, Credentials)
    assert gate.verify(request, "198.51.100.1", screened, [], 0.0).status == 403


def test_other_realms_get_a_challenge(gate):
    other = Authenticator("elsewhere", b"k" * 32).challenge()
    foreign = authorize(other, method="INVITE", uri=URI, username="alice", password=PASSWORD)
    request = invite(f"Authorization: {foreign}")
    screened = gate.screen(request, "198.51.100.1", has_credentials=True, now=0.0)
    assert isinstance(screened, Admission) and screened.status == 407


SRTP_OFFER = b"v=0\r\nm=audio 4000 RTP/SAVP 0\r\na=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:x\r\n"


def test_a_secure_domain_takes_tls_with_srtp_only():
    assert insecure("TLS", SRTP_OFFER) is None
    assert insecure("wss", SRTP_OFFER) is None
    over_udp = insecure("UDP", SRTP_OFFER)
    assert over_udp is not None and (over_udp.status, over_udp.refusal) == (
        403,
        "sip.domain_insecure",
    )
    plain = insecure("TLS", b"v=0\r\nm=audio 4000 RTP/AVP 0\r\n")
    assert plain is not None and plain.status == 488
    assert insecure("TLS", None) is not None  # no offer: no SRTP to agree on
