"""SIP Domains, IpAccessControlLists, IpAddresses and the domain mappings through the
official twilio library, with Twilio's error bodies for bad input."""

from __future__ import annotations

import itertools

import pytest
from twilio.base.exceptions import TwilioRestException

from control_api.sids import is_sid, new_sid

_names = itertools.count()


@pytest.fixture
def other_client(api, other):
    return api.client(other)


def domain_name() -> str:
    return f"acme-{next(_names)}.sip.example.com"


def rest_error(call) -> TwilioRestException:
    with pytest.raises(TwilioRestException) as caught:
        call()
    return caught.value


def test_domain_create_fetch_update_list_delete(client, account, api):
    name = domain_name()
    domain = client.sip.domains.create(
        domain_name=name.upper(),
        friendly_name="Acme",
        voice_url="https://example.com/voice",
        voice_method="GET",
        sip_registration=True,
    )
    assert is_sid(domain.sid, "SD") and domain.account_sid == account.sid
    assert domain.domain_name == name  # kept in lower case
    assert (domain.voice_url, domain.voice_method) == ("https://example.com/voice", "GET")
    assert domain.voice_fallback_method == "POST" and domain.voice_status_callback_url is None
    assert domain.sip_registration is True and domain.secure is False
    assert domain.emergency_calling_enabled is False and domain.auth_type == ""
    base = f"/2010-04-01/Accounts/{account.sid}/SIP/Domains/{domain.sid}"
    assert domain.uri == base + ".json"
    assert domain.subresource_uris == {
        "credential_list_mappings": base + "/CredentialListMappings.json",
        "ip_access_control_list_mappings": base + "/IpAccessControlListMappings.json",
    }
    updated = client.sip.domains(domain.sid).update(
        voice_status_callback_url="https://example.com/status", sip_registration=False
    )
    assert updated.voice_status_callback_url == "https://example.com/status"
    assert updated.sip_registration is False and updated.voice_url == "https://example.com/voice"
    assert client.sip.domains(domain.sid).fetch().friendly_name == "Acme"
    assert domain.sid in [d.sid for d in client.sip.domains.list()]
    assert client.sip.domains(domain.sid).delete() is True
    assert rest_error(lambda: client.sip.domains(domain.sid).fetch()).code == 20404


def test_domain_bad_input_is_21231(client, other_client, api):
    for bad in ({"domain_name": "10.0.0.1"}, {"domain_name": "no_underscores.example.com"}):
        error = rest_error(lambda bad=bad: client.sip.domains.create(**bad))
        assert (error.status, error.code) == (400, 21231)
    name = domain_name()
    error = rest_error(lambda: client.sip.domains.create(domain_name=name, voice_url="ftp://x"))
    assert (error.status, error.code) == (400, 21231)
    error = rest_error(lambda: client.sip.domains.create(domain_name=name, voice_method="PUT"))
    assert (error.status, error.code) == (400, 21231)
    client.sip.domains.create(domain_name=name)
    taken = rest_error(lambda: other_client.sip.domains.create(domain_name=name))
    assert (taken.status, taken.code) == (400, 21231)


def test_domain_of_another_account_is_not_found(client, other_client, api):
    domain = client.sip.domains.create(domain_name=domain_name())
    assert rest_error(lambda: other_client.sip.domains(domain.sid).fetch()).code == 20404
    assert rest_error(lambda: other_client.sip.domains(domain.sid).delete()).code == 20404
    assert rest_error(lambda: client.sip.domains(new_sid("SD")).fetch()).status == 404


