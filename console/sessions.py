"""Server-side staff sessions in Redis: a random id in the cookie, everything else on the server."""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime

import redis

SESSION_KEY = "callflow:session:{digest}"
STAFF_SESSIONS_KEY = "callflow:staff-sessions:{staff_id}"
COOKIE_NAME = "callflow_session"


def _digest(session_id: str) -> str:
    # Only a hash of the id is stored, so a Redis dump does not hand out live sessions.
    return hashlib.sha256(session_id.encode()).hexdigest()


def _text(value: bytes | str | None) -> str:
    return value.decode() if isinstance(value, bytes) else (value or "")


@dataclass(frozen=True)
class ServerSession:
    """A live session: who, since when, last seen, and its CSRF token."""

    session_id: str
    staff_id: int
    created_at: float
    last_seen: float
    csrf: str


class SessionStore:
    """Creates, loads (enforcing idle and absolute time-outs) and ends sessions."""

    def __init__(self, client: redis.Redis, idle_minutes: int, absolute_hours: int):
        self.client = client
        self.idle_seconds = idle_minutes * 60
        self.absolute_seconds = absolute_hours * 3600

    def create(self, staff_id: int, now: datetime) -> ServerSession:
        """Start a new session with a fresh random id and CSRF token."""
        session = ServerSession(
            session_id=secrets.token_urlsafe(32),
            staff_id=staff_id,
            created_at=now.timestamp(),
            last_seen=now.timestamp(),
            csrf=secrets.token_urlsafe(32),
        )
        digest = _digest(session.session_id)
        key = SESSION_KEY.format(digest=digest)
        index = STAFF_SESSIONS_KEY.format(staff_id=staff_id)
        pipe = self.client.pipeline(transaction=True)
        pipe.hset(key, mapping={
            "staff_id": staff_id,
            "created_at": repr(session.created_at),
            "last_seen": repr(session.last_seen),
            "csrf": session.csrf,
        })
        pipe.expire(key, self._ttl(session.created_at, session.last_seen))
        pipe.sadd(index, digest)
        pipe.expire(index, self.absolute_seconds)
        pipe.execute()
        return session

    def load(self, session_id: str, now: datetime, *, touch: bool = True) -> ServerSession | None:
        """The live session for a cookie value, or None (ending it if it has timed out)."""
        if not session_id or len(session_id) > 200:
            return None
        key = SESSION_KEY.format(digest=_digest(session_id))
        raw = {_text(k): _text(v) for k, v in self.client.hgetall(key).items()}
        if not raw:
            return None
        try:
            session = ServerSession(
                session_id=session_id,
                staff_id=int(raw["staff_id"]),
                created_at=float(raw["created_at"]),
                last_seen=float(raw["last_seen"]),
                csrf=raw["csrf"],
            )
        except (KeyError, ValueError):
            self.end(session_id)
            return None
        moment = now.timestamp()
        idle = moment - session.last_seen >= self.idle_seconds
        expired = moment - session.created_at >= self.absolute_seconds
        if idle or expired:
            self.end(session_id, session.staff_id)
            return None
        if touch:
            pipe = self.client.pipeline(transaction=True)
            pipe.hset(key, "last_seen", repr(moment))
            pipe.expire(key, self._ttl(session.created_at, moment))
            pipe.execute()
            session = ServerSession(session.session_id, session.staff_id, session.created_at,
                                    moment, session.csrf)
        return session

    def end(self, session_id: str, staff_id: int | None = None) -> None:
        """End one session."""
        digest = _digest(session_id)
        key = SESSION_KEY.format(digest=digest)
        if staff_id is None:
            stored = self.client.hget(key, "staff_id")
            staff_id = int(stored) if stored else None
        pipe = self.client.pipeline(transaction=True)
        pipe.delete(key)
        if staff_id is not None:
            pipe.srem(STAFF_SESSIONS_KEY.format(staff_id=staff_id), digest)
        pipe.execute()

    def end_all(self, staff_id: int) -> int:
        """End every session of a staff member (sign-out everywhere, or disabling them)."""
        index = STAFF_SESSIONS_KEY.format(staff_id=staff_id)
        digests = [_text(d) for d in self.client.smembers(index)]
        pipe = self.client.pipeline(transaction=True)
        for digest in digests:
            pipe.delete(SESSION_KEY.format(digest=digest))
        pipe.delete(index)
        pipe.execute()
        return len(digests)

    def count(self, staff_id: int) -> int:
        """How many sessions a staff member has (some may have timed out but not yet been read)."""
        return int(self.client.scard(STAFF_SESSIONS_KEY.format(staff_id=staff_id)))

    def _ttl(self, created_at: float, last_seen: float) -> int:
        # Redis forgets a session at whichever time-out comes first; load() checks them exactly.
        remaining = self.absolute_seconds - (last_seen - created_at)
        return max(1, int(min(self.idle_seconds, remaining)) + 1)
