"""Registering with a registrar, as a client (RFC 3261 §10.2, RFC 5626): pure.

A :class:`Registration` keeps one binding of our contact at a registrar (a
carrier's, for a trunk). It never touches a socket or a clock: the driver tells it
the time, the responses and what became of the flow, and it answers with
:data:`Output` values: a REGISTER to send (the driver adds the Via), a CRLF
keep-alive to send, a failed flow to close, or a request for a fresh flow.
``next_deadline()`` says when ``on_timer`` is due.

The life of a binding::

    IDLE --start--> (NewFlow) --flow_ready--> REGISTERING --2xx--> REGISTERED
    REGISTERING --401/407--> REGISTERING (digest answered, RFC 3261 §22.2; twice at most)
    REGISTERING --423--> REGISTERING (asks Min-Expires, RFC 3261 §10.2.8)
    REGISTERING --403, 404, wrong login...--> FAILED        (retried after a back-off)
    REGISTERING --timeout, 408, 5xx, flow lost--> BACKING_OFF (retried after a back-off;
                                                  503's Retry-After is honoured)
    REGISTERED --refresh time--> REGISTERED (a REGISTER in flight)
    REGISTERED --flow lost, pong missing--> (NewFlow) REGISTERING   (RFC 5626 §4.4, §4.5)
    any --stop--> UNREGISTERING (Expires: 0) --final response--> STOPPED

The back-off is RFC 5626 §4.5's: ``min(max, base * 2**(failures - 1))`` times a
factor between 0.5 and 1 (the injected ``jitter`` returns 0 to 1). A refresh goes
out before the granted expiry (the registrar's Contact ``expires`` for our contact,
else its Expires header). Over TCP and TLS the Contact carries ``+sip.instance``
and ``reg-id`` with ``Supported: outbound, path`` (RFC 5626 §4.2), and once
registered the flow is kept alive with CRLF pings (§4.4.1): a pong missing for
``pong_timeout`` on a flow that has answered pings before (or whose registrar
said ``Require: outbound``) is a failed flow, and the binding is made again on a
new one.
"""

from __future__ import annotations

import enum
from collections.abc import Callable
from dataclasses import dataclass

from sip.auth import answer_challenge
from sip.errors import SipParseError
from sip.headers import NameAddress, SipUri, split_header_values
from sip.message import Headers, Request, Response

__all__ = [
    "CloseFlow",
    "NewFlow",
    "Output",
    "Registration",
    "RegistrationSettings",
    "RegistrationState",
    "RegistrationStatus",
    "SendPing",
    "SendRegister",
    "granted_expires",
]

MAX_AUTH_ROUNDS = 2  # a challenge answered twice over is a wrong login (or a stale nonce once)
MAX_INTERVAL_ROUNDS = 2  # 423s answered per attempt
MAX_EXPIRES = 2**31 - 1
REFRESH_MARGIN = 60.0  # refresh this long before expiry (at most half the interval)
MIN_REFRESH = 1.0  # never refresh more often than this, whatever the registrar grants
KEEPALIVE_PING = b"\r\n\r\n"  # RFC 5626 §4.4.1; the pong is a lone CRLF


class RegistrationState(enum.Enum):
    IDLE = "idle"
    REGISTERING = "registering"
    REGISTERED = "registered"
    BACKING_OFF = "backing-off"
    FAILED = "failed"
    UNREGISTERING = "unregistering"
    STOPPED = "stopped"


@dataclass(frozen=True, slots=True)
class RegistrationSettings:
    """What to register where. ``registrar`` is the Request-URI (``sip:domain``),
    ``aor`` the address of record (To and From); ``route`` an outbound proxy's URI,
    sent as a pre-loaded Route; ``instance`` our ``urn:uuid:`` (RFC 5626 §4.1)."""

    registrar: str
    aor: str
    call_id: str
    tag: str
    username: str | None = None
    password: str | None = None
    expires: int = 3600
    route: str | None = None
    instance: str | None = None
    user_agent: str = "callswitch"
    backoff_base: float = 5.0
    backoff_max: float = 1800.0
    keepalive: float = 90.0  # seconds between CRLF pings on a reliable flow
    pong_timeout: float = 10.0


