"""The SIP user agent core (RFC 3261 §8, §12-§15): the public face of ``sip/``.

It parses what the transports receive, answers what is malformed, runs the
transaction layer, keeps the dialogs, and hands new INVITEs to the application
as :class:`~sip.invite.InviteSession` objects. Time comes from the injected
``clock``; bytes leave through flows, so the core runs without sockets in tests.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from sip.dialog import Dialog, DialogId
from sip.dialog_host import ResponseCallback
from sip.errors import SipParseError
from sip.headers import NameAddress, Via
from sip.invite import EndReason, InviteSession
from sip.message import Request, Response, generate_branch, generate_tag, make_response
from sip.parser import parse_message
from sip.privacy import identity_withheld
from sip.session_timer import MIN_SE, Deadlines, negotiate_uas
from sip.source_limits import Admission, SourceGuard
from sip.transaction import (
    ClientTransaction,
    ServerInviteTransaction,
    ServerTransaction,
    Timers,
    TransactionKey,
    TransactionLayer,
    server_key,
)
from sip.transport import Flow
from sip.uac import OutgoingInvite

__all__ = ["UserAgent"]

log = logging.getLogger("callswitch.sip")

FlowFactory = Callable[[str, str, "int | None"], "Flow | None"]
RequestHandler = Callable[[Request, ServerTransaction, Flow], None]
# Answers a request without a transaction (e.g. a REGISTER's challenge), or None.
StatelessHandler = Callable[[Request, Flow], "Response | None"]

# Option tags we implement (RFC 3261 §19.2); a Require of anything else gets 420.
# Session timers (RFC 4028) only: reliable provisionals (100rel) and Replaces come later.
SUPPORTED_EXTENSIONS: frozenset[str] = frozenset({"timer"})
# Methods we know but do not (yet) serve: 405 with Allow; anything else is 501.
KNOWN_METHODS = frozenset(
    {"REGISTER", "SUBSCRIBE", "NOTIFY", "PUBLISH", "MESSAGE", "REFER", "PRACK", "UPDATE"}
)


class UserAgent:
    """Stateless checks, transactions, dialogs and INVITE sessions for one node."""

    def __init__(
        self,
        *,
        host: str,
        port: int,
        flow_for: FlowFactory,
        clock: Callable[[], float],
        timers: Timers | None = None,
        name: str = "callswitch",
    ) -> None:
        self.host = host  # the address we put in Via and Contact
        self.port = port
        self.tls_port: int | None = None  # the TLS listener's, set by whoever starts it
        self.flow_for = flow_for
        self.clock = clock
        self.name = name
        self.layer = TransactionLayer(self._send, self, timers)
        self.layer.server_ended = self._server_ended
        self.on_invite: Callable[[InviteSession], None] | None = None
        self.handlers: dict[str, RequestHandler] = {}  # other methods, e.g. REGISTER later
        # Tried before a new transaction is made: a response they give is sent statelessly.
        self.stateless: dict[str, StatelessHandler] = {}
        # Per-source limits (sip/source_limits.py); None: none (the node sets one).
        self.guard: SourceGuard | None = None
        self.sessions: dict[DialogId, InviteSession | OutgoingInvite] = {}
        self._by_invite: dict[TransactionKey, InviteSession] = {}  # server INVITE txn key → session
        self._callbacks: dict[TransactionKey, ResponseCallback] = {}  # client txn key → callback
        self._invite_clients: dict[TransactionKey, OutgoingInvite] = {}  # our INVITE txn key → call
        self.parse_errors = 0
        self._ended: dict[DialogId, float] = {}  # dialog → until when a late BYE gets 200
        # Session timers and REFER timeouts (sip/midcall.py), beside the transactions'.
        self.deadlines = Deadlines(lambda: self.layer.wakeup)

    @property
    def allow(self) -> str:
        methods = ["INVITE", "ACK", "CANCEL", "BYE", "OPTIONS", "INFO", "UPDATE", "REFER", "NOTIFY"]
        return ", ".join([*methods, *(m for m in self.handlers if m not in methods)])

    # -- receiving

    def receive(self, data: bytes, flow: Flow) -> None:
        """Entry point for every message a transport receives."""
        try:
            message = parse_message(data)
        except SipParseError as exc:
            self.parse_errors += 1
            request = exc.request
            log.info("sip.bad_message", extra={"peer": flow.remote, "reason": exc.reason})
            # RFC 3261 §8.2: answer 400 when we can; an ACK never gets a response.
            if request is not None and request.method != "ACK":
                self._answer_malformed(request, exc, flow)
            return
        now = self.clock()
        if isinstance(message, Response):
            self._receive_response(message, now)
        else:
            self._receive_request(message, flow, now)

    def _answer_malformed(self, request: Request, error: SipParseError, flow: Flow) -> None:
        """A stateless 400 (or 505) for a request we could read enough of."""
        try:
            self._fix_via(request, flow)
            response = make_response(request, error.status, error.reason)
            data = response.serialize()
            response_flow = self._response_flow(request, flow)
        except SipParseError:
            return  # not even the Via is usable: nowhere to answer (RFC 3261 §18.3)
        response_flow.send(data)

    def _receive_request(self, request: Request, flow: Flow, now: float) -> None:
        self._fix_via(request, flow)
        response_flow = self._response_flow(request, flow)
        counted = False
        key = server_key(request)
        if request.method != "ACK" and key not in self.layer.server:
            if not self._may_start(request, flow, response_flow, now):
                return
            counted = self.guard is not None
        txn, deliver = self.layer.receive_request(
            request, response_flow, flow.reliable, now, key=key
        )
        if counted and txn is not None:
            txn.source = flow.remote[0]
        if not deliver:
            return
        try:
            self._dispatch(request, txn, flow, now)
        except SipParseError as exc:
            # A header read lazily (Contact, From's URI...) was malformed after all.
            self.parse_errors += 1
            log.info("sip.bad_header", extra={"call_id": request.call_id, "reason": exc.reason})
            if txn is not None and txn.last_response is None and request.method != "ACK":
                self.respond(txn, request, 400, exc.reason)

    def _may_start(self, request: Request, flow: Flow, response_flow: Flow, now: float) -> bool:
        """Whether a request that would start a server transaction gets one.

        First the source's INVITE/REGISTER rate (503 with Retry-After, or
        nothing for a source that ignores them), then a stateless handler
        (a REGISTER's challenge costs no transaction), then the source's share
        of the transaction table.
        """
        guard = self.guard
        source = flow.remote[0]
        if guard is not None and request.method in ("INVITE", "REGISTER") and not request.to_tag:
            verdict = guard.admit(source, now)
            if verdict is not Admission.ALLOW:
                if verdict is Admission.REFUSE:
                    self._refuse_statelessly(request, response_flow, guard.rates.retry_after())
                return False
        stateless = self.stateless.get(request.method)
        if stateless is not None:
            try:
                response = stateless(request, flow)
            except SipParseError:
                response = None  # the stateful path answers 400
            if response is not None:
                self.layer.counters.responses_sent[request.method, response.status] += 1
                response_flow.send(response.serialize())
                return False
        if guard is not None and not guard.acquire_transaction(source):
            self._refuse_statelessly(request, response_flow, 5)
            return False
        return True

    def _refuse_statelessly(self, request: Request, flow: Flow, retry_after: int) -> None:
        headers = [("Retry-After", str(retry_after)), ("Server", self.name)]
        response = make_response(request, 503, to_tag=generate_tag(), headers=headers)
        self.layer.counters.responses_sent[request.method, 503] += 1
        flow.send(response.serialize())

    def _server_ended(self, txn: ServerTransaction) -> None:
        if txn.source is not None and self.guard is not None:
            self.guard.release_transaction(txn.source)

    def _dispatch(
        self, request: Request, txn: ServerTransaction | None, flow: Flow, now: float
    ) -> None:
        method = request.method
        if method == "ACK":
            self._receive_ack(request, now)
            return
        assert txn is not None
        to_tag = request.to_tag
        if method == "INVITE" and not to_tag:
            self._receive_invite(request, txn, flow)
        elif method == "CANCEL":
            self._receive_cancel(request, txn)
        elif method == "OPTIONS":
            self.respond(
                txn,
                request,
                200,
                headers=[("Allow", self.allow), ("Accept", "application/sdp")],
            )
        elif method in self.handlers:
            self.handlers[method](request, txn, flow)
        elif to_tag:
            self._receive_in_dialog(request, txn)
        elif method in ("BYE", "INFO", "UPDATE", "NOTIFY"):  # only meaningful in a dialog
            self.respond(txn, request, 481)
        elif method in KNOWN_METHODS:
            self.respond(txn, request, 405, headers=[("Allow", self.allow)])
        else:
            self.respond(txn, request, 501)

    def _receive_invite(self, request: Request, txn: ServerTransaction, flow: Flow) -> None:
        assert isinstance(txn, ServerInviteTransaction)
        uri = request.request_uri
        if uri.scheme not in ("sip", "sips"):
            self.respond(txn, request, 416)
            return
        unsupported = [
            option
            for value in request.headers.get_all("Require")
            for option in [value.strip().lower()]
            if option not in SUPPORTED_EXTENSIONS
        ]
        if unsupported:
            self.respond(txn, request, 420, headers=[("Unsupported", ", ".join(unsupported))])
            return
        if negotiate_uas(request) == 422:  # RFC 4028 §9: below our Min-SE
            self.respond(txn, request, 422, headers=[("Min-SE", str(MIN_SE))])
            return
        if request.body and request.content_type != "application/sdp":
            self.respond(txn, request, 415, headers=[("Accept", "application/sdp")])
            return
        # Read now what the dialog will need, so a malformed header is a 400, not a crash later.
        _ = request.from_.uri, request.to.uri
        for value in [
            *request.headers.get_all("Contact")[:1],
            *request.headers.get_all("Record-Route"),
        ]:
            NameAddress.parse(value)
        source = flow.remote[0]
        if self.guard is not None and not self.guard.acquire_call(source):
            self.respond(txn, request, 503, "Too Many Calls", headers=[("Retry-After", "30")])
            return
        # A 100 at once stops the caller's INVITE retransmissions (RFC 3261 §17.2.1).
        self.respond(txn, request, 100)
        session = InviteSession(self, request, txn, flow)
        if self.guard is not None:
            session.counted_source = source
        self._by_invite[txn.key] = session
        log.info(
            "sip.invite",
            extra={
                "call_id": request.call_id,
                "to": uri.user,
                # RFC 3323: a caller who asked for privacy is not named in our logs.
                "from": "anonymous"
                if identity_withheld(request.headers)
                else request.from_.uri.user,
                "peer": flow.remote,
                "transport": flow.transport,
            },
        )
        if self.on_invite is None:
            session.reject(480)
        else:
            self.on_invite(session)

    def _receive_cancel(self, request: Request, txn: ServerTransaction) -> None:
        invite = self.layer.find_invite(request)
        if invite is None:
            self.respond(txn, request, 481)
            return
        self.respond(txn, request, 200)
        session = self._by_invite.get(invite.key)
        if session is not None:  # else the INVITE already got its final response
            session.cancel_received()

    def _receive_ack(self, request: Request, now: float) -> None:
        session = self.sessions.get((request.call_id, request.to_tag or "", request.from_tag or ""))
        if session is None:
            return  # RFC 3261 §17.2.3: an ACK nobody wants is dropped
        if session.ack_in_dialog(request, now):
            return  # the ACK of a re-INVITE's 2xx
        if isinstance(session, InviteSession):
            session.txn.ack_received(now)
            session.ack_received(request)

    def _receive_in_dialog(self, request: Request, txn: ServerTransaction) -> None:
        dialog_id = (request.call_id, request.to_tag or "", request.from_tag or "")
        session = self.sessions.get(dialog_id)
        if session is None or session.dialog is None:
            if request.method == "BYE" and self._recently_ended(dialog_id):
                self.respond(txn, request, 200)  # a late retransmission: it did end the call
            else:
                self.respond(txn, request, 481)
            return
        if not session.dialog.accept_request(request):
            self.respond(txn, request, 500, "Out of Order")
            return
        method = request.method
        if method == "BYE":
            self.respond(txn, request, 200)
            session.bye_received()
        elif method == "INVITE":
            session.receive_reinvite(request, txn)  # RFC 3264 §8 (sip/midcall.py)
        elif method == "UPDATE":
            session.receive_update(request, txn)  # RFC 3311, RFC 4028 refreshes
        elif method == "REFER":
            session.receive_refer(request, txn)  # RFC 3515
        elif method == "NOTIFY":
            session.receive_notify(request, txn)  # RFC 3515 §2.4.7
        elif method == "INFO":
            self.respond(txn, request, 200)
            digit = _dtmf_relay_digit(request)
            if digit:
                session.on_dtmf(digit)
        elif method in KNOWN_METHODS:
            self.respond(txn, request, 405, headers=[("Allow", self.allow)])
        else:
            self.respond(txn, request, 501)

    def _receive_response(self, response: Response, now: float) -> None:
        if not self.layer.receive_response(response, now):
            log.debug("sip.stray_response", extra={"call_id": response.call_id})

    # -- the transaction user interface

    def transaction_response(self, txn: ClientTransaction, response: Response) -> None:
        outgoing = self._invite_clients.get(txn.key)
        if outgoing is not None:
            if response.status >= 300:
                del self._invite_clients[txn.key]
            outgoing.receive_response(response)
            return
        if response.status >= 200:
            callback = self._callbacks.pop(txn.key, None)
            if callback is not None:
                callback(response)

    def transaction_timeout(self, txn: ClientTransaction | ServerTransaction) -> None:
        if isinstance(txn, ServerInviteTransaction):
            unacked = self._by_invite.pop(txn.key, None)
            if unacked is not None:
                unacked.ack_timed_out()
                return
            for session in self.sessions.values():  # a re-INVITE's 2xx never ACKed
                session.reinvite_timed_out(txn)
            return
        outgoing = self._invite_clients.pop(txn.key, None)
        if outgoing is not None:
            outgoing.timed_out()
            return
        callback = self._callbacks.pop(txn.key, None)
        if callback is not None:
            callback(None)

    # -- sending

    def _send(self, flow: Flow, data: bytes) -> None:
        flow.send(data)

    def respond(
        self,
        txn: ServerTransaction,
        request: Request,
        status: int,
        reason: str | None = None,
        headers: list[tuple[str, str]] | None = None,
    ) -> None:
        response = make_response(request, status, reason, headers=headers)
        response.headers.add("Server", self.name)
        txn.send_response(response, self.clock())

    def send_in_dialog(
        self,
        dialog: Dialog,
        method: str,
        body: bytes = b"",
        content_type: str | None = None,
        callback: ResponseCallback | None = None,
        headers: list[tuple[str, str]] | None = None,
    ) -> ClientTransaction | None:
        """Send a request within ``dialog`` in a new client transaction."""
        flow = self.dialog_flow(dialog)
        if flow is None:
            log.warning("sip.no_route", extra={"call_id": dialog.call_id, "method": method})
            if callback is not None:
                callback(None)
            return None
        request = dialog.create_request(method, body, content_type, headers)
        request.headers.prepend("Via", self.via_for(flow))
        txn = self.layer.start_client(request, flow, flow.reliable, self.clock())
        if callback is not None:
            self._callbacks[txn.key] = callback
        return txn

    def start_client(
        self, request: Request, flow: Flow, callback: ResponseCallback | None = None
    ) -> ClientTransaction:
        """Send a non-INVITE request of ours outside a dialog (a MESSAGE, say) in a new
        transaction; ``callback`` gets its final response, or None on timeout."""
        txn = self.layer.start_client(request, flow, flow.reliable, self.clock())
        if callback is not None:
            self._callbacks[txn.key] = callback
        return txn

    def start_invite_client(
        self, outgoing: OutgoingInvite, request: Request, flow: Flow
    ) -> ClientTransaction:
        """Send an INVITE of ours; every response reaches ``outgoing.receive_response``."""
        txn = self.layer.start_client(request, flow, flow.reliable, self.clock())
        self._invite_clients[txn.key] = outgoing
        return txn

    def dialog_flow(self, dialog: Dialog) -> Flow | None:
        flow = dialog.flow
        if dialog.proxied and flow is not None:
            # Our outbound proxy first: where the INVITE went (a name's located address).
            return flow if flow.is_open else self.flow_for(flow.transport, *flow.remote)
        if flow is not None and flow.reliable and flow.is_open and not dialog.route_set:
            return flow  # reuse the connection the dialog came on (RFC 5923 spirit)
        hop = dialog.next_hop()
        transport = (hop.params.get("transport") or (flow.transport if flow else "UDP")).upper()
        # The peer is behind a NAT when its packets come from elsewhere than its
        # Contact says; then its Contact is unreachable and the source address is
        # the way back (what Asterisk calls force_rport + rewrite_contact).
        if flow is None:
            return self.flow_for(transport, hop.host, hop.port)
        behind_nat = flow.remote[0] != hop.host.strip("[]")
        if behind_nat and not flow.reliable and transport == "UDP" and not dialog.route_set:
            return flow
        return self.flow_for(transport, hop.host, hop.port)

    def via_for(self, flow: Flow) -> str:
        """A top Via with a fresh branch for a request we send on ``flow``."""
        host_port = self.host_port(flow)
        return f"SIP/2.0/{flow.transport} {host_port};branch={generate_branch()};rport"

    def host_port(self, flow: Flow | None = None) -> str:
        """Our address for ``flow``: over TLS the TLS listener's port (RFC 3261 §18.1.1),
        over a WebSocket the port the phone connected to."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        port = self.port
        if flow is not None and flow.transport == "TLS" and self.tls_port:
            port = self.tls_port
        elif flow is not None and flow.transport in ("WS", "WSS"):
            port = flow.local[1]  # the listener that accepted the phone (RFC 7118 §5)
        return f"{host}:{port}"

    def contact_for(self, flow: Flow) -> str:
        suffix = "" if flow.transport == "UDP" else f";transport={flow.transport.lower()}"
        return f"<sip:{self.host_port(flow)}{suffix}>"

    # -- Via handling (RFC 3261 §18.2.1, RFC 3581 §4)

    def _fix_via(self, request: Request, flow: Flow) -> None:
        vias = request.headers.get_all("Via")
        if not vias:
            return
        via = Via.parse(vias[0])
        source_host, source_port = flow.remote
        changed = False
        if via.host.strip("[]") != source_host:
            via.params["received"] = source_host
            changed = True
        if "rport" in via.params and via.params["rport"] is None:
            via.params["rport"] = str(source_port)
            changed = True
        if changed:
            request.headers.set("Via", str(via))
            for value in vias[1:]:
                request.headers.add("Via", value)

    def _response_flow(self, request: Request, flow: Flow) -> Flow:
        """Where responses go (RFC 3261 §18.2.2, RFC 3581 §4)."""
        if flow.reliable:
            return flow
        via = request.via
        if "rport" in via.params:
            return flow
        host = via.params.get("received") or via.host
        port = via.port or 5060
        if (host.strip("[]"), port) == tuple(flow.remote):
            return flow
        return self.flow_for("UDP", host, port) or flow

    # -- session bookkeeping

    def register_session(self, session: InviteSession | OutgoingInvite) -> None:
        assert session.dialog is not None
        self.sessions[session.dialog.id] = session

    def unregister_session(self, session: InviteSession | OutgoingInvite) -> None:
        dialog = session.dialog
        if dialog is not None and self.sessions.pop(dialog.id, None) is not None:
            now = self.clock()
            self._forget_ended(now)  # else one entry per call would stay for good
            self._ended[dialog.id] = now + 2 * self.layer.timers.timeout
        session.stop_midcall()  # session timer, REFER subscriptions
        if isinstance(session, InviteSession):
            self._by_invite.pop(session.txn.key, None)
            if session.counted_source is not None and self.guard is not None:
                self.guard.release_call(session.counted_source)
                session.counted_source = None
        else:
            for key in [k for k, v in self._invite_clients.items() if v is session]:
                del self._invite_clients[key]

    def _recently_ended(self, dialog_id: DialogId) -> bool:
        """Whether a dialog ended less than 2*64*T1 ago.

        A BYE's server transaction lives 64*T1 (Timer J), but a peer on a lossy
        path may retransmit its BYE a little longer (SIPp does, past Timer J):
        that BYE still gets the 200 it asked for, not a 481 for a call it ended.
        """
        self._forget_ended(self.clock())
        return dialog_id in self._ended

    def _forget_ended(self, now: float) -> None:
        ended = self._ended
        while ended:  # insertion order is expiry order: drop the expired from the front
            first = next(iter(ended))
            if ended[first] > now:
                break
            del ended[first]

    def hangup_all(self) -> int:
        """End every session (on shutdown); returns how many there were."""
        sessions = {
            *self.sessions.values(),
            *self._by_invite.values(),
            *self._invite_clients.values(),
        }
        for session in sessions:
            session.hangup(EndReason.SHUTDOWN)
        return len(sessions)

    # -- time

    def next_deadline(self) -> float | None:
        deadlines = [self.layer.next_deadline(), self.deadlines.next_deadline()]
        if self._ended:  # the oldest ended dialog's expiry: an idle UA forgets them too
            deadlines.append(next(iter(self._ended.values())))
        return min((d for d in deadlines if d is not None), default=None)

    def handle_timer(self, now: float) -> None:
        self.layer.handle_timer(now)
        self.deadlines.run_due(now)
        self._forget_ended(now)


def _dtmf_relay_digit(request: Request) -> str | None:
    """The digit of a SIP INFO application/dtmf-relay body ("Signal=5")."""
    if request.content_type not in ("application/dtmf-relay", "application/dtmf"):
        return None
    text = request.body.decode("ascii", "replace")
    if request.content_type == "application/dtmf":
        return text.strip()[:1] or None
    for line in text.splitlines():
        name, _, value = line.partition("=")
        if name.strip().lower() == "signal":
            return value.strip()[:1] or None
    return None
