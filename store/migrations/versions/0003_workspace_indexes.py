"""indexes for the workspace's call log: keyset pages under every filter

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-01 09:00:00

The log pages newest first by (started_at, id). A filter on a column needs an index that leads
with that column and then gives (started_at, id) in order; a filter on a rare flag (warned,
voicemail, ...) needs a partial index, or the seek reads every call to find fifty.

SQLite appends the rowid (calls.id) to every index, so its 0001 indexes on (column, started_at)
already serve; PostgreSQL needs id spelled out. Partial index predicates are written the way
SQLAlchemy renders a bare boolean column on each database, so the planners match them.
"""

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

FLAGS = ("warned", "ended_by_agent", "incident", "voicemail", "emergency", "withheld",
         "lookup_failed")
POSTGRES_SEEKS = ("from_number", "entry_id", "decision", "agent_id")


def upgrade() -> None:
    dialect = op.get_bind().dialect.name
    for flag in FLAGS:
        op.create_index(
            f"ix_calls_{flag}_started", "calls", ["started_at", "id"],
            sqlite_where=sa.text(f"{flag} = 1"), postgresql_where=sa.text(flag),
        )
    if dialect == "postgresql":
        for column in POSTGRES_SEEKS:
            op.create_index(f"ix_calls_{column}_seek", "calls", [column, "started_at", "id"])
    # Retention and subject access find a person's proposals by number and reference.
    op.create_index("ix_proposals_phone_number", "proposals", ["phone_number"])
    op.create_index("ix_proposals_customer_ref", "proposals", ["customer_ref"])


def downgrade() -> None:
    dialect = op.get_bind().dialect.name
    op.drop_index("ix_proposals_customer_ref", table_name="proposals")
    op.drop_index("ix_proposals_phone_number", table_name="proposals")
    if dialect == "postgresql":
        for column in POSTGRES_SEEKS:
            op.drop_index(f"ix_calls_{column}_seek", table_name="calls")
    for flag in FLAGS:
        op.drop_index(f"ix_calls_{flag}_started", table_name="calls")
