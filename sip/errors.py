"""Errors raised by the SIP message codec (RFC 3261 §7, §25)."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from sip.message import Request

__all__ = ["SipParseError"]


class SipParseError(ValueError):
    """Bytes or text that are not an acceptable SIP message or header value.

    ``reason`` is short and fit to be the reason phrase of the answer.
    ``request`` is set when the request line and the headers a response is built
    from (Via, From, To, Call-ID, CSeq) were present, so the server can answer
    ``status`` (400, or 505 for another SIP version) instead of dropping the
    datagram (RFC 3261 §8.2, §18.3). Typed properties of such a request may raise.
    """

    def __init__(self, reason: str, request: Request | None = None, *, status: int = 400):
        super().__init__(reason)
        self.reason = reason
        self.request = request
        self.status = status
