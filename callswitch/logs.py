"""Structured logs: one logfmt line per event (``ts=… level=… event=… call_id=…``).

A call logs a few lines (``sip.invite``, ``call.answered``, ``call.ended``), so a
line is on the path of every call: the formatter keeps the second's timestamp
text and quotes with one regular-expression search, and the records skip what
no line shows (the caller's file and line, thread and process names).
"""

from __future__ import annotations

import logging
import re
import sys
import time

__all__ = ["LogfmtFormatter", "setup_logging"]

# Attributes every LogRecord has; anything else came in through ``extra=`` and is a field.
_STANDARD = frozenset(logging.LogRecord("", 0, "", 0, "", (), None).__dict__) | {
    "message",
    "asctime",
    "taskName",
}
_NEEDS_QUOTES = re.compile(r'[ ="\\\n]')


def _quote(value: object) -> str:
    text = value if type(value) is str else str(value)
    if text == "" or _NEEDS_QUOTES.search(text) is not None:
        escaped = text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
        return f'"{escaped}"'
    return text


class LogfmtFormatter(logging.Formatter):
    """Renders the record's message as ``event`` and its extras as fields."""

    def __init__(self) -> None:
        super().__init__()
        self._second = -1
        self._stamp = ""
        self._levels: dict[str, str] = {}

    def _timestamp(self, record: logging.LogRecord) -> str:
        second = int(record.created)
        if second != self._second:  # one strftime a second, not one a line
            self._stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(second))
            self._second = second
        return f"ts={self._stamp}.{int(record.msecs):03d}Z"

    def format(self, record: logging.LogRecord) -> str:
        level = self._levels.get(record.levelname)
        if level is None:
            level = self._levels[record.levelname] = f"level={record.levelname.lower()}"
        parts = [self._timestamp(record), level, f"event={_quote(record.getMessage())}"]
        for key, value in record.__dict__.items():
            if key not in _STANDARD and key[:1] != "_":
                if isinstance(value, tuple) and len(value) == 2:  # (host, port)
                    value = f"{value[0]}:{value[1]}"
                parts.append(f"{key}={_quote(value)}")
        if record.exc_info:
            parts.append(f"error={_quote(self.formatException(record.exc_info))}")
        return " ".join(parts)


def setup_logging(level: str = "info") -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(LogfmtFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    # What no line shows, a record need not collect (the logging HOWTO's
    # "Optimization"): the caller's frame, thread, process and process name.
    logging._srcfile = None
    logging.logThreads = False
    logging.logProcesses = False
    logging.logMultiprocessing = False
    # Libraries that narrate their own start-up: only their problems are events to us.
    for name in ("alembic", "uvicorn", "httpx", "httpcore", "websockets"):
        logging.getLogger(name).setLevel(max(logging.WARNING, root.level))
