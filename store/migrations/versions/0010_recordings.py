"""call recordings kept as evidence (issue 14 item 7)

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-03 09:10:00

call_recordings holds one row per recording Twilio made of a call's conference when the centre
records calls (CALLFLOW_RECORDING): the call, Twilio's RecordingSid, its status and length.
Retention deletes the row, and the recording at Twilio, with the call log.
"""

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "call_recordings",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("call_sid", sa.String(length=64), nullable=False),
        sa.Column("recording_sid", sa.String(length=34), nullable=False),
        sa.Column("conference_sid", sa.String(length=34), nullable=True),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("duration_seconds", sa.Integer(), nullable=True),
        sa.Column("recording_url", sa.String(length=2048), nullable=True),
        sa.Column("received_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("recording_sid"),
    )
    with op.batch_alter_table("call_recordings", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_call_recordings_call_sid"), ["call_sid"],
                              unique=False)
        batch_op.create_index(batch_op.f("ix_call_recordings_received_at"), ["received_at"],
                              unique=False)


def downgrade() -> None:
    with op.batch_alter_table("call_recordings", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_call_recordings_received_at"))
        batch_op.drop_index(batch_op.f("ix_call_recordings_call_sid"))
    op.drop_table("call_recordings")
