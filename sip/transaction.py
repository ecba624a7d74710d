"""SIP transactions: the four state machines of RFC 3261 §17, with the
Accepted states of RFC 6026, sans-I/O.

Nothing here touches a socket or a clock. Bytes leave through the ``send``
callable given to :class:`TransactionLayer` (with an opaque destination the
transport layer understands), time comes in as ``now`` arguments, and the
owner asks :meth:`TransactionLayer.next_deadline` when to call
:meth:`TransactionLayer.handle_timer` next.
"""

from __future__ import annotations

import enum
import heapq
import itertools
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

from sip.message import Headers, Request, Response
from sip.stats import SipCounters

__all__ = [
    "ClientInviteTransaction",
    "ClientNonInviteTransaction",
    "ClientTransaction",
    "ServerInviteTransaction",
    "ServerNonInviteTransaction",
    "ServerTransaction",
    "State",
    "Timers",
    "TransactionLayer",
    "TransactionUser",
    "make_ack_for_failure",
    "make_cancel",
]


@dataclass(frozen=True, slots=True)
class Timers:
    """The timer base values of RFC 3261 §17.1.1.1 and Table 4."""

    t1: float = 0.5
    t2: float = 4.0
    t4: float = 5.0

    @property
    def timeout(self) -> float:
        """64*T1: timers B, F, H, J, L and M."""
        return 64 * self.t1


class State(enum.Enum):
    CALLING = "calling"
    TRYING = "trying"
    PROCEEDING = "proceeding"
    ACCEPTED = "accepted"
    COMPLETED = "completed"
    CONFIRMED = "confirmed"
    TERMINATED = "terminated"


class TransactionUser(Protocol):
    """What the transaction layer tells the layer above it (the TU)."""

    def transaction_response(self, txn: ClientTransaction, response: Response) -> None:
        """A response the TU must see (RFC 3261 §17.1: not retransmissions)."""

    def transaction_timeout(self, txn: ClientTransaction | ServerTransaction) -> None:
        """Timer B/F fired on a client transaction, or no ACK came for a final
        response of a server INVITE transaction (Timer H, or Timer L for 2xx)."""


Send = Callable[[Any, bytes], None]
# How the layer finds a transaction again: branch, sent-by and method (or the RFC 2543
# fallback's dialog identifiers); see server_key and client_key.
TransactionKey = tuple[object, ...]

# Unique tiebreaker for the timer heap: transactions are not orderable.
_counter = itertools.count()


class _Transaction:
    """Common timer bookkeeping: at most a retransmit and a timeout timer."""

    __slots__ = (
        "_interval",
        "_layer",
        "_retransmit_at",
        "_timeout_at",
        "deadline",
        "dest",
        "key",
        "reliable",
        "request",
        "state",
    )

    def __init__(
        self,
        layer: TransactionLayer,
        key: TransactionKey,
        request: Request,
        dest: Any,
        reliable: bool,
    ) -> None:
        self._layer = layer
        self.key = key
        self.request = request
        self.dest = dest
        self.reliable = reliable
        self.state = State.TRYING
        self._retransmit_at: float | None = None
        self._timeout_at: float | None = None
        self._interval = layer.timers.t1
        self.deadline: float | None = None

    def _arm(self, retransmit_at: float | None, timeout_at: float | None) -> None:
        self._retransmit_at = retransmit_at
        self._timeout_at = timeout_at
        if retransmit_at is None:
            deadline = timeout_at
        elif timeout_at is None:
            deadline = retransmit_at
        else:
            deadline = min(retransmit_at, timeout_at)
        self.deadline = deadline
        if deadline is not None:
            self._layer._schedule(self, deadline)

    def _terminate(self) -> None:
        self.state = State.TERMINATED
        self._retransmit_at = self._timeout_at = self.deadline = None
        self._layer._forget(self)

    def handle_timer(self, now: float) -> None:
        if self._timeout_at is not None and now >= self._timeout_at:
            self._on_timeout(now)
        elif self._retransmit_at is not None and now >= self._retransmit_at:
            self._on_retransmit(now)
        elif self.deadline is not None:
            self._layer._schedule(self, self.deadline)

    def _on_timeout(self, now: float) -> None:  # pragma: no cover - overridden
        raise NotImplementedError

    def _on_retransmit(self, now: float) -> None:  # pragma: no cover - overridden
        raise NotImplementedError

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.key} {self.state.value}>"


