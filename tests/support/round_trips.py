"""Counting Redis round trips: each packed command (or pipeline) sent is one."""

from __future__ import annotations

import pytest
from redis.connection import AbstractConnection


def count_round_trips(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """From now on, every round trip to Redis adds one to the returned counter's [0]."""
    sent = [0]
    real = AbstractConnection.send_packed_command

    def counting(self, command, check_health=True):
        sent[0] += 1
        return real(self, command, check_health)

    monkeypatch.setattr(AbstractConnection, "send_packed_command", counting)
    return sent