@dataclass(frozen=True, slots=True)
class SendRegister:
    """Send ``request`` on the current flow (add a Via for it first)."""

    request: Request


@dataclass(frozen=True, slots=True)
class SendPing:
    """Send :data:`KEEPALIVE_PING` on the current flow and report the pong."""

    data: bytes = KEEPALIVE_PING


@dataclass(frozen=True, slots=True)
class CloseFlow:
    """The current flow has failed (its pongs stopped): close it, do not reuse it."""


@dataclass(frozen=True, slots=True)
class NewFlow:
    """Drop the current flow (if any), open one to the registrar, then call
    :meth:`Registration.flow_ready` (or :meth:`Registration.flow_closed` when none
    can be opened)."""


Output = SendRegister | SendPing | CloseFlow | NewFlow


@dataclass(frozen=True, slots=True)
class RegistrationStatus:
    """What a registration shows (metrics, console, ``callswitch trunks``)."""

    state: RegistrationState
    contact: str | None
    expires_in: float | None  # seconds the binding has left; None when there is none
    last_status: int | None  # the registrar's last final status (408: no answer)
    last_reason: str
    failures: int
    retry_in: float | None  # seconds to the next attempt after a failure


class Registration:
    """One binding at a registrar (see the module's docstring)."""

    def __init__(
        self, settings: RegistrationSettings, *, jitter: Callable[[], float] = lambda: 1.0
    ) -> None:
        self.settings = settings
        self._jitter = jitter
        self.state = RegistrationState.IDLE
        self.expires = max(1, min(settings.expires, MAX_EXPIRES))  # what we ask for
        self.contact: str | None = None  # the Contact URI on the current flow
        self.reliable = False
        self.failures = 0
        self.last_status: int | None = None
        self.last_reason = ""
        self._cseq = 0
        self._in_flight: int | None = None  # CSeq of the REGISTER awaiting its answer
        self._unregistering = False
        self._auth_rounds = 0
        self._interval_rounds = 0
        self._outbound = False  # the registrar said Require: outbound
        self._ponged = False  # the flow has answered a ping
        self._last_flow_loss: float | None = None
        self.expires_at: float | None = None
        self.refresh_at: float | None = None
        self.retry_at: float | None = None
        self.ping_at: float | None = None
        self.pong_due: float | None = None
        self._pending_auth: tuple[str, str] | None = None  # the next REGISTER's answer
        self._keepalive = settings.keepalive  # the registrar's Flow-Timer, when it gives one

    # -- what the driver tells us

    def start(self, now: float) -> list[Output]:
        """Begin: a flow is wanted, then the first REGISTER goes out."""
        if self.state is not RegistrationState.IDLE:
            return []
        self.state = RegistrationState.REGISTERING
        return [NewFlow()]

    def flow_ready(self, now: float, contact: str, *, reliable: bool) -> list[Output]:
        """A flow to the registrar is open; ``contact`` is our URI as seen on it."""
        if self.state in (RegistrationState.STOPPED, RegistrationState.UNREGISTERING):
            return []
        self.contact = contact
        self.reliable = reliable
        self._ponged = False
        self._stop_pinging()
        self.state = RegistrationState.REGISTERING
        self.retry_at = None
        return [self._register(new_attempt=True)]

    def flow_closed(self, now: float) -> list[Output]:
        """The flow closed (or none could be opened): register again on a new one,
        at once if the last loss was long ago, else after a back-off."""
        self._stop_pinging()
        if self.state is RegistrationState.UNREGISTERING:
            self._finish_stop()
            return []
        if self._in_flight is None and self.state is not RegistrationState.REGISTERED:
            return []  # nothing was riding on it: a retry is already scheduled
        self._in_flight = None
        recent = self._last_flow_loss is not None and (
            now - self._last_flow_loss < self.settings.backoff_base
        )
        self._last_flow_loss = now
        if self.state is RegistrationState.REGISTERED and not recent:
            self.state = RegistrationState.REGISTERING
            self.refresh_at = None
            return [NewFlow()]
        return self._fail(now, None, "flow lost", permanent=False)

    def no_flow(self, now: float, reason: str) -> list[Output]:
        """No flow to the registrar could be opened (a name that does not resolve,
        say): try again after a back-off."""
        if self.state in (RegistrationState.STOPPED, RegistrationState.UNREGISTERING):
            return []
        return self._fail(now, None, reason, permanent=False)

    def pong(self, now: float) -> None:
        """A CRLF pong arrived on the flow."""
        self._ponged = True
        if self.pong_due is not None:
            self.pong_due = None
            self._schedule_ping(now)

    def on_response(self, now: float, response: Response) -> list[Output]:
        """A final response of one of our REGISTERs."""
        try:
            cseq = response.cseq.seq
        except SipParseError:
            return []
        if cseq != self._in_flight or response.status < 200:
            return []
        self._in_flight = None
        status = response.status
        self.last_status, self.last_reason = status, response.reason
        if self._unregistering:
            if status in (401, 407) and self._answer(response):
                return [self._send()]
            self._finish_stop()
            return []
        if 200 <= status < 300:
            return self._registered(now, response)
        if status in (401, 407):
            if self._answer(response):
                return [self._send()]
            return self._fail(now, status, response.reason, permanent=True)
        if status == 423:
            return self._interval_too_brief(now, response)
        if status == 503:
            return self._fail(now, status, response.reason, permanent=False,
                              retry_after=_retry_after(response))  # fmt: skip
        transient = status in (408, 480) or status >= 500
        return self._fail(now, status, response.reason, permanent=not transient)

    def on_timeout(self, now: float, cseq: int) -> list[Output]:
        """The REGISTER with ``cseq`` got no final response (Timer F)."""
        if cseq != self._in_flight:
            return []
        self._in_flight = None
        self.last_status, self.last_reason = 408, "Request Timeout"
        if self._unregistering:
            self._finish_stop()
            return []
        return self._fail(now, 408, "Request Timeout", permanent=False)

    def on_timer(self, now: float) -> list[Output]:
        """Whatever is due at ``now``: a retry, a refresh, a ping, a missing pong."""
        out: list[Output] = []
        if self.expires_at is not None and now >= self.expires_at:
            self.expires_at = None  # the binding lapsed while we could not refresh it
        if self.retry_at is not None and now >= self.retry_at:
            self.retry_at = None
            self.state = RegistrationState.REGISTERING
            out.append(NewFlow())
        if self.refresh_at is not None and now >= self.refresh_at:
            self.refresh_at = None
            if self._in_flight is None:  # else the REGISTER in flight refreshes it
                out.append(self._register(new_attempt=True))
        if self.pong_due is not None and now >= self.pong_due:
            self.pong_due = None
            if self._ponged or self._outbound:
                out.append(CloseFlow())  # RFC 5626 §4.4.1: the flow has failed
                out += self.flow_closed(now)
            # else the peer never answered pings: it does not do them; stop asking
        elif self.ping_at is not None and now >= self.ping_at:
            self.ping_at = None
            self.pong_due = now + self.settings.pong_timeout
            out.append(SendPing())
        return out

    def stop(self, now: float) -> list[Output]:
        """Remove our binding (Expires: 0) when there may be one; then STOPPED."""
        self._stop_pinging()
        self.retry_at = self.refresh_at = None
        bound = self.expires_at is not None or self._in_flight is not None
        if self.contact is None or not bound or self.state is RegistrationState.STOPPED:
            self._finish_stop()
            return []
        self._unregistering = True
        self.state = RegistrationState.UNREGISTERING
        return [self._register(new_attempt=True)]

    # -- what the driver reads

    def next_deadline(self) -> float | None:
        times = (self.expires_at, self.retry_at, self.refresh_at, self.ping_at, self.pong_due)
        return min((t for t in times if t is not None), default=None)

    def status(self, now: float) -> RegistrationStatus:
        return RegistrationStatus(
            state=self.state,
            contact=self.contact,
            expires_in=None if self.expires_at is None else max(0.0, self.expires_at - now),
            last_status=self.last_status,
            last_reason=self.last_reason,
            failures=self.failures,
            retry_in=None if self.retry_at is None else max(0.0, self.retry_at - now),
        )

    # -- inside

    def _register(self, *, new_attempt: bool) -> SendRegister:
        if new_attempt:
            self._auth_rounds = 0
            self._interval_rounds = 0
        return self._send()

    def _send(self) -> SendRegister:
        s = self.settings
        assert self.contact is not None, "flow_ready gives the contact before any REGISTER"
        self._cseq += 1
        self._in_flight = self._cseq
        expires = 0 if self._unregistering else self.expires
        h = Headers()
        h.add("Max-Forwards", "70")
        if s.route:
            h.add("Route", _loose_route(s.route))
        h.add("From", f"<{s.aor}>;tag={s.tag}")
        h.add("To", f"<{s.aor}>")
        h.add("Call-ID", s.call_id)
        h.add("CSeq", f"{self._cseq} REGISTER")
        h.add("Contact", self._contact_header())
        h.add("Expires", str(expires))
        h.add("Supported", "outbound, path" if self.reliable and s.instance else "path")
        h.add("User-Agent", s.user_agent)
        if self._pending_auth is not None:
            h.add(*self._pending_auth)
            self._pending_auth = None
        return SendRegister(Request("REGISTER", s.registrar, h, b""))

    def _contact_header(self) -> str:
        text = f"<{self.contact}>"
        if self.settings.instance:
            text += f';+sip.instance="<{self.settings.instance}>"'
            if self.reliable:
                text += ";reg-id=1"
        return text

    def _answer(self, response: Response) -> bool:
        s = self.settings
        if s.username is None or self._auth_rounds >= MAX_AUTH_ROUNDS:
            return False
        header = answer_challenge(
            response,
            method="REGISTER",
            uri=s.registrar,
            username=s.username,
            password=s.password or "",
        )
        if header is None:
            return False
        self._auth_rounds += 1
        self._pending_auth = header
        return True

    def _registered(self, now: float, response: Response) -> list[Output]:
        assert self.contact is not None
        granted = granted_expires(response, self.contact, self.expires)
        if granted <= 0:  # the registrar says our binding is gone
            return self._fail(now, response.status, "binding not kept", permanent=False)
        self.state = RegistrationState.REGISTERED
        self.failures = 0
        self.expires_at = now + granted
        self.refresh_at = now + max(MIN_REFRESH, granted - min(granted / 2, REFRESH_MARGIN))
        requires = {v.strip().lower() for v in _values(response, "Require")}
        self._outbound = "outbound" in requires
        if self.reliable:
            self._keepalive = _flow_timer(response) or self.settings.keepalive
            if self.ping_at is None and self.pong_due is None:
                self._schedule_ping(now)
        return []

    def _interval_too_brief(self, now: float, response: Response) -> list[Output]:
        """423: ask again with the registrar's Min-Expires (RFC 3261 §10.2.8)."""
        try:
            minimum = int((response.headers.get("Min-Expires") or "").strip())
        except ValueError:
            minimum = 0
        if minimum <= self.expires or minimum > MAX_EXPIRES:
            return self._fail(now, 423, response.reason, permanent=True)
        if self._interval_rounds >= MAX_INTERVAL_ROUNDS:
            return self._fail(now, 423, response.reason, permanent=True)
        self._interval_rounds += 1
        self.expires = minimum
        return [self._send()]

    def _fail(
        self,
        now: float,
        status: int | None,
        reason: str,
        *,
        permanent: bool,
        retry_after: int | None = None,
    ) -> list[Output]:
        if status is not None:
            self.last_status = status
        self.last_reason = reason
        self.failures += 1
        self._in_flight = None
        self.refresh_at = None
        self._stop_pinging()
        self.state = RegistrationState.FAILED if permanent else RegistrationState.BACKING_OFF
        s = self.settings
        if retry_after is not None:
            delay = float(min(max(retry_after, 1), s.backoff_max))
        else:
            ceiling = min(s.backoff_max, s.backoff_base * 2 ** min(self.failures - 1, 30))
            delay = ceiling * (0.5 + 0.5 * min(max(self._jitter(), 0.0), 1.0))
        self.retry_at = now + delay
        return []

    def _schedule_ping(self, now: float) -> None:
        if not self.reliable or self.state is not RegistrationState.REGISTERED:
            return
        interval = self._keepalive
        # RFC 5626 §4.4.1: between 80 and 100 % of the interval.
        self.ping_at = now + interval * (0.8 + 0.2 * min(max(self._jitter(), 0.0), 1.0))

    def _stop_pinging(self) -> None:
        self.ping_at = self.pong_due = None

    def _finish_stop(self) -> None:
        self.state = RegistrationState.STOPPED
        self._unregistering = False
        self._in_flight = None
        self.expires_at = self.retry_at = self.refresh_at = None
        self._stop_pinging()


