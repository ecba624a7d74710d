"""SIP usernames unique per account, not across the node.

A global unique index let one tenant learn (error 21240 "already in use") and squat
another's usernames. Now ``(account_sid, username)`` is unique and ``username`` only
indexed: the registrar tries every account's credential of a REGISTER's username and
the one whose digest verifies wins.

Revision ID: 0009_sip_usernames_per_account
Revises: 0008_call_final_callbacks
Create Date: 2026-12-05
"""

from alembic import op

revision = "0009_sip_usernames_per_account"
down_revision = "0008_call_final_callbacks"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("sip_credentials") as table:
        table.drop_constraint("uq_sip_credentials_username", type_="unique")
        table.create_unique_constraint(
            "uq_sip_credentials_account_sid_username", ["account_sid", "username"]
        )
        table.create_index("ix_sip_credentials_username", ["username"])


def downgrade() -> None:
    with op.batch_alter_table("sip_credentials") as table:
        table.drop_index("ix_sip_credentials_username")
        table.drop_constraint("uq_sip_credentials_account_sid_username", type_="unique")
        table.create_unique_constraint("uq_sip_credentials_username", ["username"])
