"""``<Refer>``: ask the caller's SIP phone to call elsewhere (RFC 3515, Twilio's verb).

We send a REFER in the call's dialog with ``Refer-To`` the ``<Sip>`` URI and
follow the NOTIFYs (sip/midcall.py ``ReferSubscription``). When the target
answered (a 2xx sipfrag) the transferee talks to it and we hang up our side,
as Twilio does; the ``action`` URL gets ``ReferCallStatus`` and
``ReferSipResponseCode`` (and ``NotifySipResponseCode``).
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass

from control_api.calls.outbound_call import failure_status

__all__ = ["ReferOutcome", "refer_call", "refer_status"]

log = logging.getLogger("callswitch.twiml")

REFER_WAIT_S = 35.0  # the SIP layer gives up after 30 s without a final NOTIFY


@dataclass(slots=True)
class ReferOutcome:
    status: str  # ReferCallStatus: completed, failed, no-answer, busy
    refer_code: int | None  # the REFER's own response (202 when accepted)
    notify_code: int | None  # the last sipfrag status the NOTIFYs reported

    def params(self) -> list[tuple[str, str]]:
        fields = [("ReferCallStatus", self.status)]
        if self.refer_code is not None:
            fields.append(("ReferSipResponseCode", str(self.refer_code)))
        if self.notify_code is not None:
            fields.append(("NotifySipResponseCode", str(self.notify_code)))
        return fields


def refer_status(final: int | None) -> str:
    """ReferCallStatus for the final status of a transfer."""
    if final is not None and 200 <= final < 300:
        return "completed"
    return failure_status(final)


async def refer_call(call, target: str, timeout: float = REFER_WAIT_S) -> ReferOutcome:
    """Send a REFER to ``call``'s SIP peer and wait for how the transfer went."""
    session = getattr(call, "session", None)
    if session is None or not hasattr(session, "refer") or call.ended.is_set():
        return ReferOutcome("failed", None, None)  # not a SIP leg (Twilio: error 13xxx)
    final: asyncio.Future[int] = asyncio.get_running_loop().create_future()
    subscription = session.refer(target)
    call.log("refer.sent", target=target)
    if subscription.done:
        final.set_result(subscription.final_status)
    else:

        def settle(status: int) -> None:
            if not final.done():
                final.set_result(status)

        subscription.on_final = settle
    ended = asyncio.ensure_future(call.ended.wait())
    try:
        await asyncio.wait([final, ended], timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
    finally:
        ended.cancel()
    notify = subscription.progress[-1] if subscription.progress else None
    if final.done():
        status = final.result()
    elif call.ended.is_set() and subscription.refer_status == 202:
        status = 200  # accepted, then the phone hung up on us: it went to the target
    else:
        status = 408
    return ReferOutcome(refer_status(status), subscription.refer_status, notify)
