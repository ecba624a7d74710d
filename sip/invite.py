"""The UAS side of an INVITE session (RFC 3261 §13.3 and §15).

An :class:`InviteSession` is what the application sees of an incoming call:
it rings, answers with an SDP body, rejects, hangs up, and is told when the
ACK arrives and when the session ends, by either side.
"""

from __future__ import annotations

import enum
import logging
from collections.abc import Callable
from typing import TYPE_CHECKING

from sip.dialog import Dialog
from sip.message import Request, Response, generate_tag, make_response
from sip.midcall import MidCall

if TYPE_CHECKING:
    from sip.dialog_host import DialogHost
    from sip.transaction import ServerInviteTransaction
    from sip.transport import Flow

__all__ = ["EndReason", "InviteSession", "SessionState"]

log = logging.getLogger("callswitch.sip")


class SessionState(enum.Enum):
    INCOMING = "incoming"  # INVITE received, nothing but 100 sent
    EARLY = "early"  # a 1xx with a To tag was sent
    ANSWERED = "answered"  # 2xx sent, waiting for the ACK
    CONFIRMED = "confirmed"  # ACK received
    TERMINATED = "terminated"


class EndReason(enum.Enum):
    REMOTE_BYE = "remote-bye"
    LOCAL_BYE = "local-bye"
    CANCELLED = "cancelled"
    REJECTED = "rejected"
    ACK_TIMEOUT = "ack-timeout"
    SHUTDOWN = "shutdown"
    SESSION_EXPIRED = "session-expired"  # RFC 4028 §10: no refresh came in time


def _noop(*args: object) -> None:
    pass


