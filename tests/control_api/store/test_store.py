"""The store on each backend (a SQLite file, a PostgreSQL database): migrations,
accounts, numbers, calls, outbox."""

from __future__ import annotations

import asyncio
import sqlite3
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import inspect, select
from sqlalchemy.exc import IntegrityError, StatementError

from control_api.sids import is_sid, new_sid
from control_api.store import CallRecord, NumberTaken, Store, StoreUnavailable
from control_api.store.engine import NulInText
from control_api.store.rows import parties
from control_api.store.schema import calls, metadata
from tests.control_api.store.conftest import HEAD, HEADS, alembic_version, run_on, table_names

T0 = datetime(2026, 11, 24, 10, 0, 0, tzinfo=UTC)


# Opening and migrations


async def test_open_creates_directory_and_migrates_to_head(db_path: Path):
    store = await Store.open(f"sqlite+aiosqlite:///{db_path}")
    await store.close()
    with sqlite3.connect(db_path) as raw:
        version = raw.execute("SELECT version_num FROM alembic_version").fetchall()
        tables = {row[0] for row in raw.execute("SELECT name FROM sqlite_master")}
        journal = raw.execute("PRAGMA journal_mode").fetchone()[0]
    assert version == [(HEAD,)]
    assert {"accounts", "phone_numbers", "calls", "webhook_outbox"} <= tables
    assert journal == "wal"


def test_nodes_opening_one_postgresql_database_at_once_migrate_it_once(pg_cluster):
    store_url = pg_cluster.create_database()

    async def node() -> str | None:
        store = await Store.open(store_url)
        try:
            account = await store.accounts.ensure("AC" + "0" * 32, "token")
            return account.sid
        finally:
            await store.close()

    try:
        # Three nodes start together on an empty database, each in its own thread and
        # loop as separate processes would: the advisory lock makes them take turns, the
        # first creates the tables, the others find them at head.
        with ThreadPoolExecutor(3) as pool:
            started = [pool.submit(asyncio.run, node()) for _ in range(3)]
            sids = [future.result(timeout=60) for future in started]
        assert sids == ["AC" + "0" * 32] * 3
        assert asyncio.run(run_on(store_url, alembic_version)) == [HEAD]
        tables = asyncio.run(run_on(store_url, table_names))
    finally:
        pg_cluster.drop_database(store_url)
    assert {"accounts", "phone_numbers", "calls", "webhook_outbox"} <= tables


def test_migrations_form_one_line():
    """Two branches that each add a migration on the same parent make two heads, and
    ``upgrade head`` then refuses to run: renumber one onto the other at merge time."""
    assert len(HEADS) == 1, f"several migration heads: {HEADS}"


async def test_reopening_keeps_the_data(store_url: str):
    store = await Store.open(store_url)
    account = await store.accounts.create("kept")
    number = await store.numbers.create(account.sid, "+14155550100")
    await store.close()

    store = await Store.open(store_url)
    try:
        assert await store.accounts.get(account.sid) == account
        assert await store.numbers.get(account.sid, number.sid) == number
    finally:
        await store.close()


async def test_migrations_build_exactly_the_tables_of_schema(store: Store, store_url: str):
    def compare(connection):
        diff = compare_metadata(MigrationContext.configure(connection), metadata)
        indexes = {
            name: {i["name"] for i in inspect(connection).get_indexes(name)}
            for name in metadata.tables
        }
        return diff, indexes

    diff, indexes = await run_on(store_url, compare)
    assert diff == []
    assert "ix_calls_account_sid_date_created" in indexes["calls"]


async def test_foreign_keys_are_enforced_as_on_postgresql(store: Store):
    with pytest.raises(IntegrityError):
        await store.calls.insert(CallRecord(sid=new_sid("CA"), account_sid=new_sid("AC")))


# Accounts


async def test_create_account_makes_up_sid_and_token(store: Store):
    account = await store.accounts.create()
    assert is_sid(account.sid, "AC")
    assert len(account.auth_token) == 32
    assert account.status == "active"
    assert account.date_created.tzinfo is not None
    assert await store.accounts.get(account.sid) == account
    assert await store.accounts.get(new_sid("AC")) is None


async def test_ensure_account_creates_then_updates_the_token(store: Store):
    sid = new_sid("AC")
    created = await store.accounts.ensure(sid, "first-token")
    assert created.auth_token == "first-token"
    updated = await store.accounts.ensure(sid, "second-token")
    assert updated.sid == sid
    assert updated.auth_token == "second-token"
    assert [a.sid for a in await store.accounts.all()] == [sid]


