"""Structured logs: one logfmt line per event (``ts=… level=… event=… call_id=…``)."""

from __future__ import annotations

import logging
import sys
import time

__all__ = ["LogfmtFormatter", "setup_logging"]

# Attributes every LogRecord has; anything else came in through ``extra=`` and is a field.
_STANDARD = frozenset(logging.LogRecord("", 0, "", 0, "", (), None).__dict__) | {
    "message",
    "asctime",
    "taskName",
}


def _quote(value: object) -> str:
    text = str(value)
    if text == "" or any(c in text for c in ' ="\\\n'):
        escaped = text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
        return f'"{escaped}"'
    return text


class LogfmtFormatter(logging.Formatter):
    """Renders the record's message as ``event`` and its extras as fields."""

    def format(self, record: logging.LogRecord) -> str:
        stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
        parts = [
            f"ts={stamp}.{int(record.msecs):03d}Z",
            f"level={record.levelname.lower()}",
            f"event={_quote(record.getMessage())}",
        ]
        for key, value in record.__dict__.items():
            if key not in _STANDARD and not key.startswith("_"):
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
    # Libraries that narrate their own start-up: only their problems are events to us.
    for name in ("alembic", "uvicorn", "httpx", "httpcore", "websockets"):
        logging.getLogger(name).setLevel(max(logging.WARNING, root.level))
