"""A worker loop run as one asyncio task, started and stopped the same way everywhere.

The outbox (``webhooks.Outbox``) and the SMS sender (``sms.Messaging``) each run one
``_run`` loop that sleeps on ``_wake`` and ends once ``_stopping`` is set.
"""

from __future__ import annotations

import asyncio
import contextlib

__all__ = ["Worker"]


class Worker:
    """Base of a class whose ``_run`` loop is its one background task.

    The class sets ``_task`` (None), ``_wake`` (an ``asyncio.Event``) and ``_stopping``
    (False) when it is made; ``_run`` returns once it sees ``_stopping``.
    """

    _task: asyncio.Task | None
    _wake: asyncio.Event
    _stopping: bool

    async def _run(self) -> None:
        raise NotImplementedError

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._run())

    async def _end_loop(self, grace: float) -> bool:
        """Ask the loop to end and wait up to ``grace`` seconds for it; False when it
        was not running."""
        if self._task is None:
            return False
        self._stopping = True
        self._wake.set()
        with contextlib.suppress(TimeoutError, asyncio.CancelledError):
            await asyncio.wait_for(self._task, grace)
        self._task = None
        return True
