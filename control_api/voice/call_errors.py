"""What a call's TwiML met: ``TwimlRunner.errors`` and the call log's notifications.

The runner and the verbs it runs (dial.py, queue.py, stream.py) count each error a
call meets as a ``"CODE text"`` entry of the runner's ``errors``; each entry is also a
notification of the call (control_api/call_log.py), against the document that was
running when it arose unless the report names its own request. Warnings (12200) are
notifications only: they do not count as errors.
"""

from __future__ import annotations

import logging
import weakref
from typing import TYPE_CHECKING, Any

from control_api.call_log import ERROR, WARNING

if TYPE_CHECKING:
    from control_api.voice.runner import TwimlRunner

__all__ = ["CallErrors", "code_of"]

log = logging.getLogger("callswitch.call_log")


def code_of(entry: str) -> int | None:
    """The error code an entry starts with ("13224 ..." is 13224; "13xxx ..." none)."""
    head = entry.split(" ", 1)[0]
    return int(head) if head.isdigit() and len(head) <= 8 else None


class CallErrors(list[str]):
    """A runner's errors, ``"CODE text"`` each; each one added is logged too."""

    def __init__(self, runner: TwimlRunner) -> None:
        super().__init__()
        # Weak: the runner holds us, and a cycle would keep each ended call's runner,
        # leg and call until a full collection, which the server runs rarely.
        self._runner = weakref.ref(runner)

    def append(self, entry: str) -> None:
        self.record(entry)

    def record(
        self, entry: str, *, code: int | None = None, text: str | None = None, **details: Any
    ) -> None:
        """Count ``entry`` and log it with ``code`` and ``text`` (else the entry's own)
        and ``details`` (``url``, ``method``, ``params``, ``response``, ``body``: what
        ``CallLog.problem`` takes)."""
        super().append(entry)
        if text is None:
            text = entry.partition(" ")[2] or entry
        self.report(code if code is not None else code_of(entry), text, **details)

    def warn(self, code: int, text: str, **details: Any) -> None:
        """A warning: logged, not counted."""
        self.report(code, text, level=WARNING, **details)

    def report(self, code: int | None, text: str, *, level: int = ERROR, **details: Any) -> None:
        """Log a notification of the call; never raises (a report must not end a call)."""
        runner = self._runner()
        if runner is None:  # the call is gone: nothing to report it against
            return
        try:
            context = runner.services.context
            call_log = context.call_log if context is not None else None
            if call_log is None:
                return
            if "url" not in details:
                details["url"] = runner.document_url
                details["method"] = runner.document_method
            call_log.problem(
                account_sid=runner.account_sid,
                call_sid=runner.call.sid,
                code=code,
                text=text,
                level=level,
                **details,
            )
        except Exception:
            log.exception("call_log.report_failed", extra={"call_sid": runner.call.sid})
