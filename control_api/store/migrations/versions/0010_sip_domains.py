"""SIP domains, IP access control lists and their IP addresses, and the lists mapped
to a domain (who may call it, who may register to it).

Revision ID: 0010_sip_domains
Revises: 0009_sip_usernames_per_account
Create Date: 2026-12-05
"""

import sqlalchemy as sa
from alembic import op

from control_api.store.migrations import columns
from control_api.store.migrations.columns import SID

revision = "0010_sip_domains"
down_revision = "0009_sip_usernames_per_account"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "sip_domains",
        *columns.owner(),
        sa.Column("friendly_name", sa.String(64)),
        sa.Column("domain_name", sa.String(253), nullable=False),
        *columns.webhook("voice_url", "voice_method"),
        *columns.webhook("voice_fallback_url", "voice_fallback_method"),
        *columns.webhook("voice_status_callback_url", "voice_status_callback_method"),
        sa.Column("sip_registration", sa.Boolean(), nullable=False),
        sa.Column("emergency_calling_enabled", sa.Boolean(), nullable=False),
        sa.Column("secure", sa.Boolean(), nullable=False),
        sa.Column("byoc_trunk_sid", SID),
        sa.Column("emergency_caller_sid", SID),
        *columns.dates(),
        *columns.owner_keys("sip_domains"),
        sa.UniqueConstraint("domain_name", name="uq_sip_domains_domain_name"),
    )
    op.create_index("ix_sip_domains_account_sid", "sip_domains", ["account_sid"])
    op.create_table(
        "sip_ip_access_control_lists",
        *columns.owner(),
        sa.Column("friendly_name", sa.String(255), nullable=False),
        *columns.dates(),
        *columns.owner_keys("sip_ip_access_control_lists"),
    )
    op.create_index(
        "ix_sip_ip_access_control_lists_account_sid",
        "sip_ip_access_control_lists",
        ["account_sid"],
    )
    op.create_table(
        "sip_ip_addresses",
        *columns.entry("ip_access_control_list_sid"),
        sa.Column("friendly_name", sa.String(255), nullable=False),
        sa.Column("ip_address", sa.String(45), nullable=False),
        sa.Column("cidr_prefix_length", sa.Integer(), nullable=False),
        *columns.dates(),
        *columns.entry_keys(
            "sip_ip_addresses",
            "ip_access_control_list_sid",
            "sip_ip_access_control_lists",
            "fk_sip_ip_addresses_list",
        ),
    )
    columns.entry_index("sip_ip_addresses", "ip_access_control_list_sid")
    op.create_table(
        "sip_domain_mappings",
        sa.Column("domain_sid", SID, nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("sid", SID, nullable=False),
        sa.Column("account_sid", SID, nullable=False),
        *columns.dates(),
        sa.PrimaryKeyConstraint("domain_sid", "kind", "sid", name="pk_sip_domain_mappings"),
        sa.ForeignKeyConstraint(
            ["domain_sid"],
            ["sip_domains.sid"],
            name="fk_sip_domain_mappings_domain_sid_sip_domains",
        ),
        columns.account_fk("sip_domain_mappings"),
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
