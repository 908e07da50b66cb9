"""The services a worker process uses, built once from the environment on first use."""

from __future__ import annotations

from functools import cache

from usecases.bootstrap import Services, bootstrap

_override: Services | None = None


@cache
def _from_environment() -> Services:
    return bootstrap()


def services() -> Services:
    """This process's services (tests may install their own with use_services)."""
    return _override or _from_environment()


def use_services(chosen: Services | None) -> None:
    """Make jobs in this process use the given services (None restores the environment's)."""
    global _override
    _override = chosen
