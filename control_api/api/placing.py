"""Twilio's answers when the API cannot place a call (``Calls``, ``Participants``,
``OutgoingCallerIds`` validation calls)."""

from __future__ import annotations

from control_api.errors import METHOD_NOT_ALLOWED, NOT_ROUTABLE, ApiError
from control_api.voice.port import Unroutable

__all__ = ["places_no_calls", "unplaceable"]


def unplaceable(exc: Unroutable) -> ApiError:
    """A call that cannot be placed (21215, "Account not authorized to call this
    number"): 403 when a dial guard refused it, else 400."""
    if exc.refused:
        return ApiError(403, NOT_ROUTABLE, str(exc))
    return ApiError.bad_parameter(str(exc), NOT_ROUTABLE)


def places_no_calls() -> ApiError:
    """501 on a node without SIP (20004: the method does not apply to the resource)."""
    return ApiError(501, METHOD_NOT_ALLOWED, "This node places no calls: it runs no SIP")
