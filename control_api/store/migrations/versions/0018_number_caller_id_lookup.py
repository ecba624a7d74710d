"""A phone number's ``voice_caller_id_lookup``: its calls' webhooks carry ``CallerName``.

Twilio sends ``CallerName`` only for numbers with ``VoiceCallerIdLookup=true``; here
the name is the one the carrier sent (the display name of the asserted identity or
the From). Numbers stored already keep it off.

Revision ID: 0018_number_caller_id_lookup
Revises: 0017_transcriptions
Create Date: 2026-12-05
"""

import sqlalchemy as sa
from alembic import op

revision = "0018_number_caller_id_lookup"
down_revision = "0017_transcriptions"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("phone_numbers") as table:
        table.add_column(
            sa.Column(
                "voice_caller_id_lookup", sa.Boolean(), nullable=False, server_default=sa.false()
            )
        )


def downgrade() -> None:
    with op.batch_alter_table("phone_numbers") as table:
        table.drop_column("voice_caller_id_lookup")
