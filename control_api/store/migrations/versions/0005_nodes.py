"""Nodes sharing one store: their heartbeats, and which node holds each call.

Revision ID: 0005_nodes
Revises: 0004_webrtc
Create Date: 2026-12-03
"""

import sqlalchemy as sa
from alembic import op

revision = "0005_nodes"
down_revision = "0004_webrtc"
branch_labels = None
depends_on = None

TIMESTAMP = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "nodes",
        sa.Column("node_id", sa.String(64), nullable=False),
        sa.Column("url", sa.Text(), nullable=False),
        sa.Column("started_at", TIMESTAMP, nullable=False),
        sa.Column("heartbeat_at", TIMESTAMP, nullable=False),
        sa.PrimaryKeyConstraint("node_id", name="pk_nodes"),
    )
    # batch mode: SQLite cannot ALTER a table to add an index-backed column otherwise.
    with op.batch_alter_table("calls") as batch:
        batch.add_column(sa.Column("node_id", sa.String(64)))
        batch.create_index("ix_calls_node_id_status", ["node_id", "status"])


def downgrade() -> None:
    with op.batch_alter_table("calls") as batch:
        batch.drop_index("ix_calls_node_id_status")
        batch.drop_column("node_id")
    op.drop_table("nodes")
