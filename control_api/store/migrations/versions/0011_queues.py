"""Call queues (QU…) and the calls waiting in them.

Revision ID: 0011_queues
Revises: 0010_sip_domains
Create Date: 2026-12-05
"""

import sqlalchemy as sa
from alembic import op

from control_api.store.migrations import columns
from control_api.store.migrations.columns import SID, TIMESTAMP

revision = "0011_queues"
down_revision = "0010_sip_domains"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "queues",
        *columns.owner(),
        sa.Column("friendly_name", sa.String(64), nullable=False),
        sa.Column("max_size", sa.Integer(), nullable=False),
        *columns.dates(),
        *columns.owner_keys("queues"),
        sa.UniqueConstraint(
            "account_sid", "friendly_name", name="uq_queues_account_sid_friendly_name"
        ),
    )
    op.create_table(
        "queue_members",
        sa.Column("queue_sid", SID, nullable=False),
        sa.Column("call_sid", SID, nullable=False),
        sa.Column("account_sid", SID, nullable=False),
        sa.Column("date_enqueued", TIMESTAMP, nullable=False),
        sa.PrimaryKeyConstraint("queue_sid", "call_sid", name="pk_queue_members"),
        sa.ForeignKeyConstraint(
            ["queue_sid"], ["queues.sid"], name="fk_queue_members_queue_sid_queues"
        ),
        columns.account_fk("queue_members"),
    )
    op.create_index(
        "ix_queue_members_queue_sid_date_enqueued",
        "queue_members",
        ["queue_sid", "date_enqueued"],
    )


def downgrade() -> None:
    op.drop_index("ix_queue_members_queue_sid_date_enqueued", table_name="queue_members")
    op.drop_table("queue_members")
    op.drop_table("queues")
