"""The voice context: its task supervisor and the number lookup the dialer uses."""

from __future__ import annotations

import asyncio
import gc
from types import SimpleNamespace

from control_api.voice.context import TaskSupervisor, is_our_number, numbers_of


async def test_the_supervisor_keeps_a_task_until_it_ends():
    supervisor = TaskSupervisor()
    release = asyncio.Event()
    done = []

    async def work() -> None:
        await release.wait()
        done.append(True)

    supervisor.spawn(work())
    gc.collect()  # the loop holds tasks weakly: only the supervisor keeps this one
    assert len(supervisor) == 1
    release.set()
    for _ in range(3):
        await asyncio.sleep(0)
    assert done == [True] and len(supervisor) == 0


async def test_our_number_needs_a_voice_application():
    numbers = {
        "+15550001": SimpleNamespace(voice_url="http://app/voice"),
        "+15550002": SimpleNamespace(voice_url=None),
    }

    async def find_number(phone: str):
        return numbers.get(phone)

    lookup = numbers_of(SimpleNamespace(find_number=find_number))
    assert await is_our_number(lookup, "+15550001")
    assert not await is_our_number(lookup, "+15550002")
    assert not await is_our_number(lookup, "+15550003")
