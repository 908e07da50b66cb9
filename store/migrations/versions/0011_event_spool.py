"""the event spool: call events kept in the database while Redis is down

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-03 09:10:00

When Redis cannot take a request's call events, the web process writes them here (the system of
record every host shares) and falls back to its local disk spool only when the database does
not answer either. A pump replays the rows into the stream, in id order, once Redis is back.
"""

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "event_spool",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("call_sid", sa.String(length=64), nullable=False),
        sa.Column("fields", sa.Text(), nullable=False),
        sa.Column("spooled_at", sa.DateTime(), nullable=False),
        sa.Column("host", sa.String(length=255), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("event_spool", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_event_spool_call_sid"), ["call_sid"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("event_spool", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_event_spool_call_sid"))
    op.drop_table("event_spool")
