"""SIP MESSAGE in pager mode (RFC 3428), both sides, fed bytes and time."""

from __future__ import annotations

from sip.auth import Challenge
from sip.message import Request, Response
from sip.pager import OutgoingMessage, serve_messages
from sip.parser import parse_message
from sip.ua import UserAgent
from sip.uac import SipCredentials
from tests.sip.test_ua import Clock, FakeFlow


def _ua(flow, clock):
    return UserAgent(host="127.0.0.1", port=5060, clock=clock, flow_for=lambda t, h, p: flow)


def message(body: bytes = b"hello", content_type: str = "text/plain", user: str = "+15551234567"):
    head = (
        f"MESSAGE sip:{user}@127.0.0.1 SIP/2.0\r\n"
        "Via: SIP/2.0/UDP 10.0.0.1:5062;branch=z9hG4bK-m1;rport\r\n"
        "Max-Forwards: 70\r\n"
        "From: <sip:+15550001111@10.0.0.1>;tag=f1\r\n"
        f"To: <sip:{user}@127.0.0.1>\r\n"
        "Call-ID: msg-1@10.0.0.1\r\n"
        "CSeq: 1 MESSAGE\r\n"
        f"Content-Type: {content_type}\r\n"
        f"Content-Length: {len(body)}\r\n\r\n"
    )
    return head.encode() + body


def test_incoming_message_reaches_the_application_and_gets_its_answer():
    flow, clock = FakeFlow(), Clock()
    ua = _ua(flow, clock)
    received = []
    serve_messages(ua, lambda m, respond: received.append((m, respond)))
    ua.receive(message("héllo".encode()), flow)
    [(incoming, respond)] = received
    assert (incoming.to_user, incoming.from_user, incoming.body) == (
        "+15551234567",
        "+15550001111",
        "héllo",
    )
    assert flow.sent == []  # the application answers when it knows
    respond(200)
    respond(500)  # a second answer is ignored
    assert flow.statuses() == [200]
    ua.receive(message("héllo".encode()), flow)  # a retransmission: same answer, no event
    assert flow.statuses() == [200, 200] and len(received) == 1


def test_non_text_bodies_get_415():
    flow, clock = FakeFlow(), Clock()
    ua = _ua(flow, clock)
    serve_messages(ua, lambda m, respond: respond(200))
    ua.receive(message(b"<x/>", "application/im-iscomposing+xml"), flow)
    assert flow.statuses() == [415]


def test_multipart_bodies_reach_the_application_as_they_came():
    flow, clock = FakeFlow(), Clock()
    ua = _ua(flow, clock)
    received = []
    serve_messages(ua, lambda m, respond: (received.append(m), respond(200)))
    body = b"--b\r\nContent-Type: image/png\r\n\r\n\x89PNG\xff\r\n--b--\r\n"
    ua.receive(message(body, 'multipart/mixed;boundary="b"'), flow)
    assert flow.statuses() == [200]
    [got] = received
    assert got.payload == body and got.body == ""
    assert got.content_type == 'multipart/mixed;boundary="b"'  # the boundary's case kept


def test_a_multipart_body_may_be_larger_than_a_text_one():
    flow, clock = FakeFlow(), Clock()
    ua = _ua(flow, clock)
    serve_messages(ua, lambda m, respond: respond(200))
    ua.receive(message(b"x" * (20 * 1024), "multipart/mixed;boundary=b"), flow)
    assert flow.statuses() == [200]
    flow, clock = FakeFlow(), Clock()
    ua = _ua(flow, clock)
    serve_messages(ua, lambda m, respond: respond(200))
    ua.receive(message(b"y" * (20 * 1024), "text/plain"), flow)
    assert flow.statuses() == [413]


def test_without_a_handler_message_is_405():
    flow, clock = FakeFlow(), Clock()
    ua = _ua(flow, clock)
    ua.receive(message(), flow)
    assert flow.statuses() == [405]


def _answer(ua, flow, request: Request, status: int, headers: str = "") -> None:
    via = request.headers.get("Via")
    response = (
        f"SIP/2.0 {status} X\r\nVia: {via}\r\nFrom: {request.headers.get('From')}\r\n"
        f"To: {request.headers.get('To')};tag=t1\r\nCall-ID: {request.call_id}\r\n"
        f"CSeq: {request.headers.get('CSeq')}\r\n{headers}Content-Length: 0\r\n\r\n"
    )
    ua.receive(response.encode(), flow)


def test_outgoing_message_with_digest_and_result():
    flow, clock = FakeFlow(), Clock()
    ua = _ua(flow, clock)
    results = []
    sent = OutgoingMessage(
        ua,
        target="sip:+15550001111@10.0.0.1:5062",
        flow=flow,
        from_user="+15551234567",
        body="hi €".encode(),
        credentials=SipCredentials("user", "pw"),
    )
    sent.on_result = lambda status, reason: results.append(status)
    sent.start()
    first = parse_message(flow.sent[-1])
    assert first.method == "MESSAGE" and first.body == "hi €".encode()
    assert first.headers.get("Content-Type") == "text/plain;charset=UTF-8"
    _answer(ua, flow, first, 407, 'Proxy-Authenticate: Digest realm="x", nonce="n1"\r\n')
    second = parse_message(flow.sent[-1])
    assert second.cseq.seq == 2 and "Proxy-Authorization" in second.headers
    challenge = Challenge.parse('Digest realm="x", nonce="n1"')
    assert challenge.realm == "x"
    _answer(ua, flow, second, 202)
    assert results == [202]


def test_outgoing_message_times_out_as_408():
    flow, clock = FakeFlow(), Clock()
    ua = _ua(flow, clock)
    results = []
    sent = OutgoingMessage(ua, target="sip:x@10.0.0.1", flow=flow, from_user="me", body=b"x")
    sent.on_result = lambda status, reason: results.append(status)
    sent.start()
    for step in range(80):
        clock.now = step * 0.5
        ua.handle_timer(clock.now)
    assert results == [408]
    assert isinstance(parse_message(flow.sent[0]), Request)
    assert not any(isinstance(parse_message(d), Response) for d in flow.sent)
