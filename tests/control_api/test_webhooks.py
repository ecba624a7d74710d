"""The outbox (control_api/webhooks.py): callbacks delivered once across the nodes of one
store, leases taken over from a dead node, and kept-alive connections to the receiver."""

from __future__ import annotations

import asyncio
import collections
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from control_api.store import Store
from control_api.webhooks import Outbox, WebhookClient


class Receiver:
    """A small keep-alive HTTP/1.1 server that counts each delivery id it is sent."""

    def __init__(self, delay: float = 0.0) -> None:
        self.delay = delay
        self.seen: collections.Counter[str] = collections.Counter()
        self.order: list[str] = []
        self.connections = 0
        self._writers: set[asyncio.StreamWriter] = set()

    async def start(self) -> str:
        self.server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        return f"http://127.0.0.1:{self.server.sockets[0].getsockname()[1]}/status"

    async def _serve(self, reader, writer) -> None:
        self.connections += 1
        self._writers.add(writer)
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                fields = {}
                for line in head.split(b"\r\n")[1:]:
                    name, _, value = line.partition(b":")
                    fields[name.strip().lower()] = value.strip()
                await reader.readexactly(int(fields.get(b"content-length", b"0")))
                delivery = fields[b"i-twilio-idempotency-token"].decode()
                self.seen[delivery] += 1
                self.order.append(delivery)
                await asyncio.sleep(self.delay)
                writer.write(b"HTTP/1.1 204 No Content\r\n\r\n")
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            self._writers.discard(writer)
            writer.close()

    def close(self) -> None:
        self.server.close()
        for writer in self._writers:
            writer.close()


