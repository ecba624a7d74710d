"""``ring_first`` (the ringing half of ``<Dial>``, transfers and REST calls) with
fakes: the first party to answer wins, the others are canceled, and a caller who
hangs up while they ring ends it all; without a caller (a REST call) nobody hears
ringback and only the parties' own ring timeouts end it."""

from __future__ import annotations

import asyncio

import numpy as np

from control_api.calls.leg import Placing
from control_api.voice import dial as dial_module
from control_api.voice.dial import ring_first
from media.leg import Leg


class Party(Placing):
    """A callee that answers (True) or fails (False) after ``delay`` seconds."""

    def __init__(self, name: str, answers: bool | None, delay: float = 0.0) -> None:
        self.sid = name
        self.answers = answers
        self.delay = delay
        self.ended = asyncio.Event()
        self.canceled = False
        self.hung_up = False
        self.answer_time: float | None = None

    async def _connect(self) -> bool:
        await asyncio.sleep(self.delay)
        if self.answers is None:  # rings until canceled
            await self.ended.wait()
            return False
        if self.answers:
            self.answer_time = asyncio.get_running_loop().time()
        return self.answers

    def cancel(self) -> None:
        self.canceled = not self.answered
        self.ended.set()

    def hangup(self) -> None:
        self.hung_up = True
        self.ended.set()


class PlayedLeg(Leg):
    """A media leg that remembers every source played into it."""

    def __init__(self) -> None:
        self.played: list[object] = []
        super().__init__()

    def __setattr__(self, name: str, value: object) -> None:
        if name == "source" and value is not None:
            self.played.append(value)
        super().__setattr__(name, value)


class Caller:
    def __init__(self) -> None:
        self.answered = False
        self.leg = None
        self.ended = asyncio.Event()
        self.rang = False

    def ring(self) -> None:
        self.rang = True


async def test_the_first_to_answer_wins_and_the_others_are_canceled():
    caller = Caller()
    slow, fast, failing = Party("slow", None), Party("fast", True, 0.01), Party("x", False)
    winner = await asyncio.wait_for(ring_first([slow, failing, fast], caller), 2)
    assert winner is fast and caller.rang
    assert slow.canceled and failing.canceled and not fast.canceled


async def test_nobody_answering_is_none():
    caller = Caller()
    parties = [Party("a", False), Party("b", False, 0.01)]
    assert await asyncio.wait_for(ring_first(parties, caller), 2) is None


async def test_a_caller_hanging_up_cancels_the_ringing():
    caller = Caller()
    ringing = Party("a", None)
    asyncio.get_running_loop().call_later(0.02, caller.ended.set)
    assert await asyncio.wait_for(ring_first([ringing], caller), 2) is None
    assert ringing.canceled


async def test_without_a_caller_the_first_to_answer_wins():
    late, early = Party("late", True, 0.05), Party("early", True, 0.01)
    winner = await asyncio.wait_for(ring_first([late, early]), 2)
    assert winner is early and late.canceled and not early.canceled and not early.hung_up


async def test_without_a_caller_it_rings_until_every_party_gave_up():
    parties = [Party("a", False, 0.02), Party("b", False, 0.04)]
    started = asyncio.get_running_loop().time()
    assert await asyncio.wait_for(ring_first(parties), 2) is None
    assert asyncio.get_running_loop().time() - started >= 0.04  # nobody cut it short


async def test_an_answered_caller_hears_ringback_until_the_callee_answers():
    caller = Caller()
    caller.answered = True
    caller.leg = leg = PlayedLeg()
    callee = Party("a", True, 0.05)
    assert await asyncio.wait_for(ring_first([callee], caller), 2) is callee
    assert leg.played and not caller.rang  # ringback played to it, no 180 sent
    assert leg.source is None  # the tone stopped with the answer


async def test_a_party_that_refuses_in_its_whisper_is_hung_up_and_another_wins():
    refuses, accepts = Party("no", True), Party("yes", True, 0.05)

    async def accept(call: Party) -> bool:
        return call is accepts

    winner = await asyncio.wait_for(ring_first([refuses, accepts], accept=accept), 2)
    assert winner is accepts and refuses.hung_up and not accepts.hung_up


async def test_a_party_still_in_its_whisper_when_another_accepts_is_hung_up():
    slow, quick = Party("slow", True), Party("quick", True, 0.02)
    whispering = asyncio.Event()

    async def accept(call: Party) -> bool:
        if call is slow:
            whispering.set()
            await asyncio.sleep(10)
        return True

    winner = await asyncio.wait_for(ring_first([slow, quick], accept=accept), 2)
    assert whispering.is_set() and winner is quick
    assert slow.hung_up and not slow.canceled  # it had answered: a BYE, not a CANCEL


async def test_the_caller_hears_the_tone_it_was_given(monkeypatch):
    played: list[object] = []

    async def fake_play(leg, samples, *, loop=1):
        played.append((samples, loop))
        await asyncio.Event().wait()

    monkeypatch.setattr(dial_module, "play", fake_play)
    caller = Caller()
    caller.answered = True
    caller.leg = PlayedLeg()
    tone = np.ones(800, dtype=np.int16)
    callee = Party("a", True, 0.05)
    assert await asyncio.wait_for(ring_first([callee], caller, tone=tone), 2) is callee
    assert played == [(tone, 0)]  # looped until the answer
