"""SIP domains, IP access control lists and domain mappings in the store, on each backend."""

from __future__ import annotations

import ipaddress

import pytest

from control_api.store import (
    DomainNameTaken,
    MappingExists,
    NoSuchIpAccessControlList,
    NoSuchMappedList,
    Store,
)


async def test_domain_defaults_and_lower_case_name(store: Store, account):
    domain = await store.sip_domains.create(account.sid, "Acme.SIP.Example.com")
    assert domain.sid.startswith("SD") and domain.domain_name == "acme.sip.example.com"
    assert (domain.voice_method, domain.sip_registration, domain.secure) == ("POST", False, False)
    assert await store.sip_domains.get(account.sid, domain.sid) == domain
    assert await store.sip_domains.find("ACME.sip.example.COM") == domain


async def test_domain_names_are_unique_across_accounts(store: Store, account, other):
    await store.sip_domains.create(account.sid, "acme.sip.example.com")
    with pytest.raises(DomainNameTaken):
        await store.sip_domains.create(other.sid, "ACME.sip.example.com")
    taken = await store.sip_domains.create(other.sid, "other.sip.example.com")
    with pytest.raises(DomainNameTaken):
        await store.sip_domains.update(other.sid, taken.sid, domain_name="acme.sip.example.com")


BAD_NAMES = ["localhost", "10.0.0.1", "a..b", "-a.b", "a b.c", "x" * 64 + ".c"]


@pytest.mark.parametrize("name", BAD_NAMES)
async def test_bad_domain_names_are_refused(store: Store, account, name: str):
    with pytest.raises(ValueError):
        await store.sip_domains.create(account.sid, name)


async def test_domain_update_and_another_account_sees_nothing(store: Store, account, other):
    domain = await store.sip_domains.create(account.sid, "acme.sip.example.com")
    updated = await store.sip_domains.update(
        account.sid, domain.sid, voice_url="https://example.com/v", sip_registration=True
    )
    assert updated is not None and updated.voice_url == "https://example.com/v"
    assert updated.sip_registration is True
    assert await store.sip_domains.get(other.sid, domain.sid) is None
    assert await store.sip_domains.update(other.sid, domain.sid, voice_url=None) is None
    assert await store.sip_domains.page(other.sid) == []
    assert not await store.sip_domains.delete(other.sid, domain.sid)
    assert [d.sid for d in await store.sip_domains.page(account.sid)] == [domain.sid]


async def test_ip_addresses_with_cidr(store: Store, account, other):
    acl = await store.ip_access_control_lists.create(account.sid, "office")
    entry = await store.ip_addresses.create(account.sid, acl.sid, "gw", "203.0.113.7", 24)
    assert entry.sid.startswith("IP") and entry.cidr_prefix_length == 24
    assert entry.network == ipaddress.ip_network("203.0.113.0/24")
    whole = await store.ip_addresses.create(account.sid, acl.sid, "pbx", "198.51.100.9")
    assert whole.cidr_prefix_length == 32
    with pytest.raises(ValueError):
        await store.ip_addresses.create(account.sid, acl.sid, "all", "0.0.0.0", 0)
    with pytest.raises(ValueError):
        await store.ip_addresses.create(account.sid, acl.sid, "bad", "not-an-ip")
    with pytest.raises(NoSuchIpAccessControlList):
        await store.ip_addresses.create(other.sid, acl.sid, "theirs", "192.0.2.1")
    moved = await store.ip_addresses.update(account.sid, acl.sid, whole.sid, cidr_prefix_length=30)
    assert moved is not None and (moved.ip_address, moved.cidr_prefix_length) == (
        "198.51.100.9",
        30,
    )
    assert len(await store.ip_addresses.page(account.sid, acl.sid)) == 2
    assert await store.ip_addresses.page(other.sid, acl.sid) == []


