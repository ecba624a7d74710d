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
    "dates",
    "listing_index",
    "owner",
    "owner_keys",
    "prices",
    "serial_id",
    "voice_webhooks",
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
