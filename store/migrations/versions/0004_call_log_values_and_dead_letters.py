"""call log values at Twilio's real sizes, the status callback's sequence, dead letters

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-03 03:10:00

From and To may be a SIP URI or a client: identity (up to ~255 characters), and recording URLs
may be long. Widening a VARCHAR is a catalogue change on PostgreSQL; SQLite does not enforce
lengths, but its declared types are kept in step so that the models and the schema agree.
calls.status_sequence keeps Twilio's SequenceNumber of the callback that set status, so a late,
earlier callback cannot overwrite it. dead_letters holds stream entries the call log refused.
"""

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

WIDENED = (("from_number", 32, 255), ("to_number", 32, 255), ("recording_url", 500, 2048))


def upgrade() -> None:
    with op.batch_alter_table("calls", schema=None) as batch_op:
        batch_op.add_column(sa.Column("status_sequence", sa.Integer(), nullable=True))
        for column, old, new in WIDENED:
            batch_op.alter_column(column, existing_type=sa.String(length=old),
                                  type_=sa.String(length=new), existing_nullable=True)

    op.create_table(
        "dead_letters",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("stream_id", sa.String(length=64), nullable=False),
        sa.Column("call_sid", sa.String(length=64), nullable=True),
        sa.Column("fields", sa.Text(), nullable=False),
        sa.Column("error_type", sa.String(length=100), nullable=False),
        sa.Column("error", sa.String(length=500), nullable=False),
        sa.Column("failed_at", sa.DateTime(), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("stream_id"),
    )
    with op.batch_alter_table("dead_letters", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_dead_letters_call_sid"), ["call_sid"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("dead_letters", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_dead_letters_call_sid"))
    op.drop_table("dead_letters")

    with op.batch_alter_table("calls", schema=None) as batch_op:
        for column, old, new in WIDENED:
            batch_op.alter_column(column, existing_type=sa.String(length=new),
                                  type_=sa.String(length=old), existing_nullable=True)
        batch_op.drop_column("status_sequence")