class InviteSession(MidCall):
    """One incoming INVITE and the dialog it creates (mid-call: sip/midcall.py)."""

    _role = "uas"
    _APPLICATION_CALLBACKS = ("on_acked", "on_terminated", "on_dtmf")

    def __init__(
        self, ua: DialogHost, request: Request, txn: ServerInviteTransaction, flow: Flow
    ) -> None:
        self.ua = ua
        self.request = request
        self.txn = txn
        self.flow = flow  # where the INVITE came from
        self.call_id = request.call_id
        self.local_tag = generate_tag()
        self.state = SessionState.INCOMING
        self.dialog: Dialog | None = None
        self.local_sdp: bytes | None = None
        self.ack: Request | None = None  # carries the SDP answer when we made the offer
        self.end_reason: EndReason | None = None
        self.counted_source: str | None = None  # the source address the UA counts it for
        # Set by the application:
        self.on_acked: Callable[[], None] = _noop
        self.on_terminated: Callable[[EndReason], None] = _noop
        self.on_dtmf: Callable[[str], None] = _noop  # SIP INFO application/dtmf-relay
        self._init_midcall()  # on_offer, on_answer, on_refer, session timer

    # -- what the application does

    @property
    def offer(self) -> bytes | None:
        """The SDP offer of the INVITE, if it carried one."""
        if self.request.body and self.request.content_type == "application/sdp":
            return self.request.body
        return None

    @property
    def user(self) -> str:
        """The user part of the Request-URI: whom the caller dialled."""
        return self.request.request_uri.user or ""

    def ring(self, sdp: bytes | None = None) -> None:
        """180 Ringing, or 183 Session Progress with early media when ``sdp`` is given."""
        if self.state not in (SessionState.INCOMING, SessionState.EARLY):
            return
        status = 183 if sdp else 180
        self._respond(status, sdp)
        self.state = SessionState.EARLY

    def answer(self, sdp: bytes) -> None:
        """200 OK with our SDP answer; the dialog is then established."""
        if self.state not in (SessionState.INCOMING, SessionState.EARLY):
            raise RuntimeError(f"cannot answer in state {self.state.value}")
        self.local_sdp = sdp
        self._respond(200, sdp)
        self.state = SessionState.ANSWERED
        log.debug("sip.answered", extra={"call_id": self.call_id})

    def reject(
        self, status: int, reason: str | None = None, headers: list[tuple[str, str]] | None = None
    ) -> None:
        """A final 3xx-6xx for the INVITE."""
        if self.state not in (SessionState.INCOMING, SessionState.EARLY):
            return
        self._respond(status, None, reason, headers)
        self._end(EndReason.REJECTED)
        log.info("sip.rejected", extra={"call_id": self.call_id, "status": status})

    def hangup(self, reason: EndReason = EndReason.LOCAL_BYE) -> None:
        """End the call from our side: BYE once answered, else decline it."""
        if self.state in (SessionState.INCOMING, SessionState.EARLY):
            self.reject(480 if reason is EndReason.SHUTDOWN else 603)
            return
        if self.state is SessionState.TERMINATED or self.dialog is None:
            return
        self.ua.send_in_dialog(self.dialog, "BYE")
        self._end(reason)
        log.info("sip.bye_sent", extra={"call_id": self.call_id})

    # -- what the user agent tells us

    def _respond(
        self,
        status: int,
        sdp: bytes | None,
        reason: str | None = None,
        headers: list[tuple[str, str]] | None = None,
    ) -> None:
        extra = list(headers or ())
        if status != 100 and status < 300:
            extra.append(("Contact", self.ua.contact_for(self.flow)))
        if status == 200:
            extra.append(("Allow", self.ua.allow))
            extra.extend(self._session_timer_for_invite(self.request))  # RFC 4028 §9
        response = make_response(
            self.request,
            status,
            reason,
            to_tag=self.local_tag,
            body=sdp or b"",
            content_type="application/sdp" if sdp else None,
            headers=extra,
        )
        self._server_header(response)
        if 100 < status < 300 and self.dialog is None:
            self.dialog = Dialog.as_uas(
                self.request, self.local_tag, self.ua.contact_for(self.flow), self.flow
            )
            self.ua.register_session(self)
        self.txn.send_response(response, self.ua.clock())

    def _server_header(self, response: Response) -> None:
        response.headers.add("Server", self.ua.name)

    @property
    def ack_sdp(self) -> bytes | None:
        """The SDP answer of the ACK (RFC 3264 §5: an offer made in our 200 OK)."""
        ack = self.ack
        if ack is not None and ack.body and ack.content_type == "application/sdp":
            return ack.body
        return None

    def ack_received(self, ack: Request) -> None:
        if self.state is SessionState.ANSWERED:
            self.ack = ack
            self.state = SessionState.CONFIRMED
            self.on_acked()

    def cancel_received(self) -> None:
        if self.state in (SessionState.INCOMING, SessionState.EARLY):
            self._respond(487, None)
            self._end(EndReason.CANCELLED)
            log.info("sip.cancelled", extra={"call_id": self.call_id})

    def bye_received(self) -> None:
        self.txn.ack_received(self.ua.clock())  # a BYE before the ACK ends 2xx retransmits
        self._remote_bye()

    def _remote_bye(self) -> None:
        self._end(EndReason.REMOTE_BYE)
        log.debug("sip.bye_received", extra={"call_id": self.call_id})

    def ack_timed_out(self) -> None:
        """No ACK for our 2xx within 64*T1: RFC 3261 §13.3.1.4 says send BYE."""
        if self.state is SessionState.ANSWERED:
            log.info("sip.ack_timeout", extra={"call_id": self.call_id})
            self.hangup(EndReason.ACK_TIMEOUT)

    def _end(self, reason: EndReason) -> None:
        if self.state is SessionState.TERMINATED:
            return
        self.state = SessionState.TERMINATED
        self.end_reason = reason
        self.ua.unregister_session(self)
        self.on_terminated(reason)
        self._drop_callbacks()

    def __repr__(self) -> str:
        return f"<InviteSession {self.call_id} {self.state.value}>"
