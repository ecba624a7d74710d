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
    account = await store.create_account("a")

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
    assert (await store.get_account(account.sid)).friendly_name == "c"
    assert group.units >= 2
    group.close()


async def test_many_units_share_few_transactions(store: Store):
    group = GroupCommit(store.db)
    await asyncio.gather(*(group.run(lambda c: c.execute(select(1)).scalar()) for _ in range(200)))
    assert group.units == 200 and group.batches < 20
    group.close()
