"""Waiting on a call's events: until the first of several happens."""

from __future__ import annotations

import asyncio

__all__ = ["until_any"]


async def until_any(*events: asyncio.Event, timeout: float | None = None) -> None:
    """Return once any of ``events`` is set, or after ``timeout`` seconds (None: no
    limit); nothing is left waiting behind."""
    waiters = [asyncio.ensure_future(event.wait()) for event in events]
    try:
        await asyncio.wait(waiters, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for waiter in waiters:
            waiter.cancel()
