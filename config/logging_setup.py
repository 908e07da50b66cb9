"""One logging set-up for every process: plain lines or JSON, the call SID on each record, and
phone numbers masked as a safety net."""

from __future__ import annotations

import logging
import re
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from functools import wraps
from typing import IO, ParamSpec, TypeVar

from pythonjsonlogger.json import JsonFormatter

from callflow.call_state import CALL_SID_PATTERN

LOG_FORMATS = ("text", "json")
TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s%(call_tag)s: %(message)s"
JSON_FIELDS = "{asctime}{levelname}{name}{message}{call_sid}"
MASK = "[number]"

_call_sid: ContextVar[str | None] = ContextVar("callflow_call_sid", default=None)
# E.164 (+44…) or an international 00 prefix, with the spaces or dashes people write, and UK
# national numbers (0 then 9 or 10 digits, spaces allowed; not dashes, so that 01-12-2026 10 is
# left alone); never digits inside a longer word such as a CallSid.
_PHONE = re.compile(
    r"(?<![\w+])(?:(?:\+|00)\d(?:[ -]?\d){6,14}|0\d(?: ?\d){8,9})(?![\w])"
)

P = ParamSpec("P")
R = TypeVar("R")


def current_call_sid() -> str | None:
    """The call SID the current request or job is about, if any."""
    return _call_sid.get()


def set_call_sid(sid: object) -> None:
    """Mark what follows in this request or job as about this call (ignored unless a CallSid)."""
    if isinstance(sid, str) and CALL_SID_PATTERN.match(sid):
        _call_sid.set(sid)


def clear_call_sid() -> None:
    """Forget the call SID, at the end of a request (threads are reused)."""
    _call_sid.set(None)


@contextmanager
def call_sid_bound(sid: object) -> Iterator[None]:
    """Within the block, records carry this call SID; the previous one is restored after."""
    token = _call_sid.set(sid if isinstance(sid, str) and CALL_SID_PATTERN.match(sid) else None)
    try:
        yield
    finally:
        _call_sid.reset(token)


def with_call_sid(job: Callable[P, R]) -> Callable[P, R]:
    """A job whose first argument is a CallSid logs with it."""

    @wraps(job)
    def bound(*args: P.args, **kwargs: P.kwargs) -> R:
        with call_sid_bound(args[0] if args else kwargs.get("call_sid")):
            return job(*args, **kwargs)

    return bound


def mask_numbers(text: str) -> str:
    """The text with anything that looks like a phone number replaced."""
    return _PHONE.sub(MASK, text)


class CallSidFilter(logging.Filter):
    """Adds `call_sid` (None outside a call) to every record."""

    def filter(self, record: logging.LogRecord) -> bool:
        """Annotate the record; never drops one."""
        record.call_sid = _call_sid.get()
        return True


class TextFormatter(logging.Formatter):
    """Plain lines for a terminal, with the call SID in brackets when there is one."""

    def __init__(self) -> None:
        super().__init__(TEXT_FORMAT)

    def formatMessage(self, record: logging.LogRecord) -> str:  # noqa: N802
        """The line, with `call_tag` worked out from `call_sid` (the record is left as it was)."""
        sid = getattr(record, "call_sid", None)
        return TEXT_FORMAT % {**record.__dict__, "call_tag": f" [{sid}]" if sid else ""}


class PersonalDataFilter(logging.Filter):
    """Masks phone numbers in the message, its arguments and any traceback."""

    def filter(self, record: logging.LogRecord) -> bool:
        """Rewrite the record with numbers masked; never drops one."""
        try:
            message = record.getMessage()
        except (TypeError, ValueError):
            message = str(record.msg)
        record.msg = mask_numbers(message)
        record.args = None
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        # Formatters (the JSON one included) then print the masked text, not the exception.
        record.exc_info = None
        if record.exc_text:
            record.exc_text = mask_numbers(record.exc_text)
        if record.stack_info:
            record.stack_info = mask_numbers(record.stack_info)
        return True


def formatter_for(log_format: str) -> logging.Formatter:
    """The formatter for `text` (plain lines) or `json` (one object a line)."""
    if log_format == "json":
        return JsonFormatter(JSON_FIELDS, style="{",
                             rename_fields={"asctime": "time", "levelname": "level",
                                            "name": "logger"})
    return TextFormatter()


class _CurrentStderr(logging.StreamHandler):
    """Writes to whatever sys.stderr is at the time (a CLI runner may swap it)."""

    def __init__(self) -> None:
        logging.Handler.__init__(self)

    @property
    def stream(self) -> IO[str]:  # type: ignore[override]
        """The current standard error."""
        return sys.stderr


def log_handler(log_format: str, stream: IO[str] | None = None) -> logging.Handler:
    """A handler writing to `stream` (standard error) with the call SID and masking filters."""
    handler = logging.StreamHandler(stream) if stream is not None else _CurrentStderr()
    handler.addFilter(CallSidFilter())
    handler.addFilter(PersonalDataFilter())
    handler.setFormatter(formatter_for(log_format))
    return handler


def configure_logging(log_format: str, level: int = logging.INFO,
                      stream: IO[str] | None = None) -> None:
    """Set up the root logger once per process; a second call replaces the first's handler."""
    root = logging.getLogger()
    for handler in list(root.handlers):
        if getattr(handler, "_callflow", False):
            root.removeHandler(handler)
    handler = log_handler(log_format, stream)
    handler._callflow = True  # type: ignore[attr-defined]
    root.addHandler(handler)
    root.setLevel(level)
