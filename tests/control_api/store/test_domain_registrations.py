"""The registrar's credential lookup with SIP domains (control_api/registrations.py),
on each backend: a domain's REGISTERs see only its Auth/Registrations lists."""

from __future__ import annotations

import time

import pytest

from control_api.registrations import start_registrar
from control_api.store import Store
from sip.ua import UserAgent

PASSWORD = "Secret-Pass-123"
DOMAIN = "acme.sip.example.com"


@pytest.fixture
def lookup(store: Store, tmp_path):
    ua = UserAgent(host="127.0.0.1", port=5060, flow_for=lambda *a: None, clock=time.monotonic)
    registrar = start_registrar(ua, store, tmp_path)
    assert registrar.by_domain
    return registrar.lookup


async def test_domain_registrations_use_only_its_mapped_lists(store: Store, lookup):
    account = await store.accounts.create("main")
    domain = await store.sip_domains.create(account.sid, DOMAIN, sip_registration=True)
    mapped = await store.credential_lists.create(account.sid, "desk phones")
    await store.sip_credentials.create(account.sid, mapped.sid, "alice", PASSWORD)
    unmapped = await store.credential_lists.create(account.sid, "others")
    await store.sip_credentials.create(account.sid, unmapped.sid, "bob", PASSWORD)
    await store.domain_mappings.add(account.sid, domain.sid, "registrations", mapped.sid)

    (alice,) = await lookup("alice", DOMAIN)
    assert alice.owner == account.sid
    assert await lookup("bob", DOMAIN) is None  # not in the domain's lists
    # Any other host: today's registrar, every account's credentials.
    assert [a.owner for a in await lookup("bob", "127.0.0.1")] == [account.sid]
    assert [a.owner for a in await lookup("alice", "callswitch.example.net")] == [account.sid]


async def test_a_domain_without_sip_registration_admits_nobody(store: Store, lookup):
    account = await store.accounts.create("main")
    domain = await store.sip_domains.create(account.sid, DOMAIN)
    phones = await store.credential_lists.create(account.sid, "phones")
    await store.sip_credentials.create(account.sid, phones.sid, "alice", PASSWORD)
    await store.domain_mappings.add(account.sid, domain.sid, "registrations", phones.sid)
    assert await lookup("alice", DOMAIN) is None
    assert await lookup("alice", "") is not None