async def test_account_friendly_name_is_bounded(store: Store):
    with pytest.raises(ValueError):
        await store.accounts.create("x" * 65)


# Phone numbers


async def test_create_number_normalises_and_defaults(store: Store, account):
    number = await store.numbers.create(account.sid, "1 (415) 555-0100")
    assert is_sid(number.sid, "PN")
    assert number.phone_number == "+14155550100"
    assert number.friendly_name == "(415) 555-0100"
    assert number.voice_method == number.sms_method == number.status_callback_method == "POST"
    assert number.voice_url is None
    assert await store.numbers.get(account.sid, number.sid) == number


async def test_create_number_rejects_what_is_not_e164(store: Store, account):
    for bad in ("", "abc", "+0123456789", "+12", "+1234567890123456"):
        with pytest.raises(ValueError):
            await store.numbers.create(account.sid, bad)
    with pytest.raises(TypeError):
        await store.numbers.create(account.sid, "+14155550100", colour="red")


async def test_a_number_belongs_to_one_account_only(store: Store, account, other):
    await store.numbers.create(account.sid, "+14155550100")
    with pytest.raises(NumberTaken):
        await store.numbers.create(account.sid, "14155550100")
    with pytest.raises(NumberTaken):
        await store.numbers.create(other.sid, "+14155550100")


async def test_find_number_with_or_without_plus_across_accounts(store: Store, account, other):
    mine = await store.numbers.create(account.sid, "+14155550100")
    theirs = await store.numbers.create(other.sid, "+442071838750")
    assert await store.numbers.find("14155550100") == mine
    assert await store.numbers.find("+14155550100") == mine
    assert await store.numbers.find("442071838750") == theirs
    assert await store.numbers.find("14155550101") is None
    assert await store.numbers.find("echo") is None


async def test_numbers_are_seen_only_by_their_account(store: Store, account, other):
    number = await store.numbers.create(account.sid, "+14155550100")
    assert await store.numbers.get(other.sid, number.sid) is None
    assert await store.numbers.page(other.sid) == []
    assert await store.numbers.update(other.sid, number.sid, voice_url="http://x/") is None
    assert await store.numbers.delete(other.sid, number.sid) is False
    assert (await store.numbers.get(account.sid, number.sid)).voice_url is None


async def test_list_numbers_filters_and_pages(store: Store, account):
    a = await store.numbers.create(account.sid, "+14155550100", friendly_name="sales")
    b = await store.numbers.create(account.sid, "+14155550199", friendly_name="support")
    c = await store.numbers.create(account.sid, "+442071838750", friendly_name="sales")

    async def sids(**filters):
        return [n.sid for n in await store.numbers.page(account.sid, **filters)]

    assert await sids() == [a.sid, b.sid, c.sid]
    assert await sids(phone_number="+1415") == [a.sid, b.sid]
    assert await sids(phone_number="555*1*9") == [b.sid]
    assert await sids(phone_number="2071838750") == [c.sid]
    assert await sids(phone_number="%") == []  # LIKE wildcards are literal
    assert await sids(phone_number="_") == []
    assert await sids(friendly_name="sales") == [a.sid, c.sid]
    assert await sids(friendly_name="sale") == []
    assert await sids(offset=1, limit=1) == [b.sid]
    assert await store.numbers.count(account.sid) == 3
    assert await store.numbers.count(account.sid, friendly_name="sales") == 2


async def test_update_and_delete_number(store: Store, account):
    number = await store.numbers.create(account.sid, "+14155550100")
    updated = await store.numbers.update(
        account.sid, number.sid, voice_url="https://example.com/voice", voice_method="GET"
    )
    assert updated.voice_url == "https://example.com/voice"
    assert updated.voice_method == "GET"
    assert updated.date_updated >= number.date_updated
    with pytest.raises(TypeError):
        await store.numbers.update(account.sid, number.sid, phone_number="+14155550101")
    assert await store.numbers.delete(account.sid, number.sid) is True
    assert await store.numbers.delete(account.sid, number.sid) is False
    assert await store.numbers.get(account.sid, number.sid) is None


# Calls


def call(account, **fields) -> CallRecord:
    return CallRecord(sid=new_sid("CA"), account_sid=account.sid, **fields)