def test_ip_access_control_lists_and_addresses(client, account, api):
    acl = client.sip.ip_access_control_lists.create(friendly_name="office")
    assert is_sid(acl.sid, "AL")
    base = f"/2010-04-01/Accounts/{account.sid}/SIP/IpAccessControlLists/{acl.sid}"
    assert acl.subresource_uris == {"ip_addresses": base + "/IpAddresses.json"}
    addresses = client.sip.ip_access_control_lists(acl.sid).ip_addresses
    whole = addresses.create(friendly_name="pbx", ip_address="198.51.100.7")
    assert is_sid(whole.sid, "IP") and whole.cidr_prefix_length == 32
    assert whole.uri == f"{base}/IpAddresses/{whole.sid}.json"
    block = addresses.create(
        friendly_name="office", ip_address="203.0.113.0", cidr_prefix_length=24
    )
    assert (block.ip_address, block.cidr_prefix_length) == ("203.0.113.0", 24)
    changed = addresses(block.sid).update(cidr_prefix_length=28, friendly_name="desk")
    assert (changed.cidr_prefix_length, changed.friendly_name) == (28, "desk")
    assert [a.sid for a in addresses.list()] == [whole.sid, block.sid]
    for bad in ({"ip_address": "300.1.1.1"}, {"ip_address": "10.0.0.0", "cidr_prefix_length": 0}):
        error = rest_error(lambda bad=bad: addresses.create(friendly_name="x", **bad))
        assert (error.status, error.code) == (400, 21234)
    renamed = client.sip.ip_access_control_lists(acl.sid).update(friendly_name="hq")
    assert renamed.friendly_name == "hq"
    assert addresses(whole.sid).delete() is True
    assert client.sip.ip_access_control_lists(acl.sid).delete() is True
    assert rest_error(lambda: addresses(block.sid).fetch()).code == 20404


def test_mappings_of_every_kind(client, other_client, api):
    domain = client.sip.domains(client.sip.domains.create(domain_name=domain_name()).sid)
    acl = client.sip.ip_access_control_lists.create(friendly_name="office")
    cl = client.sip.credential_lists.create(friendly_name=f"phones-{next(_names)}")

    calls_ip = domain.auth.calls.ip_access_control_list_mappings.create(
        ip_access_control_list_sid=acl.sid
    )
    assert (calls_ip.sid, calls_ip.friendly_name) == (acl.sid, "office")
    calls_cl = domain.auth.calls.credential_list_mappings.create(credential_list_sid=cl.sid)
    registrations = domain.auth.registrations.credential_list_mappings.create(
        credential_list_sid=cl.sid
    )
    assert calls_cl.sid == registrations.sid == cl.sid
    assert domain.fetch().auth_type == "IP_ACL,CREDENTIAL_LIST"
    legacy = domain.credential_list_mappings.create(credential_list_sid=cl.sid)
    assert legacy.domain_sid == domain._solution["sid"]
    assert legacy.uri.endswith(f"/CredentialListMappings/{cl.sid}.json")
    legacy_ip = domain.ip_access_control_list_mappings.create(ip_access_control_list_sid=acl.sid)
    assert legacy_ip.friendly_name == "office"

    assert [m.sid for m in domain.auth.calls.ip_access_control_list_mappings.list()] == [acl.sid]
    assert [m.sid for m in domain.auth.registrations.credential_list_mappings.list()] == [cl.sid]
    assert [m.sid for m in domain.credential_list_mappings.list()] == [cl.sid]
    assert (
        domain.auth.calls.credential_list_mappings(cl.sid).fetch().friendly_name == cl.friendly_name
    )

    again = rest_error(
        lambda: domain.auth.calls.credential_list_mappings.create(credential_list_sid=cl.sid)
    )
    assert (again.status, again.code) == (400, 21231)
    theirs = other_client.sip.ip_access_control_lists.create(friendly_name="theirs")
    foreign = rest_error(
        lambda: domain.auth.calls.ip_access_control_list_mappings.create(
            ip_access_control_list_sid=theirs.sid
        )
    )
    assert (foreign.status, foreign.code) == (400, 21231)
    assert domain.auth.calls.credential_list_mappings(cl.sid).delete() is True
    assert (
        rest_error(lambda: domain.auth.calls.credential_list_mappings(cl.sid).fetch()).code == 20404
    )
    assert domain.fetch().auth_type == "IP_ACL,CREDENTIAL_LIST"  # the legacy mapping admits too
    domain.credential_list_mappings(cl.sid).delete()
    assert domain.fetch().auth_type == "IP_ACL"


def test_list_pages_have_the_spec_keys(client, api, auth):
    domain = client.sip.domains.create(domain_name=domain_name())
    base = domain.uri[: -len(".json")]
    for path, key in (
        ("/Auth/Calls/CredentialListMappings.json", "contents"),
        ("/Auth/Calls/IpAccessControlListMappings.json", "contents"),
        ("/Auth/Registrations/CredentialListMappings.json", "contents"),
        ("/CredentialListMappings.json", "credential_list_mappings"),
        ("/IpAccessControlListMappings.json", "ip_access_control_list_mappings"),
    ):
        body = api.http.get(base + path, auth=auth).json()
        assert body[key] == [] and body["page_size"] == 50, path
    body = api.http.get(base.rsplit("/", 1)[0] + ".json", auth=auth).json()
    assert domain.sid in [d["sid"] for d in body["domains"]]


