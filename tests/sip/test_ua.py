"""The user agent core, fed bytes through fake flows and a fake clock."""

from __future__ import annotations

import pytest

from sip.invite import EndReason, InviteSession, SessionState
from sip.message import Request, Response
from sip.parser import parse_message
from sip.ua import UserAgent

SDP = (
    b"v=0\r\no=- 1 1 IN IP4 10.0.0.1\r\ns=-\r\nc=IN IP4 10.0.0.1\r\nt=0 0\r\n"
    b"m=audio 6000 RTP/AVP 0 101\r\na=rtpmap:101 telephone-event/8000\r\n"
)


def invite(
    user: str = "echo",
    *,
    branch: str = "z9hG4bK-1",
    body: bytes = SDP,
    content_type: str = "application/sdp",
    extra: str = "",
    cseq: int = 1,
) -> bytes:
    head = (
        f"INVITE sip:{user}@127.0.0.1 SIP/2.0\r\n"
        f"Via: SIP/2.0/UDP 10.0.0.1:5062;branch={branch};rport\r\n"
        "Max-Forwards: 70\r\n"
        'From: "Alice" <sip:alice@10.0.0.1>;tag=a1\r\n'
        f"To: <sip:{user}@127.0.0.1>\r\n"
        "Call-ID: call-1@10.0.0.1\r\n"
        f"CSeq: {cseq} INVITE\r\n"
        "Contact: <sip:alice@10.0.0.1:5062>\r\n"
        f"{extra}"
        f"Content-Type: {content_type}\r\n"
        f"Content-Length: {len(body)}\r\n\r\n"
    )
    return head.encode() + body


def in_dialog(
    method: str,
    to_tag: str,
    *,
    cseq: int = 2,
    branch: str = "z9hG4bK-2",
    body: bytes = b"",
    content_type: str | None = None,
) -> bytes:
    head = (
        f"{method} sip:echo@127.0.0.1 SIP/2.0\r\n"
        f"Via: SIP/2.0/UDP 10.0.0.1:5062;branch={branch};rport\r\n"
        "Max-Forwards: 70\r\n"
        'From: "Alice" <sip:alice@10.0.0.1>;tag=a1\r\n'
        f"To: <sip:echo@127.0.0.1>;tag={to_tag}\r\n"
        "Call-ID: call-1@10.0.0.1\r\n"
        f"CSeq: {cseq} {method}\r\n"
        + (f"Content-Type: {content_type}\r\n" if content_type else "")
        + f"Content-Length: {len(body)}\r\n\r\n"
    )
    return head.encode() + body


class FakeFlow:
    transport = "UDP"
    reliable = False
    is_open = True

    def __init__(self, remote=("10.0.0.1", 5062)) -> None:
        self.remote = remote
        self.local = ("127.0.0.1", 5060)
        self.sent: list[bytes] = []

    def send(self, data: bytes) -> None:
        self.sent.append(data)

    def messages(self) -> list[Request | Response]:
        return [parse_message(data) for data in self.sent]

    def statuses(self) -> list[int]:
        return [m.status for m in self.messages() if isinstance(m, Response)]


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def flow() -> FakeFlow:
    return FakeFlow()


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def ua(flow, clock) -> UserAgent:
    agent = UserAgent(
        host="127.0.0.1", port=5060, clock=clock, flow_for=lambda transport, host, port: flow
    )
    return agent


def answering(ua: UserAgent) -> list[InviteSession]:
    sessions: list[InviteSession] = []

    def on_invite(session: InviteSession) -> None:
        sessions.append(session)
        session.ring()
        session.answer(b"v=0\r\n")

    ua.on_invite = on_invite
    return sessions


def test_invite_gets_100_180_200_and_ack_confirms(ua, flow):
    sessions = answering(ua)
    ua.receive(invite(), flow)
    assert flow.statuses() == [100, 180, 200]
    ok = flow.messages()[-1]
    assert ok.body == b"v=0\r\n" and ok.headers.get("Content-Type") == "application/sdp"
    assert ok.to_tag and ok.to_tag == flow.messages()[1].to_tag
    assert "<sip:127.0.0.1:5060>" in ok.headers.get("Contact")
    # RFC 3581: the response Via says where the request came from
    assert ok.via.params["rport"] == "5062"
    acked = []
    sessions[0].on_acked = lambda: acked.append(True)
    ua.receive(in_dialog("ACK", ok.to_tag, cseq=1, branch="z9hG4bK-ack"), flow)
    assert acked == [True] and sessions[0].state is SessionState.CONFIRMED


def test_retransmitted_invite_is_absorbed(ua, flow):
    sessions = answering(ua)
    ua.receive(invite(), flow)
    ua.receive(invite(), flow)
    assert len(sessions) == 1


def test_remote_bye_ends_the_session(ua, flow):
    sessions = answering(ua)
    ua.receive(invite(), flow)
    tag = flow.messages()[-1].to_tag
    ended = []
    sessions[0].on_terminated = ended.append
    ua.receive(in_dialog("BYE", tag), flow)
    assert flow.statuses()[-1] == 200
    assert ended == [EndReason.REMOTE_BYE] and not ua.sessions


