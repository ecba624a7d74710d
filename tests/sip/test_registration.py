"""The registration client (sip/registration.py): an injected clock, no sockets."""

from __future__ import annotations

from hypothesis import example, given
from hypothesis import strategies as st

from sip.auth import Credentials, digest_response
from sip.message import Request, Response, make_response
from sip.parser import parse_message
from sip.registration import (
    KEEPALIVE_PING,
    CloseFlow,
    NewFlow,
    Registration,
    RegistrationSettings,
    RegistrationState,
    SendPing,
    SendRegister,
    granted_expires,
)

CONTACT = "sip:acct@192.0.2.10:5060"
TCP_CONTACT = "sip:acct@192.0.2.10:5060;transport=tcp"
SETTINGS = RegistrationSettings(
    registrar="sip:carrier.example",
    aor="sip:acct@carrier.example",
    call_id="reg-1@test",
    tag="t1",
    username="acct",
    password="s3cret",
    expires=600,
    instance="urn:uuid:00000000-0000-4000-8000-000000000001",
    backoff_base=5.0,
    backoff_max=300.0,
    keepalive=30.0,
    pong_timeout=10.0,
)


def started(settings: RegistrationSettings = SETTINGS, contact: str = CONTACT, reliable=False):
    reg = Registration(settings)
    assert reg.start(0.0) == [NewFlow()]
    out = reg.flow_ready(0.0, contact, reliable=reliable)
    return reg, _register(out)


def _register(out) -> Request:
    sends = [o for o in out if isinstance(o, SendRegister)]
    assert len(sends) == 1, out
    request = sends[0].request
    request.headers.prepend("Via", "SIP/2.0/UDP 192.0.2.10:5060;branch=z9hG4bK-test;rport")
    # What goes on the wire parses back as what was built.
    parsed = parse_message(request.serialize())
    assert isinstance(parsed, Request)
    return parsed


def answer(request: Request, status: int, headers=()) -> Response:
    return make_response(request, status, to_tag="reg", headers=list(headers))


def ok(request: Request, expires: int | None = None, headers=()) -> Response:
    contact = request.headers.get("Contact")
    if expires is not None:
        contact = f"{contact.split(';+sip')[0]};expires={expires}"
    return answer(request, 200, [("Contact", contact), *headers])


CHALLENGE = ("WWW-Authenticate", 'Digest realm="carrier", nonce="abc123", qop="auth"')


def test_first_register_carries_the_binding():
    _, request = started()
    assert request.method == "REGISTER"
    assert request.uri == "sip:carrier.example"
    assert request.headers.get("To") == "<sip:acct@carrier.example>"
    assert request.headers.get("From") == "<sip:acct@carrier.example>;tag=t1"
    assert request.headers.get("Expires") == "600"
    contact = request.headers.get("Contact")
    assert contact.startswith(f"<{CONTACT}>;+sip.instance=")
    assert "reg-id" not in contact  # RFC 5626 reg-id only on a reliable flow
    assert request.headers.get("Authorization") is None


def test_digest_answer_is_right_and_registered_refreshes_before_expiry():
    reg, request = started()
    out = reg.on_response(0.1, answer(request, 401, [CHALLENGE]))
    second = _register(out)
    assert second.cseq.seq == request.cseq.seq + 1
    assert second.call_id == request.call_id
    creds = Credentials.parse(second.headers.get("Authorization"))
    assert creds.username == "acct" and creds.realm == "carrier" and creds.uri == request.uri
    expected = digest_response(
        algorithm="MD5",
        username="acct",
        realm="carrier",
        password="s3cret",
        method="REGISTER",
        uri=request.uri,
        nonce="abc123",
        qop="auth",
        nc=creds.nc,
        cnonce=creds.cnonce,
    )
    assert creds.response == expected
    assert reg.on_response(0.2, ok(second, expires=120)) == []
    assert reg.state is RegistrationState.REGISTERED
    status = reg.status(0.2)
    assert status.last_status == 200 and round(status.expires_in) == 120
    # The registrar granted 120 s: the refresh goes out before they are over.
    deadline = reg.next_deadline()
    assert deadline is not None and 0.2 < deadline < 120.2
    assert reg.on_timer(deadline - 0.01) == []
    refresh = _register(reg.on_timer(deadline))
    assert refresh.cseq.seq == second.cseq.seq + 1
    assert refresh.call_id == request.call_id


def test_a_second_challenge_after_our_answer_is_a_wrong_login():
    reg, request = started()
    second = _register(reg.on_response(0.1, answer(request, 401, [CHALLENGE])))
    third = _register(reg.on_response(0.2, answer(second, 401, [CHALLENGE])))
    assert reg.on_response(0.3, answer(third, 401, [CHALLENGE])) == []
    assert reg.state is RegistrationState.FAILED
    assert reg.status(0.3).last_status == 401
    assert reg.retry_at is not None


