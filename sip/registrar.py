"""SIP registrar (RFC 3261 §10.3) with digest authentication (§22, RFC 8760); sans-I/O core.

Softphones REGISTER their Contact for an address-of-record (the To user, e.g.
``alice``); the registrar challenges them (401 with SHA-256 and MD5 digests),
checks the answer against the HA1s a ``lookup`` callback returns, and keeps
the bindings that ``contacts(aor)`` hands to whoever wants to ring the phone.
Every domain pointed at us is ours: the Request-URI's host is not checked, but with
``by_domain`` the lookup is told it (SIP domains with their own credentials).

The protocol lives in plain methods fed with an explicit ``now``
(``decide``, ``contacts``, ``expire``). The one piece of I/O, the asynchronous
credential lookup, is a task that ``handle`` (the user agent's REGISTER
handler) starts and that only awaits the lookup and sends what ``decide`` says.
"""

from __future__ import annotations

import asyncio
import email.utils
import inspect
import logging
import math
import re
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from urllib.parse import unquote

from sip.auth import Authenticator, Credentials, Verdict
from sip.errors import SipParseError
from sip.headers import NameAddress, SipUri
from sip.message import Request, Response, generate_tag, make_response
from sip.source_limits import FailureLockout, source_group
from sip.transaction import ServerTransaction, State
from sip.transport import Flow
from sip.ua import SUPPORTED_EXTENSIONS, UserAgent

__all__ = ["ANY_OWNER", "AUTH_LOCKOUT", "MAX_AUTH_FAILURES", "Account", "Binding", "Registrar"]

log = logging.getLogger("callswitch.sip")

MAX_DELTA_SECONDS = 0xFFFFFFFF  # RFC 3261 §20.19, §20.10: larger values mean this
MAX_AUTH_FAILURES = 10  # bad digests per (username, source) within the window: locked out
AUTH_LOCKOUT = 60.0  # that window, and how long the lockout lasts (seconds)
MAX_TRACKED_FAILURES = 50_000  # (username, source) pairs remembered, oldest dropped first
MAX_PENDING_LOOKUPS = 1_000  # credential lookups in flight before we answer 503
MAX_CONTACTS_PER_AOR = 20  # bindings one address-of-record may hold: more are a 403

ANY_OWNER = object()  # contacts(aor): the bindings of every account

_DELTA_SECONDS_RE = re.compile(r"[0-9]+")
_QVALUE_RE = re.compile(r"[0-9](?:\.[0-9]{0,6})?")
_CONNECTION_TRANSPORTS = frozenset({"TCP", "TLS", "WS", "WSS", "SCTP"})


# What makes two Contacts one binding: the +sip.instance and reg-id (RFC 5626), else
# the URI's scheme, user, host, port and transport (see _uri_key).
BindingKey = tuple[str | int | None, ...]


@dataclass(slots=True)
class Account:
    """What the credential lookup returns for a username.

    The HA1s are H(username:realm:password) for the authenticator's realm
    (RFC 7616 §3.4.2). Without a SHA-256 one, SHA-256 answers are challenged
    again with MD5 only. ``owner`` is opaque here (the control plane puts the
    account SID there) and is copied into every binding.
    """

    ha1_md5: str
    ha1_sha256: str | None = None
    owner: object = None


@dataclass(slots=True, eq=False)
class Binding:
    """One Contact registered for an address-of-record (RFC 3261 §10.3 step 7).

    ``aor`` is the To user; ``contact`` the Contact URI as text, ``uri`` the
    same parsed. ``instance`` and ``reg_id`` are the RFC 5626 ``+sip.instance``
    (quotes removed) and ``reg-id`` parameters. ``flow`` and ``source`` say how
    the REGISTER arrived, which ``target()`` prefers over the Contact for
    phones behind a NAT or on a connection.
    """

    aor: str
    contact: str
    uri: SipUri
    expires_at: float
    q: float = 1.0
    call_id: str = ""
    cseq: int = 0
    instance: str | None = None
    reg_id: int | None = None
    flow: Flow | None = None
    source: tuple[str, int] = ("", 0)
    transport: str = "UDP"
    user_agent: str | None = None
    owner: object = None
    updated_at: float = 0.0  # when the phone last refreshed it: newer ones ring first

    def expires_in(self, now: float) -> int:
        """Whole seconds left, rounded up: what the 200 OK's ``expires`` says."""
        return max(0, math.ceil(self.expires_at - now))

    def target(self) -> tuple[str, str, int, Flow | None]:
        """How to reach the phone: ``(transport, host, port, flow or None)``.

        A connection-oriented registration is reached over its own connection
        while it is open (RFC 5626 §5.3, RFC 5923 spirit). A phone whose
        Contact is not where its packets came from is behind a NAT: its
        Contact is unreachable and the source address is the way in (RFC 3581;
        Asterisk's force_rport and rewrite_contact). Otherwise the Contact is
        used as registered, and ``flow`` is None: make one for that address.
        """
        flow = self.flow
        source_host, source_port = self.source
        if flow is not None and flow.reliable and flow.is_open:
            return self.transport, source_host, source_port, flow
        uri = self.uri
        transport = (uri.params.get("transport") or self.transport).upper()
        secure = uri.scheme == "sips" or transport in ("TLS", "WSS")
        host = uri.host.strip("[]")
        port = uri.port or (5061 if secure else 5060)
        if (host.lower(), port) != (source_host.lower(), source_port):
            reuse = flow if flow is not None and not flow.reliable else None
            return self.transport, source_host, source_port, reuse
        return transport, host, port, None