def test_local_hangup_sends_bye_in_the_dialog(ua, flow):
    sessions = answering(ua)
    ua.receive(invite(), flow)
    tag = flow.messages()[-1].to_tag
    sessions[0].hangup()
    bye = flow.messages()[-1]
    assert isinstance(bye, Request) and bye.method == "BYE"
    assert bye.uri == "sip:alice@10.0.0.1:5062"
    assert bye.from_tag == tag and bye.to_tag == "a1" and bye.call_id == "call-1@10.0.0.1"
    assert bye.branch.startswith("z9hG4bK") and bye.cseq.method == "BYE"


def test_cancel_before_answer_gives_487(ua, flow):
    ended = []

    def on_invite(session):
        session.on_terminated = ended.append
        session.ring()

    ua.on_invite = on_invite
    ua.receive(invite(), flow)
    cancel = (
        invite(body=b"").replace(b"INVITE sip", b"CANCEL sip").replace(b"1 INVITE", b"1 CANCEL")
    )
    ua.receive(cancel, flow)
    statuses = flow.statuses()
    assert statuses == [100, 180, 200, 487]
    assert flow.messages()[2].cseq.method == "CANCEL"
    assert ended == [EndReason.CANCELLED]


def test_cancel_for_unknown_invite_gets_481(ua, flow):
    cancel = (
        invite(body=b"").replace(b"INVITE sip", b"CANCEL sip").replace(b"1 INVITE", b"1 CANCEL")
    )
    ua.receive(cancel, flow)
    assert flow.statuses() == [481]


def test_options_lists_what_we_allow(ua, flow):
    options = (
        invite(body=b"").replace(b"INVITE sip", b"OPTIONS sip").replace(b"1 INVITE", b"1 OPTIONS")
    )
    ua.receive(options, flow)
    response = flow.messages()[0]
    assert response.status == 200
    assert "INVITE" in response.headers.get("Allow") and "BYE" in response.headers.get("Allow")


@pytest.mark.parametrize(("method", "status"), [("REGISTER", 405), ("FROBNICATE", 501)])
def test_methods_we_do_not_serve(ua, flow, method, status):
    data = (
        invite(body=b"")
        .replace(b"INVITE sip", f"{method} sip".encode())
        .replace(b"1 INVITE", f"1 {method}".encode())
    )
    ua.receive(data, flow)
    assert flow.statuses() == [status]
    if status == 405:
        assert "INVITE" in flow.messages()[0].headers.get("Allow")


def test_bad_content_type_gets_415(ua, flow):
    answering(ua)
    ua.receive(invite(body=b"hello", content_type="text/plain"), flow)
    assert flow.statuses() == [415]
    assert flow.messages()[0].headers.get("Accept") == "application/sdp"


def test_unknown_extension_gets_420(ua, flow):
    answering(ua)
    ua.receive(invite(extra="Require: frobs\r\n"), flow)
    assert flow.statuses() == [420]
    assert flow.messages()[0].headers.get("Unsupported") == "frobs"


def test_bye_outside_a_dialog_gets_481(ua, flow):
    ua.receive(in_dialog("BYE", "nope"), flow)
    assert flow.statuses() == [481]


def test_out_of_order_cseq_gets_500(ua, flow):
    answering(ua)
    ua.receive(invite(cseq=5), flow)
    tag = flow.messages()[-1].to_tag
    ua.receive(in_dialog("INFO", tag, cseq=3), flow)
    assert flow.statuses()[-1] == 500


def test_info_dtmf_relay_reaches_the_session(ua, flow):
    sessions = answering(ua)
    ua.receive(invite(), flow)
    tag = flow.messages()[-1].to_tag
    digits = []
    sessions[0].on_dtmf = digits.append
    ua.receive(
        in_dialog(
            "INFO", tag, body=b"Signal=5\r\nDuration=160\r\n", content_type="application/dtmf-relay"
        ),
        flow,
    )
    assert digits == ["5"] and flow.statuses()[-1] == 200


def test_reinvite_gets_our_current_sdp(ua, flow):
    answering(ua)
    ua.receive(invite(), flow)
    tag = flow.messages()[-1].to_tag
    ua.receive(in_dialog("INVITE", tag, body=SDP, content_type="application/sdp"), flow)
    last = flow.messages()[-1]
    assert last.status == 200 and last.body == b"v=0\r\n" and last.cseq.seq == 2


def test_malformed_request_gets_400_with_reason(ua, flow):
    data = invite().replace(b"CSeq: 1 INVITE", b"CSeq: one INVITE")
    ua.receive(data, flow)
    [response] = flow.sent  # it echoes the bad CSeq, so it is no valid message itself
    assert response.startswith(b"SIP/2.0 400 Bad CSeq\r\n")
    assert b"Call-ID: call-1@10.0.0.1\r\n" in response and b"received=" not in response
    assert ua.parse_errors == 1


