"""The RFC 3261 §17 state machines, driven by hand with an injected clock."""

from __future__ import annotations

import pytest

from sip.message import Request, Response, make_response
from sip.parser import parse_message
from sip.transaction import (
    ServerInviteTransaction,
    State,
    TransactionLayer,
    make_cancel,
)

INVITE = (
    b"INVITE sip:echo@127.0.0.1 SIP/2.0\r\n"
    b"Via: SIP/2.0/UDP 10.0.0.1:5062;branch=z9hG4bK-inv-1\r\n"
    b"Max-Forwards: 70\r\n"
    b"From: <sip:alice@10.0.0.1>;tag=a1\r\n"
    b"To: <sip:echo@127.0.0.1>\r\n"
    b"Call-ID: call-1@10.0.0.1\r\n"
    b"CSeq: 1 INVITE\r\n"
    b"Contact: <sip:alice@10.0.0.1:5062>\r\n"
    b"Content-Length: 0\r\n\r\n"
)
OPTIONS = INVITE.replace(b"INVITE sip", b"OPTIONS sip").replace(b"1 INVITE", b"1 OPTIONS")


def request(data: bytes = INVITE) -> Request:
    message = parse_message(data)
    assert isinstance(message, Request)
    return message


class User:
    """A transaction user that records what it is told."""

    def __init__(self) -> None:
        self.responses: list[int] = []
        self.timeouts: list = []

    def transaction_response(self, txn, response: Response) -> None:
        self.responses.append(response.status)

    def transaction_timeout(self, txn) -> None:
        self.timeouts.append(txn)


class Wire:
    def __init__(self) -> None:
        self.sent: list[tuple[object, bytes]] = []

    def __call__(self, dest, data: bytes) -> None:
        self.sent.append((dest, data))

    def statuses(self) -> list[int]:
        return [parse_message(d).status for _, d in self.sent]  # type: ignore[union-attr]

    def methods(self) -> list[str]:
        return [parse_message(d).method for _, d in self.sent]  # type: ignore[union-attr]


@pytest.fixture
def wire() -> Wire:
    return Wire()


@pytest.fixture
def user() -> User:
    return User()


@pytest.fixture
def layer(wire, user) -> TransactionLayer:
    return TransactionLayer(wire, user)


def run_until(layer: TransactionLayer, end: float) -> list[float]:
    """Fire every timer up to ``end``; returns the times they fired at."""
    fired = []
    while (deadline := layer.next_deadline()) is not None and deadline <= end:
        layer.handle_timer(deadline)
        fired.append(deadline)
    return fired


# ------------------------------------------------------------------ server non-INVITE


def test_server_non_invite_absorbs_then_replays_final_response(layer, wire):
    txn, deliver = layer.receive_request(request(OPTIONS), "peer", False, 0.0)
    assert deliver and txn.state is State.TRYING
    assert layer.receive_request(request(OPTIONS), "peer", False, 0.1) == (txn, False)
    assert wire.sent == []  # nothing to replay yet: absorbed
    txn.send_response(make_response(txn.request, 200), 0.2)
    layer.receive_request(request(OPTIONS), "peer", False, 0.3)
    assert wire.statuses() == [200, 200]
    assert txn.state is State.COMPLETED


def test_server_non_invite_timer_j(layer):
    txn, _ = layer.receive_request(request(OPTIONS), "peer", False, 0.0)
    txn.send_response(make_response(txn.request, 200), 1.0)
    assert layer.next_deadline() == pytest.approx(1.0 + 32.0)
    run_until(layer, 100)
    assert txn.state is State.TERMINATED and len(layer) == 0


def test_server_non_invite_reliable_ends_at_once(layer):
    txn, _ = layer.receive_request(request(OPTIONS), "conn", True, 0.0)
    txn.send_response(make_response(txn.request, 200), 0.0)
    assert txn.state is State.TERMINATED and len(layer) == 0


# ------------------------------------------------------------------ server INVITE


