"""a notice that no longer applies is withdrawn

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-03 04:00:00

An entry lifted or lapsed before its restriction notice was sent: the unsent notice is marked
withdrawn (with an audit record) and is no longer offered for sending.
"""

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("notices") as batch:
        batch.add_column(sa.Column("withdrawn_at", sa.DateTime(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("notices") as batch:
        batch.drop_column("withdrawn_at")