async def test_mappings_admit_networks_and_credentials(store: Store, account, other):
    domain = await store.sip_domains.create(account.sid, "acme.sip.example.com")
    acl = await store.ip_access_control_lists.create(account.sid, "office")
    await store.ip_addresses.create(account.sid, acl.sid, "gw", "203.0.113.0", 24)
    cl = await store.credential_lists.create(account.sid, "phones")
    await store.sip_credentials.create(account.sid, cl.sid, "alice", "Secret-Pass-123")

    assert await store.domain_mappings.call_networks(domain.sid) == []
    mapping = await store.domain_mappings.add(account.sid, domain.sid, "calls", acl.sid)
    assert (mapping.sid, mapping.friendly_name, mapping.kind) == (acl.sid, "office", "calls")
    with pytest.raises(MappingExists):
        await store.domain_mappings.add(account.sid, domain.sid, "calls", acl.sid)
    assert await store.domain_mappings.call_networks(domain.sid) == [
        ipaddress.ip_network("203.0.113.0/24")
    ]

    assert not await store.domain_mappings.has_credential_lists(domain.sid, ("calls", "domain"))
    await store.domain_mappings.add(account.sid, domain.sid, "registrations", cl.sid)
    assert await store.domain_mappings.credentials(domain.sid, ("calls",), "alice") == []
    (alice,) = await store.domain_mappings.credentials(domain.sid, ("registrations",), "alice")
    assert alice.username == "alice" and alice.account_sid == account.sid
    await store.domain_mappings.add(account.sid, domain.sid, "domain", cl.sid)
    assert await store.domain_mappings.has_credential_lists(domain.sid, ("calls", "domain"))

    listed = await store.domain_mappings.page(account.sid, domain.sid, "calls", "AL")
    assert [m.sid for m in listed] == [acl.sid]
    assert await store.domain_mappings.page(account.sid, domain.sid, "calls", "CL") == []


async def test_mappings_only_of_the_accounts_own_lists(store: Store, account, other):
    domain = await store.sip_domains.create(account.sid, "acme.sip.example.com")
    theirs = await store.ip_access_control_lists.create(other.sid, "theirs")
    with pytest.raises(NoSuchMappedList):
        await store.domain_mappings.add(account.sid, domain.sid, "calls", theirs.sid)
    with pytest.raises(NoSuchMappedList):  # their list on our domain, in their name
        await store.domain_mappings.add(other.sid, domain.sid, "calls", theirs.sid)
    mine = await store.ip_access_control_lists.create(account.sid, "mine")
    with pytest.raises(NoSuchMappedList):  # IP lists do not admit registrations
        await store.domain_mappings.add(account.sid, domain.sid, "registrations", mine.sid)


async def test_deleting_lists_and_domains_drops_their_mappings(store: Store, account):
    domain = await store.sip_domains.create(account.sid, "acme.sip.example.com")
    acl = await store.ip_access_control_lists.create(account.sid, "office")
    await store.ip_addresses.create(account.sid, acl.sid, "gw", "203.0.113.5")
    cl = await store.credential_lists.create(account.sid, "phones")
    await store.sip_credentials.create(account.sid, cl.sid, "alice", "Secret-Pass-123")
    await store.domain_mappings.add(account.sid, domain.sid, "calls", acl.sid)
    await store.domain_mappings.add(account.sid, domain.sid, "calls", cl.sid)

    assert await store.ip_access_control_lists.delete(account.sid, acl.sid)
    assert await store.domain_mappings.call_networks(domain.sid) == []
    assert await store.domain_mappings.get(account.sid, domain.sid, "calls", acl.sid) is None
    assert await store.credential_lists.delete(account.sid, cl.sid)
    assert await store.domain_mappings.credentials(domain.sid, ("calls",), "alice") == []
    assert await store.domain_mappings.page(account.sid, domain.sid, "calls", "CL") == []
    assert await store.sip_domains.delete(account.sid, domain.sid)
    assert await store.sip_domains.find("acme.sip.example.com") is None
