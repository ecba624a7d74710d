"""The UAC INVITE session (sip/uac.py), driven without sockets."""

from __future__ import annotations

import pytest

from sip.auth import Authenticator, Credentials, Verdict
from sip.invite import EndReason
from sip.message import Request, Response
from sip.parser import parse_message
from sip.ua import UserAgent
from sip.uac import OutgoingInvite, OutgoingState, SipCredentials

from .test_ua import Clock, FakeFlow


@pytest.fixture
def flow() -> FakeFlow:
    return FakeFlow()


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def ua(flow, clock) -> UserAgent:
    return UserAgent(host="127.0.0.1", port=5060, clock=clock, flow_for=lambda *args: flow)


SDP = (
    b"v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n"
    b"m=audio 4000 RTP/AVP 0\r\n"
)


def requests(flow) -> list[Request]:
    return [m for m in flow.messages() if isinstance(m, Request)]


def respond(
    ua, flow, request: Request, status: int, *, to_tag="callee", body=b"", extra=()
) -> None:
    lines = [
        f"SIP/2.0 {status} Whatever",
        *[f"Via: {v}" for v in request.headers.get_all("Via")],
        f"From: {request.headers.get('From')}",
        f"To: {request.headers.get('To')}" + (f";tag={to_tag}" if to_tag else ""),
        f"Call-ID: {request.call_id}",
        f"CSeq: {request.headers.get('CSeq')}",
        "Contact: <sip:bob@10.0.0.1:5062>",
        *extra,
    ]
    if body:
        lines.append("Content-Type: application/sdp")
    lines.append(f"Content-Length: {len(body)}")
    ua.receive(("\r\n".join(lines) + "\r\n\r\n").encode() + body, flow)


def place(ua, flow, credentials=None) -> tuple[OutgoingInvite, dict]:
    events: dict = {"progress": [], "answered": [], "failed": [], "ended": []}
    call = OutgoingInvite(
        ua,
        target="sip:+15550001111@10.0.0.1:5062",
        flow=flow,
        from_user="+15005550006",
        sdp=SDP,
        credentials=credentials,
    )
    call.on_progress = lambda status, sdp: events["progress"].append(status)
    call.on_answered = lambda sdp: events["answered"].append(sdp)
    call.on_failed = lambda status, reason: events["failed"].append(status)
    call.on_terminated = lambda reason: events["ended"].append(reason)
    call.start()
    return call, events


def test_ringing_answer_ack_and_our_bye(ua, flow):
    call, events = place(ua, flow)
    [invite] = requests(flow)
    assert invite.method == "INVITE" and invite.body == SDP
    assert invite.headers.get("From").startswith("<sip:+15005550006@127.0.0.1:5060>;tag=")
    respond(ua, flow, invite, 180)
    respond(ua, flow, invite, 200, body=SDP)
    assert events["progress"] == [180] and events["answered"] == [SDP]
    ack = requests(flow)[-1]
    assert ack.method == "ACK" and ack.uri == "sip:bob@10.0.0.1:5062"
    assert ack.cseq.seq == invite.cseq.seq
    respond(ua, flow, invite, 200, body=SDP)  # a retransmitted 2xx is ACKed again
    assert [r.method for r in requests(flow)].count("ACK") == 2
    call.hangup()
    assert requests(flow)[-1].method == "BYE" and call.state is OutgoingState.TERMINATED
    assert events["ended"] == [EndReason.LOCAL_BYE]


def test_digest_challenge_is_answered_once(ua, flow, clock):
    server = Authenticator("carrier", b"s" * 32, clock=clock)
    _, events = place(ua, flow, SipCredentials("trunk", "secret"))
    [invite] = requests(flow)
    challenge = server.challenge(algorithm="SHA-256")
    respond(ua, flow, invite, 407, extra=[f"Proxy-Authenticate: {challenge}"])
    retry = requests(flow)[-1]
    assert retry.method == "INVITE" and retry.cseq.seq == invite.cseq.seq + 1
    assert retry.call_id == invite.call_id and retry.branch != invite.branch
    credentials = Credentials.parse(retry.headers.get("Proxy-Authorization"))
    assert credentials.algorithm == "SHA-256"
    verdict = server.verify(credentials, method="INVITE", password="secret")
    assert verdict is Verdict.OK
    # A second challenge means the password is wrong: give up.
    respond(ua, flow, retry, 407, extra=[f"Proxy-Authenticate: {server.challenge()}"])
    respond(ua, flow, requests(flow)[-1], 407, extra=[f"Proxy-Authenticate: {server.challenge()}"])
    assert events["failed"] == [407] and events["answered"] == []


