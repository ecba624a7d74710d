"""Outbox claims: which node is delivering a callback, and until when (a lease).

Several nodes share one store (PostgreSQL); a node claims the due callbacks it is
about to deliver, so that no other node delivers them too. A lease that runs out
(the node died) lets another node claim the callback again. An index on pending items
by due time keeps claiming cheap however many delivered items the table holds.

Revision ID: 0006_outbox_claims
Revises: 0005_nodes
Create Date: 2026-12-03
"""

from alembic import op

from control_api.store.migrations import columns

revision = "0006_outbox_claims"
down_revision = "0005_nodes"
branch_labels = None
depends_on = None


def upgrade() -> None:
    columns.add_lease("webhook_outbox", "claimed")
    op.create_index(
        "ix_webhook_outbox_delivered_at_abandoned_at_next_attempt_at",
        "webhook_outbox",
        ["delivered_at", "abandoned_at", "next_attempt_at"],
    )


def downgrade() -> None:
    op.drop_index(
        "ix_webhook_outbox_delivered_at_abandoned_at_next_attempt_at", table_name="webhook_outbox"
    )
    columns.drop_lease("webhook_outbox", "claimed")
