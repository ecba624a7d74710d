"""Signing keys: an API key's ``kind``, "standard" (``Keys``) or "signing"
(``SigningKeys``); the keys already stored are standard ones.

Revision ID: 0013_signing_keys
Revises: 0012_number_type
Create Date: 2026-12-05
"""

import sqlalchemy as sa
from alembic import op

revision = "0013_signing_keys"
down_revision = "0012_number_type"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("api_keys") as table:
        table.add_column(
            sa.Column("kind", sa.String(16), nullable=False, server_default="standard")
        )


def downgrade() -> None:
    with op.batch_alter_table("api_keys") as table:
        table.drop_column("kind")