@pytest.mark.parametrize("garbage", [b"", b"\x00\xff" * 40, b"INVITE\r\n\r\n", b"SIP/2.0 200\r\n"])
def test_garbage_is_dropped(ua, flow, garbage):
    ua.receive(garbage, flow)
    assert flow.sent == []


def test_ack_timeout_sends_bye(ua, flow, clock):
    sessions = answering(ua)
    ua.receive(invite(), flow)
    ended = []
    sessions[0].on_terminated = ended.append
    clock.now = 40.0
    ua.handle_timer(40.0)
    methods = [m.method for m in flow.messages() if isinstance(m, Request)]
    assert methods == ["BYE"]
    assert ended == [EndReason.ACK_TIMEOUT]


def test_unanswered_invite_without_app_gets_480(ua, flow):
    ua.receive(invite(), flow)
    assert flow.statuses() == [100, 480]


def test_hangup_all_on_shutdown(ua, flow):
    answering(ua)
    ua.receive(invite(), flow)
    assert ua.hangup_all() == 1
    assert flow.messages()[-1].method == "BYE" and not ua.sessions


def test_late_bye_retransmission_after_timer_j_still_gets_200(ua, flow, clock):
    answering(ua)
    ua.receive(invite(), flow)
    tag = flow.messages()[-1].to_tag
    ua.receive(in_dialog("BYE", tag), flow)
    clock.now = 33.0  # Timer J (32 s) has ended the BYE's transaction
    ua.handle_timer(33.0)
    ua.receive(in_dialog("BYE", tag), flow)
    assert flow.statuses()[-1] == 200
    clock.now = 70.0  # over 64 s after: no such dialog any more
    ua.receive(in_dialog("BYE", tag, branch="z9hG4bK-3", cseq=3), flow)
    assert flow.statuses()[-1] == 481


def test_required_reliable_provisionals_are_refused(ua, flow):
    answering(ua)
    ua.receive(invite(extra="Require: 100rel\r\n"), flow)
    assert flow.statuses() == [420]
    assert flow.messages()[0].headers.get("Unsupported") == "100rel"


def test_ended_dialogs_are_forgotten_once_late_byes_cannot_come(ua, flow, clock):
    """The late-BYE memory is bounded by time, not by how many calls ever ended."""
    answering(ua)
    for n in range(50):
        clock.now = n * 10.0
        call_id = f"call-{n}@".encode()
        ua.receive(invite(branch=f"z9hG4bK-i{n}").replace(b"call-1@", call_id), flow)
        tag = flow.messages()[-1].to_tag
        ua.receive(in_dialog("BYE", tag, branch=f"z9hG4bK-b{n}").replace(b"call-1@", call_id), flow)
        ua.handle_timer(clock.now)
    assert not ua.sessions
    # 2 x 64*T1 = 64 s of memory at one call every 10 s: the last seven at most
    assert len(ua._ended) <= 7


def test_an_idle_ua_forgets_its_ended_dialogs_on_its_own_timer(ua, flow, clock):
    """No later call is needed to empty the late-BYE memory: the UA's deadline covers
    it, so a node idle after a load holds none of the load's calls."""
    answering(ua)
    for n in range(20):
        call_id = f"call-{n}@".encode()
        ua.receive(invite(branch=f"z9hG4bK-i{n}").replace(b"call-1@", call_id), flow)
        tag = flow.messages()[-1].to_tag
        ua.receive(in_dialog("BYE", tag, branch=f"z9hG4bK-b{n}").replace(b"call-1@", call_id), flow)
    assert not ua.sessions and len(ua._ended) == 20
    for _ in range(100):  # what the endpoint does: run the timer at each deadline
        deadline = ua.next_deadline()
        if deadline is None:
            break
        clock.now = deadline
        ua.handle_timer(deadline)
    assert ua.next_deadline() is None
    assert not ua._ended
    assert clock.now <= 2 * 64 * 0.5 + 1


class _App:
    """What an application does: holds the session and hands it its own methods."""

    def __init__(self, session: InviteSession) -> None:
        self.session = session
        session.on_terminated = self.ended
        session.on_dtmf = self.ended
        session.on_offer = lambda offer: self.session.local_sdp

    def ended(self, *args) -> None:
        pass


def test_an_ended_call_is_freed_without_the_cycle_collector(ua, flow):
    """The server collects cycles rarely (callswitch/server.py), so a call's objects
    must go when the last reference does: the session drops the application's callbacks."""
    import gc
    import weakref

    apps = []
    ua.on_invite = lambda session: (apps.append(_App(session)), session.answer(b"v=0\r\n"))
    gc.disable()
    try:
        ua.receive(invite(), flow)
        tag = flow.messages()[-1].to_tag
        ua.receive(in_dialog("BYE", tag), flow)
        app = weakref.ref(apps.pop())
        assert app() is None
    finally:
        gc.enable()
