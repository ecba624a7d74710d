"""control_api/calls/engine_bridge.py's ``hand_over`` (what ``<Dial>`` and queues call),
with a scripted rtpengine and scripted phones: which bridges it hands over, and a
hand-over cancelled mid-move (a REST redirect of the call) that leaves no party on
rtpengine and no rtpengine call behind."""

from __future__ import annotations

import asyncio
from types import SimpleNamespace

import pytest

from control_api.calls import engine_bridge
from control_api.calls.engine_bridge import hand_over
from media.sdp import SessionDescription
from tests.control_api.calls.test_engine_bridge import Engines, parties

__all__ = ["parties"]  # the fixture, shared with test_engine_bridge


async def test_without_rtpengine_or_sip_parties_the_bridge_stays_in_process(parties):
    a, b = await parties(), await parties()
    engines = Engines()
    assert await hand_over(None, a, b) is None
    assert await hand_over(engines, a, b) is None  # scripted calls are not SIP calls
    assert not engines.sent


async def test_hangup_on_star_needs_rtpengine_s_dtmf_log(parties, monkeypatch):
    monkeypatch.setattr(engine_bridge, "can_use_engine", lambda a, b: True)
    a, b = await parties(), await parties()
    engines = Engines()
    assert await hand_over(engines, a, b, on_dtmf=lambda side, digit: None) is None
    assert not engines.sent
    bridge = await hand_over(engines, a, b)
    assert bridge is not None and engines.held
    await bridge.stop([a])
    assert not engines.held


async def test_a_hand_over_cancelled_mid_move_brings_both_back(parties, monkeypatch):
    """The call's TwiML moves on (a redirect) while the parties are being moved: the
    moves end, both parties are moved back and the rtpengine call is deleted before
    the cancel goes on."""
    monkeypatch.setattr(engine_bridge, "can_use_engine", lambda a, b: True)
    a, b = await parties(), await parties(status=0)  # b answers when told to
    engines = Engines()
    pending = []

    def send_reinvite(sdp, headers=None, on_response=None):
        b.session.offers.append(sdp)
        b.session.local_sdp = sdp
        pending.append(on_response)

    b.session.send_reinvite = send_reinvite
    handing = asyncio.ensure_future(hand_over(engines, a, b))
    async with asyncio.timeout(3):
        while not pending:
            await asyncio.sleep(0.01)
    handing.cancel()
    await asyncio.sleep(0.01)
    assert not handing.done()  # it waits for b's answer
    pending.pop()(SimpleNamespace(status=200, body=b""))  # b takes the move
    async with asyncio.timeout(3):
        while not pending:
            await asyncio.sleep(0.01)
    pending.pop()(SimpleNamespace(status=200, body=b""))  # and the move back
    with pytest.raises(asyncio.CancelledError):
        await handing
    for call in (a, b):
        back = SessionDescription.parse(call.session.offers[-1])
        assert back.media[0].port == call.leg.port, call.sid
        assert call.session.on_offer == call.media_updater.answer
    assert engines.sent[-1][0] == "delete" and not engines.held