def test_server_invite_failure_retransmits_with_timer_g_until_ack(layer, wire):
    txn, _ = layer.receive_request(request(), "peer", False, 0.0)
    assert isinstance(txn, ServerInviteTransaction)
    txn.send_response(make_response(txn.request, 100), 0.0)
    txn.send_response(make_response(txn.request, 486, to_tag="t1"), 0.0)
    fired = run_until(layer, 8.0)
    assert fired == pytest.approx([0.5, 1.5, 3.5, 7.5])  # T1, doubling, capped at T2
    assert wire.statuses() == [100, 486, 486, 486, 486, 486]
    ack = request(INVITE.replace(b"INVITE sip", b"ACK sip").replace(b"1 INVITE", b"1 ACK"))
    assert layer.receive_request(ack, "peer", False, 8.0) == (txn, False)
    assert txn.state is State.CONFIRMED
    assert run_until(layer, 100) == pytest.approx([13.0])  # Timer I = T4
    assert wire.statuses().count(486) == 5 and txn.state is State.TERMINATED


def test_server_invite_timer_h_reports_missing_ack(layer, user, wire):
    txn, _ = layer.receive_request(request(), "peer", False, 0.0)
    txn.send_response(make_response(txn.request, 486, to_tag="t1"), 0.0)
    run_until(layer, 40.0)
    assert user.timeouts == [txn]
    assert txn.state is State.TERMINATED
    assert wire.statuses().count(486) == 1 + 10  # 0.5 1.5 3.5 7.5 11.5 … 31.5


def test_server_invite_replays_provisional_to_retransmitted_invite(layer, wire):
    txn, _ = layer.receive_request(request(), "peer", False, 0.0)
    txn.send_response(make_response(txn.request, 180, to_tag="t1"), 0.0)
    assert layer.receive_request(request(), "peer", False, 0.5) == (txn, False)
    assert wire.statuses() == [180, 180]


def test_server_invite_2xx_retransmitted_until_ack_then_timer_l(layer, wire, user):
    txn, _ = layer.receive_request(request(), "peer", True, 0.0)  # even over TCP
    txn.send_response(make_response(txn.request, 200, to_tag="t1"), 0.0)
    assert txn.state is State.ACCEPTED
    run_until(layer, 2.0)
    assert wire.statuses() == [200, 200, 200]  # at 0.5 and 1.5
    txn.ack_received(2.0)
    assert run_until(layer, 100) == pytest.approx([32.0])
    assert wire.statuses().count(200) == 3 and user.timeouts == []
    assert txn.state is State.TERMINATED


def test_server_invite_2xx_without_ack_times_out(layer, user):
    txn, _ = layer.receive_request(request(), "peer", False, 0.0)
    txn.send_response(make_response(txn.request, 200, to_tag="t1"), 0.0)
    run_until(layer, 100)
    assert user.timeouts == [txn]


def test_ack_for_2xx_has_no_transaction(layer):
    ack = request(
        INVITE.replace(b"INVITE sip", b"ACK sip")
        .replace(b"1 INVITE", b"1 ACK")
        .replace(b"branch=z9hG4bK-inv-1", b"branch=z9hG4bK-ack-1")
    )
    assert layer.receive_request(ack, "peer", False, 0.0) == (None, True)


def test_cancel_finds_its_invite(layer):
    txn, _ = layer.receive_request(request(), "peer", False, 0.0)
    cancel = make_cancel(txn.request)
    assert cancel.branch == txn.request.branch and cancel.cseq.method == "CANCEL"
    cancel_txn, deliver = layer.receive_request(cancel, "peer", False, 0.1)
    assert deliver and cancel_txn is not txn
    assert layer.find_invite(cancel) is txn


def test_sending_after_final_is_refused(layer):
    txn, _ = layer.receive_request(request(), "peer", False, 0.0)
    txn.send_response(make_response(txn.request, 486, to_tag="t"), 0.0)
    with pytest.raises(RuntimeError):
        txn.send_response(make_response(txn.request, 200, to_tag="t"), 0.0)


# ------------------------------------------------------------------ client


