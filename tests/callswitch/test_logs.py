"""callswitch.logs: the logfmt line of every event."""

from __future__ import annotations

import fcntl
import io
import logging
import os
import sys
import tempfile

from callswitch.logs import (
    PIPE_BYTES,
    LogfmtFormatter,
    setup_logging,
    widen_pipe,
)


def _record(created: float, msg: str = "call.ended", **fields) -> logging.LogRecord:
    record = logging.LogRecord("x", logging.INFO, "f", 1, msg, (), None)
    record.created, record.msecs = created, (created % 1) * 1000
    record.__dict__.update(fields)
    return record


def test_timestamp_follows_the_record_across_seconds():
    formatter = LogfmtFormatter()
    lines = [formatter.format(_record(t)) for t in (1796509798.25, 1796509798.999, 1796509799.0)]
    assert [line.split(" ", 1)[0] for line in lines] == [
        "ts=2026-12-05T22:29:58.250Z",
        "ts=2026-12-05T22:29:58.999Z",
        "ts=2026-12-05T22:29:59.000Z",
    ]
    earlier = formatter.format(_record(1796509700.5))  # a record from another thread, older
    assert earlier.startswith("ts=2026-12-05T22:28:20.500Z ")


def test_values_are_quoted_only_when_they_need_it():
    line = LogfmtFormatter().format(
        _record(0.0, "e v", a="", b="x=1", c="new\nline", d=3, peer=("::1", 5060), _hidden=1)
    )
    assert line.split(" ", 2)[2] == 'event="e v" a="" b="x=1" c="new\\nline" d=3 peer=::1:5060'


def test_setup_logging_writes_one_line_per_event(monkeypatch):
    out = io.StringIO()
    monkeypatch.setattr(sys, "stderr", out)
    for name in ("_srcfile", "logThreads", "logProcesses", "logMultiprocessing"):
        monkeypatch.setattr(logging, name, getattr(logging, name))  # restored after
    root = logging.getLogger()
    saved = root.handlers[:], root.level
    try:
        setup_logging("info")
        logging.getLogger("callswitch.calls").info("call.answered", extra={"call_id": "1@h"})
        logging.getLogger("callswitch.calls").debug("call.quiet")
    finally:
        root.handlers[:], level = saved
        root.setLevel(level)
    [line] = out.getvalue().splitlines()
    assert line.endswith(" level=info event=call.answered call_id=1@h")


def test_stderr_on_a_pipe_gets_a_wider_buffer():
    read_fd, write_fd = os.pipe()
    try:
        with os.fdopen(write_fd, "w", closefd=False) as stream:
            assert fcntl.fcntl(write_fd, fcntl.F_GETPIPE_SZ) < PIPE_BYTES  # the default 64 KiB
            assert widen_pipe(stream) == PIPE_BYTES
            assert fcntl.fcntl(write_fd, fcntl.F_GETPIPE_SZ) == PIPE_BYTES
        assert widen_pipe(io.StringIO()) is None  # no file descriptor
        with tempfile.TemporaryFile("w") as regular:
            assert widen_pipe(regular) is None  # a file, not a pipe
    finally:
        os.close(read_fd)
        os.close(write_fd)
