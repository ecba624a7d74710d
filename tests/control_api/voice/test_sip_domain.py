"""The router hook for SIP domains (voice/sip_domain.py) over a SQLite store: which
INVITEs are a domain's, and which of those it refuses or runs."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from control_api.sip_domain_access import DomainGate
from control_api.sip_realm import SIP_REALM
from control_api.store import Store
from control_api.voice.sip_domain import SipDomainCalls
from sip.auth import Authenticator
from sip.parser import parse_message

DOMAIN = "acme.sip.example.com"


def session(host: str, source: str = "203.0.113.9", transport: str = "UDP"):
    text = (
        f"INVITE sip:desk@{host} SIP/2.0\r\n"
        "Via: SIP/2.0/UDP 203.0.113.9:5060;branch=z9hG4bK-1\r\n"
        "From: <sip:alice@203.0.113.9>;tag=a\r\n"
        f"To: <sip:desk@{host}>\r\n"
        "Call-ID: call-1\r\nCSeq: 1 INVITE\r\nMax-Forwards: 70\r\nContent-Length: 0\r\n\r\n"
    )
    flow = SimpleNamespace(remote=(source, 5060), transport=transport)
    return SimpleNamespace(request=parse_message(text.encode()), flow=flow, offer=None)


@pytest.fixture
async def store(tmp_path):
    store = await Store.open(f"sqlite+aiosqlite:///{tmp_path / 'callswitch.db'}")
    yield store
    await store.close()


@pytest.fixture
def refusals():
    return []


@pytest.fixture
def domains(store: Store, refusals) -> SipDomainCalls:
    voice = SimpleNamespace(context=SimpleNamespace(store=store, billing=None))
    gate = DomainGate(Authenticator(SIP_REALM, b"k" * 32), max_failures=3, lockout=60.0)
    return SipDomainCalls(
        voice,  # type: ignore[arg-type]
        gate,
        refused=lambda reason, source_ip, **fields: refusals.append((reason, source_ip, fields)),
    )


async def status_of(app) -> int:
    """The status the app answers with (it rejects the call it is given)."""
    answered = []
    call = SimpleNamespace(
        reject_status=None,
        session=SimpleNamespace(reject=lambda status, reason, headers: answered.append(status)),
    )
    await app(call)
    return answered[0]


async def test_hosts_that_are_no_domain_are_left_to_the_usual_routing(store: Store, domains):
    account = await store.accounts.create("main")
    await store.sip_domains.create(account.sid, DOMAIN, voice_url="https://example.com/v")
    assert await domains.app_for(session("127.0.0.1")) is None
    assert await domains.app_for(session("other.example.com")) is None
    assert await domains.app_for(session(DOMAIN.upper())) is not None


async def test_unlisted_sources_are_refused_listed_ones_run(store: Store, domains, refusals):
    account = await store.accounts.create("main")
    domain = await store.sip_domains.create(account.sid, DOMAIN, voice_url="https://example.com/v")
    acl = await store.ip_access_control_lists.create(account.sid, "office")
    await store.ip_addresses.create(account.sid, acl.sid, "office", "198.51.100.0", 24)
    await store.domain_mappings.add(account.sid, domain.sid, "calls", acl.sid)

    refused = await domains.app_for(session(DOMAIN, source="203.0.113.9"))
    assert await status_of(refused) == 403
    assert refusals == [("sip.domain_forbidden", "203.0.113.9", {"domain": DOMAIN})]
    admitted = await domains.app_for(session(DOMAIN, source="198.51.100.77"))
    assert admitted.func == domains.run_call and admitted.args[0].sid == domain.sid


async def test_a_credential_list_asks_for_a_digest(store: Store, domains):
    account = await store.accounts.create("main")
    domain = await store.sip_domains.create(account.sid, DOMAIN, voice_url="https://example.com/v")
    phones = await store.credential_lists.create(account.sid, "phones")
    await store.domain_mappings.add(account.sid, domain.sid, "domain", phones.sid)
    assert await status_of(await domains.app_for(session(DOMAIN))) == 407


async def test_a_secure_domain_refuses_udp_and_one_without_voice_url_404(store: Store, domains):
    account = await store.accounts.create("main")
    domain = await store.sip_domains.create(account.sid, DOMAIN, secure=True)
    acl = await store.ip_access_control_lists.create(account.sid, "all of us")
    await store.ip_addresses.create(account.sid, acl.sid, "us", "203.0.113.0", 24)
    await store.domain_mappings.add(account.sid, domain.sid, "calls", acl.sid)
    assert await status_of(await domains.app_for(session(DOMAIN))) == 403
    assert await status_of(await domains.app_for(session(DOMAIN, transport="TLS"))) == 488
    await store.sip_domains.update(account.sid, domain.sid, secure=False)
    domains.domains = type(domains.domains)(store)  # forget what was read a moment ago
    assert await status_of(await domains.app_for(session(DOMAIN))) == 404
