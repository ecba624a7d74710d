"""RTP reflection and dead calls, as an outsider meets them over loopback.

* A forged, never-ACKed INVITE to ``sip:tone`` whose SDP names a victim makes the
  node send the victim nothing (it used to stream ~690x the INVITE's size until
  Timer H); a real caller that ACKs still hears the tone.
* The never-ACKed INVITE's RTP ports come back once Timer H gives up on it.
* An answered call whose peer sends no RTP or RTCP is hung up with BYE after
  ``--rtp-timeout``; a held one only after ``--rtp-hold-timeout``.
"""

from __future__ import annotations

import time

import pytest

from tests.interop.rtp import RtpPacket
from tests.interop.test_metrics import scrape, value

from .node import still_serving, wait_event
from .phone import RawCall

ATTACKER = "127.0.0.2"


def test_a_forged_invite_gets_the_victim_no_rtp_while_an_acked_call_hears_the_tone(
    server, rtp_sink
):
    victim = rtp_sink
    forged = RawCall(server.sip_addr, "tone", ("127.0.0.1", victim.port), local_ip=ATTACKER)
    try:
        response = forged.invite()
        assert response is not None and response.status == 200, server.tail()
        time.sleep(3.0)  # never ACKed: the node keeps retransmitting its 200 to the attacker
        assert victim.count() == 0, f"{victim.count()} datagrams reached the forged victim"
        assert server.events("call.answered"), "the forged call was not even answered"
    finally:
        forged.close()

    caller = RawCall(server.sip_addr, "tone", ("127.0.0.1", victim.port))
    try:
        response = caller.invite()
        assert response is not None and response.status == 200
        caller.ack()
        assert victim.wait_for(50, 5.0), f"only {victim.count()} packets after the ACK"
        packets = victim.packets()
        assert packets and all(p.payload_type == 0 for p in packets)
        caller.bye()
    finally:
        caller.close()
    still_serving(server)


def test_a_never_acked_invite_gives_its_rtp_ports_back_at_timer_h(server, rtp_sink):
    forged = RawCall(server.sip_addr, "tone", ("127.0.0.1", rtp_sink.port), local_ip=ATTACKER)
    try:
        response = forged.invite()
        assert response is not None and response.status == 200
        assert value(scrape(server), "callswitch_rtp_sessions", codec="PCMU") == 1
        deadline = time.monotonic() + 45  # Timer H: 64 * T1 = 32 s
        while time.monotonic() < deadline:
            if not server.events("sip.ack_timeout"):
                time.sleep(0.5)
                continue
            if value(scrape(server), "callswitch_rtp_sessions", codec="PCMU") == 0:
                break
            time.sleep(0.2)
        assert server.events("sip.ack_timeout"), "Timer H never fired"
        assert value(scrape(server), "callswitch_rtp_sessions", codec="PCMU") == 0
    finally:
        forged.close()
    assert rtp_sink.count() == 0


def send_rtp(sock_owner, target: tuple[str, int], seconds: float, sequence: int = 0) -> int:
    """Send PCMU silence from the sink's own socket (the address the SDP named)."""
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        packet = RtpPacket(0, sequence & 0xFFFF, sequence * 160, 0x1234, b"\xff" * 160)
        sock_owner.sock.sendto(packet.serialize(), target)
        sequence += 1
        time.sleep(0.02)
    return sequence


@pytest.mark.callswitch(extra_args=("--rtp-timeout", "3"))
def test_an_answered_call_that_sends_no_rtp_is_hung_up_after_the_timeout(server, rtp_sink):
    caller = RawCall(server.sip_addr, "echo", ("127.0.0.1", rtp_sink.port))
    try:
        response = caller.invite()
        assert response is not None and response.status == 200
        caller.ack()
        answered = time.monotonic()
        port = int(response.body.split(b"m=audio ")[1].split(b" ")[0])
        # While the caller talks the call stays up, well past the timeout.
        sequence = send_rtp(rtp_sink, ("127.0.0.1", port), 5.0)
        assert caller.wait_bye(0.1) is None, "hung up although RTP was flowing"
        quiet_from = time.monotonic()
        bye_at = caller.wait_bye(15.0)
        assert bye_at is not None, "no BYE after the RTP stopped\n" + server.tail()
        assert 3.0 <= bye_at - quiet_from <= 3.0 + 3.0, bye_at - quiet_from
        assert sequence > 100 and bye_at - answered > 8.0
    finally:
        caller.close()
    [event] = wait_event(server, "call.rtp_timeout")
    assert event["source_ip"] == "127.0.0.1" and event["call_sid"].startswith("CA")
    assert value(scrape(server), "callswitch_rtp_timeouts_total") == 1
    still_serving(server)


@pytest.mark.callswitch(extra_args=("--rtp-timeout", "2", "--rtp-hold-timeout", "7"))
def test_a_held_call_waits_for_the_hold_timeout(server, rtp_sink):
    caller = RawCall(server.sip_addr, "tone", ("127.0.0.1", rtp_sink.port))
    try:
        response = caller.invite()
        assert response is not None and response.status == 200
        caller.ack()
        held = caller.reinvite("inactive")
        assert held == 200, server.tail()
        held_at = time.monotonic()
        assert wait_event(server, "call.hold")
        bye_at = caller.wait_bye(20.0)
        assert bye_at is not None, "a held call was never hung up\n" + server.tail()
        # Well past --rtp-timeout (2 s), about --rtp-hold-timeout (7 s) after the answer.
        assert 5.5 <= bye_at - held_at <= 7.0 + 4.0, bye_at - held_at
    finally:
        caller.close()
    [event] = wait_event(server, "call.rtp_timeout")
    assert event["held"] in ("True", "true")
