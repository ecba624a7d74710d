"""An inbound call's media guards, with a fake SIP session: no media before the
ACK, and a call whose peer goes silent is hung up by the watchdog."""

from __future__ import annotations

import asyncio
import logging
from types import SimpleNamespace

from control_api.calls.call import Call, MediaSettings
from media.clock import MediaClock
from media.ports import PortPool, PortsExhausted
from media.watchdog import SilenceWatchdog
from tests.control_api.calls.test_media_update import offer
from tests.media.conftest import free_range


class FakeInviteSession:
    def __init__(self, body: bytes) -> None:
        self.offer = body
        self.call_id = "fake-call"
        self.flow = SimpleNamespace(remote=("192.0.2.7", 5060))
        self.local_sdp: bytes | None = None
        self.on_terminated = self.on_acked = self.on_dtmf = None
        self.on_offer = self.on_answer = None
        self.hung_up = asyncio.Event()

    def ring(self) -> None:
        pass

    def answer(self, sdp: bytes) -> None:
        self.local_sdp = sdp

    def reject(self, status: int, reason: str | None = None) -> None:
        raise AssertionError(f"rejected {status}")

    def hangup(self) -> None:
        self.hung_up.set()


def media(timeout: float = 0.0) -> MediaSettings:
    return MediaSettings(
        "127.0.0.1",
        "127.0.0.1",
        PortPool(*free_range()),
        MediaClock(),
        SilenceWatchdog(timeout, 0),
    )


async def test_an_inbound_call_sends_nothing_until_its_ack():
    session = FakeInviteSession(offer(port=6000, address="198.51.100.9"))
    settings = media()
    call = Call(session, settings)
    assert await call.answer()
    leg = call.leg
    assert leg.awaiting_consent and leg.remote is None
    assert leg.destination == ("198.51.100.9", 6000)
    session.on_acked()
    assert not leg.awaiting_consent and leg.remote == ("198.51.100.9", 6000)
    leg.close()
    settings.clock.close()


async def test_a_call_whose_peer_sends_nothing_is_hung_up_and_logged(caplog):
    session = FakeInviteSession(offer(port=6000, address="198.51.100.9"))
    settings = media(timeout=0.5)
    call = Call(session, settings)
    with caplog.at_level(logging.INFO, logger="callswitch.calls"):
        assert await call.answer()
        session.on_acked()
        await asyncio.wait_for(session.hung_up.wait(), 5)
    assert call.rtp_timed_out and settings.watchdog.timeouts == 1
    [record] = [r for r in caplog.records if r.getMessage() == "call.rtp_timeout"]
    assert record.call_sid == call.sid and record.source_ip == "192.0.2.7"
    assert record.held is False
    call.leg.close()
    settings.watchdog.close()
    settings.clock.close()


async def test_a_call_with_no_rtp_ports_left_is_refused_with_503_and_why(caplog):
    rejected: list[int] = []
    session = FakeInviteSession(offer(port=6000, address="198.51.100.9"))
    session.reject = lambda status, reason=None: rejected.append(status)
    settings = media()
    while True:  # every pair of the range handed out
        try:
            settings.pool.acquire()
        except PortsExhausted:
            break
    with caplog.at_level(logging.INFO, logger="callswitch.calls"):
        assert not await Call(session, settings).answer()
    assert rejected == [503]
    [record] = [r for r in caplog.records if r.getMessage() == "call.no_rtp_ports"]
    assert "RTP ports are in use" in record.reason
    settings.clock.close()
