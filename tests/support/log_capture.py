"""Capture what the service logs, through its own handler, formatter and filters."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator
from contextlib import contextmanager

from config.logging_setup import log_handler


class CapturedLog:
    """The lines a handler wrote, as text or as parsed JSON objects."""

    def __init__(self, stream: io.StringIO):
        self.stream = stream

    def lines(self) -> list[str]:
        """Each record's output (tracebacks join their record's line)."""
        return [line for line in self.stream.getvalue().splitlines() if line]

    def records(self) -> list[dict]:
        """Each JSON record as a dict."""
        return [json.loads(line) for line in self.lines()]


@contextmanager
def captured_log(log_format: str = "json") -> Iterator[CapturedLog]:
    """The root logger also writes to a StringIO in `log_format`, at INFO, within the block."""
    stream = io.StringIO()
    handler = log_handler(log_format, stream)
    root = logging.getLogger()
    level = root.level
    root.addHandler(handler)
    root.setLevel(logging.INFO)
    try:
        yield CapturedLog(stream)
    finally:
        root.removeHandler(handler)
        root.setLevel(level)
        handler.close()
