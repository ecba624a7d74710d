"""A phone number's type: "local", "mobile" or "toll-free" (Twilio's ``type``).

Set by the list a number is created through (``IncomingPhoneNumbers/Local``,
``/Mobile``, ``/TollFree``); created through ``IncomingPhoneNumbers`` it is "toll-free"
for a North American toll-free number and "local" otherwise, as the numbers already
stored become here.

Revision ID: 0012_number_type
Revises: 0011_queues
Create Date: 2026-12-05
"""

import sqlalchemy as sa
from alembic import op

revision = "0012_number_type"
down_revision = "0011_queues"
branch_labels = None
depends_on = None

TOLL_FREE_AREA_CODES = ("800", "833", "844", "855", "866", "877", "888")


def upgrade() -> None:
    with op.batch_alter_table("phone_numbers") as table:
        table.add_column(
            sa.Column("number_type", sa.String(16), nullable=False, server_default="local")
        )
    numbers = sa.table("phone_numbers", sa.column("phone_number"), sa.column("number_type"))
    toll_free = sa.or_(
        *(numbers.c.phone_number.like(f"+1{code}_______") for code in TOLL_FREE_AREA_CODES)
    )
    op.execute(numbers.update().where(toll_free).values(number_type="toll-free"))


def downgrade() -> None:
    with op.batch_alter_table("phone_numbers") as table:
        table.drop_column("number_type")
