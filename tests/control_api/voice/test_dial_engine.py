"""control_api/voice/dial.py's bridge with ``--rtpengine`` (scripted rtpengine and
phones): a ``<Dial>`` whose call is redirected while its parties are being moved
onto rtpengine stops its in-process relay too, so the TwiML that follows hears the
caller."""

from __future__ import annotations

import asyncio
from types import SimpleNamespace

import pytest

from control_api.calls import engine_bridge
from control_api.twiml.parser import parse_voice_twiml
from control_api.voice import dial
from tests.control_api.calls.test_engine_bridge import Engines
from tests.control_api.calls.test_engine_hand_over import parties  # noqa: F401 - fixture


async def test_a_dial_redirected_mid_move_stops_its_relay(parties, monkeypatch):  # noqa: F811
    monkeypatch.setattr(engine_bridge, "can_use_engine", lambda a, b: True)
    parent, child = await parties(), await parties(status=0)
    child.hangup = child.ended.set
    engines = Engines()
    pending = []

    def send_reinvite(sdp, headers=None, on_response=None):
        child.session.offers.append(sdp)
        pending.append(on_response)

    child.session.send_reinvite = send_reinvite
    [verb] = parse_voice_twiml("<Response><Dial>+15550100000</Dial></Response>").verbs
    context = SimpleNamespace(dialer=None, refused=lambda *a, **k: None, rtpengines=engines)
    runner = SimpleNamespace(call=parent, account_sid="AC1", bridged=None)
    bridging = asyncio.ensure_future(dial._bridge(context, runner, child, verb))
    async with asyncio.timeout(3):
        while not pending:
            await asyncio.sleep(0.01)
    assert parent.leg._relay is child.leg  # the in-process relay runs meanwhile
    bridging.cancel()
    for _ in range(2):  # the move, then the move back
        async with asyncio.timeout(3):
            while not pending:
                await asyncio.sleep(0.01)
        pending.pop()(SimpleNamespace(status=200, body=b""))
    with pytest.raises(asyncio.CancelledError):
        await bridging
    assert parent.leg._relay is None and child.leg._relay is None
    assert not engines.held and child.ended.is_set()
