"""Call logs: the errors and warnings a call met (Notifications, NO…) and the webhook
requests it made with their answers (Calls/{CA}/Events).

Revision ID: 0014_call_logs
Revises: 0013_signing_keys
Create Date: 2026-12-05
"""

import sqlalchemy as sa
from alembic import op

from control_api.store.migrations.columns import (
    METHOD,
    SID,
    TIMESTAMP,
    account_fk,
    dates,
    owner,
    owner_keys,
    serial_id,
)

revision = "0014_call_logs"
down_revision = "0013_signing_keys"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "notifications",
        *owner(),
        sa.Column("call_sid", SID, nullable=True),
        sa.Column("log", sa.Integer(), nullable=False),
        sa.Column("error_code", sa.String(8), nullable=True),
        sa.Column("message_text", sa.Text(), nullable=False),
        sa.Column("request_url", sa.Text(), nullable=True),
        sa.Column("request_method", METHOD, nullable=True),
        sa.Column("request_variables", sa.Text(), nullable=True),
        sa.Column("response_headers", sa.Text(), nullable=True),
        sa.Column("response_body", sa.Text(), nullable=True),
        sa.Column("message_date", TIMESTAMP, nullable=False),
        *dates(),
        *owner_keys("notifications"),
    )
    op.create_index("ix_notifications_call_sid", "notifications", ["call_sid"])
    op.create_index(
        "ix_notifications_account_sid_message_date",
        "notifications",
        ["account_sid", "message_date"],
    )
    op.create_table(
        "call_events",
        serial_id(),
        sa.Column("call_sid", SID, nullable=False),
        sa.Column("account_sid", SID, nullable=False),
        sa.Column("request_method", METHOD, nullable=False),
        sa.Column("request_url", sa.Text(), nullable=False),
        sa.Column("request_parameters", sa.JSON(), nullable=False),
        sa.Column("response_code", sa.Integer(), nullable=True),
        sa.Column("request_duration", sa.Integer(), nullable=False),
        sa.Column("content_type", sa.Text(), nullable=True),
        sa.Column("response_body", sa.Text(), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("date_created", TIMESTAMP, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_call_events"),
        account_fk("call_events"),
    )
    op.create_index("ix_call_events_call_sid", "call_events", ["call_sid"])


def downgrade() -> None:
    op.drop_index("ix_call_events_call_sid", table_name="call_events")
    op.drop_table("call_events")
    op.drop_index("ix_notifications_account_sid_message_date", table_name="notifications")
    op.drop_index("ix_notifications_call_sid", table_name="notifications")
    op.drop_table("notifications")