def test_407_is_answered_with_proxy_authorization():
    reg, request = started()
    challenge = ("Proxy-Authenticate", 'Digest realm="proxy", nonce="n1"')
    second = _register(reg.on_response(0.1, answer(request, 407, [challenge])))
    assert second.headers.get("Proxy-Authorization", "").startswith("Digest ")


def test_expires_header_counts_when_the_contact_has_none():
    reg, request = started()
    response = answer(request, 200, [("Contact", f"<{CONTACT}>"), ("Expires", "300")])
    reg.on_response(1.0, response)
    assert round(reg.status(1.0).expires_in) == 300


def test_423_asks_again_with_min_expires():
    reg, request = started()
    out = reg.on_response(0.1, answer(request, 423, [("Min-Expires", "1800")]))
    again = _register(out)
    assert again.headers.get("Expires") == "1800"
    reg.on_response(0.2, ok(again, expires=1800))
    assert reg.state is RegistrationState.REGISTERED


def test_423_without_a_larger_min_expires_fails():
    reg, request = started()
    assert reg.on_response(0.1, answer(request, 423, [("Min-Expires", "60")])) == []
    assert reg.state is RegistrationState.FAILED


def test_503_backs_off_for_retry_after_then_exponentially():
    reg, request = started()
    assert reg.on_response(1.0, answer(request, 503, [("Retry-After", "42")])) == []
    assert reg.state is RegistrationState.BACKING_OFF
    assert reg.next_deadline() == 43.0
    assert reg.on_timer(42.9) == []
    assert reg.on_timer(43.0) == [NewFlow()]
    second = _register(reg.flow_ready(43.0, CONTACT, reliable=False))
    reg.on_response(43.5, answer(second, 500))
    assert reg.retry_at == 43.5 + 10.0  # the second failure: twice the base (jitter 1)
    reg.on_timer(53.5)
    third = _register(reg.flow_ready(53.5, CONTACT, reliable=False))
    reg.on_timeout(85.5, third.cseq.seq)
    assert reg.state is RegistrationState.BACKING_OFF
    assert reg.status(85.5).last_status == 408
    assert reg.retry_at == 85.5 + 20.0  # doubled again


def test_back_off_is_capped_and_jittered():
    reg = Registration(SETTINGS, jitter=lambda: 0.0)
    reg.start(0.0)
    now = 0.0
    for _ in range(12):
        request = _register(reg.flow_ready(now, CONTACT, reliable=False))
        reg.on_response(now, answer(request, 500))
        assert reg.retry_at is not None
        delay = reg.retry_at - now
        now = reg.retry_at
        assert reg.on_timer(now) == [NewFlow()]
    assert delay == SETTINGS.backoff_max * 0.5  # the cap, at the low end of the jitter


def test_success_resets_the_back_off():
    reg, request = started()
    reg.on_response(0.0, answer(request, 500))
    reg.on_timer(reg.retry_at)
    again = _register(reg.flow_ready(5.0, CONTACT, reliable=False))
    reg.on_response(5.1, ok(again, expires=600))
    assert reg.status(5.1).failures == 0


def test_a_stale_response_is_ignored():
    reg, request = started()
    second = _register(reg.on_response(0.1, answer(request, 401, [CHALLENGE])))
    assert reg.on_response(0.2, answer(request, 200)) == []  # the first CSeq's, late
    assert reg.state is RegistrationState.REGISTERING
    reg.on_response(0.3, ok(second))
    assert reg.state is RegistrationState.REGISTERED


def test_our_contact_is_found_among_others_and_a_rewritten_one_is_taken():
    reg, request = started()
    contacts = "<sip:other@198.51.100.1>;expires=900, <sip:acct@192.0.2.10>;expires=200"
    reg.on_response(0.0, answer(request, 200, [("Contact", contacts)]))
    assert round(reg.status(0.0).expires_in) == 200  # ours, its default port omitted
    reg2, request2 = started()
    rewritten = [("Contact", "<sip:acct@203.0.113.5:40000>;expires=250")]
    reg2.on_response(0.0, answer(request2, 200, rewritten))
    assert round(reg2.status(0.0).expires_in) == 250


def test_a_2xx_with_our_contact_at_zero_is_no_binding():
    reg, request = started()
    reg.on_response(0.1, ok(request, expires=0))
    assert reg.state is RegistrationState.BACKING_OFF


def test_flow_loss_registers_again_on_a_new_flow():
    reg, request = started(contact=TCP_CONTACT, reliable=True)
    reg.on_response(0.1, ok(request, expires=600))
    assert reg.flow_closed(100.0) == [NewFlow()]
    assert reg.state is RegistrationState.REGISTERING
    again = _register(
        reg.flow_ready(100.1, "sip:acct@192.0.2.99:5060;transport=tcp", reliable=True)
    )
    assert "192.0.2.99" in again.headers.get("Contact")
    reg.on_response(100.2, ok(again))
    # A flow that is lost again at once is not reopened in a tight loop.
    assert reg.flow_closed(101.0) == []
    assert reg.state is RegistrationState.BACKING_OFF


