"""Call-event stream entries the call log refused, set aside with why, so that none blocks the rest.

An admin lists them (`callflow events dead-letters`, the workspace's page) and retries them
(`callflow events retry`) once whatever refused them is put right.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from datetime import datetime

from sqlalchemy import delete, func, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import DataError, DBAPIError, IntegrityError, StatementError
from sqlalchemy.orm import Session

from store.call_log import clean_text
from store.models import DeadLetter

# Errors about an entry's own values: retrying the same entry as it is would fail the same way.
# A lost connection, a lock time-out or a server going away (OperationalError and the like) is
# not among them: those entries stay pending and are retried.
_DATA_ERRORS = (DataError, IntegrityError, ValueError, TypeError, KeyError, AttributeError)

PLAIN_REASONS = {
    "DataError": "The database refused a value in it (too long, out of range or not allowed).",
    "IntegrityError": "It refers to something the database does not hold, such as a member of "
                      "staff or a register entry that no longer exists.",
    "StatementError": "A value in it could not be stored (for example a time without a time "
                      "zone).",
    "JSONDecodeError": "It could not be read: it is not a call event as the service writes them.",
    "KeyError": "It could not be read: part of it is missing.",
}
OTHER_REASON = "The call log could not store it."

_QUOTED = re.compile(r"\"[^\"]*\"|'[^']*'|\([^()]*=[^()]*\)")
_DIGITS = re.compile(r"\+?\d[\d ]{5,}\d")


def is_about_the_data(error: BaseException) -> bool:
    """True when the error is about the entry's values rather than the database being away."""
    if isinstance(error, DBAPIError):
        return isinstance(error, DataError | IntegrityError)
    if isinstance(error, StatementError):  # raised before the database saw it, binding a value
        return True
    return isinstance(error, _DATA_ERRORS)


def error_type(error: BaseException) -> str:
    """The error's class name, as stored and listed."""
    return type(error).__name__


def safe_message(error: BaseException) -> str:
    """What went wrong, without the values: no SQL parameters, quoted text or long numbers."""
    cause = getattr(error, "orig", None) or error
    diag = getattr(cause, "diag", None)
    text = getattr(diag, "message_primary", None) or str(cause).split("\n", 1)[0]
    text = _DIGITS.sub("…", _QUOTED.sub("…", text))
    return clean_text(text, 500) or type(cause).__name__


def plain_reason(kind: str) -> str:
    """A sentence a member of staff can read about an error type."""
    return PLAIN_REASONS.get(kind, OTHER_REASON)


def encode_fields(fields: Mapping) -> str:
    """A stream entry's fields as ASCII JSON text (bytes read as UTF-8)."""
    def text(value: object) -> str:
        return value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)

    return json.dumps({text(k): text(v) for k, v in fields.items()}, sort_keys=True)


class DeadLetters:
    """The dead letters, inside the caller's transaction."""

    def __init__(self, session: Session):
        self.session = session

    def set_aside(self, stream_id: str, fields: Mapping, call_sid: str | None,
                  error: BaseException, now: datetime) -> None:
        """Keep a refused entry with its error; the same stream entry is kept once."""
        dialect = self.session.get_bind().dialect.name
        insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
        self.session.execute(
            insert(DeadLetter).values(
                stream_id=clean_text(stream_id, 64), fields=encode_fields(fields),
                call_sid=clean_text(call_sid, 64) or None if call_sid else None,
                error_type=clean_text(error_type(error), 100), error=safe_message(error),
                failed_at=now, attempts=1,
            ).on_conflict_do_nothing(index_elements=["stream_id"])
        )

    def listing(self, limit: int = 500) -> list[DeadLetter]:
        """The oldest first, as they failed."""
        return list(self.session.scalars(select(DeadLetter).order_by(DeadLetter.id).limit(limit)))

    def count(self) -> int:
        """How many there are."""
        return self.session.scalar(select(func.count(DeadLetter.id))) or 0

    def taken(self, ids: Sequence[int] | None) -> list[DeadLetter]:
        """The given dead letters (all when ids is None), oldest first."""
        query = select(DeadLetter).order_by(DeadLetter.id)
        if ids is not None:
            query = query.where(DeadLetter.id.in_(list(ids)))
        return list(self.session.scalars(query))

    def remove(self, letter_id: int) -> None:
        """Forget one that has now been recorded."""
        self.session.execute(delete(DeadLetter).where(DeadLetter.id == letter_id))

    def failed_again(self, letter_id: int, error: BaseException) -> None:
        """Count another failed attempt and keep its latest error; failed_at stays the first
        failure's, so retention removes the letter when it would have removed the call."""
        self.session.execute(
            update(DeadLetter).where(DeadLetter.id == letter_id).values(
                attempts=DeadLetter.attempts + 1, error_type=clean_text(error_type(error), 100),
                error=safe_message(error)))


def fields_of(letter: DeadLetter) -> dict[str, str]:
    """The stream entry's fields as they were read."""
    return json.loads(letter.fields)