# --------------------------------------------------------------------- server


class ServerTransaction(_Transaction):
    """Base of the two server machines: remembers the last response sent."""

    __slots__ = ("_last_bytes", "last_response", "source")

    def __init__(
        self,
        layer: TransactionLayer,
        key: TransactionKey,
        request: Request,
        dest: Any,
        reliable: bool,
    ) -> None:
        super().__init__(layer, key, request, dest, reliable)
        self.last_response: Response | None = None
        self._last_bytes: bytes | None = None
        self.source: str | None = None  # the sender's address, when the TU counts per source

    def _transmit(self, response: Response) -> None:
        self.last_response = response
        self._last_bytes = response.serialize()
        self._layer.counters.responses_sent[self.request.method, response.status] += 1
        self._layer.send(self.dest, self._last_bytes)

    def send_response(self, response: Response, now: float) -> None:
        """Send ``response`` (the TU's) and move the machine on."""
        raise NotImplementedError

    def receive_request(self, request: Request, now: float) -> bool:
        """A retransmission of the request (or its ACK): whether the TU must see it."""
        raise NotImplementedError

    def _resend(self) -> None:
        if self._last_bytes is not None:
            self._layer.counters.retransmissions[self.request.method] += 1
            self._layer.send(self.dest, self._last_bytes)


class ServerInviteTransaction(ServerTransaction):
    """RFC 3261 §17.2.1 (figure 7) with RFC 6026 §7.1's Accepted state.

    Retransmitting a 2xx until the ACK arrives is the UAS core's duty
    (RFC 3261 §13.3.1.4); it is done here, in the Accepted state, because this
    object already owns the response and a timer. The dialog layer calls
    :meth:`ack_received` when the ACK (a separate transaction) arrives.
    """

    __slots__ = ("acked",)

    def __init__(
        self,
        layer: TransactionLayer,
        key: TransactionKey,
        request: Request,
        dest: Any,
        reliable: bool,
    ) -> None:
        super().__init__(layer, key, request, dest, reliable)
        self.state = State.PROCEEDING
        self.acked = False

    def send_response(self, response: Response, now: float) -> None:
        if self.state is not State.PROCEEDING:
            raise RuntimeError(f"cannot send {response.status} in state {self.state.value}")
        self._transmit(response)
        t = self._layer.timers
        if response.status < 200:
            return
        self._interval = t.t1
        if response.status < 300:
            self.state = State.ACCEPTED
            self._arm(now + t.t1, now + t.timeout)  # 2xx retransmit, Timer L
        else:
            self.state = State.COMPLETED
            self._arm(None if self.reliable else now + t.t1, now + t.timeout)  # Timer G, H

    def receive_request(self, request: Request, now: float) -> bool:
        """Feed a request matching this transaction; True if the TU must see it."""
        if request.method == "ACK":
            if self.state is State.COMPLETED:
                self.state = State.CONFIRMED
                timer_i = 0.0 if self.reliable else self._layer.timers.t4
                self._arm(None, now + timer_i)
                return False
            if self.state is State.ACCEPTED:
                self.ack_received(now)
                return True
            return False
        if self.state in (State.PROCEEDING, State.COMPLETED):
            self._resend()
        return False

    def ack_received(self, now: float) -> None:
        """The ACK for our 2xx arrived: stop retransmitting it (RFC 3261 §13.3.1.4)."""
        if self.state is State.ACCEPTED and not self.acked:
            self.acked = True
            self._arm(None, self._timeout_at)

    def _on_retransmit(self, now: float) -> None:
        self._resend()
        self._interval = min(self._interval * 2, self._layer.timers.t2)
        self._arm(now + self._interval, self._timeout_at)

    def _on_timeout(self, now: float) -> None:
        state, acked = self.state, self.acked
        self._terminate()
        if state is State.COMPLETED or (state is State.ACCEPTED and not acked):
            self._layer.user.transaction_timeout(self)


