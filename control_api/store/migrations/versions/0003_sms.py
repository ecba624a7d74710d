"""SMS and billing: messages, priced usage, usage triggers and their firings, balances.

Revision ID: 0003_sms
Revises: 0002
Create Date: 2026-12-03

Written out, like 0001 and 0002.
"""

import sqlalchemy as sa
from alembic import op

from control_api.store.migrations import columns
from control_api.store.migrations.columns import METHOD, SID, TIMESTAMP

revision = "0003_sms"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "messages",
        *columns.owner(),
        sa.Column("to_address", sa.Text(), nullable=False),
        sa.Column("from_address", sa.Text(), nullable=False),
        sa.Column("messaging_service_sid", SID),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("direction", sa.String(16), nullable=False),
        sa.Column("num_segments", sa.Integer(), nullable=False),
        sa.Column("encoding", sa.String(8), nullable=False),
        sa.Column("media_urls", sa.JSON(), nullable=False),
        *columns.prices(),
        sa.Column("error_code", sa.Integer()),
        sa.Column("error_message", sa.Text()),
        sa.Column("status_callback", sa.Text()),
        sa.Column("status_callback_method", METHOD, nullable=False),
        sa.Column("validity_period", sa.Integer()),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("next_attempt_at", TIMESTAMP),
        sa.Column("carrier", sa.String(64)),
        sa.Column("carrier_message_id", sa.String(128)),
        sa.Column("date_sent", TIMESTAMP),
        *columns.dates(),
        *columns.owner_keys("messages"),
    )
    columns.listing_index("messages")
    op.create_index("ix_messages_status_next_attempt_at", "messages", ["status", "next_attempt_at"])
    op.create_index(
        "ix_messages_carrier_carrier_message_id", "messages", ["carrier", "carrier_message_id"]
    )
    op.create_table(
        "usage_items",
        columns.serial_id(),
        sa.Column("source_sid", SID, nullable=False),
        sa.Column("account_sid", SID, nullable=False),
        sa.Column("category", sa.String(32), nullable=False),
        sa.Column("usage", sa.Integer(), nullable=False),
        sa.Column("price", sa.String(32), nullable=False),
        sa.Column("occurred_at", TIMESTAMP, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_usage_items"),
        sa.UniqueConstraint("source_sid", name="uq_usage_items_source_sid"),
        columns.account_fk("usage_items"),
    )
    op.create_index(
        "ix_usage_items_account_sid_occurred_at", "usage_items", ["account_sid", "occurred_at"]
    )
    op.create_table(
        "usage_triggers",
        *columns.owner(),
        sa.Column("friendly_name", sa.String(64)),
        sa.Column("callback_url", sa.Text(), nullable=False),
        sa.Column("callback_method", METHOD, nullable=False),
        sa.Column("trigger_value", sa.String(32), nullable=False),
        sa.Column("usage_category", sa.String(32), nullable=False),
        sa.Column("recurring", sa.String(16)),
        sa.Column("trigger_by", sa.String(8), nullable=False),
        sa.Column("current_value", sa.String(32), nullable=False),
        sa.Column("date_fired", TIMESTAMP),
        *columns.dates(),
        *columns.owner_keys("usage_triggers"),
    )
    columns.listing_index("usage_triggers")
    op.create_table(
        "usage_trigger_firings",
        sa.Column("trigger_sid", SID, nullable=False),
        sa.Column("period", sa.String(16), nullable=False),
        sa.Column("fired_at", TIMESTAMP, nullable=False),
        sa.PrimaryKeyConstraint("trigger_sid", "period", name="pk_usage_trigger_firings"),
    )
    op.create_table(
        "account_balances",
        sa.Column("account_sid", SID, nullable=False),
        sa.Column("balance", sa.String(32), nullable=False),
        sa.Column("currency", sa.String(8), nullable=False),
        sa.Column("date_updated", TIMESTAMP, nullable=False),
        sa.PrimaryKeyConstraint("account_sid", name="pk_account_balances"),
        columns.account_fk("account_balances"),
    )


def downgrade() -> None:
    op.drop_table("account_balances")
    op.drop_table("usage_trigger_firings")
    op.drop_index("ix_usage_triggers_account_sid_date_created", table_name="usage_triggers")
    op.drop_table("usage_triggers")
    op.drop_index("ix_usage_items_account_sid_occurred_at", table_name="usage_items")
    op.drop_table("usage_items")
    op.drop_index("ix_messages_carrier_carrier_message_id", table_name="messages")
    op.drop_index("ix_messages_status_next_attempt_at", table_name="messages")
    op.drop_index("ix_messages_account_sid_date_created", table_name="messages")
    op.drop_table("messages")
