"""The UAC side of an INVITE session (RFC 3261 §13.2, §9.1, §22.2): calls we place.

An :class:`OutgoingInvite` sends an INVITE, reports provisional responses
(ringing, early media), answers digest challenges once per challenge,
ACKs the 2xx, cancels while ringing and hangs up once answered. Forked 2xx
responses beyond the first are ACKed and released with a BYE (§13.2.2.4).
"""

from __future__ import annotations

import enum
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from sip.auth import answer_challenge
from sip.dialog import Dialog
from sip.errors import SipParseError
from sip.headers import NameAddress
from sip.invite import EndReason
from sip.message import Headers, Request, Response, generate_call_id, generate_tag
from sip.midcall import MidCall
from sip.outbound_proxy import loose_route
from sip.transaction import make_cancel

if TYPE_CHECKING:
    from sip.dialog_host import DialogHost
    from sip.transaction import ClientTransaction
    from sip.transport import Flow

__all__ = ["OutgoingInvite", "OutgoingState", "SipCredentials"]

log = logging.getLogger("callswitch.sip")

MAX_AUTH_ROUNDS = 2  # a challenge answered twice over is a wrong password


class OutgoingState(enum.Enum):
    CALLING = "calling"  # INVITE sent, no provisional yet
    PROCEEDING = "proceeding"  # a 1xx arrived: CANCEL is allowed now (§9.1)
    CONFIRMED = "confirmed"  # 2xx received and ACKed
    TERMINATED = "terminated"


@dataclass(frozen=True, slots=True)
class SipCredentials:
    username: str
    password: str


def _noop(*args: object) -> None:
    pass


