"""Blind transfer of a ``<Dial>`` bridge by a phone (RFC 3515 REFER, RFC 5589 §6).

Either party of a bridged call may send REFER. We accept it (202 and NOTIFY
100), call the Refer-To target, and when it answers bridge the *other* party
to it, NOTIFY the referrer 200 and let it hang up (we BYE it after 5 s if it
does not). When the target fails, the referrer gets that status in a NOTIFY
and the original bridge goes on.

Policy first (refer_policy.py): a REFER from a leg that is not the account's
own gets 403 (``refer.unauthenticated``), and so does a Refer-To that is not a
number, one of our clients or a trunk's number (``refer.target``): the target
is dialled as ``<Dial>`` would dial it, never at an arbitrary host.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from typing import TYPE_CHECKING

from control_api.address_policy import not_told
from control_api.calls.dialer import DialError
from control_api.voice.children import child_call
from control_api.voice.refer_policy import authenticated_leg, peer_address
from sip.midcall import ReferHandle

if TYPE_CHECKING:
    from control_api.calls.outbound_call import OutboundCall
    from control_api.twiml.verbs import Dial
    from control_api.voice.runner import TwimlRunner

__all__ = ["REFERRER_GRACE_S", "TransferRequest", "TransferWatch", "blind_transfer"]

log = logging.getLogger("callswitch.twiml")

REFERRER_GRACE_S = 5.0  # the referrer BYEs itself after NOTIFY 200; else we do
FORBIDDEN = 403


class TransferRequest:
    def __init__(self, referrer, target: str, handle: ReferHandle, address: str = "") -> None:
        self.referrer = referrer
        self.target = target  # the Refer-To URI
        self.address = address or target  # what is dialled: a number, client: or sip:
        self.handle = handle


class TransferWatch:
    """Turns REFERs from the watched calls into :class:`TransferRequest` values.

    ``dialer`` (control_api.calls.dialer.Dialer) says what a Refer-To may be dialled as
    and knows the registrar; ``account_sid`` is the account whose TwiML runs;
    ``refused(reason, source_ip, **fields)`` hears of every REFER turned away.
    Without a dialer every REFER is refused.
    """

    def __init__(
        self,
        dialer=None,
        account_sid: str = "",
        refused: Callable[..., None] = not_told,
    ) -> None:
        self.requests: asyncio.Queue[TransferRequest] = asyncio.Queue()
        self.dialer = dialer
        self.account_sid = account_sid
        self.refused = refused
        self._watched: list = []
        self.busy = False

    def watch(self, call) -> None:
        session = getattr(call, "session", None)
        if session is None or not hasattr(session, "on_refer"):
            return  # not a SIP leg: no REFER can come from it
        self._watched.append(session)

        def on_refer(target: str, referred_by: str | None) -> ReferHandle | int | None:
            refusal = self._refusal(call, target)
            if refusal is not None:
                self.refused(
                    refusal, peer_address(call), call_sid=call.sid, account_sid=self.account_sid
                )
                call.log("transfer.refused", reason=refusal, target=target)
                return FORBIDDEN
            if self.busy or call.ended.is_set():
                return None  # one transfer at a time: 603 for the rest
            self.busy = True
            handle = ReferHandle()
            address = self.dialer.refer_address(target)
            self.requests.put_nowait(TransferRequest(call, target, handle, address))
            return handle

        session.on_refer = on_refer

    def _refusal(self, call, target: str) -> str | None:
        """Why a REFER from ``call`` to ``target`` is refused, or None."""
        dialer = self.dialer
        registrar = getattr(dialer, "registrar", None)
        if dialer is None or not authenticated_leg(call, self.account_sid, registrar):
            return "refer.unauthenticated"
        if dialer.refer_address(target) is None:
            return "refer.target"
        return None

    def close(self) -> None:
        for session in self._watched:
            session.on_refer = _decline  # back to declining REFERs
        self._watched.clear()


def _decline(target: str, referred_by: str | None) -> None:
    return None


async def blind_transfer(
    runner: TwimlRunner, verb: Dial, request: TransferRequest, other
) -> OutboundCall | None:
    """Call the Refer-To target for ``other``; the answered call, or None."""
    from control_api.voice.dial import ring_first  # dial.py imports this module

    context = runner.services.context
    assert context is not None  # dial.py watches for REFERs only while the runtime dials
    dialer = context.dialer
    assert dialer is not None  # TransferWatch refuses every REFER without a dialer
    handle = request.handle
    try:
        destinations = await dialer.resolve(
            runner.account_sid, request.address, source_ip=peer_address(request.referrer)
        )
    except DialError as exc:
        log.info("transfer.unroutable", extra={"target": request.target, "error": str(exc)})
        handle.notify(404, "Not Found")
        return None
    calls = [child_call(context, runner, destination, None, verb) for destination in destinations]
    if not calls:
        handle.notify(404, "Not Found")
        return None
    ringing = False

    def on_ringing(call) -> None:
        nonlocal ringing
        if not ringing:
            ringing = True
            handle.notify(180, "Ringing")

    for call in calls:
        call.on_ringing.append(on_ringing)
    winner = await ring_first(calls, other)
    if winner is None:
        status = next((c.sip_status for c in calls if c.sip_status), None) or 480
        handle.notify(status if status >= 300 else 480)
        return None
    handle.notify(200, "OK")
    referrer = request.referrer
    other.log("transfer.completed", target=request.target, new_call=winner.sid)
    context.tasks.spawn(_release(referrer))
    return winner


async def _release(referrer) -> None:
    """The referrer should BYE after the final NOTIFY; if it does not, we do."""
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(referrer.ended.wait(), REFERRER_GRACE_S)
    if not referrer.ended.is_set():
        referrer.hangup()