class ServerNonInviteTransaction(ServerTransaction):
    """RFC 3261 §17.2.2 (figure 8)."""

    __slots__ = ()

    def send_response(self, response: Response, now: float) -> None:
        if self.state not in (State.TRYING, State.PROCEEDING):
            raise RuntimeError(f"cannot send {response.status} in state {self.state.value}")
        self._transmit(response)
        if response.status < 200:
            self.state = State.PROCEEDING
            return
        self.state = State.COMPLETED
        if self.reliable:
            self._terminate()
        else:
            self._arm(None, now + self._layer.timers.timeout)  # Timer J

    def receive_request(self, request: Request, now: float) -> bool:
        if self.state in (State.PROCEEDING, State.COMPLETED):
            self._resend()
        return False

    def _on_timeout(self, now: float) -> None:
        self._terminate()

    def _on_retransmit(self, now: float) -> None:  # pragma: no cover - never armed
        pass


# --------------------------------------------------------------------- client


class ClientTransaction(_Transaction):
    __slots__ = ("_request_bytes", "last_response")

    def __init__(
        self,
        layer: TransactionLayer,
        key: TransactionKey,
        request: Request,
        dest: Any,
        reliable: bool,
    ) -> None:
        super().__init__(layer, key, request, dest, reliable)
        self._request_bytes = request.serialize()
        self.last_response: Response | None = None

    def _send_request(self) -> None:
        self._layer.send(self.dest, self._request_bytes)

    def receive_response(self, response: Response, now: float) -> None:
        """A response matched to this transaction."""
        raise NotImplementedError

    def _on_retransmit(self, now: float) -> None:
        self._layer.counters.retransmissions[self.request.method] += 1
        self._send_request()
        self._interval = self._next_interval()
        self._arm(now + self._interval, self._timeout_at)

    def _next_interval(self) -> float:
        return min(self._interval * 2, self._layer.timers.t2)

    def _on_timeout(self, now: float) -> None:
        state = self.state
        self._terminate()
        if state in (State.CALLING, State.TRYING, State.PROCEEDING):
            self._layer.user.transaction_timeout(self)

    def transport_error(self) -> None:
        """RFC 3261 §17.1.4: a transport failure is reported like a timeout."""
        if self.state is not State.TERMINATED:
            self._terminate()
            self._layer.user.transaction_timeout(self)


class ClientInviteTransaction(ClientTransaction):
    """RFC 3261 §17.1.1 (figure 5) with RFC 6026 §7.2's Accepted state."""

    __slots__ = ("_ack_bytes",)

    def __init__(
        self,
        layer: TransactionLayer,
        key: TransactionKey,
        request: Request,
        dest: Any,
        reliable: bool,
    ) -> None:
        super().__init__(layer, key, request, dest, reliable)
        self.state = State.CALLING
        self._ack_bytes: bytes | None = None

    def start(self, now: float) -> None:
        self._send_request()
        t = self._layer.timers
        self._arm(None if self.reliable else now + t.t1, now + t.timeout)  # Timer A, B

    def receive_response(self, response: Response, now: float) -> None:
        status, state, t = response.status, self.state, self._layer.timers
        if state in (State.CALLING, State.PROCEEDING):
            self.last_response = response
            if status < 200:
                self.state = State.PROCEEDING
                self._arm(None, None)  # Timers A and B stop once a 1xx arrives
            elif status < 300:
                self.state = State.ACCEPTED
                self._arm(None, now + t.timeout)  # Timer M
            else:
                self.state = State.COMPLETED
                self._ack_bytes = make_ack_for_failure(self.request, response).serialize()
                self._layer.send(self.dest, self._ack_bytes)
                if self.reliable:
                    self._terminate()
                else:
                    self._arm(None, now + 32.0)  # Timer D: at least 32 s
            self._layer.user.transaction_response(self, response)
        elif state is State.ACCEPTED:
            if 200 <= status < 300:  # retransmitted 2xx: the TU ACKs it again
                self._layer.user.transaction_response(self, response)
        elif state is State.COMPLETED and status >= 300 and self._ack_bytes is not None:
            self._layer.send(self.dest, self._ack_bytes)

    def _next_interval(self) -> float:
        return self._interval * 2  # Timer A doubles without the T2 cap (§17.1.1.2)

    def _on_timeout(self, now: float) -> None:
        if self.state is State.CALLING:
            super()._on_timeout(now)
        else:
            self._terminate()