class OutgoingInvite(MidCall):
    """One INVITE we send and the dialog it sets up.

    ``target`` is the Request-URI; ``flow`` the transport flow to send it on
    (a trunk's proxy, a registered phone's connection, or the target's host).
    ``proxy`` is an outbound proxy's URI (``flow`` goes to it): the INVITE, its
    CANCEL and ACK carry ``Route: <proxy;lr>``, and it stays the first hop of the
    dialog's requests (sip/outbound_proxy.py).
    Mid-call offers, session timers and REFER come from sip/midcall.py.
    """

    _role = "uac"
    _APPLICATION_CALLBACKS = ("on_progress", "on_answered", "on_failed", "on_terminated", "on_dtmf")

    def __init__(
        self,
        ua: DialogHost,
        *,
        target: str,
        flow: Flow,
        from_user: str,
        from_display: str | None = None,
        to: str | None = None,
        sdp: bytes | None = None,
        credentials: SipCredentials | None = None,
        headers: list[tuple[str, str]] | None = None,
        proxy: str | None = None,
    ) -> None:
        self.ua = ua
        self.proxy = proxy
        self._route = loose_route(proxy) if proxy is not None else None
        self.target = target
        self.flow = flow
        self.call_id = generate_call_id(ua.host)
        self.local_tag = generate_tag()
        self.local_sdp = sdp
        self.credentials = credentials
        self.extra_headers = list(headers or ())
        display = f'"{from_display}" ' if from_display else ""
        self._from = f"{display}<sip:{from_user}@{ua.host_port(flow)}>;tag={self.local_tag}"
        self._to = f"<{to or target}>"
        self._cseq = 1
        self._auth_rounds = 0
        self.state = OutgoingState.CALLING
        self.invite: Request | None = None
        self._txn: ClientTransaction | None = None
        self._cancel_wanted = False
        self.cancel_received = False  # the application gave up: a late 2xx gets ACK and BYE
        self.dialog: Dialog | None = None
        self.remote_sdp: bytes | None = None
        self._ack_bytes: bytes | None = None
        self.final_status: int | None = None
        self.end_reason: EndReason | None = None
        self.responded = False  # any response came back, a 100 Trying included
        # Set by the application:
        self.on_progress: Callable[[int, bytes | None], None] = _noop  # 180/183 (+ SDP)
        self.on_answered: Callable[[bytes | None], None] = _noop  # 2xx, its SDP
        self.on_failed: Callable[[int, str], None] = _noop  # final ≥300, 408 on timeout
        self.on_terminated: Callable[[EndReason], None] = _noop  # after answer: BYE
        self.on_dtmf: Callable[[str], None] = _noop
        self._init_midcall()  # on_offer, on_answer, on_refer, session timer

    # -- what the application does

    def start(self) -> None:
        self._send_invite([])

    def cancel(self) -> None:
        """Stop ringing (RFC 3261 §9.1); a CANCEL waits for the first provisional."""
        self.cancel_received = True
        if self.state is OutgoingState.PROCEEDING:
            self._send_cancel()
        elif self.state is OutgoingState.CALLING:
            self._cancel_wanted = True

    def hangup(self, reason: EndReason = EndReason.LOCAL_BYE) -> None:
        """End the call from our side: CANCEL while ringing, BYE once answered."""
        if self.state in (OutgoingState.CALLING, OutgoingState.PROCEEDING):
            self.cancel()
            return
        if self.state is OutgoingState.CONFIRMED and self.dialog is not None:
            self.ua.send_in_dialog(self.dialog, "BYE")
            self._end(reason)

    @property
    def offer(self) -> bytes | None:
        return self.local_sdp

    # -- sending

    def _send_invite(self, auth_headers: list[tuple[str, str]]) -> None:
        h = Headers()
        h.add("Via", self.ua.via_for(self.flow))
        h.add("Max-Forwards", "70")
        if self._route is not None:
            h.add("Route", self._route)  # pre-loaded (RFC 3261 §8.1.2)
        h.add("From", self._from)
        h.add("To", self._to)
        h.add("Call-ID", self.call_id)
        h.add("CSeq", f"{self._cseq} INVITE")
        h.add("Contact", self.ua.contact_for(self.flow))
        h.add("Allow", self.ua.allow)
        h.add("Supported", "timer")  # RFC 4028 §7.1
        h.add("User-Agent", self.ua.name)
        for name, value in [*auth_headers, *self.extra_headers]:
            h.add(name, value)
        if self.local_sdp:
            h.add("Content-Type", "application/sdp")
        self.invite = Request("INVITE", self.target, h, self.local_sdp or b"")
        self._txn = self.ua.start_invite_client(self, self.invite, self.flow)

    def _send_cancel(self) -> None:
        if self.invite is None or self._txn is None:
            return
        self._cancel_wanted = False
        self.ua.start_client(make_cancel(self.invite), self.flow)

    # -- what the user agent tells us

    def receive_response(self, response: Response) -> None:
        """Every response of our INVITE transaction, provisional ones included."""
        status = response.status
        self.responded = True
        if status < 200:
            if status == 100:
                return
            if self.state is OutgoingState.CALLING:
                self.state = OutgoingState.PROCEEDING
                if self._cancel_wanted:
                    self._send_cancel()
                    return
            if self.state is OutgoingState.PROCEEDING:
                sdp = _sdp(response)
                if sdp is not None:
                    self.remote_sdp = sdp
                self.on_progress(status, sdp)
            return
        if status < 300:
            self._answered(response)
            return
        if status in (401, 407) and self._authenticate(response):
            return
        self._failed(status, response.reason)

    def _answered(self, response: Response) -> None:
        if self.dialog is not None:
            if response.to_tag == self.dialog.remote_tag:
                if self._ack_bytes is not None:  # a retransmitted 2xx: ACK again (§13.2.2.4)
                    self.flow.send(self._ack_bytes)
                return
            self._release_fork(response)
            return
        assert self.invite is not None
        try:
            dialog = Dialog.as_uac(self.invite, response, self.flow, self.proxy)
        except SipParseError:
            log.info("sip.bad_2xx", extra={"call_id": self.call_id})
            self._failed(502, "Bad Gateway")
            return
        self.dialog = dialog
        self.ua.register_session(self)
        self._ack(dialog, response)
        if self.state is OutgoingState.TERMINATED:
            return
        if self.cancel_received or self.final_status is not None:
            # We gave up but the callee answered first (the CANCEL crossed the 2xx).
            self.state = OutgoingState.CONFIRMED
            self.hangup(EndReason.CANCELLED)
            return
        self.state = OutgoingState.CONFIRMED
        sdp = _sdp(response)
        if sdp is not None:
            self.remote_sdp = sdp
        self.final_status = response.status
        self._session_timer_from_2xx(response)  # RFC 4028 §7.2
        log.info("sip.answered_by_callee", extra={"call_id": self.call_id})
        self.on_answered(self.remote_sdp)

    def _ack(self, dialog: Dialog, response: Response) -> None:
        assert self.invite is not None
        ack = dialog.create_request("ACK", cseq=self.invite.cseq.seq)
        ack.headers.prepend("Via", self.ua.via_for(self.flow))
        self._ack_bytes = ack.serialize()
        self.flow.send(self._ack_bytes)

    def _release_fork(self, response: Response) -> None:
        """A second fork answered: ACK it and end that dialog at once (§13.2.2.4)."""
        assert self.invite is not None
        try:
            fork = Dialog.as_uac(self.invite, response, self.flow, self.proxy)
        except SipParseError:
            return
        ack = fork.create_request("ACK", cseq=self.invite.cseq.seq)
        ack.headers.prepend("Via", self.ua.via_for(self.flow))
        self.flow.send(ack.serialize())
        self.ua.send_in_dialog(fork, "BYE")

    def _authenticate(self, response: Response) -> bool:
        """Answer a 401/407 with credentials (RFC 3261 §22.2, RFC 8760 §2.4)."""
        if self.credentials is None or self._auth_rounds >= MAX_AUTH_ROUNDS:
            return False
        header = answer_challenge(
            response,
            method="INVITE",
            uri=self.target,
            username=self.credentials.username,
            password=self.credentials.password,
            body=self.local_sdp or b"",
        )
        if header is None:
            return False
        self._auth_rounds += 1
        self._cseq += 1
        self._send_invite([header])
        return True

    def _failed(self, status: int, reason: str) -> None:
        if self.state is OutgoingState.TERMINATED:
            return
        self.final_status = status
        self.state = OutgoingState.TERMINATED
        self.end_reason = EndReason.CANCELLED if status == 487 else EndReason.REJECTED
        log.info("sip.call_failed", extra={"call_id": self.call_id, "status": status})
        self.on_failed(status, reason)
        self._drop_callbacks()

    def timed_out(self) -> None:
        """Timer B: nobody answered the INVITE at all (RFC 3261 §17.1.1.2)."""
        self._failed(408, "Request Timeout")

    # -- in-dialog events (the same interface as the UAS InviteSession)

    def bye_received(self) -> None:
        self._end(EndReason.REMOTE_BYE)

    def _end(self, reason: EndReason) -> None:
        if self.state is OutgoingState.TERMINATED:
            return
        self.state = OutgoingState.TERMINATED
        self.end_reason = reason
        self.ua.unregister_session(self)
        self.on_terminated(reason)
        self._drop_callbacks()

    def __repr__(self) -> str:
        return f"<OutgoingInvite {self.call_id} {self.state.value}>"


def _sdp(response: Response) -> bytes | None:
    if response.body and response.content_type == "application/sdp":
        return response.body
    return None


def parse_target(value: str) -> NameAddress:
    """A dial target as a name-address (``sip:bob@host`` or ``<sip:bob@host>``)."""
    return NameAddress.parse(value if value.startswith("<") or " " in value else f"<{value}>")
