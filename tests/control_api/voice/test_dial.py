"""``ring_first`` (the ringing half of ``<Dial>`` and of REST calls) with fakes: the
first party to answer wins, the others are canceled, and a caller who hangs up
while they ring ends it all."""

from __future__ import annotations

import asyncio

from control_api.calls.leg import Placing
from control_api.twiml.verbs import Dial
from control_api.voice.dial import ring_first


class Party(Placing):
    """A callee that answers (True) or fails (False) after ``delay`` seconds."""

    def __init__(self, name: str, answers: bool | None, delay: float = 0.0) -> None:
        self.sid = name
        self.answers = answers
        self.delay = delay
        self.ended = asyncio.Event()
        self.canceled = False
        self.hung_up = False

    async def _connect(self) -> bool:
        await asyncio.sleep(self.delay)
        if self.answers is None:  # rings until canceled
            await self.ended.wait()
            return False
        return self.answers

    def cancel(self) -> None:
        self.canceled = True
        self.ended.set()

    def hangup(self) -> None:
        self.hung_up = True
        self.ended.set()


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
    winner = await asyncio.wait_for(ring_first(caller, Dial(), [slow, failing, fast]), 2)
    assert winner is fast and caller.rang
    assert slow.canceled and failing.canceled and not fast.canceled


async def test_nobody_answering_is_none():
    caller = Caller()
    parties = [Party("a", False), Party("b", False, 0.01)]
    assert await asyncio.wait_for(ring_first(caller, Dial(), parties), 2) is None


async def test_a_caller_hanging_up_cancels_the_ringing():
    caller = Caller()
    ringing = Party("a", None)
    asyncio.get_running_loop().call_later(0.02, caller.ended.set)
    assert await asyncio.wait_for(ring_first(caller, Dial(), [ringing]), 2) is None
    assert ringing.canceled
