"""Mid-call SIP, sans-I/O: offers in a dialog, session timers, REFER both ways."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from sip.errors import SipParseError
from sip.invite import EndReason, InviteSession
from sip.message import Request, Response
from sip.midcall import ReferHandle, parse_sipfrag_status
from sip.parser import parse_message
from sip.session_timer import parse_session_expires
from sip.ua import UserAgent
from sip.uac import OutgoingInvite
from tests.sip.test_ua import SDP, Clock, FakeFlow

HOLD_SDP = SDP + b"a=sendonly\r\n"
ANSWER = b"v=0\r\no=- 5 6 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n"


def request(
    method: str,
    *,
    to_tag: str | None = None,
    cseq: int = 1,
    branch: str = "z9hG4bK-1",
    body: bytes = b"",
    content_type: str | None = None,
    extra: str = "",
) -> bytes:
    to = "<sip:echo@127.0.0.1>" + (f";tag={to_tag}" if to_tag else "")
    head = (
        f"{method} sip:echo@127.0.0.1 SIP/2.0\r\n"
        f"Via: SIP/2.0/UDP 10.0.0.1:5062;branch={branch};rport\r\n"
        "Max-Forwards: 70\r\n"
        'From: "Alice" <sip:alice@10.0.0.1>;tag=a1\r\n'
        f"To: {to}\r\n"
        "Call-ID: call-1@10.0.0.1\r\n"
        f"CSeq: {cseq} {method}\r\n"
        "Contact: <sip:alice@10.0.0.1:5062>\r\n"
        f"{extra}"
        + (f"Content-Type: {content_type}\r\n" if content_type else "")
        + f"Content-Length: {len(body)}\r\n\r\n"
    )
    return head.encode() + body


def reply(req: Request, status: int, *, to_tag: str = "b1", extra: str = "", body=b"") -> bytes:
    """A response of the peer to a request we sent."""
    to = req.headers.get("To")
    if ";tag=" not in to:
        to += f";tag={to_tag}"
    head = (
        f"SIP/2.0 {status} Whatever\r\n"
        f"Via: {req.headers.get('Via')}\r\n"
        f"From: {req.headers.get('From')}\r\n"
        f"To: {to}\r\n"
        f"Call-ID: {req.call_id}\r\n"
        f"CSeq: {req.cseq.seq} {req.cseq.method}\r\n"
        "Contact: <sip:bob@10.0.0.1:5062>\r\n"
        f"{extra}"
        + ("Content-Type: application/sdp\r\n" if body else "")
        + f"Content-Length: {len(body)}\r\n\r\n"
    )
    return head.encode() + body


@pytest.fixture
def flow() -> FakeFlow:
    return FakeFlow()


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def ua(flow, clock) -> UserAgent:
    return UserAgent(host="127.0.0.1", port=5060, clock=clock, flow_for=lambda t, h, p: flow)


def answered_call(ua, flow, extra: str = "") -> tuple[InviteSession, str]:
    """An incoming call answered with ANSWER and ACKed; returns it and our tag."""
    sessions: list[InviteSession] = []

    def on_invite(session: InviteSession) -> None:
        sessions.append(session)
        session.answer(ANSWER)

    ua.on_invite = on_invite
    ua.receive(request("INVITE", body=SDP, content_type="application/sdp", extra=extra), flow)
    tag = flow.messages()[-1].to_tag
    ua.receive(request("ACK", to_tag=tag, branch="z9hG4bK-ack"), flow)
    return sessions[0], tag


def sent_requests(flow, method: str) -> list[Request]:
    return [m for m in flow.messages() if isinstance(m, Request) and m.method == method]


def last_response(flow) -> Response:
    return [m for m in flow.messages() if isinstance(m, Response)][-1]


# -- offers in the dialog (RFC 3264 §8, RFC 3311)


def test_reinvite_offer_reaches_on_offer_and_its_answer_goes_out(ua, flow, clock):
    session, tag = answered_call(ua, flow)
    offers = []
    session.on_offer = lambda offer: offers.append(offer) or b"v=0\r\no=- 5 7 IN IP4 x\r\n"
    ua.receive(
        request(
            "INVITE",
            to_tag=tag,
            cseq=2,
            branch="z9hG4bK-re",
            body=HOLD_SDP,
            content_type="application/sdp",
        ),
        flow,
    )
    assert offers == [HOLD_SDP]
    ok = last_response(flow)
    assert ok.status == 200 and ok.cseq.seq == 2 and ok.body == b"v=0\r\no=- 5 7 IN IP4 x\r\n"
    assert ok.headers.get("Content-Type") == "application/sdp"
    assert session.local_sdp == ok.body
    # The ACK stops the 2xx retransmissions of the re-INVITE's transaction.
    ua.receive(request("ACK", to_tag=tag, cseq=2, branch="z9hG4bK-ack2"), flow)
    count = len(flow.sent)
    clock.now = 10.0
    ua.handle_timer(10.0)
    assert len(flow.sent) == count
    assert session._reinvite_txn is None


def test_unacked_reinvite_2xx_is_retransmitted(ua, flow, clock):
    _session, tag = answered_call(ua, flow)
    ua.receive(
        request(
            "INVITE",
            to_tag=tag,
            cseq=2,
            branch="z9hG4bK-re",
            body=SDP,
            content_type="application/sdp",
        ),
        flow,
    )
    count = len(flow.sent)
    clock.now = 0.6
    ua.handle_timer(0.6)
    assert len(flow.sent) == count + 1 and last_response(flow).cseq.seq == 2


def test_update_offer_gets_answer_and_none_gets_488(ua, flow):
    session, tag = answered_call(ua, flow)
    session.on_offer = lambda offer: b"v=0\r\nanswer\r\n" if b"PCMU" not in offer else None
    ua.receive(
        request(
            "UPDATE",
            to_tag=tag,
            cseq=2,
            branch="z9hG4bK-u1",
            body=SDP.replace(b" 0 101", b" 8 101"),
            content_type="application/sdp",
        ),
        flow,
    )
    assert last_response(flow).status == 200 and last_response(flow).body == b"v=0\r\nanswer\r\n"
    ua.receive(
        request(
            "UPDATE",
            to_tag=tag,
            cseq=3,
            branch="z9hG4bK-u2",
            body=SDP + b"a=rtpmap:0 PCMU/8000\r\n",
            content_type="application/sdp",
        ),
        flow,
    )
    assert last_response(flow).status == 488
    assert session.local_sdp == b"v=0\r\nanswer\r\n"  # a refused offer changes nothing


def test_reinvite_refused_by_on_offer_gets_488(ua, flow):
    session, tag = answered_call(ua, flow)
    session.on_offer = lambda offer: None
    ua.receive(
        request(
            "INVITE",
            to_tag=tag,
            cseq=2,
            branch="z9hG4bK-re",
            body=SDP,
            content_type="application/sdp",
        ),
        flow,
    )
    assert last_response(flow).status == 488


def test_default_on_offer_answers_with_our_current_sdp(ua, flow):
    _session, tag = answered_call(ua, flow)
    ua.receive(
        request(
            "UPDATE",
            to_tag=tag,
            cseq=2,
            branch="z9hG4bK-u1",
            body=SDP,
            content_type="application/sdp",
        ),
        flow,
    )
    assert last_response(flow).body == ANSWER


def test_reinvite_without_sdp_offers_ours_and_the_ack_answers(ua, flow):
    session, tag = answered_call(ua, flow)
    answers = []
    session.on_answer = answers.append
    ua.receive(request("INVITE", to_tag=tag, cseq=2, branch="z9hG4bK-re"), flow)
    ok = last_response(flow)
    assert ok.status == 200 and ok.body == ANSWER
    ua.receive(
        request(
            "ACK",
            to_tag=tag,
            cseq=2,
            branch="z9hG4bK-a2",
            body=HOLD_SDP,
            content_type="application/sdp",
        ),
        flow,
    )
    assert answers == [HOLD_SDP]


def test_crossing_reinvites_get_491(ua, flow):
    session, tag = answered_call(ua, flow)
    session.send_reinvite(ANSWER)
    assert sent_requests(flow, "INVITE")[-1].body == ANSWER
    ua.receive(
        request(
            "INVITE",
            to_tag=tag,
            cseq=2,
            branch="z9hG4bK-re",
            body=SDP,
            content_type="application/sdp",
        ),
        flow,
    )
    assert last_response(flow).status == 491


def test_our_reinvite_tells_on_response_its_final_answer_before_on_answer(ua, flow):
    session, _tag = answered_call(ua, flow)
    heard = []
    session.on_answer = lambda body: heard.append(("answer", body))
    session.send_reinvite(ANSWER, on_response=lambda r: heard.append(("response", r.status)))
    assert session.reinvite_busy
    [reinvite] = sent_requests(flow, "INVITE")
    ua.receive(reply(reinvite, 200, body=SDP), flow)
    assert heard == [("response", 200), ("answer", SDP)]
    assert not session.reinvite_busy
    assert sent_requests(flow, "ACK")


def test_a_declined_reinvite_reaches_on_response_and_not_on_answer(ua, flow):
    session, _tag = answered_call(ua, flow)
    heard = []
    session.on_answer = lambda body: heard.append(("answer", body))
    session.send_reinvite(ANSWER, on_response=lambda r: heard.append(("response", r.status)))
    [reinvite] = sent_requests(flow, "INVITE")
    ua.receive(reply(reinvite, 488), flow)
    assert heard == [("response", 488)]


# -- session timers (RFC 4028)


def test_session_expires_below_min_se_gets_422(ua, flow):
    answered = []
    ua.on_invite = answered.append
    ua.receive(
        request(
            "INVITE",
            body=SDP,
            content_type="application/sdp",
            extra="Session-Expires: 60\r\nSupported: timer\r\n",
        ),
        flow,
    )
    assert flow.statuses() == [422] and not answered
    assert flow.messages()[0].headers.get("Min-SE") == "90"


def test_require_timer_is_accepted(ua, flow):
    _session, _tag = answered_call(ua, flow, "Require: timer\r\nSession-Expires: 1800\r\n")
    assert flow.statuses()[-1] == 200


def test_2xx_carries_session_expires_and_require(ua, flow):
    answered_call(ua, flow, "Session-Expires: 120\r\nSupported: timer\r\n")
    ok = last_response(flow)
    assert ok.headers.get("Session-Expires") == "120;refresher=uac"
    assert ok.headers.get("Require") == "timer"
    assert "timer" in ok.headers.get("Supported")
    assert "UPDATE" in ok.headers.get("Allow") and "REFER" in ok.headers.get("Allow")


def test_requested_refresher_is_kept_and_uas_without_timer_support(ua, flow):
    answered_call(ua, flow, "Session-Expires: 300;refresher=uas\r\nSupported: timer\r\n")
    assert last_response(flow).headers.get("Session-Expires") == "300;refresher=uas"


def test_without_supported_timer_we_refresh_and_do_not_require(ua, flow):
    session, _ = answered_call(ua, flow, "Session-Expires: 300\r\n")
    ok = last_response(flow)
    assert ok.headers.get("Session-Expires") == "300;refresher=uas"
    assert ok.headers.get("Require") is None and session.we_refresh


def test_no_session_expires_means_no_timer(ua, flow):
    session, _ = answered_call(ua, flow)
    assert last_response(flow).headers.get("Session-Expires") is None
    assert session.session_interval is None and len(ua.deadlines) == 0


def test_we_refresh_at_half_the_interval_with_a_reinvite(ua, flow, clock):
    _session, tag = answered_call(
        ua, flow, "Session-Expires: 120;refresher=uas\r\nSupported: timer\r\n"
    )
    assert ua.next_deadline() <= 60.0
    clock.now = 59.0
    ua.handle_timer(59.0)
    assert not sent_requests(flow, "INVITE")
    clock.now = 60.0
    ua.handle_timer(60.0)
    [refresh] = sent_requests(flow, "INVITE")
    assert refresh.body == ANSWER and refresh.to_tag == "a1" and refresh.from_tag == tag
    assert refresh.headers.get("Session-Expires") == "120;refresher=uac"
    ua.receive(reply(refresh, 200, extra="Session-Expires: 120;refresher=uac\r\n", body=SDP), flow)
    [ack] = sent_requests(flow, "ACK")
    assert ack.cseq.seq == refresh.cseq.seq and ack.cseq.method == "ACK"
    # The next refresh comes 60 s after this one.
    clock.now = 119.0
    ua.handle_timer(119.0)
    assert len(sent_requests(flow, "INVITE")) == 1
    clock.now = 120.5
    ua.handle_timer(120.5)
    assert len(sent_requests(flow, "INVITE")) == 2


def test_we_refresh_with_update_when_the_peer_allows_it(ua, flow, clock):
    answered_call(
        ua,
        flow,
        "Session-Expires: 90;refresher=uas\r\nAllow: INVITE, ACK, BYE, UPDATE\r\n",
    )
    clock.now = 45.0
    ua.handle_timer(45.0)
    [update] = sent_requests(flow, "UPDATE")
    assert update.body == b"" and update.headers.get("Session-Expires") == "90;refresher=uac"
    ua.receive(reply(update, 200, extra="Session-Expires: 90;refresher=uac\r\n"), flow)
    assert not sent_requests(flow, "BYE")


def test_bye_when_the_peer_does_not_refresh(ua, flow, clock):
    session, _tag = answered_call(ua, flow, "Session-Expires: 120\r\nSupported: timer\r\n")
    ended = []
    session.on_terminated = ended.append
    clock.now = 87.0  # N - min(32, N/3) = 88
    ua.handle_timer(87.0)
    assert not sent_requests(flow, "BYE")
    clock.now = 88.0
    ua.handle_timer(88.0)
    [bye] = sent_requests(flow, "BYE")
    assert bye.to_tag == "a1"
    assert ended == [EndReason.SESSION_EXPIRED] and not ua.sessions


def test_peer_refresh_resets_the_timer(ua, flow, clock):
    _session, tag = answered_call(ua, flow, "Session-Expires: 120\r\nSupported: timer\r\n")
    clock.now = 50.0
    ua.receive(
        request(
            "UPDATE",
            to_tag=tag,
            cseq=2,
            branch="z9hG4bK-u1",
            extra="Session-Expires: 120;refresher=uac\r\nSupported: timer\r\n",
        ),
        flow,
    )
    ok = last_response(flow)
    assert ok.status == 200 and ok.headers.get("Session-Expires") == "120;refresher=uac"
    clock.now = 100.0
    ua.handle_timer(100.0)
    assert not sent_requests(flow, "BYE")
    clock.now = 110.0
    ua.receive(
        request(
            "INVITE",
            to_tag=tag,
            cseq=3,
            branch="z9hG4bK-r2",
            body=SDP,
            content_type="application/sdp",
            extra="Session-Expires: 120;refresher=uac\r\nSupported: timer\r\n",
        ),
        flow,
    )
    ok = last_response(flow)
    assert ok.status == 200 and ok.headers.get("Session-Expires") == "120;refresher=uac"
    assert ok.headers.get("Require") == "timer"
    clock.now = 197.0
    ua.handle_timer(197.0)
    assert not sent_requests(flow, "BYE")
    clock.now = 198.0
    ua.handle_timer(198.0)
    assert len(sent_requests(flow, "BYE")) == 1


def test_refresh_below_min_se_gets_422(ua, flow):
    _session, tag = answered_call(ua, flow, "Session-Expires: 120\r\n")
    ua.receive(
        request("UPDATE", to_tag=tag, cseq=2, branch="z9hG4bK-u1", extra="Session-Expires: 30\r\n"),
        flow,
    )
    assert last_response(flow).status == 422


@pytest.mark.parametrize(
    ("value", "parsed"),
    [
        ("1800", (1800, None)),
        ("90;refresher=UAS", (90, "uas")),
        (" 120 ; refresher=uac", (120, "uac")),
    ],
)
def test_parse_session_expires(value, parsed):
    assert parse_session_expires(value) == parsed


def test_bad_session_expires_gets_400(ua, flow):
    answered = []
    ua.on_invite = answered.append
    ua.receive(
        request(
            "INVITE", body=SDP, content_type="application/sdp", extra="Session-Expires: soon\r\n"
        ),
        flow,
    )
    assert flow.statuses() == [400] and not answered


# -- REFER received (RFC 3515)


def test_refer_gets_202_and_notify_sequence(ua, flow):
    session, tag = answered_call(ua, flow)
    handle = ReferHandle()
    seen = []
    session.on_refer = lambda target, by: seen.append((target, by)) or handle
    ua.receive(
        request(
            "REFER",
            to_tag=tag,
            cseq=7,
            branch="z9hG4bK-ref",
            extra="Refer-To: <sip:carol@10.0.0.9>\r\nReferred-By: <sip:alice@10.0.0.1>\r\n",
        ),
        flow,
    )
    assert seen == [("sip:carol@10.0.0.9", "sip:alice@10.0.0.1")]
    assert last_response(flow).status == 202
    [trying] = sent_requests(flow, "NOTIFY")
    assert trying.headers.get("Event") == "refer;id=7"
    assert trying.headers.get("Subscription-State").startswith("active")
    assert trying.headers.get("Content-Type") == "message/sipfrag;version=2.0"
    assert trying.body == b"SIP/2.0 100 Trying\r\n"
    assert trying.to_tag == "a1" and trying.from_tag == tag
    handle.notify(200, "OK")
    final = sent_requests(flow, "NOTIFY")[-1]
    assert final.body == b"SIP/2.0 200 OK\r\n"
    assert final.headers.get("Subscription-State") == "terminated;reason=noresource"
    assert final.cseq.seq == trying.cseq.seq + 1
    handle.notify(180, "Ringing")  # nothing after the final NOTIFY
    assert len(sent_requests(flow, "NOTIFY")) == 2


def test_refer_declined_by_default_and_without_refer_to(ua, flow):
    _session, tag = answered_call(ua, flow)
    ua.receive(
        request(
            "REFER",
            to_tag=tag,
            cseq=2,
            branch="z9hG4bK-r1",
            extra="Refer-To: <sip:carol@10.0.0.9>\r\n",
        ),
        flow,
    )
    assert last_response(flow).status == 603
    ua.receive(request("REFER", to_tag=tag, cseq=3, branch="z9hG4bK-r2"), flow)
    assert last_response(flow).status == 400
    assert not sent_requests(flow, "NOTIFY")


def test_refer_refused_with_the_status_the_application_gives(ua, flow):
    session, tag = answered_call(ua, flow)
    session.on_refer = lambda target, by: 403
    ua.receive(
        request("REFER", to_tag=tag, cseq=2, branch="z9hG4bK-r3", extra="Refer-To: <sip:c@x>\r\n"),
        flow,
    )
    assert last_response(flow).status == 403
    assert not sent_requests(flow, "NOTIFY")


def test_refer_outside_a_dialog_gets_481(ua, flow):
    ua.receive(request("REFER", to_tag="nope", extra="Refer-To: <sip:c@x>\r\n"), flow)
    assert flow.statuses() == [481]


# -- REFER sent


def test_refer_sent_reports_progress_from_notifies(ua, flow, clock):
    session, tag = answered_call(ua, flow)
    subscription = session.refer("sip:carol@10.0.0.9")
    progress, finals = [], []
    subscription.on_progress = progress.append
    subscription.on_final = finals.append
    [refer] = sent_requests(flow, "REFER")
    assert refer.headers.get("Refer-To") == "<sip:carol@10.0.0.9>"
    ua.receive(reply(refer, 202), flow)
    assert subscription.refer_status == 202 and not subscription.done

    def notify(cseq, body, state):
        return request(
            "NOTIFY",
            to_tag=tag,
            cseq=cseq,
            branch=f"z9hG4bK-n{cseq}",
            body=body,
            content_type="message/sipfrag;version=2.0",
            extra=f"Event: refer;id={refer.cseq.seq}\r\nSubscription-State: {state}\r\n",
        )

    ua.receive(notify(2, b"SIP/2.0 100 Trying\r\n", "active;expires=60"), flow)
    assert last_response(flow).status == 200 and progress == [100]
    ua.receive(notify(3, b"SIP/2.0 180 Ringing\r\n", "active;expires=60"), flow)
    ua.receive(notify(4, b"SIP/2.0 200 OK\r\n", "terminated;reason=noresource"), flow)
    assert last_response(flow).status == 200
    assert progress == [100, 180, 200] and finals == [200] and subscription.final_status == 200
    ua.receive(notify(5, b"SIP/2.0 200 OK\r\n", "terminated"), flow)
    assert last_response(flow).status == 481  # the subscription is over


def test_refer_sent_rejected_or_timed_out(ua, flow, clock):
    session, _ = answered_call(ua, flow)
    rejected = session.refer("sip:carol@10.0.0.9")
    ua.receive(reply(sent_requests(flow, "REFER")[-1], 603), flow)
    assert rejected.final_status == 603 and rejected.refer_status == 603
    silent = session.refer("sip:dave@10.0.0.9")
    ua.receive(reply(sent_requests(flow, "REFER")[-1], 202), flow)
    clock.now = 31.0
    ua.handle_timer(31.0)
    assert silent.final_status == 408


@pytest.mark.parametrize(
    ("body", "status"),
    [
        (b"SIP/2.0 200 OK\r\n", 200),
        (b"SIP/2.0 503 Service Unavailable", 503),
        (b"garbage", None),
        (b"SIP/2.0 99 x", None),
        (b"", None),
    ],
)
def test_parse_sipfrag_status(body, status):
    assert parse_sipfrag_status(body) == status


# -- the UAC session has the same mid-call behaviour


def placed_call(ua, flow, extra: str = "") -> OutgoingInvite:
    call = OutgoingInvite(ua, target="sip:bob@10.0.0.1:5062", flow=flow, from_user="alice", sdp=SDP)
    call.start()
    invite = sent_requests(flow, "INVITE")[0]
    assert invite.headers.get("Supported") == "timer"
    ua.receive(reply(invite, 200, extra=extra, body=ANSWER), flow)
    assert sent_requests(flow, "ACK")
    return call


def in_uac_dialog(call: OutgoingInvite, method: str, cseq: int, *, body=b"", ctype=None, extra=""):
    d = call.dialog
    head = (
        f"{method} sip:alice@127.0.0.1:5060 SIP/2.0\r\n"
        f"Via: SIP/2.0/UDP 10.0.0.1:5062;branch=z9hG4bK-u{cseq};rport\r\n"
        f"From: <sip:bob@10.0.0.1>;tag={d.remote_tag}\r\n"
        f"To: <sip:alice@127.0.0.1>;tag={d.local_tag}\r\n"
        f"Call-ID: {d.call_id}\r\n"
        f"CSeq: {cseq} {method}\r\n"
        "Contact: <sip:bob@10.0.0.1:5062>\r\n"
        f"{extra}"
        + (f"Content-Type: {ctype}\r\n" if ctype else "")
        + f"Content-Length: {len(body)}\r\n\r\n"
    )
    return head.encode() + body


def test_uac_session_gets_offers_dtmf_and_acks(ua, flow, clock):
    call = placed_call(ua, flow)
    offers, digits = [], []
    call.on_offer = lambda offer: offers.append(offer) or b"v=0\r\nours\r\n"
    call.on_dtmf = digits.append
    ua.receive(in_uac_dialog(call, "INVITE", 5, body=HOLD_SDP, ctype="application/sdp"), flow)
    assert offers == [HOLD_SDP] and last_response(flow).body == b"v=0\r\nours\r\n"
    ack = in_uac_dialog(call, "ACK", 5)
    ua.receive(ack, flow)  # must not crash: the UAC session has no server INVITE txn
    assert call._reinvite_txn is None
    ua.receive(
        in_uac_dialog(
            call, "INFO", 6, body=b"Signal=7\r\nDuration=100\r\n", ctype="application/dtmf-relay"
        ),
        flow,
    )
    assert digits == ["7"] and last_response(flow).status == 200


def test_uac_session_timer_from_the_2xx(ua, flow, clock):
    call = placed_call(ua, flow, "Session-Expires: 100;refresher=uac\r\nRequire: timer\r\n")
    assert call.session_interval == 100 and call.we_refresh
    clock.now = 50.0
    ua.handle_timer(50.0)
    refresh = sent_requests(flow, "INVITE")[-1]
    assert refresh.cseq.seq == 2 and refresh.headers.get("Session-Expires") == "100;refresher=uac"


def test_uac_session_expires_when_callee_does_not_refresh(ua, flow, clock):
    call = placed_call(ua, flow, "Session-Expires: 90;refresher=uas\r\n")
    ended = []
    call.on_terminated = ended.append
    clock.now = 60.0  # 90 - 30
    ua.handle_timer(60.0)
    assert sent_requests(flow, "BYE") and ended == [EndReason.SESSION_EXPIRED]


def test_uac_session_receives_refer(ua, flow):
    call = placed_call(ua, flow)
    handle = ReferHandle()
    call.on_refer = lambda target, by: handle
    ua.receive(in_uac_dialog(call, "REFER", 3, extra="Refer-To: sip:carol@10.0.0.9\r\n"), flow)
    assert last_response(flow).status == 202
    assert handle.refer_to == "sip:carol@10.0.0.9" and handle.sent == [100]


# -- the small parsers never fail but the way they say


@given(st.text(max_size=60))
def test_parse_session_expires_fuzz(value):
    try:
        interval, refresher = parse_session_expires(value)
    except SipParseError:
        return
    assert interval >= 0 and refresher in (None, "uac", "uas")


@given(st.binary(max_size=80))
def test_parse_sipfrag_status_fuzz(body):
    status = parse_sipfrag_status(body)
    assert status is None or 100 <= status <= 699


@given(st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=40))
def test_any_session_expires_value_gets_an_answer(value):
    value = value.replace("\r", "").replace("\n", "")
    flow, clock = FakeFlow(), Clock()
    agent = UserAgent(host="127.0.0.1", port=5060, clock=clock, flow_for=lambda t, h, p: flow)
    agent.on_invite = lambda session: session.answer(ANSWER)
    agent.receive(
        request(
            "INVITE",
            body=SDP,
            content_type="application/sdp",
            extra=f"Session-Expires: {value}\r\n",
        ),
        flow,
    )
    assert flow.sent and flow.statuses()[-1] in (200, 400, 422)


def test_ended_calls_leave_no_session_timers_behind(ua, flow, clock):
    """A hung-up call cancels its session timer; the cancelled entry must not wait in
    the UA's heap for the interval the peer asked (up to a day here) while every other
    call adds one: the heap stays near the live timers however many calls ended."""
    ua.on_invite = lambda session: session.answer(ANSWER)
    for n in range(1000):
        clock.now = n * 0.1
        call_id = f"call-{n}@"
        ua.receive(
            request(
                "INVITE", body=SDP, content_type="application/sdp", branch=f"z9hG4bK-i{n}",
                extra="Session-Expires: 86400\r\nSupported: timer\r\n",
            ).replace(b"call-1@", call_id.encode()),
            flow,
        )  # fmt: skip
        tag = parse_message(flow.sent[-1]).to_tag
        flow.sent.clear()  # parsing every message sent so far each time would be quadratic
        for method, branch in (("ACK", f"z9hG4bK-a{n}"), ("BYE", f"z9hG4bK-b{n}")):
            message = request(method, to_tag=tag, cseq=1 if method == "ACK" else 2, branch=branch)
            ua.receive(message.replace(b"call-1@", call_id.encode()), flow)
    assert not ua.sessions
    assert len(ua.deadlines) == 0
    assert len(ua.deadlines._heap) <= ua.deadlines.COMPACT_MIN
