"""Doing a console action once: a repeat gets the first result, a different repeat is refused.

The first request claims a key in Redis, carries out the action and stores its result with a
fingerprint of what was asked; a repeat with the same fingerprint is answered from the store
(and marked replayed), one with another fingerprint is refused.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import redis

ACTION_KEY = "callflow:console:{action}:{sid}"
PENDING = b"pending"
PENDING_TTL_SECONDS = 30
WAIT_FOR_PENDING_SECONDS = 8.0
STILL_RUNNING = "the same request is still being carried out"


class RepeatRefused(Exception):
    """A repeat that asks for something else than the first request (or cannot wait for it)."""

    def __init__(self, message: str):
        super().__init__(message)
        self.message = message


@dataclass(frozen=True)
class Outcome:
    """An action's result, and whether it is the stored result of an earlier request."""

    result: dict[str, Any]
    replayed: bool = False


def action_key(action: str, sid: str) -> str:
    """The key an action on a call is done once under."""
    return ACTION_KEY.format(action=action, sid=sid)


def report_key(kind: str, sid: str, staff_id: int, fingerprint: str) -> str:
    """The key a report is done once under: one per member of staff and content."""
    digest = hashlib.sha256(f"{staff_id}:{fingerprint}".encode()).hexdigest()[:32]
    return action_key(f"{kind}:{digest}", sid)


class OnceOnly:
    """Actions done once per key, their results kept in Redis for repeats."""

    def __init__(self, client: redis.Redis):
        self.client = client

    def _stored(self, key: str) -> dict[str, Any] | None:
        raw = self.client.get(key)
        if raw is None or raw == PENDING:
            return None
        return json.loads(raw)

    def replay(self, key: str, fingerprint: str, conflict: str) -> Outcome | None:
        """The stored result for a repeat, RepeatRefused(conflict) for another request, or None."""
        stored = self._stored(key)
        if stored is None:
            return None
        if stored["fingerprint"] != fingerprint:
            raise RepeatRefused(conflict)
        return Outcome(stored["result"], replayed=True)

    def run(self, key: str, fingerprint: str, ttl: int, action: Callable[[], dict[str, Any]],
            conflict: str) -> Outcome:
        """Run `action` once per key; a repeat with the same fingerprint gets the first result.

        A repeat with another fingerprint is refused with `conflict`.
        """
        deadline = time.monotonic() + WAIT_FOR_PENDING_SECONDS
        while True:
            if self.client.set(key, PENDING, nx=True, ex=PENDING_TTL_SECONDS):
                try:
                    result = action()
                except BaseException:
                    self.client.delete(key)  # nothing happened: let a retry try again
                    raise
                self.client.set(key, json.dumps({"fingerprint": fingerprint, "result": result}),
                                ex=ttl)
                return Outcome(result)
            replayed = self.replay(key, fingerprint, conflict)
            if replayed is not None:
                return replayed
            if time.monotonic() > deadline:
                raise RepeatRefused(STILL_RUNNING)
            time.sleep(0.1)