class _Rejected(Exception):
    """A REGISTER we answer with ``status`` (and ``headers``) instead of a 200."""

    def __init__(
        self, status: int, reason: str | None = None, headers: list[tuple[str, str]] | None = None
    ) -> None:
        super().__init__(reason or str(status))
        self.status = status
        self.reason = reason
        self.headers = headers or []


@dataclass(slots=True)
class _ContactChange:
    """One Contact of a REGISTER, validated and with its expiry decided."""

    key: BindingKey
    address: NameAddress
    expires: int  # 0 removes the binding
    q: float
    instance: str | None
    reg_id: int | None


# The account of a username, the accounts that each have it, or None; maybe awaitable.
# Called with the username, and with the Request-URI's host too when ``by_domain``.
Lookup = Callable[..., "Awaitable[Account | Sequence[Account] | None] | Account | None"]
Refused = Callable[..., None]  # refused(reason, source_ip, **fields)
ChangeCallback = Callable[[str, "list[Binding]"], None]


class Registrar:
    """The registrar of RFC 3261 §10.3 for every domain, plus RFC 5626 instance keys.

    Construction installs ``handle`` as the user agent's REGISTER handler.
    ``challenge_algorithms`` are the digests offered in a 401, one
    WWW-Authenticate each, most preferred first: SHA-256 and MD5 by default
    (RFC 8760). Older clients that give up on any challenge they cannot
    answer, wherever it is in the list (Debian's baresip 1.0 with libre 1.1
    fails with ENOSYS), need ``("MD5",)``.
    ``lookup(username)`` returns the caller's :class:`Account`, or the accounts
    that each have that username (the one whose digest verifies is the caller's),
    or None; it may be a coroutine function (a store query) or a plain function.
    With ``by_domain`` it is called ``lookup(username, host)``, ``host`` the
    REGISTER's Request-URI host in lower case, so that a domain may have its own users.
    Bindings are kept per (address-of-record, account owner): ``contacts(aor,
    owner)`` never mixes two accounts' phones of the same username.
    ``on_change(aor, bindings)`` is called after a REGISTER (or ``expire``)
    added, refreshed or removed bindings of ``aor``, with that account's live ones.

    Guessing is bounded: after ``max_failures`` wrong digests for one username
    from one source address within ``lockout`` seconds, that pair gets 403
    without a challenge for ``lockout`` seconds (reason ``auth.lockout`` told to
    ``refused``); unknown usernames are counted and answered exactly alike.
    Requests that need no credential lookup (the first, unauthenticated
    REGISTER, and refusals) are answered statelessly: a flood of them costs no
    transaction.
    """

    def __init__(
        self,
        ua: UserAgent,
        authenticator: Authenticator,
        lookup: Lookup,
        *,
        min_expires: int = 60,
        max_expires: int = 3600,
        default_expires: int = 3600,
        clock: Callable[[], float] | None = None,
        wall_clock: Callable[[], float] = time.time,
        challenge_algorithms: Sequence[str] = ("SHA-256", "MD5"),
        max_failures: int = MAX_AUTH_FAILURES,
        lockout: float = AUTH_LOCKOUT,
        refused: Refused | None = None,
        by_domain: bool = False,
    ) -> None:
        if not 0 < min_expires <= default_expires <= max_expires:
            raise ValueError("need 0 < min_expires <= default_expires <= max_expires")
        if not challenge_algorithms or any(
            a not in ("SHA-256", "MD5") for a in challenge_algorithms
        ):
            raise ValueError("challenge_algorithms: some of 'SHA-256' and 'MD5'")
        self.challenge_algorithms = tuple(challenge_algorithms)
        self.ua = ua
        self.authenticator = authenticator
        self.lookup = lookup
        self.by_domain = by_domain
        self.min_expires = min_expires
        self.max_expires = max_expires
        self.default_expires = default_expires
        self._clock = clock or ua.clock
        self._wall_clock = wall_clock  # only for the Date header
        self.on_change: ChangeCallback | None = None
        # (aor, owner) -> binding key -> binding; and which owners have bindings of an aor.
        self._bindings: dict[tuple[str, object], dict[BindingKey, Binding]] = {}
        self._owners: dict[str, set[object]] = {}
        self._failures = FailureLockout(max_failures, lockout, max_keys=MAX_TRACKED_FAILURES)
        self._refused = refused or _nobody
        self._pending: set[asyncio.Task[None]] = set()
        ua.handlers["REGISTER"] = self.handle
        ua.stateless["REGISTER"] = self.answer_statelessly

    # -- the user agent's handler (the only place with I/O)

    def answer_statelessly(self, request: Request, flow: Flow) -> Response | None:
        """The answer to a REGISTER that needs no lookup, or None (the user agent's
        stateless handler: such answers cost no transaction)."""
        try:
            self._screen(request, flow, self._clock())
        except (_Rejected, SipParseError) as exc:
            return self._rejection(request, exc)
        return None

    def handle(self, request: Request, txn: ServerTransaction, flow: Flow) -> None:
        """Answer a REGISTER: at once when no lookup is needed, else from a task."""
        try:
            credentials = self._screen(request, flow, self._clock())
        except (_Rejected, SipParseError) as exc:
            self._send(txn, self._rejection(request, exc))
            return
        if len(self._pending) >= MAX_PENDING_LOOKUPS:
            self._send(
                txn,
                self._response(request, 503, headers=[("Retry-After", "5")]),
            )
            return
        try:
            if self.by_domain:
                found = self.lookup(credentials.username, request.request_uri.host.lower())
            else:
                found = self.lookup(credentials.username)
        except Exception:
            log.exception("sip.register_lookup_failed", extra={"call_id": request.call_id})
            self._send(txn, self._response(request, 500, "Credential Lookup Failed"))
            return
        if not inspect.isawaitable(found):
            self._send(txn, self._decide_safely(request, flow, found))
            return
        task = asyncio.get_running_loop().create_task(
            self._answer_after_lookup(request, txn, flow, found)
        )
        self._pending.add(task)
        task.add_done_callback(self._pending.discard)

    async def _answer_after_lookup(
        self,
        request: Request,
        txn: ServerTransaction,
        flow: Flow,
        found: Awaitable[Account | Sequence[Account] | None],
    ) -> None:
        try:
            account = await found
        except Exception:
            log.exception("sip.register_lookup_failed", extra={"call_id": request.call_id})
            response = self._response(request, 500, "Credential Lookup Failed")
        else:
            response = self._decide_safely(request, flow, account)
        self._send(txn, response)

    def _decide_safely(
        self, request: Request, flow: Flow, account: Account | Sequence[Account] | None
    ) -> Response:
        try:
            return self.decide(request, flow, account, self._clock())
        except Exception:  # a bug must cost one REGISTER, not the registrar
            log.exception("sip.register_failed", extra={"call_id": request.call_id})
            return self._response(request, 500)

    def _send(self, txn: ServerTransaction, response: Response) -> None:
        # The transaction may have ended while the lookup ran (a transport error).
        if txn.state in (State.TRYING, State.PROCEEDING):
            txn.send_response(response, self.ua.clock())

    # -- the protocol (RFC 3261 §10.3), without I/O

    def decide(
        self,
        request: Request,
        flow: Flow,
        account: Account | Sequence[Account] | None,
        now: float,
    ) -> Response:
        """The answer to ``request`` given the looked-up account(s); updates bindings.

        Steps of RFC 3261 §10.3: Request-URI scheme (416), Require (420),
        authentication (401, 403), To user as the address-of-record, Contact
        and expiry checks (400, 423), Call-ID/CSeq ordering (500), then the
        bindings are changed all together or not at all and the 200 lists
        every live binding.
        """
        try:
            credentials = self._screen(request, flow, now)
            verified = self._authenticate(request, credentials, _candidates(account), flow, now)
            aor = credentials.username
            changes = self._contact_changes(request)
            changed = self._apply(request, aor, changes, flow, verified, now)
        except (_Rejected, SipParseError) as exc:
            return self._rejection(request, exc)
        book = (aor, verified.owner)
        bindings = self._live(book, now)
        if changed:
            log.info(
                "sip.registered",
                extra={"aor": aor, "contacts": len(bindings), "peer": flow.remote},
            )
            self._notify(book, bindings)
        headers = [("Contact", _contact_value(b, now)) for b in bindings]
        headers.append(("Date", email.utils.formatdate(self._wall_clock(), usegmt=True)))
        return self._response(request, 200, headers=headers)

    def _screen(self, request: Request, flow: Flow, now: float) -> Credentials:
        """The checks that need no account: what to look up, or why not (§10.3 steps 1-3),
        and whether the (username, source) pair is locked out for guessing."""
        uri = request.request_uri
        if uri.scheme not in ("sip", "sips"):
            raise _Rejected(416)
        unsupported = [
            option
            for value in request.headers.get_all("Require")
            for option in [value.strip().lower()]
            if option not in SUPPORTED_EXTENSIONS
        ]
        if unsupported:
            raise _Rejected(420, headers=[("Unsupported", ", ".join(unsupported))])
        aor = _aor(request)
        source = flow.remote[0]
        if self._failures.locked((aor, source_group(source)), now):
            self._refused("auth.lockout", source, user=aor)
            raise _Rejected(403)
        credentials = self._credentials(request)
        if credentials is None:
            raise _Rejected(401, headers=self._challenges())
        # §10.3 step 4: an authenticated user may only register its own AOR.
        if credentials.username != aor:
            raise _Rejected(403, "Username Does Not Match AOR")
        return credentials

    def _credentials(self, request: Request) -> Credentials | None:
        """Our realm's Digest credentials, or None.

        Other schemes and realms are not ours: they get a challenge, not a 400
        (RFC 4475 §3.1.2.9 "regaut01"). A Digest header that does not parse is a 400.
        """
        for value in request.headers.get_lines("Authorization"):
            scheme = value.split(None, 1)[0] if value.strip() else ""
            if scheme.lower() != "digest":
                continue
            try:
                credentials = Credentials.parse(value)
            except SipParseError:
                raise _Rejected(400, "Bad Authorization") from None
            if credentials.realm == self.authenticator.realm:
                return credentials
        return None

    def _challenges(self, *, stale: bool = False, sha256: bool = True) -> list[tuple[str, str]]:
        """WWW-Authenticate headers in order of preference (RFC 8760 §2.4)."""
        algorithms = [a for a in self.challenge_algorithms if sha256 or a == "MD5"] or ["MD5"]
        return [
            ("WWW-Authenticate", str(self.authenticator.challenge(stale=stale, algorithm=a)))
            for a in algorithms
        ]

    def _authenticate(
        self,
        request: Request,
        credentials: Credentials,
        accounts: Sequence[Account],
        flow: Flow,
        now: float,
    ) -> Account:
        """RFC 3261 §22.4 against each account's HA1 for the answer's hash function;
        the account whose digest verifies is returned. Several accounts may have the
        username: only the right password's digest verifies, so they never mix."""
        sha256 = credentials.algorithm.lower().startswith("sha-256")
        md5 = credentials.algorithm.lower().startswith("md5")
        verdict = Verdict.BAD_CREDENTIALS  # unknown user or algorithm: look the same
        verified = None
        for account in accounts:
            ha1 = account.ha1_sha256 if sha256 else account.ha1_md5 if md5 else None
            if ha1 is None:
                continue
            verdict = self.authenticator.verify(
                credentials, method=request.method, ha1=ha1, body=request.body
            )
            if verdict is not Verdict.BAD_CREDENTIALS:
                verified = account
                break
        if sha256 and accounts and all(a.ha1_sha256 is None for a in accounts):
            raise _Rejected(401, headers=self._challenges(sha256=False))  # ask for MD5
        source = flow.remote[0]
        key = (credentials.username, source_group(source))
        if verdict is Verdict.OK:
            assert verified is not None
            self._failures.succeeded(key)
            return verified
        if verdict is Verdict.STALE:  # an old nonce, or a replayed nonce count
            raise _Rejected(401, headers=self._challenges(stale=True))
        if verdict is Verdict.BAD_NONCE:
            raise _Rejected(401, headers=self._challenges())
        if self._failures.failed(key, now):
            log.info("sip.register_locked_out", extra={"user": key[0], "peer": flow.remote})
            self._refused("auth.lockout", source, user=key[0])
            raise _Rejected(403)
        raise _Rejected(401, headers=self._challenges())

    def _contact_changes(self, request: Request) -> list[_ContactChange] | None:
        """The Contacts with their expiry (§10.3 steps 6-7); None for ``Contact: *``.

        An empty list is a query. Raises for a bad Contact or expiry (400) and
        for a non-zero expiry under ``min_expires`` (423 with Min-Expires).
        """
        values = request.headers.get_all("Contact")
        header = request.headers.get("Expires")
        header_expires = None if header is None else _delta_seconds(header, "Bad Expires")
        if any(value == "*" for value in values):
            if len(values) != 1 or header_expires != 0:
                raise _Rejected(400, "Bad Wildcard Contact")
            return None
        changes = []
        too_brief = False
        for value in values:
            try:
                address = NameAddress.parse(value)
            except SipParseError:
                raise _Rejected(400, "Bad Contact") from None
            uri, params = address.uri, address.params
            if uri.scheme not in ("sip", "sips"):
                raise _Rejected(400, "Unsupported Contact URI")
            if "expires" in params:
                expires = _delta_seconds(params["expires"], "Bad Contact expires")
            elif header_expires is not None:
                expires = header_expires
            else:
                expires = self.default_expires
            if 0 < expires < self.min_expires:
                too_brief = True
            expires = min(expires, self.max_expires)
            instance = _instance(params.get("+sip.instance"))
            reg_id = None
            if instance is not None and "reg-id" in params:
                reg_id = _delta_seconds(params["reg-id"], "Bad reg-id")
            key = ("instance", instance, reg_id) if instance is not None else _uri_key(uri)
            changes.append(_ContactChange(key, address, expires, _q(params), instance, reg_id))
        if too_brief:
            raise _Rejected(423, headers=[("Min-Expires", str(self.min_expires))])
        return changes

    def _apply(
        self,
        request: Request,
        aor: str,
        changes: list[_ContactChange] | None,
        flow: Flow,
        account: Account,
        now: float,
    ) -> bool:
        """Commit the changes all together (§10.3 step 7); True if anything changed."""
        owner = account.owner
        book = (aor, owner)
        self._purge(book, now)
        current = self._bindings.get(book, {})
        call_id, cseq = request.call_id, request.cseq.seq
        touched = current.keys() if changes is None else [c.key for c in changes]
        for key in touched:
            old = current.get(key)
            # A replayed or reordered REGISTER of the same registration is refused.
            if old is not None and old.call_id == call_id and cseq <= old.cseq:
                raise _Rejected(500, "Out of Order")
        if changes is None:
            return self._drop_book(book)
        added = {c.key for c in changes if c.expires and c.key not in current}
        if len(current) + len(added) > MAX_CONTACTS_PER_AOR:
            raise _Rejected(403, "Too Many Contacts")
        user_agent = request.headers.get("User-Agent")
        changed = False
        for change in changes:
            if change.expires == 0:
                changed |= current.pop(change.key, None) is not None
                continue
            current[change.key] = Binding(
                aor=aor,
                contact=str(change.address.uri),
                uri=change.address.uri,
                expires_at=now + change.expires,
                q=change.q,
                call_id=call_id,
                cseq=cseq,
                instance=change.instance,
                reg_id=change.reg_id,
                flow=flow,
                source=(flow.remote[0], flow.remote[1]),
                transport=flow.transport.upper(),
                user_agent=user_agent,
                owner=owner,
                updated_at=now,
            )
            changed = True
        if current:
            self._bindings[book] = current
            self._owners.setdefault(aor, set()).add(owner)
        else:
            self._drop_book(book)
        return changed

    def _drop_book(self, book: tuple[str, object]) -> bool:
        """Forget every binding of ``(aor, owner)``; True if there were any."""
        if self._bindings.pop(book, None) is None:
            return False
        aor, owner = book
        owners = self._owners.get(aor)
        if owners is not None:
            owners.discard(owner)
            if not owners:
                del self._owners[aor]
        return True

    # -- bindings

    def contacts(self, aor: str, owner: object = ANY_OWNER) -> list[Binding]:
        """Live bindings of ``aor`` in the account ``owner`` (by default, in every
        account): highest q first, then the most recently refreshed."""
        now = self._clock()
        owners = [owner] if owner is not ANY_OWNER else list(self._owners.get(aor, ()))
        bindings: list[Binding] = []
        for one in owners:
            book = (aor, one)
            if self._purge(book, now):
                self._notify(book, self._live(book, now))
            bindings += self._live(book, now)
        bindings.sort(key=lambda b: (-b.q, -b.updated_at))
        return bindings

    def expire(self, now: float) -> int:
        """Drop every expired binding (housekeeping); returns how many went."""
        removed = 0
        for book in list(self._bindings):
            count = self._purge(book, now)
            if count:
                removed += count
                self._notify(book, self._live(book, now))
        return removed

    def _purge(self, book: tuple[str, object], now: float) -> int:
        current = self._bindings.get(book)
        if not current:
            return 0
        dead = [key for key, binding in current.items() if binding.expires_at <= now]
        for key in dead:
            del current[key]
        if not current:
            self._drop_book(book)
        return len(dead)

    def _live(self, book: tuple[str, object], now: float) -> list[Binding]:
        bindings = [b for b in self._bindings.get(book, {}).values() if b.expires_at > now]
        bindings.sort(key=lambda b: (-b.q, -b.updated_at))
        return bindings

    def _notify(self, book: tuple[str, object], bindings: list[Binding]) -> None:
        if self.on_change is None:
            return
        aor = book[0]
        try:
            self.on_change(aor, bindings)
        except Exception:  # the bindings are committed; the REGISTER still succeeds
            log.exception("sip.register_callback_failed", extra={"aor": aor})

    # -- responses

    def _response(
        self,
        request: Request,
        status: int,
        reason: str | None = None,
        headers: list[tuple[str, str]] | None = None,
    ) -> Response:
        # Every final response carries a To tag (RFC 3261 §8.2.6.2).
        response = make_response(request, status, reason, to_tag=generate_tag(), headers=headers)
        response.headers.add("Server", self.ua.name)
        return response

    def _rejection(self, request: Request, error: _Rejected | SipParseError) -> Response:
        if isinstance(error, SipParseError):
            return self._response(request, 400, error.reason)
        return self._response(request, error.status, error.reason, error.headers)