@pytest.fixture(params=("sqlite", "postgresql"))
def shared_url(request: pytest.FixtureRequest, tmp_path: Path):
    """One database two nodes share: a SQLite file (one host) or a PostgreSQL database."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'callswitch.db'}"
        return
    cluster = request.getfixturevalue("pg_cluster")
    url = cluster.create_database()
    yield url
    cluster.drop_database(url)


async def _enqueue(outbox: Outbox, account, url: str, n: int) -> list[str]:
    return [
        await outbox.enqueue(
            account_sid=account.sid,
            url=url,
            method="POST",
            params=[("MessageSid", f"SM{i:032d}"), ("MessageStatus", "delivered")],
            delivery_id=f"delivery-{i}",
        )
        for i in range(n)
    ]


async def test_two_nodes_on_one_store_deliver_each_callback_exactly_once(shared_url: str):
    receiver = Receiver(delay=0.002)
    url = await receiver.start()
    stores = [await Store.open(shared_url) for _ in range(2)]
    clients = [WebhookClient() for _ in stores]
    outboxes = [
        Outbox(
            store, client, store.accounts.auth_token, max_claimed=8, concurrency=4, claimant=name
        )
        for store, client, name in zip(stores, clients, ("node-a", "node-b"), strict=True)
    ]
    delivered_by = collections.Counter()
    for outbox in outboxes:
        record = outbox._record

        def counting(outcome, record=record, name=outbox.claimant):
            if outcome.delivered_at is not None:
                delivered_by[name] += 1
            record(outcome)

        outbox._record = counting
    try:
        account = await stores[0].accounts.create("main")
        ids = await _enqueue(outboxes[0], account, url, 120)
        for outbox in outboxes:
            outbox.start()
        deadline = time.monotonic() + 30
        while await stores[0].outbox.pending_count() and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        assert await stores[0].outbox.pending_count() == 0
    finally:
        for outbox in outboxes:
            await outbox.stop()
        for client in clients:
            await client.close()
        for store in stores:
            await store.close()
        receiver.close()
    assert set(receiver.seen) == set(ids)
    assert set(receiver.seen.values()) == {1}, "a callback was delivered twice"
    if shared_url.startswith("postgresql"):
        # Both nodes took part, each claiming at most 8 at a time, the rows the other
        # has locked skipped. (SQLite's two connections pick the same oldest rows, and
        # the one that updates second gets none of them: once, but not shared.)
        assert delivered_by["node-a"] > 0 and delivered_by["node-b"] > 0, delivered_by
    assert sum(delivered_by.values()) == len(ids)
    # Kept-alive connections: far fewer than requests.
    assert receiver.connections <= 2 * 4 + 2


async def test_a_dead_nodes_claims_are_taken_over_when_the_lease_runs_out(shared_url: str):
    receiver = Receiver()
    url = await receiver.start()
    store = await Store.open(shared_url)
    client = WebhookClient()
    now = [time.time()]
    outbox = Outbox(
        store, client, store.accounts.auth_token, claimant="node-b", clock=lambda: now[0]
    )
    try:
        account = await store.accounts.create("main")
        [delivery] = await _enqueue(outbox, account, url, 1)
        # node-a claimed it and died before delivering.
        start = datetime.fromtimestamp(now[0], UTC)
        [claimed] = await store.outbox.claim("node-a", start, start + timedelta(seconds=30))
        assert await outbox.deliver_due() == 0
        now[0] += 29
        assert await outbox.deliver_due() == 0
        now[0] += 2
        assert await outbox.deliver_due() == 1
        item = await store.outbox.get(claimed.id)
        assert item.delivered_at is not None and item.claimed_by is None
    finally:
        await client.close()
        await store.close()
        receiver.close()
    assert receiver.seen == {delivery: 1}


async def test_failed_attempts_are_rescheduled_for_any_node(shared_url: str):
    store = await Store.open(shared_url)
    client = WebhookClient(timeout=2)
    now = [time.time()]
    outbox = Outbox(
        store, client, store.accounts.auth_token, claimant="node-a", clock=lambda: now[0]
    )
    try:
        account = await store.accounts.create("main")
        # Nothing listens on port 9 of loopback: refused at once.
        await _enqueue(outbox, account, "http://127.0.0.1:9/status", 1)
        assert await outbox.deliver_due() == 1
        [item] = await store.outbox.claim(
            "node-b",
            datetime.fromtimestamp(now[0] + 1.5, UTC),
            datetime.fromtimestamp(now[0] + 60, UTC),
        )
        assert item.attempts == 1 and "127.0.0.1:9" in item.last_error
    finally:
        await client.close()
        await store.close()


async def test_callbacks_about_one_message_go_in_the_order_queued(tmp_path: Path):
    receiver = Receiver(delay=0.01)
    url = await receiver.start()
    store = await Store.open(f"sqlite:///{tmp_path / 'callswitch.db'}")
    client = WebhookClient()
    outbox = Outbox(store, client, store.accounts.auth_token)
    try:
        account = await store.accounts.create("main")
        for status in ("sending", "sent", "delivered"):
            for sid in ("SM" + "1" * 32, "SM" + "2" * 32):
                await outbox.enqueue(
                    account_sid=account.sid,
                    url=url,
                    method="POST",
                    params=[("MessageSid", sid), ("MessageStatus", status)],
                    delivery_id=f"{sid}-{status}",
                )
        assert await outbox.deliver_due() == 6
    finally:
        await client.close()
        await store.close()
        receiver.close()
    for sid in ("SM" + "1" * 32, "SM" + "2" * 32):
        mine = [d.rpartition("-")[2] for d in receiver.order if d.startswith(sid)]
        assert mine == ["sending", "sent", "delivered"]
    # The two messages' callbacks went side by side, not one message after the other.
    assert receiver.connections >= 2


async def test_a_stopping_node_releases_the_claims_it_could_not_finish(tmp_path: Path):
    receiver = Receiver(delay=30.0)  # answers nothing in time
    url = await receiver.start()
    store = await Store.open(f"sqlite:///{tmp_path / 'callswitch.db'}")
    client = WebhookClient()
    outbox = Outbox(store, client, store.accounts.auth_token, claimant="node-a")
    try:
        account = await store.accounts.create("main")
        await _enqueue(outbox, account, url, 3)
        outbox.start()
        deadline = time.monotonic() + 10
        while sum(receiver.seen.values()) < 3 and time.monotonic() < deadline:
            await asyncio.sleep(0.02)
        await outbox.stop(grace=0.2)
        now = datetime.now(UTC)
        items = await store.outbox.claim("node-b", now, now + timedelta(seconds=60))
        assert len(items) == 3 and all(i.attempts == 0 for i in items)
    finally:
        await client.close()
        await store.close()
        receiver.close()


async def test_a_node_starting_under_its_old_name_takes_back_its_claims_at_once(tmp_path: Path):
    from control_api.webhooks import node_claimant

    receiver = Receiver()
    url = await receiver.start()
    store = await Store.open(f"sqlite:///{tmp_path / 'callswitch.db'}")
    client = WebhookClient()
    name = node_claimant(str(tmp_path / "data"))
    assert name == node_claimant(str(tmp_path / "data")) != node_claimant(str(tmp_path))
    outbox = Outbox(store, client, store.accounts.auth_token, claimant=name)
    try:
        account = await store.accounts.create("main")
        [delivery] = await _enqueue(outbox, account, url, 1)
        # The node claimed it, then died (SIGKILL) before writing the outcome.
        now = datetime.now(UTC)
        await store.outbox.claim(name, now, now + timedelta(seconds=120))
        outbox.start()
        deadline = time.monotonic() + 5
        while not receiver.seen and time.monotonic() < deadline:
            await asyncio.sleep(0.02)
        await outbox.stop()
    finally:
        await client.close()
        await store.close()
        receiver.close()
    assert receiver.seen == {delivery: 1}
