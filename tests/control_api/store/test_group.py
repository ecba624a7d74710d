"""Group commit: many units in one transaction, a failing unit fails alone."""

from __future__ import annotations

import asyncio

import pytest
from sqlalchemy import insert, select

from control_api.store import Store
from control_api.store.group import GroupCommit
from control_api.store.schema import accounts


@pytest.fixture
async def store(tmp_path):
    opened = await Store.open(f"sqlite:///{tmp_path / 'callswitch.db'}")
    yield opened
    await opened.close()


async def test_units_commit_together_and_a_failure_stays_alone(store: Store):
    group = GroupCommit(store.db)
    account = await store.accounts.create("a")

    def rename(name):
        return lambda c: (
            c.execute(
                accounts.update().where(accounts.c.sid == account.sid).values(friendly_name=name)
            ).rowcount
        )

    def duplicate(c):
        row = c.execute(select(accounts).where(accounts.c.sid == account.sid)).one()
        c.execute(insert(accounts).values(**row._mapping))  # the same primary key

    results = await asyncio.gather(
        group.run(rename("b")),
        group.run(duplicate),
        group.run(rename("c")),
        return_exceptions=True,
    )
    assert results[0] == 1 and results[2] == 1
    assert isinstance(results[1], Exception)
    # Both renames committed, in order, despite the failure between them.
    assert (await store.accounts.get(account.sid)).friendly_name == "c"
    assert group.units >= 2
    group.close()


async def test_many_units_share_few_transactions(store: Store):
    group = GroupCommit(store.db)
    await asyncio.gather(*(group.run(lambda c: c.execute(select(1)).scalar()) for _ in range(200)))
    assert group.units == 200 and group.batches < 20
    group.close()


async def test_rows_for_one_table_go_in_one_executemany_and_a_bad_row_fails_alone(store: Store):
    from datetime import UTC, datetime

    from sqlalchemy import event, func

    group = GroupCommit(store.db)
    taken = await store.accounts.create("taken")
    now = datetime.now(UTC)

    def row(sid: str) -> dict:
        return {
            "sid": sid,
            "friendly_name": sid,
            "auth_token": "0" * 32,
            "status": "active",
            "date_created": now,
            "date_updated": now,
        }

    statements: list[tuple[str, bool]] = []
    engine = group._sync or store.db.engine

    def seen(_conn, _cursor, statement, _parameters, _context, executemany):
        if statement.startswith("INSERT"):
            statements.append((statement, executemany))

    event.listen(engine, "before_cursor_execute", seen)
    sids = [f"AC{n:032d}" for n in range(50)]
    results = await asyncio.gather(
        *(group.insert(accounts, row(sid)) for sid in sids[:25]),
        group.insert(accounts, row(taken.sid)),  # the primary key is taken
        *(group.insert(accounts, row(sid)) for sid in sids[25:]),
        return_exceptions=True,
    )
    event.remove(engine, "before_cursor_execute", seen)
    assert all(r is None for r in results[:25] + results[26:])
    assert isinstance(results[25], Exception)
    query = select(func.count()).select_from(accounts)
    assert await store.db.run(lambda c: c.execute(query).scalar_one()) == 51
    # The first try was one statement for all 51 rows; after its failure, each alone.
    assert len(statements) == 1 + 51
    group.close()


async def test_rows_whose_key_is_taken_can_be_skipped(store: Store):
    from datetime import UTC, datetime

    from control_api.store.schema import webhook_outbox

    group = GroupCommit(store.db)
    account = await store.accounts.create("a")
    now = datetime.now(UTC)

    def row(delivery_id: str, url: str) -> dict:
        return {
            "delivery_id": delivery_id,
            "account_sid": account.sid,
            "url": url,
            "method": "POST",
            "params": [],
            "call_sid": None,
            "attempts": 0,
            "next_attempt_at": now,
            "created_at": now,
        }

    await group.insert(webhook_outbox, row("once", "http://127.0.0.1/first"), ignore_existing=True)
    await asyncio.gather(
        group.insert(webhook_outbox, row("once", "http://127.0.0.1/again"), ignore_existing=True),
        group.insert(webhook_outbox, row("other", "http://127.0.0.1/other"), ignore_existing=True),
    )
    items = await store.outbox.due(now)
    assert [(i.delivery_id, i.url) for i in items] == [
        ("once", "http://127.0.0.1/first"),
        ("other", "http://127.0.0.1/other"),
    ]
    group.close()
