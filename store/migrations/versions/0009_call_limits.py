"""call length and frequency limits on a register entry

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-03 09:10:00

Issue 13 item 5 (policy 4.6). register_entries gains max_calls and max_calls_per (at most so
many calls a "day" or a "week") and max_call_minutes (at most so many minutes a call). All are
empty for existing entries: no limit.
"""

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("register_entries", schema=None) as batch_op:
        batch_op.add_column(sa.Column("max_calls", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("max_calls_per", sa.String(length=8), nullable=True))
        batch_op.add_column(sa.Column("max_call_minutes", sa.Integer(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("register_entries", schema=None) as batch_op:
        batch_op.drop_column("max_call_minutes")
        batch_op.drop_column("max_calls_per")
        batch_op.drop_column("max_calls")