def test_busy_is_a_failure_and_gets_acked(ua, flow):
    call, events = place(ua, flow)
    [invite] = requests(flow)
    respond(ua, flow, invite, 486)
    assert events["failed"] == [486] and call.final_status == 486
    assert requests(flow)[-1].method == "ACK"


def test_cancel_waits_for_a_provisional(ua, flow):
    call, events = place(ua, flow)
    [invite] = requests(flow)
    call.cancel()
    assert [r.method for r in requests(flow)] == ["INVITE"]  # RFC 3261 §9.1
    respond(ua, flow, invite, 180)
    cancel = requests(flow)[-1]
    assert cancel.method == "CANCEL" and cancel.branch == invite.branch
    respond(ua, flow, invite, 487)
    assert events["failed"] == [487] and call.end_reason is EndReason.CANCELLED


def test_a_2xx_crossing_our_cancel_is_hung_up(ua, flow):
    call, events = place(ua, flow)
    [invite] = requests(flow)
    respond(ua, flow, invite, 180)
    call.cancel()
    respond(ua, flow, invite, 200, body=SDP)
    methods = [r.method for r in requests(flow)]
    assert methods[-2:] == ["ACK", "BYE"] and events["answered"] == []


def test_a_second_fork_is_acked_and_released(ua, flow):
    call, events = place(ua, flow)
    [invite] = requests(flow)
    respond(ua, flow, invite, 200, to_tag="fork1", body=SDP)
    respond(ua, flow, invite, 200, to_tag="fork2", body=SDP)
    bye = requests(flow)[-1]
    assert bye.method == "BYE" and bye.to_tag == "fork2"
    assert len(events["answered"]) == 1 and call.dialog.remote_tag == "fork1"


def test_no_answer_at_all_times_out_as_408(ua, flow, clock):
    _, events = place(ua, flow)
    for _ in range(100):
        clock.now += 1.0
        ua.handle_timer(clock.now)
    assert events["failed"] == [408]


def test_the_callee_hangs_up(ua, flow):
    _, events = place(ua, flow)
    [invite] = requests(flow)
    respond(ua, flow, invite, 200, body=SDP)
    bye = parse_message(
        (
            "BYE sip:127.0.0.1:5060 SIP/2.0\r\n"
            "Via: SIP/2.0/UDP 10.0.0.1:5062;branch=z9hG4bK-bye\r\n"
            f"From: <sip:bob@10.0.0.1>;tag=callee\r\n"
            f"To: {invite.headers.get('From')}\r\n"
            f"Call-ID: {invite.call_id}\r\n"
            "CSeq: 5 BYE\r\nContent-Length: 0\r\n\r\n"
        ).encode()
    )
    ua.receive(bye.serialize(), flow)
    assert isinstance(flow.messages()[-1], Response) and flow.messages()[-1].status == 200
    assert events["ended"] == [EndReason.REMOTE_BYE]


class _Dialer:
    """An application object that holds its call and hands it its own methods."""

    def __init__(self, call: OutgoingInvite) -> None:
        self.call = call
        call.on_answered = self.event
        call.on_failed = self.event
        call.on_terminated = self.event

    def event(self, *args) -> None:
        pass


@pytest.mark.parametrize("ending", ["bye", "busy"])
def test_an_ended_call_is_freed_without_the_cycle_collector(ua, flow, ending):
    """Ended (hung up or refused), the call drops the application's callbacks, so
    neither it nor what holds it waits for a full collection (callswitch/server.py)."""
    import gc
    import weakref

    gc.disable()
    try:
        call, _ = place(ua, flow)
        dialer = _Dialer(call)
        [invite] = requests(flow)
        if ending == "bye":
            respond(ua, flow, invite, 200, body=SDP)
            call.hangup()
        else:
            respond(ua, flow, invite, 486)
        gone = weakref.ref(dialer)
        del call, dialer
        assert gone() is None
    finally:
        gc.enable()