class ClientNonInviteTransaction(ClientTransaction):
    """RFC 3261 §17.1.2 (figure 6)."""

    __slots__ = ()

    def start(self, now: float) -> None:
        self._send_request()
        t = self._layer.timers
        self._arm(None if self.reliable else now + t.t1, now + t.timeout)  # Timer E, F

    def _next_interval(self) -> float:
        if self.state is State.PROCEEDING:
            return self._layer.timers.t2
        return super()._next_interval()

    def receive_response(self, response: Response, now: float) -> None:
        if self.state not in (State.TRYING, State.PROCEEDING):
            return
        self.last_response = response
        if response.status < 200:
            self.state = State.PROCEEDING
        else:
            self.state = State.COMPLETED
            if self.reliable:
                self._terminate()
            else:
                self._arm(None, now + self._layer.timers.t4)  # Timer K
        self._layer.user.transaction_response(self, response)


# --------------------------------------------------------------------- layer


def server_key(request: Request) -> TransactionKey:
    """RFC 3261 §17.2.3 matching: branch, sent-by and method (ACK matches INVITE)."""
    via = request.via
    method = "INVITE" if request.method == "ACK" else request.method
    branch = via.branch
    if branch and branch.startswith("z9hG4bK"):
        return (branch, via.sent_by, method)
    # RFC 2543 peers: no usable branch, fall back on the dialog identifiers.
    return (request.call_id, request.from_tag, request.cseq.seq, via.sent_by, method)


def client_key(branch: str, method: str) -> TransactionKey:
    """RFC 3261 §17.1.3 matching: our own branch and the CSeq method."""
    return (branch, "INVITE" if method == "ACK" else method)


