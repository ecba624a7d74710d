"""Transcriptions of recordings (TR…): ``<Record transcribe>``.

Revision ID: 0017_transcriptions
Revises: 0016_participant_coach
Create Date: 2026-12-05
"""

import sqlalchemy as sa
from alembic import op

from control_api.store.migrations.columns import (
    SID,
    dates,
    listing_index,
    owner,
    owner_keys,
    prices,
)

revision = "0017_transcriptions"
down_revision = "0016_participant_coach"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "transcriptions",
        *owner(),
        sa.Column("recording_sid", SID, nullable=False),
        sa.Column("call_sid", SID, nullable=True),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("transcription_text", sa.Text(), nullable=True),
        sa.Column("duration", sa.Integer(), nullable=True),
        *prices(),
        sa.Column("type", sa.String(16), nullable=False),
        *dates(),
        *owner_keys("transcriptions"),
    )
    op.create_index("ix_transcriptions_recording_sid", "transcriptions", ["recording_sid"])
    listing_index("transcriptions")


def downgrade() -> None:
    op.drop_index("ix_transcriptions_account_sid_date_created", table_name="transcriptions")
    op.drop_index("ix_transcriptions_recording_sid", table_name="transcriptions")
    op.drop_table("transcriptions")
