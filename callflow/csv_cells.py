"""CSV cells a spreadsheet will not run as formulas, read back to exactly what was written.

The rule, for every CSV the project writes (OWASP "CSV injection"):

- A cell that begins with ``=``, ``+``, ``-``, ``@``, a tab or a carriage return, after any
  number of leading single quotes, is written with one more single quote in front.
- Reading, a cell of one or more single quotes followed by one of those characters loses
  exactly one leading quote. Any other cell is read as it is.
- Phone numbers and negative whole numbers stay as they are: E.164 numbers, alone or as the
  register writes several (``+447700900123; +441914960456``), and ``-12``. Having no letters or
  operators after the first character, they hold nothing a spreadsheet could run.

Together these make ``unescape(escape(text)) == text`` for every text.
"""

from __future__ import annotations

import re

_TRIGGERED = re.compile(r"'*[=+\-@\t\r]")
_ESCAPED = re.compile(r"'+[=+\-@\t\r]")
_NUMBERS = re.compile(r"\+\d{1,15}(; \+\d{1,15})*|-\d+")


def escape_cell(value: object) -> object:
    """The value as a CSV cell a spreadsheet shows as text; non-strings are left alone."""
    if not isinstance(value, str) or _NUMBERS.fullmatch(value):
        return value
    return "'" + value if _TRIGGERED.match(value) else value


def unescape_cell(text: str) -> str:
    """The text escape_cell was given, from the cell it wrote."""
    return text[1:] if _ESCAPED.match(text) else text
