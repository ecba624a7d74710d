"""SIP domains, IP access control lists and their IP addresses, and the lists mapped
to a domain (who may call it, who may register to it).

Revision ID: 0010_sip_domains
Revises: 0009_sip_usernames_per_account
Create Date: 2026-12-05
"""

import sqlalchemy as sa
from alembic import op

revision = "0010_sip_domains"
down_revision = "0009_sip_usernames_per_account"
branch_labels = None
depends_on = None

SID = sa.String(34)
METHOD = sa.String(8)
TIMESTAMP = sa.DateTime(timezone=True)


def _account(table: str) -> sa.ForeignKeyConstraint:
    return sa.ForeignKeyConstraint(
        ["account_sid"], ["accounts.sid"], name=f"fk_{table}_account_sid_accounts"
    )


def _dates() -> list[sa.Column]:
    return [
        sa.Column("date_created", TIMESTAMP, nullable=False),
        sa.Column("date_updated", TIMESTAMP, nullable=False),
    ]


def upgrade() -> None:
    op.create_table(
        "sip_domains",
        sa.Column("sid", SID, nullable=False),
        sa.Column("account_sid", SID, nullable=False),
        sa.Column("friendly_name", sa.String(64)),
        sa.Column("domain_name", sa.String(253), nullable=False),
        sa.Column("voice_url", sa.Text()),
        sa.Column("voice_method", METHOD, nullable=False),
        sa.Column("voice_fallback_url", sa.Text()),
        sa.Column("voice_fallback_method", METHOD, nullable=False),
        sa.Column("voice_status_callback_url", sa.Text()),
        sa.Column("voice_status_callback_method", METHOD, nullable=False),
        sa.Column("sip_registration", sa.Boolean(), nullable=False),
        sa.Column("emergency_calling_enabled", sa.Boolean(), nullable=False),
        sa.Column("secure", sa.Boolean(), nullable=False),
        sa.Column("byoc_trunk_sid", SID),
        sa.Column("emergency_caller_sid", SID),
        *_dates(),
        sa.PrimaryKeyConstraint("sid", name="pk_sip_domains"),
        sa.UniqueConstraint("domain_name", name="uq_sip_domains_domain_name"),
        _account("sip_domains"),
    )
    op.create_index("ix_sip_domains_account_sid", "sip_domains", ["account_sid"])
    op.create_table(
        "sip_ip_access_control_lists",
        sa.Column("sid", SID, nullable=False),
        sa.Column("account_sid", SID, nullable=False),
        sa.Column("friendly_name", sa.String(255), nullable=False),
        *_dates(),
        sa.PrimaryKeyConstraint("sid", name="pk_sip_ip_access_control_lists"),
        _account("sip_ip_access_control_lists"),
    )
    op.create_index(
        "ix_sip_ip_access_control_lists_account_sid",
        "sip_ip_access_control_lists",
        ["account_sid"],
    )
    op.create_table(
        "sip_ip_addresses",
        sa.Column("sid", SID, nullable=False),
        sa.Column("ip_access_control_list_sid", SID, nullable=False),
        sa.Column("account_sid", SID, nullable=False),
        sa.Column("friendly_name", sa.String(255), nullable=False),
        sa.Column("ip_address", sa.String(45), nullable=False),
        sa.Column("cidr_prefix_length", sa.Integer(), nullable=False),
        *_dates(),
        sa.PrimaryKeyConstraint("sid", name="pk_sip_ip_addresses"),
        sa.ForeignKeyConstraint(
            ["ip_access_control_list_sid"],
            ["sip_ip_access_control_lists.sid"],
            name="fk_sip_ip_addresses_list",
        ),
        _account("sip_ip_addresses"),
    )
    op.create_index(
        "ix_sip_ip_addresses_ip_access_control_list_sid",
        "sip_ip_addresses",
        ["ip_access_control_list_sid"],
    )
    op.create_table(
        "sip_domain_mappings",
        sa.Column("domain_sid", SID, nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("sid", SID, nullable=False),
        sa.Column("account_sid", SID, nullable=False),
        *_dates(),
        sa.PrimaryKeyConstraint("domain_sid", "kind", "sid", name="pk_sip_domain_mappings"),
        sa.ForeignKeyConstraint(
            ["domain_sid"],
            ["sip_domains.sid"],
            name="fk_sip_domain_mappings_domain_sid_sip_domains",
        ),
        _account("sip_domain_mappings"),
    )
    op.create_index("ix_sip_domain_mappings_sid", "sip_domain_mappings", ["sid"])


def downgrade() -> None:
    op.drop_index("ix_sip_domain_mappings_sid", table_name="sip_domain_mappings")
    op.drop_table("sip_domain_mappings")
    op.drop_index("ix_sip_ip_addresses_ip_access_control_list_sid", table_name="sip_ip_addresses")
    op.drop_table("sip_ip_addresses")
    op.drop_index(
        "ix_sip_ip_access_control_lists_account_sid", table_name="sip_ip_access_control_lists"
    )
    op.drop_table("sip_ip_access_control_lists")
    op.drop_index("ix_sip_domains_account_sid", table_name="sip_domains")
    op.drop_table("sip_domains")
