"""What happens inside an established INVITE dialog, for both session kinds.

:class:`MidCall` is mixed into the UAS :class:`~sip.invite.InviteSession` and
the UAC :class:`~sip.uac.OutgoingInvite`:

- offers in a dialog (RFC 3264 §8, RFC 3311): a re-INVITE or UPDATE with SDP
  goes to ``on_offer`` for the answer (None → 488); a re-INVITE without SDP
  gets our SDP as an offer and the ACK's answer goes to ``on_answer``;
- session timers (RFC 4028): the negotiated interval, our refreshes at N/2
  when we are the refresher, BYE at N - min(32, N/3) when the peer is and
  stays silent;
- REFER (RFC 3515) both ways: :class:`ReferHandle` sends the NOTIFYs of a
  REFER we accepted, :class:`ReferSubscription` follows one we sent.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import TYPE_CHECKING

from sip.errors import SipParseError
from sip.headers import NameAddress
from sip.message import Request, Response, make_response
from sip.session_timer import (
    MIN_SE,
    Deadlines,
    DeadlineToken,
    SessionTimer,
    expiry_margin,
    negotiate_uas,
    parse_session_expires,
    supports_timer,
)
from sip.transaction import ServerInviteTransaction

if TYPE_CHECKING:
    from sip.dialog import Dialog
    from sip.dialog_host import DialogHost
    from sip.invite import EndReason
    from sip.transaction import ServerTransaction
    from sip.transport import Flow

__all__ = ["MidCall", "ReferHandle", "ReferSubscription", "parse_sipfrag_status"]

log = logging.getLogger("callswitch.sip")

SIPFRAG = "message/sipfrag;version=2.0"
REFER_TIMEOUT_S = 30.0  # how long a REFER we sent may go without its final NOTIFY
GLARE_RETRY_S = 2.0  # RFC 3261 §14.1: 2.1-4 s for the owner of the Call-ID, 0-2 s else


def parse_sipfrag_status(body: bytes) -> int | None:
    """The status code of a ``message/sipfrag`` status line (RFC 3420), e.g. 200."""
    line = body.split(b"\n", 1)[0].strip()
    parts = line.split(b" ", 2)
    if len(parts) < 2 or not parts[0].upper().startswith(b"SIP/") or not parts[1].isdigit():
        return None
    status = int(parts[1])
    return status if 100 <= status <= 699 else None


def _event_id(value: str | None) -> str | None:
    """The id parameter of ``Event: refer;id=7``."""
    if not value:
        return None
    name, *params = value.split(";")
    if name.strip().lower() != "refer":
        return None
    for param in params:
        key, _, param_value = param.partition("=")
        if key.strip().lower() == "id":
            return param_value.strip()
    return ""


class ReferHandle:
    """The notifier side of a REFER we accepted (RFC 3515 §2.4.4-§2.4.5).

    The application creates it in ``on_refer``; the session binds it to the
    dialog, answers 202 and sends the first NOTIFY (100 Trying).
    ``notify(status, reason)`` reports progress; a status ≥ 200 is final and
    ends the implicit subscription.
    """

    def __init__(self) -> None:
        self.refer_to: str = ""
        self.referred_by: str | None = None
        self.done = False
        self.sent: list[int] = []  # the sipfrag statuses NOTIFYed so far
        self._session: MidCall | None = None
        self._event = "refer"
        self._queued: list[tuple[int, str]] = []

    def notify(self, status: int, reason: str = "") -> None:
        if self.done:
            return
        if self._session is None:
            self._queued.append((status, reason))
            return
        session = self._session
        if session.dialog is None or session.midcall_over:
            self.done = True
            return
        final = status >= 200
        state = "terminated;reason=noresource" if final else "active;expires=60"
        body = f"SIP/2.0 {status} {reason or _REASONS.get(status, 'Status')}\r\n".encode()
        session.ua.send_in_dialog(
            session.dialog,
            "NOTIFY",
            body,
            SIPFRAG,
            headers=[("Event", self._event), ("Subscription-State", state)],
        )
        self.sent.append(status)
        if final:
            self.done = True

    def bind(self, session: MidCall, event: str) -> None:
        self._session = session
        self._event = event
        self.notify(100, "Trying")
        queued, self._queued = self._queued, []
        for status, reason in queued:
            self.notify(status, reason)


_REASONS = {
    100: "Trying",
    180: "Ringing",
    183: "Session Progress",
    200: "OK",
    404: "Not Found",
    408: "Request Timeout",
    480: "Temporarily Unavailable",
    486: "Busy Here",
    487: "Request Terminated",
    500: "Server Internal Error",
    503: "Service Unavailable",
    603: "Decline",
}


def _noop(*args: object) -> None:
    pass


class ReferSubscription:
    """A REFER we sent and the NOTIFYs it brings back (RFC 3515 §2.4.4, §2.4.7).

    ``refer_status`` is the REFER's own final response (202 when accepted);
    ``on_progress`` gets every sipfrag status; ``final_status`` and
    ``on_final`` the outcome: the final sipfrag status, the REFER's error
    response, or 408 when nothing final came within 30 s.
    """

    def __init__(self, target: str) -> None:
        self.target = target
        self.refer_status: int | None = None
        self.final_status: int | None = None
        self.progress: list[int] = []
        self.on_progress: Callable[[int], None] = _noop
        self.on_final: Callable[[int], None] = _noop
        self.event_id: str | None = None
        self.timeout: DeadlineToken | None = None  # the 30 s deadline's token

    @property
    def done(self) -> bool:
        return self.final_status is not None

    def notified(self, status: int | None, terminated: bool) -> None:
        if self.done:
            return
        if status is not None:
            self.progress.append(status)
            self.on_progress(status)
        if status is not None and status >= 200:
            self.finish(status)
        elif terminated:
            self.finish(status if status is not None and status >= 200 else 500)

    def finish(self, status: int) -> None:
        if self.done:
            return
        self.final_status = status
        Deadlines.cancel(self.timeout)
        self.timeout = None
        self.on_final(status)


class MidCall:
    """Mid-dialog behaviour shared by both session kinds (see the module doc).

    The host class provides ``ua``, ``dialog``, ``local_sdp``, ``call_id``,
    ``hangup(reason)`` and sets ``_role`` to "uas" or "uac".
    """

    _role = "uas"
    ua: DialogHost
    dialog: Dialog | None
    flow: Flow
    local_sdp: bytes | None
    call_id: str

    def hangup(self, reason: EndReason) -> None:
        """End the call with a BYE (the host class's)."""
        raise NotImplementedError

    def _init_midcall(self) -> None:
        # Set by the application:
        self.on_offer: Callable[[bytes], bytes | None] = self._keep_local_sdp
        self.on_answer: Callable[[bytes], None] = _noop  # the SDP answer to an offer of ours
        # A ReferHandle accepts (202); a status (e.g. 403) refuses; None declines (603).
        self.on_refer: Callable[[str, str | None], ReferHandle | int | None] = _decline
        # Session timer (RFC 4028): the interval and whether we refresh.
        self.session_interval: int | None = None
        self.we_refresh = False
        self._timer_token: DeadlineToken | None = None
        self._offered_in_2xx = False  # our 2xx to a re-INVITE without SDP made the offer
        self._reinvite_txn: ServerInviteTransaction | None = None  # a re-INVITE's, till ACKed
        self._client_reinvite = False  # our own re-INVITE is in progress (glare: 491)
        self._peer_allow: str = ""
        self._subscriptions: list[ReferSubscription] = []
        self.refer_handles: list[ReferHandle] = []
        self.midcall_over = False

    # The application's callbacks on this kind of session, besides the three above.
    _APPLICATION_CALLBACKS: tuple[str, ...] = ()

    def _drop_callbacks(self) -> None:
        """Forget the application's callbacks once the session has ended.

        They are nearly always bound methods or closures of objects that hold this
        session, so each call would otherwise leave a reference cycle behind, and
        its whole graph (RTP leg, TwiML runner, messages) would wait for a full
        collection, which the server runs rarely (callswitch/server.py).
        """
        for name in self._APPLICATION_CALLBACKS:
            setattr(self, name, _noop)
        self.on_offer = _no_answer
        self.on_answer = _noop
        self.on_refer = _decline

    def _keep_local_sdp(self, offer: bytes) -> bytes | None:
        """The default answer: our session description unchanged (RFC 3264 §8)."""
        return self.local_sdp

    # -- responses

    def _reply(
        self,
        txn: ServerTransaction,
        request: Request,
        status: int,
        *,
        reason: str | None = None,
        body: bytes = b"",
        content_type: str | None = None,
        headers: list[tuple[str, str]] | None = None,
    ) -> None:
        extra = list(headers or ())
        if 200 <= status < 300 and request.method in ("INVITE", "UPDATE"):
            extra += [
                ("Contact", self.ua.contact_for(self.flow)),
                ("Allow", self.ua.allow),
                ("Supported", "timer"),
            ]
        response = make_response(
            request, status, reason, body=body, content_type=content_type, headers=extra
        )
        response.headers.add("Server", self.ua.name)
        txn.send_response(response, self.ua.clock())

    # -- offers in the dialog (RFC 3264 §8, RFC 3311 §5.2)

    def receive_reinvite(self, request: Request, txn: ServerTransaction) -> None:
        self._receive_offer(request, txn)

    def receive_update(self, request: Request, txn: ServerTransaction) -> None:
        self._receive_offer(request, txn)

    def _receive_offer(self, request: Request, txn: ServerTransaction) -> None:
        is_invite = request.method == "INVITE"
        if request.body and request.content_type != "application/sdp":
            self._reply(txn, request, 415, headers=[("Accept", "application/sdp")])
            return
        if is_invite and self._client_reinvite:
            self._reply(txn, request, 491)  # RFC 3261 §14.2: offers crossed
            return
        if is_invite and self._reinvite_txn is not None:
            # RFC 3261 §14.2: an earlier re-INVITE still awaits its ACK.
            self._reply(txn, request, 500, headers=[("Retry-After", "1")])
            return
        timer = negotiate_uas(request)
        if isinstance(timer, int):  # 422: Session-Expires below our Min-SE
            self._reply(txn, request, 422, headers=[("Min-SE", str(MIN_SE))])
            return
        body = b""
        if request.body:
            body = self.on_offer(request.body) or b""
            if not body:
                self._reply(txn, request, 488)
                return
            self.local_sdp = body
        elif is_invite:
            body = self.local_sdp or b""  # our offer; the ACK brings the answer (RFC 3261 §14.2)
            self._offered_in_2xx = bool(body)
        headers = self._refresh_response_headers(request, timer)
        if isinstance(txn, ServerInviteTransaction):  # a re-INVITE (not an UPDATE)
            self._reinvite_txn = txn
        self._reply(
            txn,
            request,
            200,
            body=body,
            content_type="application/sdp" if body else None,
            headers=headers,
        )

    def reinvite_timed_out(self, txn: ServerTransaction) -> None:
        """The UA's hook: the 2xx to a re-INVITE (``txn``) was never ACKed."""
        if self._reinvite_txn is txn:
            self._reinvite_txn = None

    def ack_in_dialog(self, ack: Request, now: float) -> bool:
        """An ACK for our 2xx to a re-INVITE: True when it was one."""
        txn = self._reinvite_txn
        if txn is None or ack.cseq.seq != txn.request.cseq.seq:
            return False
        self._reinvite_txn = None
        txn.ack_received(now)
        if self._offered_in_2xx:
            self._offered_in_2xx = False
            if ack.body and ack.content_type == "application/sdp":
                self.on_answer(ack.body)
        return True

    # -- session timers (RFC 4028)

    def _refresh_response_headers(
        self, request: Request, timer: SessionTimer | None
    ) -> list[tuple[str, str]]:
        """Negotiate from a request of the peer and (re)arm our timer (RFC 4028 §9)."""
        peer_supports = supports_timer(request)
        if timer is None:
            if self.session_interval is None:
                return []
            # No Session-Expires in the peer's request: keep the interval we had.
            refresher = "uac" if peer_supports and not self.we_refresh else "uas"
            timer = SessionTimer(self.session_interval, refresher)
        # In this transaction the peer is the UAC and we are the UAS.
        self._start_timer(timer.interval, we_refresh=timer.refresher == "uas")
        headers = [("Session-Expires", timer.header())]
        if peer_supports:
            headers.append(("Require", "timer"))
        return headers

    def _session_timer_for_invite(self, request: Request) -> list[tuple[str, str]]:
        """For the 2xx of the dialog-creating INVITE: Session-Expires, Require."""
        self._peer_allow = request.headers.get("Allow") or ""
        try:
            timer = negotiate_uas(request)
        except SipParseError:
            timer = None
        if not isinstance(timer, SessionTimer):
            return [("Supported", "timer")]
        return [("Supported", "timer"), *self._refresh_response_headers(request, timer)]

    def _session_timer_from_2xx(self, response: Response) -> None:
        """The callee's 2xx to our INVITE or refresh sets the timer (RFC 4028 §7.2)."""
        self._peer_allow = response.headers.get("Allow") or self._peer_allow
        value = response.headers.get("Session-Expires")
        if value is None:
            if self.session_interval is not None and self.we_refresh:
                self._start_timer(self.session_interval, we_refresh=True)
            return
        try:
            interval, refresher = parse_session_expires(value)
        except SipParseError:
            return
        # In our request we are the UAC; a 2xx without a refresher leaves it to us.
        self._start_timer(max(interval, MIN_SE), we_refresh=refresher != "uas")

    def _start_timer(self, interval: int, *, we_refresh: bool) -> None:
        self.session_interval = interval
        self.we_refresh = we_refresh
        deadlines: Deadlines = self.ua.deadlines
        deadlines.cancel(self._timer_token)
        now = self.ua.clock()
        if we_refresh:
            self._timer_token = deadlines.add(now + interval / 2, self.refresh)
        else:
            self._timer_token = deadlines.add(now + expiry_margin(interval), self._expired)

    def _expired(self) -> None:
        """No refresh from the peer in time: RFC 4028 §10 says BYE."""
        self._timer_token = None
        if self.dialog is None or self.midcall_over:
            return
        log.info("sip.session_expired", extra={"call_id": self.call_id})
        from sip.invite import EndReason

        self.hangup(EndReason.SESSION_EXPIRED)

    def refresh(self) -> None:
        """Refresh the session (RFC 4028 §7.4, §8): UPDATE when the peer allows it,
        else a re-INVITE with our current SDP."""
        self._timer_token = None
        if self.dialog is None or self.midcall_over:
            return
        interval = self.session_interval or MIN_SE
        headers = [
            ("Session-Expires", f"{interval};refresher=uac"),
            ("Min-SE", str(MIN_SE)),
            ("Supported", "timer"),
        ]
        if "UPDATE" in self._peer_allow.upper():
            self.ua.send_in_dialog(
                self.dialog, "UPDATE", headers=headers, callback=self._refresh_answered
            )
            return
        if self._client_reinvite or self._reinvite_txn is not None:
            self._timer_token = self.ua.deadlines.add(self.ua.clock() + 1.0, self.refresh)
            return
        self.send_reinvite(self.local_sdp or b"", headers=headers)

    @property
    def reinvite_busy(self) -> bool:
        """An offer of ours or of the peer's is in progress: a new re-INVITE would glare."""
        return self._client_reinvite or self._reinvite_txn is not None

    def send_reinvite(
        self,
        sdp: bytes,
        headers: list[tuple[str, str]] | None = None,
        on_response: Callable[[Response | None], None] | None = None,
    ) -> None:
        """A re-INVITE of ours offering ``sdp``; the 2xx is ACKed and its answer goes
        to ``on_answer`` (RFC 3261 §14.1). ``on_response`` hears the final response
        (None: timed out), first."""
        if self.dialog is None:
            if on_response is not None:
                on_response(None)
            return
        self._client_reinvite = True
        if sdp:
            self.local_sdp = sdp
        self.ua.send_in_dialog(
            self.dialog,
            "INVITE",
            sdp,
            "application/sdp" if sdp else None,
            headers=[("Allow", self.ua.allow), *(headers or [("Supported", "timer")])],
            callback=lambda response: self._reinvite_answered(response, on_response),
        )

    def _reinvite_answered(
        self,
        response: Response | None,
        on_response: Callable[[Response | None], None] | None = None,
    ) -> None:
        self._client_reinvite = False
        if on_response is not None:
            on_response(response)
        if response is not None and 200 <= response.status < 300 and self.dialog is not None:
            ack = self.dialog.create_request("ACK", cseq=response.cseq.seq)
            flow = self.ua.dialog_flow(self.dialog)
            if flow is not None:
                ack.headers.prepend("Via", self.ua.via_for(flow))
                flow.send(ack.serialize())
            if response.body and response.content_type == "application/sdp":
                self.on_answer(response.body)
        self._refresh_answered(response)

    def _refresh_answered(self, response: Response | None) -> None:
        if self.dialog is None or self.midcall_over:
            return
        status = response.status if response is not None else 408
        if 200 <= status < 300:
            if response is not None:
                self._session_timer_from_2xx(response)
            return
        if status in (408, 481):  # RFC 3261 §12.2.1.2: the dialog is gone
            from sip.invite import EndReason

            self.hangup(EndReason.SESSION_EXPIRED)
            return
        if status == 422 and response is not None:
            min_se = (response.headers.get("Min-SE") or "").split(";")[0].strip()
            if min_se.isascii() and min_se.isdigit() and len(min_se) <= 10:
                self.session_interval = max(int(min_se), MIN_SE)
        elif status in (405, 501) and response is not None and response.cseq.method == "UPDATE":
            self._peer_allow = self._peer_allow.upper().replace("UPDATE", "")
        # Try again shortly; the session still lives until it expires at the peer.
        self._timer_token = self.ua.deadlines.add(self.ua.clock() + GLARE_RETRY_S, self.refresh)

    # -- REFER received (RFC 3515 §2.4.2)

    def receive_refer(self, request: Request, txn: ServerTransaction) -> None:
        values = request.headers.get_all("Refer-To")
        if len(values) != 1:
            self._reply(txn, request, 400, reason="Missing or Multiple Refer-To")
            return
        target = str(NameAddress.parse(values[0]).uri)
        referred_by_value = request.headers.get("Referred-By")
        referred_by = str(NameAddress.parse(referred_by_value).uri) if referred_by_value else None
        handle = self.on_refer(target, referred_by)
        if handle is None or isinstance(handle, int):
            self._reply(txn, request, handle or 603)  # the application's refusal, or 603
            return
        handle.refer_to = target
        handle.referred_by = referred_by
        self._reply(txn, request, 202, headers=[("Contact", self.ua.contact_for(self.flow))])
        self.refer_handles.append(handle)
        handle.bind(self, f"refer;id={request.cseq.seq}")

    # -- REFER sent (RFC 3515 §2.4.1, §2.4.7)

    def refer(self, target_uri: str, referred_by: str | None = None) -> ReferSubscription:
        """Ask the peer to call ``target_uri``; follow it through the returned object."""
        subscription = ReferSubscription(target_uri)
        if self.dialog is None or self.midcall_over:
            subscription.finish(481)
            return subscription
        target = target_uri if target_uri.startswith("<") else f"<{target_uri}>"
        headers = [("Refer-To", target)]
        if referred_by:
            headers.append(("Referred-By", f"<{referred_by}>"))

        def answered(response: Response | None) -> None:
            status = response.status if response is not None else 408
            subscription.refer_status = status
            if status >= 300:
                subscription.finish(status)

        txn = self.ua.send_in_dialog(self.dialog, "REFER", headers=headers, callback=answered)
        if txn is None:
            return subscription  # no route: answered(None) already finished it
        subscription.event_id = str(txn.request.cseq.seq)
        self._subscriptions.append(subscription)
        subscription.timeout = self.ua.deadlines.add(
            self.ua.clock() + REFER_TIMEOUT_S, lambda: subscription.finish(408)
        )
        return subscription

    def receive_notify(self, request: Request, txn: ServerTransaction) -> None:
        event_id = _event_id(request.headers.get("Event"))
        if event_id is None:
            self._reply(txn, request, 489)  # RFC 6665 §8.2.1: Bad Event
            return
        pending = [s for s in self._subscriptions if not s.done]
        match = next((s for s in pending if s.event_id == event_id), None)
        if match is None and not event_id and pending:
            match = pending[-1]
        if match is None:
            self._reply(txn, request, 481)
            return
        self._reply(txn, request, 200)
        state = (request.headers.get("Subscription-State") or "").split(";")[0].strip().lower()
        status = parse_sipfrag_status(request.body) if request.body else None
        match.notified(status, state == "terminated")
        if match.done:
            self._subscriptions.remove(match)

    # -- the end

    def stop_midcall(self) -> None:
        self.midcall_over = True
        self.ua.deadlines.cancel(self._timer_token)
        self._timer_token = None
        for subscription in self._subscriptions:
            subscription.finish(487)
        self._subscriptions.clear()


def _decline(target: str, referred_by: str | None) -> ReferHandle | None:
    return None


def _no_answer(offer: bytes) -> bytes | None:
    return None
