"""A call's status callback parameters, as the voice runtime posts them while the
call runs and the cluster posts them for a call a lost node held."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import UTC, datetime

from control_api.sids import rfc2822

__all__ = ["callback_params"]


def callback_params(
    base: Iterable[Sequence[str]], status: str, sequence: int, **extra: str
) -> list[tuple[str, str]]:
    """A status callback's parameters: the call's, then its status and place in order."""
    return [
        *[(name, value) for name, value in base],
        ("CallStatus", status),
        ("Timestamp", rfc2822(datetime.now(UTC))),
        ("CallbackSource", "call-progress-events"),
        ("SequenceNumber", str(sequence)),
        *extra.items(),
    ]
