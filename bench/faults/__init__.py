"""The fault benchmark: each scenario breaks something real and counts what the service kept.

One module per numbered item of the reliability list (README, Reliability), each with a
`measure(workdir, database_url) -> Row`; `python -m bench.faults` runs them all, prints a table.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Row:
    """One scenario's figures: how many things were tried, how many failed, against what goal."""

    item: int
    what: str
    tried: int
    failed: int
    goal: str
    measured: str = ""

    @property
    def met(self) -> bool:
        """True when nothing tried failed."""
        return self.failed == 0
