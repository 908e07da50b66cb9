"""reviews and appeals of a restriction; every entry gets a review date

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-03 07:30:00

reviews records each manager's review (who, when, the outcome, the reasons, the next review
date) and appeals each customer's appeal (received, by what channel, the grounds, the date it
should be decided by, and the decision of a manager not involved).

Every restriction now has a review date: an entry without one is given the latest the rule
allows, six months after it starts (the default CALLFLOW_REVIEW_MAX_MONTHS), or its end date if
that comes first. The dates are worked out here in Python, the same on SQLite and PostgreSQL.
The downgrade drops the tables but keeps the review dates it set.
"""

import calendar
from datetime import date

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

MAX_REVIEW_MONTHS = 6


def _six_months_on(day: date) -> date:
    month_index = day.month - 1 + MAX_REVIEW_MONTHS
    year, month = day.year + month_index // 12, month_index % 12 + 1
    return date(year, month, min(day.day, calendar.monthrange(year, month)[1]))


def _as_date(value) -> date:
    # SQLite hands back ISO text through a bare select; PostgreSQL a date.
    return value if isinstance(value, date) else date.fromisoformat(str(value)[:10])


def upgrade() -> None:
    op.create_table(
        "reviews",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("entry_id", sa.Integer(), nullable=False),
        sa.Column("reviewed_by_id", sa.Integer(), nullable=False),
        sa.Column("reviewed_at", sa.DateTime(), nullable=False),
        sa.Column("reviewed_on", sa.Date(), nullable=False),
        sa.Column("outcome", sa.String(length=20), nullable=False),
        sa.Column("reasons", sa.Text(), nullable=False),
        sa.Column("previous_review_on", sa.Date(), nullable=True),
        sa.Column("next_review_on", sa.Date(), nullable=True),
        sa.Column("notice_id", sa.Integer(), nullable=True),
        sa.ForeignKeyConstraint(["entry_id"], ["register_entries.id"]),
        sa.ForeignKeyConstraint(["reviewed_by_id"], ["staff.id"]),
        sa.ForeignKeyConstraint(["notice_id"], ["notices.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("reviews", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_reviews_entry_id"), ["entry_id"], unique=False)

    op.create_table(
        "appeals",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("entry_id", sa.Integer(), nullable=False),
        sa.Column("received_on", sa.Date(), nullable=False),
        sa.Column("channel", sa.String(length=20), nullable=False),
        sa.Column("grounds", sa.Text(), nullable=False),
        sa.Column("recorded_by_id", sa.Integer(), nullable=False),
        sa.Column("recorded_at", sa.DateTime(), nullable=False),
        sa.Column("decide_by", sa.Date(), nullable=False),
        sa.Column("decided_by_id", sa.Integer(), nullable=True),
        sa.Column("decided_at", sa.DateTime(), nullable=True),
        sa.Column("outcome", sa.String(length=20), nullable=True),
        sa.Column("reasons", sa.Text(), nullable=False),
        sa.Column("acknowledgement_id", sa.Integer(), nullable=True),
        sa.Column("outcome_notice_id", sa.Integer(), nullable=True),
        sa.ForeignKeyConstraint(["entry_id"], ["register_entries.id"]),
        sa.ForeignKeyConstraint(["recorded_by_id"], ["staff.id"]),
        sa.ForeignKeyConstraint(["decided_by_id"], ["staff.id"]),
        sa.ForeignKeyConstraint(["acknowledgement_id"], ["notices.id"]),
        sa.ForeignKeyConstraint(["outcome_notice_id"], ["notices.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("appeals", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_appeals_entry_id"), ["entry_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_appeals_decide_by"), ["decide_by"], unique=False)

    entries = sa.table("register_entries", sa.column("id", sa.Integer()),
                       sa.column("starts_on", sa.Date()), sa.column("ends_on", sa.Date()),
                       sa.column("review_on", sa.Date()))
    connection = op.get_bind()
    undated = connection.execute(
        sa.select(entries.c.id, entries.c.starts_on, entries.c.ends_on)
        .where(entries.c.review_on.is_(None))
    ).all()
    for entry_id, starts_on, ends_on in undated:
        review_on = min(_six_months_on(_as_date(starts_on)), _as_date(ends_on))
        connection.execute(entries.update().where(entries.c.id == entry_id)
                           .values(review_on=review_on))


def downgrade() -> None:
    with op.batch_alter_table("appeals", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_appeals_decide_by"))
        batch_op.drop_index(batch_op.f("ix_appeals_entry_id"))
    op.drop_table("appeals")
    with op.batch_alter_table("reviews", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_reviews_entry_id"))
    op.drop_table("reviews")
