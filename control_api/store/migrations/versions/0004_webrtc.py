"""API keys and applications, for browser (WebRTC) clients' access tokens.

Revision ID: 0004_webrtc
Revises: 0003_sms
Create Date: 2026-12-03
"""

import sqlalchemy as sa
from alembic import op

from control_api.store.migrations import columns

revision = "0004_webrtc"
down_revision = "0003_sms"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "api_keys",
        *columns.owner(),
        sa.Column("friendly_name", sa.String(64), nullable=False),
        sa.Column("secret", sa.String(64), nullable=False),
        *columns.dates(),
        *columns.owner_keys("api_keys"),
    )
    op.create_index("ix_api_keys_account_sid", "api_keys", ["account_sid"])
    op.create_table(
        "applications",
        *columns.owner(),
        sa.Column("friendly_name", sa.String(64), nullable=False),
        *columns.voice_webhooks(),
        *columns.dates(),
        *columns.owner_keys("applications"),
    )
    op.create_index("ix_applications_account_sid", "applications", ["account_sid"])


def downgrade() -> None:
    op.drop_index("ix_applications_account_sid", table_name="applications")
    op.drop_table("applications")
    op.drop_index("ix_api_keys_account_sid", table_name="api_keys")
    op.drop_table("api_keys")
