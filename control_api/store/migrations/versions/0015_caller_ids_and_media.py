"""Outgoing caller IDs (PN…, verified by a validation call) and messages' media (ME…).

Revision ID: 0015_caller_ids_and_media
Revises: 0014_call_logs
Create Date: 2026-12-05
"""

import sqlalchemy as sa
from alembic import op

revision = "0015_caller_ids_and_media"
down_revision = "0014_call_logs"
branch_labels = None
depends_on = None

SID = sa.String(34)
TIMESTAMP = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "outgoing_caller_ids",
        sa.Column("sid", SID, nullable=False),
        sa.Column("account_sid", SID, nullable=False),
        sa.Column("phone_number", sa.String(16), nullable=False),
        sa.Column("friendly_name", sa.String(64), nullable=True),
        sa.Column("date_created", TIMESTAMP, nullable=False),
        sa.Column("date_updated", TIMESTAMP, nullable=False),
        sa.PrimaryKeyConstraint("sid", name="pk_outgoing_caller_ids"),
        sa.ForeignKeyConstraint(
            ["account_sid"], ["accounts.sid"], name="fk_outgoing_caller_ids_account_sid_accounts"
        ),
        sa.UniqueConstraint(
            "account_sid", "phone_number", name="uq_outgoing_caller_ids_account_sid_phone_number"
        ),
    )
    op.create_table(
        "message_media",
        sa.Column("sid", SID, nullable=False),
        sa.Column("account_sid", SID, nullable=False),
        sa.Column("message_sid", SID, nullable=False),
        sa.Column("content_type", sa.String(128), nullable=False),
        sa.Column("content", sa.LargeBinary(), nullable=False),
        sa.Column("date_created", TIMESTAMP, nullable=False),
        sa.Column("date_updated", TIMESTAMP, nullable=False),
        sa.PrimaryKeyConstraint("sid", name="pk_message_media"),
        sa.ForeignKeyConstraint(
            ["account_sid"], ["accounts.sid"], name="fk_message_media_account_sid_accounts"
        ),
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
