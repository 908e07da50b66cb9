"""API bearer tokens: issued once, stored only as a SHA-256 hash, revoked with their owner."""

from __future__ import annotations

import hashlib
import secrets
from datetime import datetime, timedelta

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from store.models import ApiToken, Staff

TOKEN_PREFIX = "cfk_"
# Writing last_used_at on every request would make each API call a database write.
LAST_USED_RESOLUTION = timedelta(minutes=5)


def hash_token(token: str) -> str:
    """The stored form of a token."""
    return hashlib.sha256(token.encode()).hexdigest()


def issue_token(session: Session, staff: Staff, now: datetime, label: str = "") -> str:
    """Create a token for a staff member and return it; it cannot be shown again."""
    token = TOKEN_PREFIX + secrets.token_urlsafe(32)
    session.add(ApiToken(staff_id=staff.id, token_hash=hash_token(token), label=label[:120],
                         created_at=now))
    session.flush()
    return token


def verify_token(session: Session, token: str, now: datetime) -> Staff | None:
    """The active staff member a live token belongs to, or None."""
    if not token.startswith(TOKEN_PREFIX) or len(token) > 200:
        return None
    row = session.execute(
        select(ApiToken, Staff)
        .join(Staff, Staff.id == ApiToken.staff_id)
        .where(ApiToken.token_hash == hash_token(token), ApiToken.revoked_at.is_(None))
    ).first()
    if row is None:
        return None
    api_token, staff = row
    if not staff.active:
        return None
    if api_token.last_used_at is None or now - api_token.last_used_at > LAST_USED_RESOLUTION:
        api_token.last_used_at = now
    return staff


def revoke_tokens(session: Session, staff_id: int, now: datetime) -> int:
    """Revoke every live token of a staff member; returns how many."""
    result = session.execute(
        update(ApiToken)
        .where(ApiToken.staff_id == staff_id, ApiToken.revoked_at.is_(None))
        .values(revoked_at=now)
    )
    return result.rowcount or 0


def revoke_token(session: Session, token: str, now: datetime) -> bool:
    """Revoke one token by its value; False if it was unknown or already revoked."""
    result = session.execute(
        update(ApiToken)
        .where(ApiToken.token_hash == hash_token(token), ApiToken.revoked_at.is_(None))
        .values(revoked_at=now)
    )
    return bool(result.rowcount)
