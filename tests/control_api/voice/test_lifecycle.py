"""CallLifecycle: the call's writes run in order, and its record can be awaited."""

from __future__ import annotations

import asyncio

from control_api.voice.lifecycle import (
    CallLifecycle,
    Journal,
    base_params,
    journals_settled,
    new_record,
)


class SlowStore:
    """Holds each write until released, and remembers the order they ran in."""

    def __init__(self) -> None:
        self.release = asyncio.Event()
        self.writes: list[str] = []

    async def insert_call(self, record) -> None:
        await self.release.wait()
        self.writes.append("insert")

    async def update_call(self, sid: str, **fields) -> bool:
        self.writes.append(f"update {fields.get('status')}")
        return True


def lifecycle_on(store) -> CallLifecycle:
    record = new_record(
        sid="CA1",
        account_sid="AC1",
        to="+1415",
        from_="+1999",
        direction="inbound",
        status="ringing",
    )
    params = base_params(
        call_sid="CA1", account_sid="AC1", from_="+1999", to="+1415", direction="inbound"
    )
    return CallLifecycle(store, None, record, params)


async def test_recorded_waits_for_the_record_and_writes_keep_their_order():
    store = SlowStore()
    lifecycle = lifecycle_on(store)
    lifecycle.answered()
    waiter = asyncio.create_task(lifecycle.recorded())
    await asyncio.sleep(0.01)
    assert not waiter.done() and store.writes == []  # the webhook would wait
    store.release.set()
    await asyncio.wait_for(waiter, 30)
    await lifecycle.flush()
    assert store.writes == ["insert", "update in-progress"]
    await asyncio.wait_for(lifecycle.recorded(), 1)  # done once, then at once


async def test_a_failed_insert_does_not_hold_the_call():
    class FailingStore(SlowStore):
        async def insert_call(self, record) -> None:
            raise RuntimeError("store down")

    lifecycle = lifecycle_on(FailingStore())
    await asyncio.wait_for(lifecycle.recorded(), 1)


async def test_a_stopping_node_waits_for_every_calls_queued_writes():
    written: list[str] = []
    release = asyncio.Event()

    async def slow(name: str) -> None:
        await release.wait()
        written.append(name)

    first, second = Journal(), Journal()
    first.add(lambda: slow("a1"))
    first.add(lambda: slow("a2"))
    second.add(lambda: slow("b1"))
    assert not await journals_settled(0.05)  # still held: not settled
    asyncio.get_running_loop().call_later(0.05, release.set)
    assert await journals_settled(5.0)
    assert sorted(written) == ["a1", "a2", "b1"]
    assert await journals_settled(0.0)  # nothing left over
