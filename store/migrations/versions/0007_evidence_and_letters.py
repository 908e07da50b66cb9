"""evidence for a restriction, the person's postal address, and why they are not told

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-03 09:10:00

register_entries gains (issue 13, items 1 and 6):
- evidence: what a restriction rests on (incidents, calls, warning letters, written records),
  as a JSON list of {"kind", "reference"} (policy 5.1);
- no_warning_reason: why no formal warning letter came first (for example threats, 4.3);
- postal_address: where letters go, one line per line;
- not_told_reason: why the customer is not told in writing (for example their safety); while
  it is set no letter is queued for them.

Existing entries get empty values; the evidence rule applies to new restrictions only.
"""

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

_TEXT_COLUMNS = ("postal_address", "no_warning_reason", "not_told_reason")


def upgrade() -> None:
    with op.batch_alter_table("register_entries", schema=None) as batch_op:
        batch_op.add_column(sa.Column("postal_address", sa.Text(), nullable=False,
                                      server_default=""))
        batch_op.add_column(sa.Column("evidence", sa.JSON(), nullable=False,
                                      server_default="[]"))
        batch_op.add_column(sa.Column("no_warning_reason", sa.Text(), nullable=False,
                                      server_default=""))
        batch_op.add_column(sa.Column("not_told_reason", sa.Text(), nullable=False,
                                      server_default=""))
    # The defaults only fill existing rows; the application always writes these columns.
    with op.batch_alter_table("register_entries", schema=None) as batch_op:
        for name in (*_TEXT_COLUMNS, "evidence"):
            batch_op.alter_column(name, server_default=None)


def downgrade() -> None:
    with op.batch_alter_table("register_entries", schema=None) as batch_op:
        for name in ("not_told_reason", "no_warning_reason", "evidence", "postal_address"):
            batch_op.drop_column(name)