# Each resource's fields, as the 2010-04-01 spec's schemas list them
# (components.schemas api.v2010.account.sip.*).
SPEC_FIELDS = {
    "domain": {
        "account_sid", "api_version", "auth_type", "byoc_trunk_sid", "date_created",
        "date_updated", "domain_name", "emergency_caller_sid", "emergency_calling_enabled",
        "friendly_name", "secure", "sid", "sip_registration", "subresource_uris", "uri",
        "voice_fallback_method", "voice_fallback_url", "voice_method",
        "voice_status_callback_method", "voice_status_callback_url", "voice_url",
    },
    "acl": {"account_sid", "date_created", "date_updated", "friendly_name", "sid",
            "subresource_uris", "uri"},
    "address": {"account_sid", "cidr_prefix_length", "date_created", "date_updated",
                "friendly_name", "ip_access_control_list_sid", "ip_address", "sid", "uri"},
    "legacy_mapping": {"account_sid", "date_created", "date_updated", "domain_sid",
                       "friendly_name", "sid", "uri"},
    "auth_mapping": {"account_sid", "date_created", "date_updated", "friendly_name", "sid"},
}  # fmt: skip


def test_every_operation_answers_the_spec_fields_and_statuses(api, auth, account):
    http = api.http
    root = f"/2010-04-01/Accounts/{account.sid}/SIP"

    def check(method, path, status, fields=None, data=None):
        response = http.request(method, path, auth=auth, data=data)
        assert response.status_code == status, (method, path, response.text)
        if fields is not None:
            assert set(response.json()) == SPEC_FIELDS[fields], (method, path)
        return response.json() if response.content else None

    domain = check("POST", f"{root}/Domains.json", 201, "domain", {"DomainName": domain_name()})
    one = f"{root}/Domains/{domain['sid']}"
    check("GET", f"{one}.json", 200, "domain")
    check("POST", f"{one}.json", 200, "domain", {"VoiceUrl": "https://example.com/v"})
    acl = check("POST", f"{root}/IpAccessControlLists.json", 201, "acl", {"FriendlyName": "o"})
    acl_path = f"{root}/IpAccessControlLists/{acl['sid']}"
    check("GET", f"{acl_path}.json", 200, "acl")
    check("POST", f"{acl_path}.json", 200, "acl", {"FriendlyName": "hq"})
    address = check(
        "POST",
        f"{acl_path}/IpAddresses.json",
        201,
        "address",
        {"FriendlyName": "gw", "IpAddress": "192.0.2.1", "CidrPrefixLength": "24"},
    )
    address_path = f"{acl_path}/IpAddresses/{address['sid']}.json"
    check("GET", address_path, 200, "address")
    check("POST", address_path, 200, "address", {"FriendlyName": "gw2"})
    cl = check("POST", f"{root}/CredentialLists.json", 201, None, {"FriendlyName": domain_name()})
    cl_param, acl_param = ("CredentialListSid", cl["sid"]), ("IpAccessControlListSid", acl["sid"])
    for path, (param, sid), fields in (
        ("Auth/Calls/CredentialListMappings", cl_param, "auth_mapping"),
        ("Auth/Calls/IpAccessControlListMappings", acl_param, "auth_mapping"),
        ("Auth/Registrations/CredentialListMappings", cl_param, "auth_mapping"),
        ("CredentialListMappings", cl_param, "legacy_mapping"),
        ("IpAccessControlListMappings", acl_param, "legacy_mapping"),
    ):
        check("POST", f"{one}/{path}.json", 201, fields, {param: sid})
        check("GET", f"{one}/{path}/{sid}.json", 200, fields)
        check("GET", f"{one}/{path}.json", 200)
        check("DELETE", f"{one}/{path}/{sid}.json", 204)
        check("DELETE", f"{one}/{path}/{sid}.json", 404)
    for path in (address_path, f"{acl_path}.json", f"{one}.json"):
        check("DELETE", path, 204)
        check("GET", path, 404)