async def test_insert_get_and_update_call(store: Store, account):
    record = await store.calls.insert(
        call(account, to="+14155550100", from_="+14155550199", start_time=T0, sip_call_id="x@y")
    )
    assert record.date_created is not None
    fetched = await store.calls.get(account.sid, record.sid)
    assert fetched == record
    assert fetched.start_time == T0 and fetched.start_time.tzinfo is not None

    assert await store.calls.update(
        record.sid,
        status="completed",
        end_time=T0 + timedelta(seconds=42),
        duration=42,
        price="-0.01300",
    )
    ended = await store.calls.get(account.sid, record.sid)
    assert ended.status == "completed"
    assert ended.duration == 42
    assert ended.price == "-0.01300"
    assert ended.to == "+14155550100" and ended.from_ == "+14155550199"
    assert ended.date_updated > record.date_updated
    assert await store.calls.update(new_sid("CA"), status="completed") is False
    with pytest.raises(TypeError):
        await store.calls.update(record.sid, account_sid=new_sid("AC"))


async def test_parties_of_a_call_row_and_of_its_record_agree(store: Store, account):
    record = await store.calls.insert(
        call(account, to="+14155550100", from_="client:alice", direction="outbound-api")
    )
    row = await store.db.run(
        lambda c: c.execute(select(calls).where(calls.c.sid == record.sid)).one()
    )
    expected = {
        "sid": record.sid,
        "account_sid": account.sid,
        "direction": "outbound-api",
        "to": "+14155550100",
        "from_": "client:alice",
    }
    assert parties(row) == parties(record) == expected


async def test_times_must_be_timezone_aware_and_come_back_utc(store: Store, account):
    with pytest.raises(StatementError):
        await store.calls.insert(call(account, start_time=datetime(2026, 11, 24, 10)))
    plus_two = datetime(2026, 11, 24, 14, tzinfo=timezone(timedelta(hours=2)))
    record = await store.calls.insert(call(account, start_time=plus_two))
    fetched = await store.calls.get(account.sid, record.sid)
    assert fetched.start_time == datetime(2026, 11, 24, 12, tzinfo=UTC)
    assert fetched.start_time.utcoffset() == timedelta(0)


async def test_list_calls_filters_newest_first(store: Store, account, other):
    parent = await store.calls.insert(
        call(
            account,
            to="+1",
            from_="+2",
            status="completed",
            start_time=T0,
            end_time=T0 + timedelta(minutes=5),
            date_created=T0,
        )
    )
    child = await store.calls.insert(
        call(
            account,
            to="+3",
            from_="+1",
            status="completed",
            parent_call_sid=parent.sid,
            direction="outbound-dial",
            start_time=T0 + timedelta(days=1),
            end_time=T0 + timedelta(days=1, minutes=1),
            date_created=T0 + timedelta(days=1),
        )
    )
    queued = await store.calls.insert(
        call(account, to="+1", from_="+4", status="queued", date_created=T0 + timedelta(days=2))
    )
    await store.calls.insert(call(other, to="+1", from_="+2", start_time=T0))

    async def sids(**filters):
        return [c.sid for c in await store.calls.page(account.sid, **filters)]

    assert await sids() == [queued.sid, child.sid, parent.sid]
    assert await sids(to="+1") == [queued.sid, parent.sid]
    assert await sids(from_="+1") == [child.sid]
    assert await sids(status="queued") == [queued.sid]
    assert await sids(parent_call_sid=parent.sid) == [child.sid]
    assert await sids(start_time_after=T0) == [child.sid, parent.sid]
    assert await sids(start_time_after=T0 + timedelta(seconds=1)) == [child.sid]
    assert await sids(start_time_before=T0) == []  # exclusive
    assert await sids(start_time_before=T0 + timedelta(hours=1)) == [parent.sid]
    assert await sids(end_time_after=T0 + timedelta(hours=1)) == [child.sid]
    assert await sids(end_time_before=T0 + timedelta(hours=1)) == [parent.sid]
    assert await sids(offset=1, limit=1) == [child.sid]
    assert await store.calls.count(account.sid) == 3
    assert await store.calls.count(account.sid, to="+1", status="completed") == 1


async def test_delete_call_only_in_its_account(store: Store, account, other):
    record = await store.calls.insert(call(account))
    assert await store.calls.get(other.sid, record.sid) is None
    assert await store.calls.delete(other.sid, record.sid) is False
    assert await store.calls.delete(account.sid, record.sid) is True
    assert await store.calls.get(account.sid, record.sid) is None


# Webhook outbox


async def enqueue(store: Store, account, delivery_id: str, now: datetime, **kw) -> int:
    return await store.outbox.enqueue(
        delivery_id=delivery_id,
        account_sid=account.sid,
        url="https://example.com/status",
        method="POST",
        params=kw.pop("params", [("CallStatus", "completed")]),
        now=now,
        **kw,
    )


