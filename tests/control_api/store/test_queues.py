"""Queues and their members in the store, on each backend."""

from __future__ import annotations

from datetime import timedelta

import pytest

from control_api.sids import is_sid, new_sid, utcnow
from control_api.store import CallRecord, QueueMember, QueueNameTaken, Store


async def test_a_queue_is_made_with_the_default_size_and_named_once_per_account(
    store: Store, account, other
):
    queue = await store.queues.create(account.sid, "support", 1000)
    assert is_sid(queue.sid, "QU") and queue.max_size == 1000
    assert await store.queues.get(account.sid, queue.sid) == queue
    with pytest.raises(QueueNameTaken):
        await store.queues.create(account.sid, "support", 1000)
    theirs = await store.queues.create(other.sid, "support", max_size=5)
    assert theirs.max_size == 5
    assert await store.queues.get(account.sid, theirs.sid) is None  # not this account's
    assert [q.sid for q in await store.queues.page(account.sid)] == [queue.sid]


async def test_enqueue_finds_the_queue_by_name_or_makes_it(store: Store, account):
    made = await store.queues.named_or_created(account.sid, "sales", 1000)
    assert await store.queues.named_or_created(account.sid, "sales", 1000) == made
    assert await store.queues.named(account.sid, "nope") is None


async def test_update_renames_and_resizes(store: Store, account):
    queue = await store.queues.create(account.sid, "a", 1000)
    await store.queues.create(account.sid, "b", 1000)
    updated = await store.queues.update(account.sid, queue.sid, friendly_name="c", max_size=7)
    assert (updated.friendly_name, updated.max_size) == ("c", 7)
    assert updated.date_updated >= queue.date_updated
    with pytest.raises(QueueNameTaken):
        await store.queues.update(account.sid, queue.sid, friendly_name="b")
    assert await store.queues.update(account.sid, new_sid("QU"), max_size=3) is None
    assert await store.queues.delete(account.sid, queue.sid)
    assert await store.queues.get(account.sid, queue.sid) is None


async def test_members_stand_in_the_order_they_joined(store: Store, account):
    queue = await store.queues.create(account.sid, "support", 1000)
    start = utcnow()
    sids = [new_sid("CA") for _ in range(3)]
    for number, sid in enumerate(sids):
        member = QueueMember(queue.sid, sid, account.sid, start + timedelta(seconds=number))
        await store.queue_members.add(member)
    listed = await store.queue_members.page(account.sid, queue.sid)
    assert [m.call_sid for m in listed] == sids
    assert (await store.queue_members.front(account.sid, queue.sid)).call_sid == sids[0]
    assert [await store.queue_members.position(m) for m in listed] == [1, 2, 3]
    third = await store.queue_members.get(account.sid, queue.sid, sids[2])
    assert third.date_enqueued == start + timedelta(seconds=2)
    assert await store.queue_members.remove(queue.sid, sids[0])
    assert not await store.queue_members.remove(queue.sid, sids[0])
    assert await store.queue_members.position(third) == 2
    enqueued = await store.queue_members.enqueued([queue.sid, new_sid("QU")])
    assert sorted(enqueued[queue.sid]) == [start + timedelta(seconds=1), third.date_enqueued]
    assert list(enqueued.values())[1] == []


async def test_members_are_seen_only_by_their_account(store: Store, account, other):
    queue = await store.queues.create(account.sid, "support", 1000)
    sid = new_sid("CA")
    await store.queue_members.add(QueueMember(queue.sid, sid, account.sid, utcnow()))
    assert await store.queue_members.get(other.sid, queue.sid, sid) is None
    assert await store.queue_members.front(other.sid, queue.sid) is None
    assert await store.queue_members.page(other.sid, queue.sid) == []


async def test_a_member_whose_call_has_ended_is_left_out(store: Store, account):
    queue = await store.queues.create(account.sid, "stale", 1000)
    ended, waiting, unrecorded = (new_sid("CA") for _ in range(3))
    for sid, status in ((ended, "failed"), (waiting, "in-progress")):
        await store.calls.insert(CallRecord(sid=sid, account_sid=account.sid, status=status))
    start = utcnow()
    for number, sid in enumerate((ended, waiting, unrecorded)):
        joined = start + timedelta(seconds=number)
        await store.queue_members.add(QueueMember(queue.sid, sid, account.sid, joined))
    listed = await store.queue_members.page(account.sid, queue.sid)
    assert [m.call_sid for m in listed] == [waiting, unrecorded]
    assert (await store.queue_members.front(account.sid, queue.sid)).call_sid == waiting
    assert await store.queue_members.get(account.sid, queue.sid, ended) is None
    assert await store.queue_members.position(listed[1]) == 2
    assert len((await store.queue_members.enqueued([queue.sid]))[queue.sid]) == 2
