"""Outgoing caller IDs (PN…, verified by a validation call) and messages' media (ME…).

Revision ID: 0015_caller_ids_and_media
Revises: 0014_call_logs
Create Date: 2026-12-05
"""

import sqlalchemy as sa
from alembic import op

from control_api.store.migrations.columns import SID, dates, owner, owner_keys

revision = "0015_caller_ids_and_media"
down_revision = "0014_call_logs"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "outgoing_caller_ids",
        *owner(),
        sa.Column("phone_number", sa.String(16), nullable=False),
        sa.Column("friendly_name", sa.String(64), nullable=True),
        *dates(),
        *owner_keys("outgoing_caller_ids"),
        sa.UniqueConstraint(
            "account_sid", "phone_number", name="uq_outgoing_caller_ids_account_sid_phone_number"
        ),
    )
    op.create_table(
        "message_media",
        *owner(),
        sa.Column("message_sid", SID, nullable=False),
        sa.Column("content_type", sa.String(128), nullable=False),
        sa.Column("content", sa.LargeBinary(), nullable=False),
        *dates(),
        *owner_keys("message_media"),
    )
    op.create_index(
        "ix_message_media_message_sid_date_created",
        "message_media",
        ["message_sid", "date_created"],
    )


def downgrade() -> None:
    op.drop_index("ix_message_media_message_sid_date_created", table_name="message_media")
    op.drop_table("message_media")
    op.drop_table("outgoing_caller_ids")
