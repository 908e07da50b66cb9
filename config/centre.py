"""The contact centre's arrangements for the decision core: hours, bank holidays, messages."""

from __future__ import annotations

from datetime import date
from functools import lru_cache

import holidays

from callflow.decision import Centre
from config.settings import Settings

_SUBDIVISIONS = {"england-and-wales": "ENG", "scotland": "SCT", "northern-ireland": "NIR"}


@lru_cache(maxsize=8)
def bank_holidays(nation: str, year: int) -> frozenset[date]:
    """UK bank holidays for a nation, from last year to next (for next-opening searches)."""
    if nation == "none":
        return frozenset()
    years = range(year - 1, year + 2)
    return frozenset(holidays.country_holidays("GB", subdiv=_SUBDIVISIONS[nation], years=years))


@lru_cache(maxsize=8)
def centre_for(settings: Settings, year: int) -> Centre:
    """The Centre value for a given year, built once per process and year."""
    return Centre.from_text(
        settings.opening_hours, settings.tz,
        bank_holidays=bank_holidays(settings.bank_holidays, year),
        windows_on_bank_holidays=settings.windows_on_bank_holidays,
        emergency_number=settings.emergency_number,
        written_contact=settings.written_contact,
    )