def _nobody(reason: str, source_ip: str, **fields: object) -> None:
    pass


def _candidates(found: Account | Sequence[Account] | None) -> Sequence[Account]:
    """The lookup's answer as a sequence of accounts (maybe empty)."""
    if found is None:
        return ()
    if isinstance(found, Account):
        return (found,)
    return tuple(found)


def _aor(request: Request) -> str:
    """The address-of-record's user from To (§10.3 step 5), escapes decoded."""
    uri = request.to.uri
    if uri.scheme not in ("sip", "sips") or not uri.user:
        raise _Rejected(404, "No User In To")
    return unquote(uri.user)


def _delta_seconds(text: str | None, reason: str) -> int:
    """delta-seconds (RFC 3261 §25.1); over 2**32-1 counts as 2**32-1 (§20.19)."""
    if text is None:
        raise _Rejected(400, reason)
    text = text.strip(" \t")
    if _DELTA_SECONDS_RE.fullmatch(text) is None:
        raise _Rejected(400, reason)
    if len(text) > 10:
        return MAX_DELTA_SECONDS
    return min(int(text), MAX_DELTA_SECONDS)


def _q(params: dict[str, str | None]) -> float:
    """The Contact's qvalue (RFC 3261 §20.10), 1.0 when absent."""
    text = params.get("q", "1")
    if text is None or _QVALUE_RE.fullmatch(text) is None or float(text) > 1.0:
        raise _Rejected(400, "Bad q")
    return float(text)


def _instance(value: str | None) -> str | None:
    """The ``+sip.instance`` value without its quotes (RFC 5626 §4.1)."""
    if value is None:
        return None
    value = value.strip('"')
    return value or None


def _uri_key(uri: SipUri) -> BindingKey:
    """What makes two Contact URIs the same binding (RFC 3261 §19.1.4, simplified):
    scheme, user, host (case-insensitive), port and transport."""
    return (
        "uri",
        uri.scheme,
        uri.user,
        uri.host.lower(),
        uri.port,
        (uri.params.get("transport") or "").lower(),
    )


def _contact_value(binding: Binding, now: float) -> str:
    text = f"<{binding.contact}>;expires={binding.expires_in(now)}"
    if binding.q != 1.0:
        text += f";q={binding.q:g}"
    if binding.instance is not None:
        text += f';+sip.instance="{binding.instance}"'
        if binding.reg_id is not None:
            text += f";reg-id={binding.reg_id}"
    return text