class TransactionLayer:
    """Holds the live transactions, matches messages to them and runs timers."""

    def __init__(self, send: Send, user: TransactionUser, timers: Timers | None = None) -> None:
        self.send = send
        self.user = user
        self.timers = timers or Timers()
        self.server: dict[TransactionKey, ServerTransaction] = {}
        self.client: dict[TransactionKey, ClientTransaction] = {}
        self.counters = SipCounters()
        self._heap: list[tuple[float, int, _Transaction]] = []
        # Told each new deadline, so an event loop can arm one timer for the earliest.
        self.wakeup: Callable[[float], None] | None = None
        # Told when a server transaction ends (the TU's per-source accounting).
        self.server_ended: Callable[[ServerTransaction], None] | None = None

    # -- incoming

    def receive_request(
        self,
        request: Request,
        dest: Any,
        reliable: bool,
        now: float,
        key: TransactionKey | None = None,
    ) -> tuple[ServerTransaction | None, bool]:
        """Match an incoming request (``key``: its :func:`server_key`, when the caller
        has it already).

        Returns ``(transaction, deliver)``: ``deliver`` says whether the TU
        must act on the request. A new request gets a new transaction; an ACK
        for a 2xx has none (it is its own, response-less transaction).
        """
        self.counters.requests_received[request.method] += 1
        if key is None:
            key = server_key(request)
        txn = self.server.get(key)
        if txn is not None:
            return txn, txn.receive_request(request, now)
        if request.method == "ACK":
            return None, True
        cls = ServerInviteTransaction if request.method == "INVITE" else ServerNonInviteTransaction
        txn = cls(self, key, request, dest, reliable)
        self.server[key] = txn
        return txn, True

    def receive_response(self, response: Response, now: float) -> bool:
        """Match an incoming response; False when no transaction wanted it."""
        self.counters.responses_received[response.cseq.method, response.status] += 1
        txn = self.client.get(client_key(response.branch or "", response.cseq.method))
        if txn is None:
            return False
        txn.receive_response(response, now)
        return True

    def find_invite(self, cancel: Request) -> ServerInviteTransaction | None:
        """The INVITE transaction a CANCEL targets (RFC 3261 §9.2)."""
        key = server_key(cancel)
        txn = self.server.get((*key[:-1], "INVITE"))
        return txn if isinstance(txn, ServerInviteTransaction) else None

    # -- outgoing

    def start_client(
        self, request: Request, dest: Any, reliable: bool, now: float
    ) -> ClientTransaction:
        """Send a request (its top Via already carries our branch) in a new transaction."""
        key = client_key(request.branch or "", request.method)
        cls = ClientInviteTransaction if request.method == "INVITE" else ClientNonInviteTransaction
        txn = cls(self, key, request, dest, reliable)
        self.client[key] = txn
        self.counters.requests_sent[request.method] += 1
        txn.start(now)
        return txn

    # -- time

    def next_deadline(self) -> float | None:
        heap = self._heap
        while heap:
            deadline, _, txn = heap[0]
            if txn.deadline == deadline:
                return deadline
            heapq.heappop(heap)  # stale entry: the transaction re-armed or ended
        return None

    def handle_timer(self, now: float) -> None:
        heap = self._heap
        while heap and heap[0][0] <= now:
            deadline, _, txn = heapq.heappop(heap)
            if txn.deadline == deadline:
                txn.deadline = None
                txn.handle_timer(now)

    def _schedule(self, txn: _Transaction, deadline: float) -> None:
        heapq.heappush(self._heap, (deadline, next(_counter), txn))
        if self.wakeup is not None:
            self.wakeup(deadline)

    def _forget(self, txn: _Transaction) -> None:
        if isinstance(txn, ServerTransaction):
            if self.server.get(txn.key) is txn:
                del self.server[txn.key]
                if self.server_ended is not None:
                    self.server_ended(txn)
        elif self.client.get(txn.key) is txn:
            del self.client[txn.key]

    def awaiting_responses(self) -> int:
        """Client transactions that have no final response yet (shutdown waits for these)."""
        waiting = (State.CALLING, State.TRYING, State.PROCEEDING)
        return sum(1 for txn in self.client.values() if txn.state in waiting)

    def __len__(self) -> int:
        return len(self.server) + len(self.client)


# --------------------------------------------------------------------- helpers


def make_ack_for_failure(invite: Request, response: Response) -> Request:
    """The ACK a client INVITE transaction sends for a 3xx-6xx (RFC 3261 §17.1.1.3)."""
    headers = Headers()
    headers.add("Via", str(invite.vias[0]))
    headers.add("Max-Forwards", "70")
    headers.add("From", invite.headers.get("From") or "")
    headers.add("To", response.headers.get("To") or "")
    headers.add("Call-ID", invite.call_id)
    headers.add("CSeq", f"{invite.cseq.seq} ACK")
    for route in invite.headers.get_all("Route"):
        headers.add("Route", route)
    return Request("ACK", invite.uri, headers)


def make_cancel(invite: Request) -> Request:
    """A CANCEL for a pending INVITE (RFC 3261 §9.1): same branch, same CSeq number."""
    headers = Headers()
    headers.add("Via", str(invite.vias[0]))
    headers.add("Max-Forwards", "70")
    headers.add("From", invite.headers.get("From") or "")
    headers.add("To", invite.headers.get("To") or "")
    headers.add("Call-ID", invite.call_id)
    headers.add("CSeq", f"{invite.cseq.seq} CANCEL")
    for route in invite.headers.get_all("Route"):
        headers.add("Route", route)
    return Request("CANCEL", invite.uri, headers)
