"""Structured logs: one logfmt line per event (``ts=… level=… event=… call_id=…``).

A call logs a few lines (``sip.invite``, ``call.answered``, ``call.ended``), so a
line is on the path of every call: the formatter keeps the second's timestamp
text and quotes with one regular-expression search, and the records skip what
no line shows (the caller's file and line, thread and process names).

stderr is usually a pipe (a supervisor, journald, a test harness reading it). A
pipe holds 64 KiB by default: a tenth of a second of lines at 750 calls/s, after
which a reader that falls behind for a moment blocks the event loop in ``write``,
every call with it. ``setup_logging`` widens it to 1 MiB where the system allows.
"""

from __future__ import annotations

import contextlib
import fcntl
import io
import logging
import os
import re
import stat
import sys
import time

__all__ = [
    "PIPE_BYTES",
    "LogfmtFormatter",
    "setup_logging",
    "widen_pipe",
]

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


PIPE_BYTES = 1 << 20  # Linux's default /proc/sys/fs/pipe-max-size for unprivileged processes


def widen_pipe(stream: object, size: int = PIPE_BYTES) -> int | None:
    """Ask for a ``size``-byte buffer when ``stream`` writes to a pipe; the size it
    has after, or None when it is not a pipe (or the system has no such call)."""
    setpipe = getattr(fcntl, "F_SETPIPE_SZ", None)
    getpipe = getattr(fcntl, "F_GETPIPE_SZ", None)
    fileno = getattr(stream, "fileno", None)
    if setpipe is None or getpipe is None or fileno is None:
        return None
    try:
        fd = fileno()
        if not stat.S_ISFIFO(os.fstat(fd).st_mode):
            return None
        current = fcntl.fcntl(fd, getpipe)
        if current < size:
            with contextlib.suppress(OSError):  # above pipe-max-size, or the user's quota
                fcntl.fcntl(fd, setpipe, size)
        return int(fcntl.fcntl(fd, getpipe))
    except (OSError, ValueError, io.UnsupportedOperation):
        return None


def setup_logging(level: str = "info") -> None:
    widen_pipe(sys.stderr)
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
