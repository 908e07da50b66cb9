"""What counts as text a person could have typed: no control characters, nothing undecodable."""

from __future__ import annotations

import re

# Control characters (NUL above all: PostgreSQL refuses it), lone surrogates, and U+FFFD, which
# stands for bytes that were not UTF-8.
_UNTYPEABLE = re.compile("[\x00-\x1f\x7f\ud800-\udfff\ufffd]")
_UNTYPEABLE_IN_LINES = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f\ud800-\udfff\ufffd]")


def untypeable(text: str, *, keep_lines: bool = False) -> bool:
    """True when text holds a character nobody types into a field (line breaks and tabs are
    typeable in a multi-line field: keep_lines)."""
    return bool((_UNTYPEABLE_IN_LINES if keep_lines else _UNTYPEABLE).search(text))
