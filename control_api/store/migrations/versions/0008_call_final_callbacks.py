"""A call's final status callback, written with the call: where it goes and with what.

The process that holds a call sends its status callbacks. When that process is lost,
the node that ends the call (control_api/cluster/node.py) sends the final one in its
place, from these columns: the URL and method the call's application asked for its
``completed`` event, and the call's webhook parameters (a JSON list of pairs).

Revision ID: 0008_call_final_callbacks
Revises: 0007_message_claims
Create Date: 2026-12-04
"""

import sqlalchemy as sa
from alembic import op

revision = "0008_call_final_callbacks"
down_revision = "0007_message_claims"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("calls") as table:
        table.add_column(sa.Column("final_callback", sa.Text))
        table.add_column(sa.Column("final_callback_method", sa.String(8)))
        table.add_column(sa.Column("callback_params", sa.JSON))


def downgrade() -> None:
    with op.batch_alter_table("calls") as table:
        table.drop_column("callback_params")
        table.drop_column("final_callback_method")
        table.drop_column("final_callback")
