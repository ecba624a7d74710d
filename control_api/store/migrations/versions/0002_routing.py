"""SIP credentials, recordings, conferences and their participants.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-26

Written out, like 0001: the record of what these tables were at this revision.
"""

import sqlalchemy as sa
from alembic import op

from control_api.store.migrations import columns
from control_api.store.migrations.columns import SID, TIMESTAMP

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "sip_credential_lists",
        *columns.owner(),
        sa.Column("friendly_name", sa.String(64), nullable=False),
        *columns.dates(),
        *columns.owner_keys("sip_credential_lists"),
        sa.UniqueConstraint(
            "account_sid",
            "friendly_name",
            name="uq_sip_credential_lists_account_sid_friendly_name",
        ),
    )
    op.create_table(
        "sip_credentials",
        *columns.entry("credential_list_sid"),
        sa.Column("username", sa.String(32), nullable=False),
        sa.Column("ha1_md5", sa.String(32), nullable=False),
        sa.Column("ha1_sha256", sa.String(64), nullable=False),
        *columns.dates(),
        *columns.entry_keys(
            "sip_credentials",
            "credential_list_sid",
            "sip_credential_lists",
            "fk_sip_credentials_credential_list_sid_sip_credential_lists",
        ),
        sa.UniqueConstraint("username", name="uq_sip_credentials_username"),
    )
    columns.entry_index("sip_credentials", "credential_list_sid")
    op.create_table(
        "recordings",
        *columns.owner(),
        sa.Column("call_sid", SID),
        sa.Column("conference_sid", SID),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("source", sa.String(32), nullable=False),
        sa.Column("channels", sa.Integer(), nullable=False),
        sa.Column("duration", sa.Integer()),
        sa.Column("start_time", TIMESTAMP),
        *columns.prices(),
        sa.Column("error_code", sa.Integer()),
        sa.Column("track", sa.String(16), nullable=False),
        sa.Column("file_path", sa.Text()),
        *columns.dates(),
        *columns.owner_keys("recordings"),
    )
    columns.listing_index("recordings")
    op.create_index("ix_recordings_call_sid", "recordings", ["call_sid"])
    op.create_index("ix_recordings_conference_sid", "recordings", ["conference_sid"])
    op.create_table(
        "conferences",
        *columns.owner(),
        sa.Column("friendly_name", sa.String(128), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("region", sa.String(8), nullable=False),
        sa.Column("reason_conference_ended", sa.String(64)),
        sa.Column("call_sid_ending_conference", SID),
        *columns.dates(),
        *columns.owner_keys("conferences"),
    )
    columns.listing_index("conferences")
    op.create_index(
        "ix_conferences_account_sid_friendly_name", "conferences", ["account_sid", "friendly_name"]
    )
    op.create_table(
        "conference_participants",
        sa.Column("conference_sid", SID, nullable=False),
        sa.Column("call_sid", SID, nullable=False),
        sa.Column("account_sid", SID, nullable=False),
        sa.Column("label", sa.String(128)),
        sa.Column("muted", sa.Boolean(), nullable=False),
        sa.Column("hold", sa.Boolean(), nullable=False),
        sa.Column("coaching", sa.Boolean(), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("start_conference_on_enter", sa.Boolean(), nullable=False),
        sa.Column("end_conference_on_exit", sa.Boolean(), nullable=False),
        *columns.dates(),
        sa.PrimaryKeyConstraint("conference_sid", "call_sid", name="pk_conference_participants"),
        sa.ForeignKeyConstraint(
            ["conference_sid"],
            ["conferences.sid"],
            name="fk_conference_participants_conference_sid_conferences",
        ),
        columns.account_fk("conference_participants"),
    )


def downgrade() -> None:
    op.drop_table("conference_participants")
    op.drop_table("conferences")
    op.drop_index("ix_recordings_conference_sid", table_name="recordings")
    op.drop_index("ix_recordings_call_sid", table_name="recordings")
    op.drop_index("ix_recordings_account_sid_date_created", table_name="recordings")
    op.drop_table("recordings")
    op.drop_index("ix_sip_credentials_credential_list_sid", table_name="sip_credentials")
    op.drop_table("sip_credentials")
    op.drop_table("sip_credential_lists")
