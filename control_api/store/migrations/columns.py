"""Column groups that the migrations in ``versions/`` share. FROZEN.

A migration is the record of what the schema was at its revision: once applied it
must never change what it does. So neither must anything here that a migration
calls. Never edit a function below (its columns, their order, types and options, the
names it makes); a migration that needs another shape gets a new function, and a
table that changes gets a new migration, not an edited helper. These are not
``schema.py``'s groups: those follow the tables as they are now.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

__all__ = [
    "METHOD",
    "SID",
    "TIMESTAMP",
    "account_fk",
    "add_lease",
    "dates",
    "drop_lease",
    "entry",
    "entry_index",
    "entry_keys",
    "listing_index",
    "owner",
    "owner_keys",
    "prices",
    "serial_id",
    "voice_webhooks",
    "webhook",
]

SID = sa.String(34)
METHOD = sa.String(8)
TIMESTAMP = sa.DateTime(timezone=True)


def owner() -> list[sa.Column]:
    """A resource's ``sid`` and the ``account_sid`` that owns it."""
    return [sa.Column("sid", SID, nullable=False), sa.Column("account_sid", SID, nullable=False)]


def dates() -> list[sa.Column]:
    """``date_created`` and ``date_updated``."""
    return [
        sa.Column("date_created", TIMESTAMP, nullable=False),
        sa.Column("date_updated", TIMESTAMP, nullable=False),
    ]


def account_fk(table: str) -> sa.ForeignKeyConstraint:
    """``table.account_sid`` refers to ``accounts.sid``."""
    return sa.ForeignKeyConstraint(
        ["account_sid"], ["accounts.sid"], name=f"fk_{table}_account_sid_accounts"
    )


def owner_keys(table: str) -> list[sa.Constraint]:
    """The primary key ``sid`` and ``account_fk``."""
    return [sa.PrimaryKeyConstraint("sid", name=f"pk_{table}"), account_fk(table)]


def listing_index(table: str) -> None:
    """The index on ``(account_sid, date_created)`` a REST list pages through."""
    op.create_index(f"ix_{table}_account_sid_date_created", table, ["account_sid", "date_created"])


def voice_webhooks() -> list[sa.Column]:
    """A number's or an application's voice URL, fallback URL and status callback,
    each with its method."""
    return [
        sa.Column("voice_url", sa.Text()),
        sa.Column("voice_method", METHOD, nullable=False),
        sa.Column("voice_fallback_url", sa.Text()),
        sa.Column("voice_fallback_method", METHOD, nullable=False),
        sa.Column("status_callback", sa.Text()),
        sa.Column("status_callback_method", METHOD, nullable=False),
    ]


def prices() -> list[sa.Column]:
    """``price`` (text; None: not priced yet) and ``price_unit``."""
    return [
        sa.Column("price", sa.String(32)),
        sa.Column("price_unit", sa.String(8), nullable=False),
    ]


def serial_id() -> sa.Column:
    """An autoincrementing ``id``: BIGINT, INTEGER on SQLite."""
    return sa.Column(
        "id",
        sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
        autoincrement=True,
        nullable=False,
    )


def webhook(url: str, method: str) -> list[sa.Column]:
    """A webhook's URL (None: not set) and its HTTP method."""
    return [sa.Column(url, sa.Text()), sa.Column(method, METHOD, nullable=False)]


def entry(list_column: str) -> list[sa.Column]:
    """An entry of an account's list: its ``sid``, the list's (``list_column``) and the
    owning ``account_sid``."""
    return [
        sa.Column("sid", SID, nullable=False),
        sa.Column(list_column, SID, nullable=False),
        sa.Column("account_sid", SID, nullable=False),
    ]


def entry_keys(table: str, list_column: str, lists: str, fk_name: str) -> list[sa.Constraint]:
    """An entry's primary key ``sid``, ``list_column``'s reference to ``lists.sid``
    (named ``fk_name``) and ``account_fk``."""
    return [
        sa.PrimaryKeyConstraint("sid", name=f"pk_{table}"),
        sa.ForeignKeyConstraint([list_column], [f"{lists}.sid"], name=fk_name),
        account_fk(table),
    ]


def entry_index(table: str, list_column: str) -> None:
    """The index on an entry's list, through which a list's entries are read."""
    op.create_index(f"ix_{table}_{list_column}", table, [list_column])


def add_lease(table: str, prefix: str) -> None:
    """Add ``<prefix>_by`` (who holds a row: a node's claimant name) and
    ``<prefix>_until`` (when that lease runs out) to ``table``."""
    with op.batch_alter_table(table) as batch:
        batch.add_column(sa.Column(f"{prefix}_by", sa.String(64)))
        batch.add_column(sa.Column(f"{prefix}_until", TIMESTAMP))


def drop_lease(table: str, prefix: str) -> None:
    """Undo ``add_lease``."""
    with op.batch_alter_table(table) as batch:
        batch.drop_column(f"{prefix}_until")
        batch.drop_column(f"{prefix}_by")
