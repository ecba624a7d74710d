"""A SIP domain called by SIPp and set up with the official `twilio` library.

An INVITE to ``sip:reception@acme.sip.test`` (the Request-URI host is the domain's
name, sent to the server's address) is refused with 403 while the caller's address is
in no IP access control list mapped to the domain's Auth/Calls; once 127.0.0.0/8 is
added to the mapped list, the same INVITE runs the domain's voice_url: the webhook
carries Twilio's SIP parameters, signed, the TwiML's 440 Hz tone reaches the caller,
and the domain's status callback hears the call complete.
"""

from __future__ import annotations

import time

import pytest
from twilio.request_validator import RequestValidator

from .audio import dominant_frequency, level_dbfs, sine, tone_purity_db
from .conftest import sipp_failure
from .media_checks import PCMU
from .test_voice_webhooks import credentials, rest_client, wav_bytes, windows
from .webhook_app import WebhookApp, twiml

DOMAIN = "acme.sip.test"
TONE_HZ = 440.0


@pytest.fixture
def app():
    with WebhookApp() as application:
        yield application


@pytest.mark.usefixtures("raw_sockets")
def test_domain_refuses_unlisted_sources_and_runs_voice_url_for_listed(server, sipp, rtp_sink, app):
    client = rest_client(server)
    tone = wav_bytes(sine(TONE_HZ, 1.5, amplitude=0.4))
    app.routes["/tone.wav"] = lambda r: (200, "audio/wav", tone)
    app.routes["/voice"] = lambda r: twiml(f"<Play>{app.url('/tone.wav')}</Play><Hangup/>")
    app.routes["/status"] = lambda r: (204, "text/plain", b"")

    domain = client.sip.domains.create(
        domain_name=DOMAIN,
        friendly_name="Acme",
        voice_url=app.url("/voice"),
        voice_status_callback_url=app.url("/status"),
    )
    acl = client.sip.ip_access_control_lists.create(friendly_name="office")
    client.sip.ip_access_control_lists(acl.sid).ip_addresses.create(
        friendly_name="elsewhere", ip_address="192.0.2.10"
    )
    client.sip.domains(domain.sid).auth.calls.ip_access_control_list_mappings.create(
        ip_access_control_list_sid=acl.sid
    )
    assert client.sip.domains(domain.sid).fetch().auth_type == "IP_ACL"

    keys = {"domain": DOMAIN, "sink_port": rtp_sink.port}
    refused = sipp("uac_domain_403.xml", service="reception", keys=keys, calls=1, timeout=15)
    assert refused.ok(1), sipp_failure(refused, server, "an unlisted source was not refused")
    assert app.requests == []
    refusal = [
        e for e in server.events("security.refused") if e.get("reason") == "sip.domain_forbidden"
    ]
    assert refusal and refusal[0]["source_ip"] == "127.0.0.1" and refusal[0]["domain"] == DOMAIN

    client.sip.ip_access_control_lists(acl.sid).ip_addresses.create(
        friendly_name="loopback", ip_address="127.0.0.1", cidr_prefix_length=8
    )
    time.sleep(1.2)  # the node reads a domain's lists at most a second old
    result = sipp("uac_domain_wait_bye.xml", service="reception", keys=keys, calls=1, timeout=30)
    assert result.ok(1), sipp_failure(result, server, "the listed source's call did not run")

    _, token = credentials(server)
    validator = RequestValidator(token)
    [voice] = app.to("/voice")
    assert validator.validate(voice.url, voice.form_dict, voice.headers["X-Twilio-Signature"])
    assert voice.field("To") == f"sip:reception@{DOMAIN}"
    assert voice.field("From") == "sip:sipp@127.0.0.1"
    assert voice.field("Direction") == "inbound" and voice.field("CallStatus") == "ringing"
    assert voice.field("SipDomain") == DOMAIN and voice.field("SipDomainSid") == domain.sid
    assert voice.field("SipSourceIp") == "127.0.0.1" and voice.field("SipCallId")
    assert voice.field("SipHeader_X-Customer") == "4711"
    assert voice.field("AccountSid") == domain.account_sid

    chunks = windows([p for p in rtp_sink.packets() if p.payload_type == PCMU])
    heard = [
        c
        for c in chunks
        if abs(dominant_frequency(c) - TONE_HZ) < 10
        and tone_purity_db(c, TONE_HZ) > 10
        and level_dbfs(c) > -20
    ]
    assert heard, f"no {TONE_HZ:g} Hz tone in {len(chunks)} windows"

    statuses = app.wait_for("/status", 4)
    events = sorted((int(s.field("SequenceNumber")), s.field("CallStatus")) for s in statuses)
    assert events[-1] == (3, "completed")
    call = client.calls(voice.field("CallSid")).fetch()
    assert (call.to, call.direction, call.status) == (
        f"sip:reception@{DOMAIN}",
        "inbound",
        "completed",
    )


PASSWORD = "Domain-Pass-2026"


def test_digest_of_a_mapped_credential_admits_a_call(server, sipp, rtp_sink, app):
    client = rest_client(server)
    app.routes["/voice"] = lambda r: twiml("<Say>Welcome to Acme.</Say><Hangup/>")
    domain = client.sip.domains(
        client.sip.domains.create(domain_name=DOMAIN, voice_url=app.url("/voice")).sid
    )
    phones = client.sip.credential_lists.create(friendly_name="phones")
    phones.credentials.create(username="alice", password=PASSWORD)
    keys = {"domain": DOMAIN, "sink_port": rtp_sink.port}

    # No list admits this source and no credential list is mapped: 403.
    refused = sipp("uac_domain_403.xml", service="reception", keys=keys, calls=1, timeout=15)
    assert refused.ok(1), sipp_failure(refused, server, "an unmapped domain admitted a call")

    domain.auth.calls.credential_list_mappings.create(credential_list_sid=phones.sid)
    time.sleep(1.2)  # the node reads a domain's mappings at most a second old
    wrong = ("-au", "alice", "-ap", "Wrong-Pass-2026")
    denied = sipp(
        "uac_domain_auth_403.xml", service="reception", keys=keys, calls=1, timeout=15, extra=wrong
    )
    assert denied.ok(1), sipp_failure(denied, server, "a wrong password was not refused")
    result = sipp(
        "uac_domain_auth_wait_bye.xml",
        service="reception",
        keys=keys,
        calls=1,
        timeout=30,
        extra=("-au", "alice", "-ap", PASSWORD),
    )
    assert result.ok(1), sipp_failure(result, server, "the digest did not admit the call")
    [voice] = app.to("/voice")
    assert voice.field("SipDomain") == DOMAIN and voice.field("To") == f"sip:reception@{DOMAIN}"
    speech = windows([p for p in rtp_sink.packets() if p.payload_type == PCMU])
    assert speech and max(level_dbfs(c) for c in speech) > -40


def test_phones_register_to_a_domain_with_its_registration_credentials(server, sipp, app):
    client = rest_client(server)
    domain = client.sip.domains(
        client.sip.domains.create(domain_name=DOMAIN, sip_registration=True).sid
    )
    phones = client.sip.credential_lists.create(friendly_name="phones")
    phones.credentials.create(username="alice", password=PASSWORD)
    domain.auth.registrations.credential_list_mappings.create(credential_list_sid=phones.sid)

    login = ("-au", "alice", "-ap", PASSWORD)
    result = sipp("register_domain.xml", service="alice", keys={"domain": DOMAIN}, extra=login)
    assert result.ok(1), sipp_failure(result, server, "the domain's phone did not register")
    assert server.wait_events("sip.registered")
