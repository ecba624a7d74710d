"""A conference participant's ``call_sid_to_coach``: the call it coaches, if any.

Revision ID: 0016_participant_coach
Revises: 0015_caller_ids_and_media
Create Date: 2026-12-05
"""

import sqlalchemy as sa
from alembic import op

revision = "0016_participant_coach"
down_revision = "0015_caller_ids_and_media"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("conference_participants") as batch:
        batch.add_column(sa.Column("call_sid_to_coach", sa.String(34), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("conference_participants") as batch:
        batch.drop_column("call_sid_to_coach")
