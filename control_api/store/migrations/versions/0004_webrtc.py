"""API keys and applications, for browser (WebRTC) clients' access tokens.

Revision ID: 0004_webrtc
Revises: 0003_sms
Create Date: 2026-12-03
"""

import sqlalchemy as sa
from alembic import op

revision = "0004_webrtc"
down_revision = "0003_sms"
branch_labels = None
depends_on = None

SID = sa.String(34)
TIMESTAMP = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "api_keys",
        sa.Column("sid", SID, nullable=False),
        sa.Column("account_sid", SID, nullable=False),
        sa.Column("friendly_name", sa.String(64), nullable=False),
        sa.Column("secret", sa.String(64), nullable=False),
        sa.Column("date_created", TIMESTAMP, nullable=False),
        sa.Column("date_updated", TIMESTAMP, nullable=False),
        sa.PrimaryKeyConstraint("sid", name="pk_api_keys"),
        sa.ForeignKeyConstraint(
            ["account_sid"], ["accounts.sid"], name="fk_api_keys_account_sid_accounts"
        ),
    )
    op.create_index("ix_api_keys_account_sid", "api_keys", ["account_sid"])
    op.create_table(
        "applications",
        sa.Column("sid", SID, nullable=False),
        sa.Column("account_sid", SID, nullable=False),
        sa.Column("friendly_name", sa.String(64), nullable=False),
        sa.Column("voice_url", sa.Text()),
        sa.Column("voice_method", sa.String(8), nullable=False),
        sa.Column("voice_fallback_url", sa.Text()),
        sa.Column("voice_fallback_method", sa.String(8), nullable=False),
        sa.Column("status_callback", sa.Text()),
        sa.Column("status_callback_method", sa.String(8), nullable=False),
        sa.Column("date_created", TIMESTAMP, nullable=False),
        sa.Column("date_updated", TIMESTAMP, nullable=False),
        sa.PrimaryKeyConstraint("sid", name="pk_applications"),
        sa.ForeignKeyConstraint(
            ["account_sid"], ["accounts.sid"], name="fk_applications_account_sid_accounts"
        ),
    )
    op.create_index("ix_applications_account_sid", "applications", ["account_sid"])


def downgrade() -> None:
    op.drop_index("ix_applications_account_sid", table_name="applications")
    op.drop_table("applications")
    op.drop_index("ix_api_keys_account_sid", table_name="api_keys")
    op.drop_table("api_keys")