async def test_enqueue_keeps_params_in_order_and_is_idempotent(store: Store, account):
    params = [("b", "2"), ("a", "1"), ("a", "0"), ("Ü", "ü")]
    first = await enqueue(store, account, "d-1", T0, params=params, call_sid="CA" + "0" * 32)
    again = await enqueue(store, account, "d-1", T0 + timedelta(hours=1), params=[])
    assert again == first
    item = await store.outbox.get(first)
    assert item.params == params
    assert item.call_sid == "CA" + "0" * 32
    assert item.attempts == 0
    assert item.next_attempt_at == item.created_at == T0
    assert await store.outbox.pending_count() == 1


async def test_due_webhooks_oldest_first_and_bounded(store: Store, account):
    late = await enqueue(store, account, "late", T0 + timedelta(seconds=30))
    early = await enqueue(store, account, "early", T0)
    also_early = await enqueue(store, account, "also-early", T0)
    assert [i.id for i in await store.outbox.due(T0)] == [early, also_early]
    assert [i.id for i in await store.outbox.due(T0 + timedelta(minutes=1))] == [
        early,
        also_early,
        late,
    ]
    assert [i.id for i in await store.outbox.due(T0 + timedelta(minutes=1), limit=1)] == [early]


async def test_delivery_retry_and_abandon(store: Store, account):
    delivered = await enqueue(store, account, "ok", T0)
    retried = await enqueue(store, account, "retry", T0)
    abandoned = await enqueue(store, account, "dead", T0)

    await store.outbox.mark_delivered(delivered, T0 + timedelta(seconds=1))
    await store.outbox.reschedule(retried, 1, T0 + timedelta(seconds=10), "HTTP 503")
    await store.outbox.abandon(abandoned, T0 + timedelta(seconds=2), "HTTP 404")

    assert await store.outbox.due(T0 + timedelta(seconds=5)) == []
    [due] = await store.outbox.due(T0 + timedelta(seconds=10))
    assert (due.id, due.attempts, due.last_error) == (retried, 1, "HTTP 503")
    assert (await store.outbox.get(delivered)).delivered_at == T0 + timedelta(seconds=1)
    dead = await store.outbox.get(abandoned)
    assert (dead.abandoned_at, dead.last_error) == (T0 + timedelta(seconds=2), "HTTP 404")
    assert await store.outbox.pending_count() == 1


async def test_claims_take_due_items_once_until_the_lease_runs_out(store: Store, account):
    first = await enqueue(store, account, "first", T0)
    second = await enqueue(store, account, "second", T0)
    await enqueue(store, account, "later", T0 + timedelta(minutes=5))
    lease = T0 + timedelta(seconds=60)
    claimed = await store.outbox.claim("node-a", T0, lease, limit=1)
    assert [(i.id, i.claimed_by, i.claimed_until) for i in claimed] == [(first, "node-a", lease)]
    # Another node takes what is left, never what node-a holds.
    assert [i.id for i in await store.outbox.claim("node-b", T0, lease)] == [second]
    assert await store.outbox.claim("node-b", T0 + timedelta(seconds=59), lease) == []
    # node-a died: its lease runs out and node-b may take the item.
    later = T0 + timedelta(seconds=61)
    retaken = await store.outbox.claim("node-b", later, later + timedelta(seconds=60))
    assert [(i.id, i.claimed_by) for i in retaken] == [(first, "node-b"), (second, "node-b")]


async def test_a_node_requeues_its_own_unanswered_messages_and_others_only_past_their_lease(
    store: Store, account
):
    from control_api.store import MessageRecord, MessageStore

    messages = MessageStore(store.db)
    for n in range(3):
        await messages.insert(
            MessageRecord(
                sid=new_sid("SM"),
                account_sid=account.sid,
                to=f"+1555000000{n}",
                from_="+15550009999",
                body="hi",
                next_attempt_at=T0,
                date_created=T0,
                date_updated=T0,
            )
        )
    a = await messages.take_due(T0, 1, claimant="node-a", lease_s=60)
    b = await messages.take_due(T0, 2, claimant="node-b", lease_s=60)
    assert [(m.status, m.sending_by, m.sending_until) for m in a] == [
        ("sending", "node-a", T0 + timedelta(seconds=60))
    ]
    assert len(b) == 2 and await messages.take_due(T0, 10, claimant="node-a") == []
    # node-a starts again: it puts back its own message, not the two node-b is sending.
    assert await messages.requeue_unaccepted(T0 + timedelta(seconds=1), "node-a") == 1
    again = await messages.take_due(T0 + timedelta(seconds=1), 10, claimant="node-c")
    assert [m.sid for m in again] == [a[0].sid]
    # node-b died: once its lease ran out, any node puts its messages back.
    assert await messages.requeue_unaccepted(T0 + timedelta(seconds=59), "node-a") == 0
    assert await messages.requeue_unaccepted(T0 + timedelta(seconds=61), "node-a") == 2


