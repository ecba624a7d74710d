"""Node identity and lost calls on both backends: a restarted node fails and bills the
calls its last run held; a peer past its lease is reaped, once, even by two nodes."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from sqlalchemy import select

from control_api.cluster import Node
from control_api.sids import new_sid
from control_api.store import BillingStore, CallRecord, NodeStore, Store
from control_api.store.schema import usage_items
from control_api.usage.billing import Billing
from tests.control_api.store.conftest import db_path, store_url  # noqa: F401 - fixtures

T0 = datetime(2026, 12, 3, 12, 0, tzinfo=UTC)


class Clock:
    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


class NoOutbox:
    def wake(self) -> None:
        pass


@pytest.fixture
async def store(store_url):  # noqa: F811 - the fixture imported above
    store = await Store.open(store_url)
    yield store
    await store.close()


def billing_of(store: Store, clock: Clock) -> Billing:
    return Billing(store, BillingStore(store.db), NoOutbox(), clock=clock)


async def add_call(store: Store, account_sid: str, node_id: str, status: str, started):
    record = CallRecord(
        sid=new_sid("CA"),
        account_sid=account_sid,
        to="+14155550100",
        from_="+14155550199",
        status=status,
        direction="inbound",
        start_time=started,
        date_created=started,
        node_id=node_id,
    )
    return await store.calls.insert(record)


async def usage_of(store: Store) -> dict[str, tuple[str, int]]:
    rows = await store.db.run(lambda c: c.execute(select(usage_items)).all())
    return {row.source_sid: (row.category, row.usage) for row in rows}


async def test_calls_are_stamped_with_the_node_id(store: Store):
    account = await store.accounts.create("a")
    Node(store, "node-a", "http://127.0.0.1:1", lease_s=5)
    call = await store.calls.insert(CallRecord(sid=new_sid("CA"), account_sid=account.sid))
    assert call.node_id == "node-a"
    assert (await store.calls.get(account.sid, call.sid)).node_id == "node-a"


async def test_a_restarted_node_fails_and_bills_the_calls_it_lost(store: Store):
    account = await store.accounts.create("a")
    clock = Clock(T0)
    await NodeStore(store.db).register("node-a", "http://127.0.0.1:1", T0 - timedelta(minutes=5))
    last_seen = T0 - timedelta(seconds=30)
    await NodeStore(store.db).heartbeat("node-a", "http://127.0.0.1:1", last_seen)
    talking = await add_call(
        store, account.sid, "node-a", "in-progress", last_seen - timedelta(seconds=90)
    )
    ringing = await add_call(
        store, account.sid, "node-a", "ringing", last_seen - timedelta(seconds=5)
    )
    done = await add_call(
        store, account.sid, "node-a", "completed", last_seen - timedelta(seconds=200)
    )
    other = await add_call(store, account.sid, "node-b", "in-progress", last_seen)

    node = Node(
        store,
        "node-a",
        "http://127.0.0.1:1",
        lease_s=5,
        billing=billing_of(store, clock),
        clock=clock,
    )
    try:
        assert await node.start() == 2
    finally:
        await node.stop()

    lost = await store.calls.get(account.sid, talking.sid)
    assert (lost.status, lost.end_time, lost.duration) == ("failed", last_seen, 90)
    assert lost.price == "-0.01700"  # two started minutes of calls-inbound at 0.0085
    unanswered = await store.calls.get(account.sid, ringing.sid)
    assert (unanswered.status, unanswered.duration, unanswered.price) == ("failed", 0, None)
    assert (await store.calls.get(account.sid, done.sid)).status == "completed"
    assert (await store.calls.get(account.sid, other.sid)).status == "in-progress"
    assert await usage_of(store) == {talking.sid: ("calls-inbound", 2)}
    # A second restart finds nothing left to end, and bills nothing twice.
    again = Node(
        store,
        "node-a",
        "http://127.0.0.1:1",
        lease_s=5,
        billing=billing_of(store, clock),
        clock=clock,
    )
    assert await again.start() == 0
    await again.stop()
    assert await usage_of(store) == {talking.sid: ("calls-inbound", 2)}


async def test_a_peer_past_its_lease_is_reaped_once_by_racing_nodes(store: Store):
    account = await store.accounts.create("a")
    balance_store = BillingStore(store.db)
    await balance_store.set_balance(account.sid, Decimal("10"))
    nodes = NodeStore(store.db)
    await nodes.register("gone", "http://127.0.0.1:1", T0 - timedelta(seconds=60))
    calls = [
        await add_call(store, account.sid, "gone", "in-progress", T0 - timedelta(seconds=120))
        for _ in range(10)
    ]
    clock = Clock(T0)
    b = Node(
        store, "b", "http://127.0.0.1:2", lease_s=30, billing=billing_of(store, clock), clock=clock
    )
    c = Node(
        store, "c", "http://127.0.0.1:3", lease_s=30, billing=billing_of(store, clock), clock=clock
    )
    await b.start()
    await c.start()
    try:
        assert await b.live_peer("c") is not None
        assert await b.live_peer("gone") is None
        ended = await asyncio.gather(b.beat(), c.beat())
        assert sum(ended) == 10
        assert await b.beat() == 0
    finally:
        await b.stop()
        await c.stop()
    for call in calls:
        record = await store.calls.get(account.sid, call.sid)
        assert (record.status, record.duration, record.price) == ("failed", 60, "-0.00850")
    assert len(await usage_of(store)) == 10
    assert await balance_store.get_balance(account.sid) == Decimal("10") - 10 * Decimal("0.0085")


async def test_a_fresh_peer_is_left_alone(store: Store):
    account = await store.accounts.create("a")
    nodes = NodeStore(store.db)
    await nodes.register("alive", "http://127.0.0.1:1", T0 - timedelta(seconds=5))
    call = await add_call(store, account.sid, "alive", "in-progress", T0 - timedelta(seconds=50))
    node = Node(store, "b", "http://127.0.0.1:2", lease_s=30, clock=Clock(T0))
    await node.start()
    try:
        assert await node.beat() == 0
        assert (await node.live_peer("alive")).url == "http://127.0.0.1:1"
    finally:
        await node.stop()
    assert (await store.calls.get(account.sid, call.sid)).status == "in-progress"


async def test_reconcile_charges_a_lost_call_whose_billing_was_interrupted(store: Store):
    account = await store.accounts.create("a")
    clock = Clock(T0)
    await NodeStore(store.db).register("node-a", "http://127.0.0.1:1", T0 - timedelta(seconds=10))
    talking = await add_call(
        store, account.sid, "node-a", "in-progress", T0 - timedelta(seconds=70)
    )
    node = Node(store, "node-a", "http://127.0.0.1:1", lease_s=5, clock=clock)
    node.billing = billing_of(store, clock)

    async def crash(_lost):  # the process died between the record and the usage item
        raise RuntimeError("killed")

    node.billing.call_lost = crash
    await node.start()
    await node.stop()
    assert await usage_of(store) == {}
    assert await billing_of(store, clock).reconcile() == 1
    assert await usage_of(store) == {talking.sid: ("calls-inbound", 1)}


async def test_a_peer_that_comes_back_before_the_update_keeps_its_calls(store: Store):
    account = await store.accounts.create("a")
    nodes = NodeStore(store.db)
    await nodes.register("slow", "http://127.0.0.1:1", T0 - timedelta(seconds=60))
    call = await add_call(store, account.sid, "slow", "in-progress", T0 - timedelta(seconds=90))
    [stale] = await nodes.stale_with_calls(T0 - timedelta(seconds=30), exclude="b")
    await nodes.heartbeat("slow", "http://127.0.0.1:1", T0)  # it was only slow
    ended = await nodes.end_lost_calls(
        "slow", stale.heartbeat_at, T0, lambda _: None, silent_since=T0 - timedelta(seconds=30)
    )
    assert ended == []
    assert (await store.calls.get(account.sid, call.sid)).status == "in-progress"


async def test_a_lost_call_gets_the_final_status_callback_its_application_asked_for(store: Store):
    from control_api.sids import utcnow
    from control_api.voice.lifecycle import CallLifecycle, base_params, new_record
    from control_api.webhooks import Outbox

    account = await store.accounts.create("a")
    outbox = Outbox(store, None, store.accounts.auth_token)
    await NodeStore(store.db).register("node-a", "http://127.0.0.1:1", utcnow())
    Node(store, "node-a", "http://127.0.0.1:1", lease_s=5)  # stamps the calls below

    async def place(status_callback: str | None, events: frozenset[str] | None) -> str:
        sid = new_sid("CA")
        record = new_record(
            sid=sid,
            account_sid=account.sid,
            to="+1415",
            from_="+1999",
            direction="inbound",
            status="ringing",
        )
        params = base_params(
            call_sid=sid, account_sid=account.sid, from_="+1999", to="+1415", direction="inbound"
        )
        lifecycle = CallLifecycle(
            store, outbox, record, params, status_callback=status_callback, events=events
        )
        lifecycle.ringing()
        lifecycle.answered()
        await lifecycle.flush()
        return sid

    every_event = await place("http://app.test/status", None)
    only_initiated = await place("http://app.test/status", frozenset({"initiated"}))
    no_callback = await place(None, None)
    assert await store.outbox.pending_count() == 2  # every_event's ringing and in-progress

    node = Node(store, "node-a", "http://127.0.0.1:1", lease_s=5)
    try:
        assert await node.start() == 3
    finally:
        await node.stop()
    # Queued once, with the restarted node's change of status: the third of its callbacks.
    assert await store.outbox.pending_count() == 3
    later = utcnow() + timedelta(minutes=1)
    items = await store.outbox.claim("x", later, later + timedelta(minutes=1))
    final = [item for item in items if item.delivery_id == f"lost-{every_event}"]
    assert [(i.url, i.method, i.call_sid) for i in final] == [
        ("http://app.test/status", "POST", every_event)
    ]
    params = dict(final[0].params)
    assert (params["CallSid"], params["AccountSid"], params["Direction"]) == (
        every_event,
        account.sid,
        "inbound",
    )
    assert (params["CallStatus"], params["SequenceNumber"], params["CallDuration"]) == (
        "failed",
        "2",
        "0",
    )
    assert {item.call_sid for item in items} == {every_event}
    for sid in (every_event, only_initiated, no_callback):
        assert (await store.calls.get(account.sid, sid)).status == "failed"
