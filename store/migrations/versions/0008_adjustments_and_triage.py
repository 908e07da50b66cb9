"""reasonable adjustments and representatives on an entry; the triage queue

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-03 09:10:00

Issue 13 items 4 and 7. register_entries gains the person's needs (adjustments, JSON), the
manager's reason for written-only contact despite a writing barrier (written_only_exception),
and their representatives (JSON: name, relationship, numbers, covered). representative_phones
holds each representative's number so the call path can find it; triage_items holds each
voicemail or message a person on the register left, and the outcome staff recorded.
Existing entries get no needs and no representatives.
"""

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("register_entries", schema=None) as batch_op:
        batch_op.add_column(sa.Column("adjustments", sa.JSON(), nullable=False,
                                      server_default="[]"))
        batch_op.add_column(sa.Column("written_only_exception", sa.Text(), nullable=False,
                                      server_default=""))
        batch_op.add_column(sa.Column("representatives", sa.JSON(), nullable=False,
                                      server_default="[]"))
    # The defaults filled the existing rows; the models give every new row its own.
    with op.batch_alter_table("register_entries", schema=None) as batch_op:
        batch_op.alter_column("adjustments", server_default=None)
        batch_op.alter_column("written_only_exception", server_default=None)
        batch_op.alter_column("representatives", server_default=None)

    op.create_table(
        "representative_phones",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("entry_id", sa.Integer(), nullable=False),
        sa.Column("number", sa.String(length=32), nullable=False),
        sa.Column("covered", sa.Boolean(), nullable=False),
        sa.ForeignKeyConstraint(["entry_id"], ["register_entries.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("representative_phones", schema=None) as batch_op:
        batch_op.create_index("ix_representative_phones_number", ["number"], unique=False)
        batch_op.create_index(batch_op.f("ix_representative_phones_entry_id"), ["entry_id"],
                              unique=False)

    op.create_table(
        "triage_items",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("call_sid", sa.String(length=64), nullable=True),
        sa.Column("entry_id", sa.Integer(), nullable=True),
        sa.Column("customer_ref", sa.String(length=64), nullable=False),
        sa.Column("source", sa.String(length=20), nullable=False),
        sa.Column("received_at", sa.DateTime(), nullable=False),
        sa.Column("recording_url", sa.String(length=2048), nullable=True),
        sa.Column("summary", sa.Text(), nullable=False),
        sa.Column("outcome", sa.String(length=32), nullable=True),
        sa.Column("notes", sa.Text(), nullable=False),
        sa.Column("handled_by_id", sa.Integer(), nullable=True),
        sa.Column("handled_at", sa.DateTime(), nullable=True),
        sa.ForeignKeyConstraint(["entry_id"], ["register_entries.id"], ondelete="SET NULL"),
        sa.ForeignKeyConstraint(["handled_by_id"], ["staff.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("call_sid"),
    )
    with op.batch_alter_table("triage_items", schema=None) as batch_op:
        batch_op.create_index("ix_triage_items_open", ["handled_at", "received_at"], unique=False)
        batch_op.create_index(batch_op.f("ix_triage_items_entry_id"), ["entry_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_triage_items_customer_ref"), ["customer_ref"],
                              unique=False)


def downgrade() -> None:
    with op.batch_alter_table("triage_items", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_triage_items_customer_ref"))
        batch_op.drop_index(batch_op.f("ix_triage_items_entry_id"))
        batch_op.drop_index("ix_triage_items_open")
    op.drop_table("triage_items")
    with op.batch_alter_table("representative_phones", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_representative_phones_entry_id"))
        batch_op.drop_index("ix_representative_phones_number")
    op.drop_table("representative_phones")
    with op.batch_alter_table("register_entries", schema=None) as batch_op:
        batch_op.drop_column("representatives")
        batch_op.drop_column("written_only_exception")
        batch_op.drop_column("adjustments")