async def test_outcomes_are_written_together_and_release_claims(store: Store, account):
    from control_api.store import OutboxOutcome

    ids = [await enqueue(store, account, f"d-{n}", T0) for n in range(3)]
    await store.outbox.claim("node-a", T0, T0 + timedelta(seconds=60))
    await store.outbox.record_outcomes(
        [
            OutboxOutcome(ids[0], delivered_at=T0 + timedelta(seconds=1)),
            OutboxOutcome(
                ids[1],
                attempts=1,
                next_attempt_at=T0 + timedelta(seconds=2),
                last_error="HTTP 503",
            ),
            OutboxOutcome(ids[2], abandoned_at=T0 + timedelta(seconds=1), last_error="gone"),
        ]
    )
    done, retry, dead = [await store.outbox.get(id) for id in ids]
    assert done.delivered_at == T0 + timedelta(seconds=1)
    assert (retry.attempts, retry.last_error, retry.claimed_by, retry.claimed_until) == (
        1,
        "HTTP 503",
        None,
        None,
    )
    assert (dead.abandoned_at, dead.last_error) == (T0 + timedelta(seconds=1), "gone")
    # The retry is due again at its time, for any node: its claim was released.
    again = await store.outbox.claim(
        "node-b", T0 + timedelta(seconds=2), T0 + timedelta(seconds=60)
    )
    assert [i.id for i in again] == [ids[1]]
    assert await store.outbox.pending_count() == 1


async def test_account_changes_apply_at_once_and_other_writers_within_the_bound(
    store: Store, account, store_url: str
):
    from control_api.store import accounts as accounts_module

    assert (await store.accounts.authenticate(account.sid, account.auth_token)).sid == account.sid
    assert await store.accounts.authenticate(account.sid, "f" * 32) is None
    assert await store.accounts.authenticate("AC" + "0" * 32, account.auth_token) is None
    # Through this Store: at once.
    await store.accounts.update(account.sid, auth_token="a" * 32)
    assert await store.accounts.authenticate(account.sid, account.auth_token) is None
    assert await store.accounts.authenticate(account.sid, "a" * 32) is not None
    await store.accounts.update(account.sid, status="suspended")
    assert await store.accounts.authenticate(account.sid, "a" * 32) is None
    await store.accounts.update(account.sid, status="active")
    assert await store.accounts.authenticate(account.sid, "a" * 32) is not None
    # Through another process's Store (the CLI, another node): within ACCOUNT_CACHE_S.
    other = await Store.open(store_url)
    try:
        await other.accounts.update(account.sid, status="closed")
    finally:
        await other.close()
    assert await store.accounts.authenticate(account.sid, "a" * 32) is not None  # the cached copy
    cached_at, copy = store.accounts._cache[account.sid]
    store.accounts._cache[account.sid] = (cached_at - accounts_module.ACCOUNT_CACHE_S, copy)
    assert await store.accounts.authenticate(account.sid, "a" * 32) is None
    assert await store.accounts.auth_token(account.sid) == "a" * 32
    with pytest.raises(ValueError):
        await store.accounts.update(account.sid, status="gone")


# What one backend keeps, the other keeps too


async def test_nul_in_text_is_refused_alike_on_both_backends(store: Store, account):
    record = call(account, sip_call_id="abc\x00def@host")
    with pytest.raises(NulInText):
        await store.calls.insert(record)
    with pytest.raises(NulInText):
        await store.calls.page(account.sid, to="\x00")
    with pytest.raises(NulInText):
        await store.outbox.enqueue(
            delivery_id="d\x00",
            account_sid=account.sid,
            url="http://127.0.0.1/",
            method="POST",
            params=[],
            now=T0,
        )
    # Inside JSON the character is escaped, which both backends keep.
    id = await enqueue(store, account, "nul-in-json", T0, params=[("Name", "a\x00b")])
    assert (await store.outbox.get(id)).params == [("Name", "a\x00b")]
    # The store goes on working after a refusal.
    record = call(account, sip_call_id="abc@host")
    assert (await store.calls.insert(record)).sip_call_id == "abc@host"


async def test_a_database_that_cannot_be_opened_is_named_without_its_password(pg_cluster):
    missing = f"postgresql://postgres:s3cret@127.0.0.1:{pg_cluster.port}/no_such_database"
    with pytest.raises(StoreUnavailable, match="no_such_database") as raised:
        await Store.open(missing)
    assert "s3cret" not in str(raised.value) and "does not exist" in str(raised.value)
