"""The entry form's needs and representatives fields, to and from the register's text columns."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from werkzeug.datastructures import MultiDict

from callflow.adjustments import NEED_LABELS, NEEDS_DETAIL, Need, parse_adjustments

# The form's text box for the words a need carries (the interpreter's language, what "other"
# means), by need.
DETAIL_FIELDS = {Need.INTERPRETER: "need_interpreter", Need.OTHER: "need_other"}
NEED_CHOICES = [(need.value, NEED_LABELS[need]) for need in Need]


def adjustments_cell(form: MultiDict) -> str:
    """The adjustments column from the form's checkboxes and their words."""
    parts = []
    for code in form.getlist("need"):
        try:
            need = Need(code)
        except ValueError:
            parts.append(code)  # refused, by name, when the row is read
            continue
        detail = " ".join(form.get(DETAIL_FIELDS.get(need, ""), "").split())
        parts.append(f"{need.value}: {detail}" if need in NEEDS_DETAIL and detail else need.value)
    return "; ".join(parts)


def representatives_cell(form: MultiDict) -> str:
    """The representatives column from the form's text box, one representative a line."""
    return "; ".join(line.strip() for line in form.get("representatives", "").splitlines()
                     if line.strip())


def form_values(row: Mapping[str, str]) -> dict[str, Any]:
    """The needs and representatives of a register row as the entry form shows them."""
    found, _errors = parse_adjustments(row.get("adjustments", ""))
    values: dict[str, Any] = {"need": [a.need.value for a in found]}
    for adjustment in found:
        if adjustment.need in DETAIL_FIELDS:
            values[DETAIL_FIELDS[adjustment.need]] = adjustment.detail
    values["representatives"] = "\n".join(
        p.strip() for p in row.get("representatives", "").split(";") if p.strip())
    return values
