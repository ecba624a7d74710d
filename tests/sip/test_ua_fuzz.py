"""Whatever bytes a peer sends, the user agent answers or drops them: it never raises."""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sip.invite import InviteSession
from sip.ua import UserAgent
from tests.sip.test_ua import SDP, FakeFlow, in_dialog, invite

SEEDS = [
    invite(),
    invite(extra="Record-Route: <sip:proxy.example.com;lr>\r\n"),
    in_dialog("BYE", "x"),
    in_dialog("INFO", "x", body=b"Signal=1\r\n", content_type="application/dtmf-relay"),
    invite(body=b"").replace(b"INVITE sip", b"CANCEL sip").replace(b"1 INVITE", b"1 CANCEL"),
    invite(body=b"").replace(b"INVITE sip", b"OPTIONS sip").replace(b"1 INVITE", b"1 OPTIONS"),
]


def make_ua(flow: FakeFlow) -> UserAgent:
    ua = UserAgent(
        host="127.0.0.1", port=5060, clock=lambda: 0.0, flow_for=lambda transport, host, port: flow
    )

    def on_invite(session: InviteSession) -> None:
        session.ring()
        session.answer(SDP)
        session.hangup()

    ua.on_invite = on_invite
    return ua


@st.composite
def mutated(draw) -> bytes:
    data = bytearray(draw(st.sampled_from(SEEDS)))
    for _ in range(draw(st.integers(1, 6))):
        action = draw(st.sampled_from(["flip", "insert", "delete", "splice"]))
        position = draw(st.integers(0, max(len(data) - 1, 0)))
        if action == "flip" and data:
            data[position] = draw(st.integers(0, 255))
        elif action == "insert":
            data[position:position] = draw(
                st.sampled_from(
                    [b"\r\n", b":", b";", b"<", b">", b",", b'"', b" ", b"@", b"[", b"\x00", b"%"]
                )
            )
        elif action == "delete" and data:
            del data[position : position + draw(st.integers(1, 8))]
        else:
            data[position:position] = draw(st.binary(max_size=12))
    return bytes(data)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(mutated())
def test_mutated_messages_never_raise(data):
    flow = FakeFlow()
    ua = make_ua(flow)
    ua.receive(data, flow)
    ua.handle_timer(100.0)


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=600))
def test_random_bytes_never_raise(data):
    flow = FakeFlow()
    make_ua(flow).receive(data, flow)