def test_a_flow_that_fails_while_registering_backs_off():
    reg, _ = started(contact=TCP_CONTACT, reliable=True)
    assert reg.flow_closed(0.5) == []  # e.g. the connection was refused
    assert reg.state is RegistrationState.BACKING_OFF
    assert reg.retry_at == 5.5


def test_no_flow_backs_off():
    reg = Registration(SETTINGS)
    reg.start(0.0)
    assert reg.no_flow(0.0, "cannot resolve carrier.example") == []
    assert reg.state is RegistrationState.BACKING_OFF
    assert reg.status(0.0).last_reason == "cannot resolve carrier.example"


def test_outbound_over_tcp_pings_and_a_missing_pong_means_a_new_flow():
    reg, request = started(contact=TCP_CONTACT, reliable=True)
    contact = request.headers.get("Contact")
    assert contact.endswith(";reg-id=1")
    assert request.headers.get("Supported") == "outbound, path"
    reg.on_response(0.0, ok(request, expires=600, headers=[("Flow-Timer", "20")]))
    assert reg.ping_at == 20.0  # the registrar's Flow-Timer, not our 30 s
    assert reg.on_timer(20.0) == [SendPing()]
    assert SendPing().data == KEEPALIVE_PING
    reg.pong(20.1)
    assert reg.ping_at == 40.1
    assert reg.on_timer(40.1) == [SendPing()]
    assert reg.on_timer(50.0) == []
    # It answered before: the flow is gone; close it and register on a new one.
    assert reg.on_timer(50.1) == [CloseFlow(), NewFlow()]
    assert reg.state is RegistrationState.REGISTERING


def test_a_peer_that_never_pongs_is_not_torn_down():
    reg, request = started(contact=TCP_CONTACT, reliable=True)
    reg.on_response(0.0, ok(request, expires=600))
    assert reg.on_timer(30.0) == [SendPing()]
    assert reg.on_timer(40.0) == []
    assert reg.state is RegistrationState.REGISTERED
    assert reg.ping_at is None and reg.pong_due is None


def test_require_outbound_makes_a_missing_first_pong_a_failure():
    reg, request = started(contact=TCP_CONTACT, reliable=True)
    reg.on_response(0.0, ok(request, expires=600, headers=[("Require", "outbound")]))
    reg.on_timer(30.0)
    assert reg.on_timer(40.0) == [CloseFlow(), NewFlow()]


def test_udp_sends_no_pings():
    reg, request = started()
    reg.on_response(0.0, ok(request, expires=600))
    assert reg.ping_at is None


def test_stop_unregisters_with_expires_zero():
    reg, request = started()
    reg.on_response(0.0, ok(request, expires=600))
    out = reg.stop(10.0)
    bye = _register(out)
    assert bye.headers.get("Expires") == "0"
    assert reg.state is RegistrationState.UNREGISTERING
    second = _register(reg.on_response(10.1, answer(bye, 401, [CHALLENGE])))
    assert second.headers.get("Expires") == "0"
    assert second.headers.get("Authorization")
    reg.on_response(10.2, answer(second, 200))
    assert reg.state is RegistrationState.STOPPED
    assert reg.next_deadline() is None


def test_stop_without_a_binding_sends_nothing():
    reg, request = started()
    reg.on_response(0.0, answer(request, 403))
    assert reg.stop(1.0) == []
    assert reg.state is RegistrationState.STOPPED


def test_outbound_proxy_is_a_loose_route_and_the_request_uri_stays():
    settings = RegistrationSettings(**{**_fields(SETTINGS), "route": "sip:192.0.2.50:5070"})
    _, request = started(settings)
    assert request.uri == "sip:carrier.example"
    assert request.headers.get("Route") == "<sip:192.0.2.50:5070;lr>"


def _fields(settings):
    return {name: getattr(settings, name) for name in settings.__dataclass_fields__}


@example(contact="", expires="\u00b9", asked=1)  # a digit to isdigit(), not to int()
@given(
    contact=st.text(max_size=80),
    expires=st.one_of(st.none(), st.text(max_size=12)),
    asked=st.integers(min_value=1, max_value=10**6),
)
def test_granted_expires_never_raises(contact, expires, asked):
    request = _register(Registration(SETTINGS).flow_ready(0.0, CONTACT, reliable=False))
    headers = [("Contact", contact)]
    if expires is not None:
        headers.append(("Expires", expires))
    try:
        response = answer(request, 200, headers)
        response = parse_message(response.serialize())
    except Exception:
        return  # not a message at all: nothing reaches the client
    value = granted_expires(response, CONTACT, asked)
    assert 0 <= value <= 2**31 - 1


@given(st.binary(max_size=300))
def test_any_response_is_handled(extra):
    reg, request = started()
    head = answer(request, 200).serialize().split(b"\r\n\r\n")[0]
    try:
        response = parse_message(head + b"\r\n" + extra + b"\r\n\r\n")
    except Exception:
        return
    if not isinstance(response, Response):
        return
    reg.on_response(0.1, response)
    assert reg.state in set(RegistrationState)
