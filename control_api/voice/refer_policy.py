"""Whose REFER we honour: a leg that is the account's own, never a stranger's.

A REFER makes the node place a call, billed to the account whose TwiML runs,
so it is toll fraud in waiting when anyone may send one. It is honoured only
from an *authenticated* leg: a call callswitch placed itself (REST or the
account's ``<Dial>``: an :class:`~control_api.calls.outbound_call.OutboundCall`), or
a call that came from a phone registered to the account (its source is where a
live registration of the caller's username came from). Any other leg, say an
unauthenticated caller of a number whose TwiML ``<Dial>``s someone, gets 403.
"""

from __future__ import annotations

from control_api.calls.outbound_call import OutboundCall

__all__ = ["authenticated_leg", "peer_address"]


def peer_address(call) -> str:
    """The IP address a SIP leg's requests come from ("" when there is none)."""
    flow = getattr(getattr(call, "session", None), "flow", None)
    remote = getattr(flow, "remote", None)
    return remote[0] if remote else ""


def authenticated_leg(call, account_sid: str, registrar) -> bool:
    """Whether REFERs from ``call`` may place calls for ``account_sid``."""
    if isinstance(call, OutboundCall):
        return True  # we dialed it, for the account's own TwiML or REST request
    return _from_registered_phone(call, account_sid, registrar)


def _from_registered_phone(call, account_sid: str, registrar) -> bool:
    session = getattr(call, "session", None)
    request = getattr(session, "request", None)
    flow = getattr(session, "flow", None)
    if registrar is None or request is None or flow is None:
        return False
    user = request.from_.uri.user
    if not user:
        return False
    remote = _address(flow.remote)
    for binding in registrar.contacts(user):
        if binding.owner != account_sid:
            continue
        if binding.flow is flow or _address(binding.source) == remote:
            return True
    return False


def _address(host_port: tuple[str, int]) -> tuple[str, int]:
    host, port = host_port
    return host.strip("[]").lower(), port
