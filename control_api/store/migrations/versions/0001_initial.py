"""Accounts, phone numbers, calls and the webhook outbox.

Revision ID: 0001
Revises:
Create Date: 2026-11-25

Written out rather than built from ``schema.metadata``: a migration is a record of
what the schema was at that revision and must not change when the tables do. Its
column groups come from ``migrations/columns.py``, which is frozen for that reason.
"""

import sqlalchemy as sa
from alembic import op

from control_api.store.migrations import columns
from control_api.store.migrations.columns import METHOD, SID, TIMESTAMP

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "accounts",
        sa.Column("sid", SID, nullable=False),
        sa.Column("friendly_name", sa.String(64), nullable=False),
        sa.Column("auth_token", sa.String(64), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        *columns.dates(),
        sa.PrimaryKeyConstraint("sid", name="pk_accounts"),
    )
    op.create_table(
        "phone_numbers",
        *columns.owner(),
        sa.Column("phone_number", sa.String(16), nullable=False),
        sa.Column("friendly_name", sa.String(64), nullable=False),
        *columns.voice_webhooks(),
        sa.Column("sms_url", sa.Text()),
        sa.Column("sms_method", METHOD, nullable=False),
        sa.Column("sms_fallback_url", sa.Text()),
        sa.Column("sms_fallback_method", METHOD, nullable=False),
        sa.Column("voice_application_sid", SID),
        sa.Column("sms_application_sid", SID),
        *columns.dates(),
        *columns.owner_keys("phone_numbers"),
        sa.UniqueConstraint("phone_number", name="uq_phone_numbers_phone_number"),
    )
    columns.listing_index("phone_numbers")
    op.create_table(
        "calls",
        *columns.owner(),
        sa.Column("parent_call_sid", SID),
        sa.Column("to_address", sa.Text(), nullable=False),
        sa.Column("from_address", sa.Text(), nullable=False),
        sa.Column("phone_number_sid", SID),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("direction", sa.String(16), nullable=False),
        sa.Column("start_time", TIMESTAMP),
        sa.Column("end_time", TIMESTAMP),
        sa.Column("duration", sa.Integer()),
        *columns.prices(),
        sa.Column("answered_by", sa.String(32)),
        sa.Column("forwarded_from", sa.Text()),
        sa.Column("caller_name", sa.Text()),
        sa.Column("sip_call_id", sa.Text()),
        *columns.dates(),
        *columns.owner_keys("calls"),
    )
    columns.listing_index("calls")
    op.create_index("ix_calls_parent_call_sid", "calls", ["parent_call_sid"])
    op.create_table(
        "webhook_outbox",
        columns.serial_id(),
        sa.Column("delivery_id", sa.String(64), nullable=False),
        sa.Column("account_sid", SID, nullable=False),
        sa.Column("url", sa.Text(), nullable=False),
        sa.Column("method", METHOD, nullable=False),
        sa.Column("params", sa.JSON(), nullable=False),
        sa.Column("call_sid", SID),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("next_attempt_at", TIMESTAMP, nullable=False),
        sa.Column("created_at", TIMESTAMP, nullable=False),
        sa.Column("delivered_at", TIMESTAMP),
        sa.Column("abandoned_at", TIMESTAMP),
        sa.Column("last_error", sa.Text()),
        sa.PrimaryKeyConstraint("id", name="pk_webhook_outbox"),
        sa.UniqueConstraint("delivery_id", name="uq_webhook_outbox_delivery_id"),
    )
    op.create_index("ix_webhook_outbox_next_attempt_at", "webhook_outbox", ["next_attempt_at"])


def downgrade() -> None:
    op.drop_table("webhook_outbox")
    op.drop_table("calls")
    op.drop_table("phone_numbers")
    op.drop_table("accounts")