def granted_expires(response: Response, contact: str, asked: int) -> int:
    """The seconds a 2xx grants ``contact`` (RFC 3261 §10.2.4): its Contact's
    ``expires``; when no listed contact is ours but only one is listed (a registrar
    that rewrote it, behind a NAT say), that one's; else the Expires header, else
    what we ``asked``. Never raises on what a registrar sent."""
    ours = _contact_key(contact)
    listed: list[NameAddress] = []
    for value in _values(response, "Contact"):
        try:
            listed.append(NameAddress.parse(value))
        except SipParseError:
            continue
    mine = [a for a in listed if ours is not None and _uri_key(a.uri) == ours]
    if not mine and len(listed) == 1:
        mine = listed
    if mine:
        seconds = _seconds(mine[0].params.get("expires"))
        if seconds is not None:
            return seconds
    header = _seconds(response.headers.get("Expires"))
    return header if header is not None else asked


def _values(response: Response, name: str) -> list[str]:
    try:
        return [v for raw in response.headers.get_all(name) for v in split_header_values(raw)]
    except SipParseError:
        return []


def _seconds(text: str | None) -> int | None:
    if text is None:
        return None
    text = text.strip().strip('"')
    # ASCII digits only: str.isdigit() also takes superscripts ("¹"), which int() refuses
    if not (text.isascii() and text.isdigit()) or len(text) > 10:
        return None
    return min(int(text), MAX_EXPIRES)


def _contact_key(contact: str) -> tuple[str, str, int] | None:
    try:
        return _uri_key(SipUri.parse(contact))
    except SipParseError:
        return None


def _uri_key(uri: SipUri) -> tuple[str, str, int]:
    secure = uri.scheme == "sips" or (uri.params.get("transport") or "").lower() == "tls"
    return (uri.user or "", uri.host.lower(), uri.port or (5061 if secure else 5060))


def _retry_after(response: Response) -> int | None:
    text = (response.headers.get("Retry-After") or "").split(";", 1)[0].split("(", 1)[0]
    return _seconds(text)


def _flow_timer(response: Response) -> float | None:
    """RFC 5626 §4.4.1: the registrar's Flow-Timer, the most seconds between pings."""
    seconds = _seconds(response.headers.get("Flow-Timer"))
    return float(seconds) if seconds else None


def _loose_route(uri: str) -> str:
    text = uri if uri.startswith("<") else f"<{uri}>"
    if ";lr" not in text:
        text = text[:-1] + ";lr>" if text.endswith(">") else text
    return text
