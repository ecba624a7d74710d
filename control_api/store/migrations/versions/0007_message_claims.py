"""Message claims: which node is handing a message to its carrier, and until when.

A node marks the messages it takes from the send queue ``sending`` with its name and
a lease. On start it puts back only its own unanswered ones, and any node puts back
those whose lease ran out (their node died); a message another live node is sending
is left to it.

Revision ID: 0007_message_claims
Revises: 0006_outbox_claims
Create Date: 2026-12-04
"""

from control_api.store.migrations import columns

revision = "0007_message_claims"
down_revision = "0006_outbox_claims"
branch_labels = None
depends_on = None


def upgrade() -> None:
    columns.add_lease("messages", "sending")


def downgrade() -> None:
    columns.drop_lease("messages", "sending")