def outgoing(data: bytes) -> Request:
    return request(
        data.replace(b"10.0.0.1:5062;branch=z9hG4bK-inv-1", b"127.0.0.1:5060;branch=z9hG4bK-ours-1")
    )


def response_to(req: Request, status: int, tag: str | None = "r1") -> Response:
    return make_response(req, status, to_tag=tag)


def test_client_non_invite_timer_e_then_f(layer, wire, user):
    txn = layer.start_client(outgoing(OPTIONS), "peer", False, 0.0)
    fired = run_until(layer, 40.0)
    assert fired[:6] == pytest.approx([0.5, 1.5, 3.5, 7.5, 11.5, 15.5])
    assert fired[-1] == pytest.approx(32.0)
    assert user.timeouts == [txn] and txn.state is State.TERMINATED
    assert set(wire.methods()) == {"OPTIONS"}


def test_client_non_invite_response_once_then_timer_k(layer, user):
    req = outgoing(OPTIONS)
    txn = layer.start_client(req, "peer", False, 0.0)
    assert layer.receive_response(response_to(req, 200), 0.1)
    assert layer.receive_response(response_to(req, 200), 0.2)  # retransmission: absorbed
    assert user.responses == [200] and txn.state is State.COMPLETED
    assert run_until(layer, 10) == pytest.approx([5.1])  # Timer K = T4
    assert not layer.receive_response(response_to(req, 200), 6.0)


def test_client_non_invite_proceeding_retransmits_at_t2(layer):
    req = outgoing(OPTIONS)
    layer.start_client(req, "peer", False, 0.0)
    layer.receive_response(response_to(req, 100, None), 0.1)
    assert run_until(layer, 9.0) == pytest.approx([0.5, 4.5, 8.5])


def test_client_invite_failure_sends_ack_and_absorbs_retransmissions(layer, wire, user):
    req = outgoing(INVITE)
    txn = layer.start_client(req, "peer", False, 0.0)
    layer.receive_response(response_to(req, 180), 0.1)
    assert run_until(layer, 5.0) == []  # a 1xx stops Timers A and B
    layer.receive_response(response_to(req, 486), 5.0)
    layer.receive_response(response_to(req, 486), 5.5)
    assert user.responses == [180, 486]
    assert wire.methods() == ["INVITE", "ACK", "ACK"]
    ack = parse_message(wire.sent[1][1])
    assert ack.branch == req.branch and ack.to_tag == "r1" and ack.cseq.seq == req.cseq.seq
    assert run_until(layer, 100) == pytest.approx([37.0])  # Timer D
    assert txn.state is State.TERMINATED


def test_client_invite_timer_a_and_b(layer, wire, user):
    txn = layer.start_client(outgoing(INVITE), "peer", False, 0.0)
    run_until(layer, 40.0)
    assert wire.methods().count("INVITE") == 7  # 0, 0.5, 1.5, 3.5, 7.5, 15.5, 31.5
    assert user.timeouts == [txn]


def test_client_invite_2xx_retransmissions_reach_the_tu(layer, user):
    req = outgoing(INVITE)
    txn = layer.start_client(req, "peer", True, 0.0)
    layer.receive_response(response_to(req, 200), 0.1)
    layer.receive_response(response_to(req, 200), 0.6)
    assert user.responses == [200, 200] and txn.state is State.ACCEPTED
    run_until(layer, 100)  # Timer M
    assert txn.state is State.TERMINATED


def test_client_transport_error_is_a_timeout(layer, user):
    txn = layer.start_client(outgoing(OPTIONS), "peer", True, 0.0)
    txn.transport_error()
    assert user.timeouts == [txn] and len(layer) == 0


def test_awaiting_responses_counts_only_unanswered_client_transactions(layer):
    req = outgoing(OPTIONS)
    layer.start_client(req, "peer", False, 0.0)
    assert layer.awaiting_responses() == 1
    layer.receive_response(response_to(req, 200), 0.1)
    assert layer.awaiting_responses() == 0 and len(layer) == 1  # Timer K still runs
