"""Per-source guards of the SIP signaling plane; sans-I/O, every method takes ``now``.

An internet-facing SIP port meets scanners, password guessers and floods. What
one source address may cost us is bounded here, in plain objects that the user
agent and the registrar consult with an explicit ``now`` (no clock is read here,
so tests drive time by hand):

- :class:`RateLimiter`: a token bucket per source for new INVITEs and REGISTERs
  (``rate`` per second, bursts of ``burst``). Past it a request is refused (503
  with Retry-After); a source that keeps sending a further ``burst`` beyond its
  limit is dropped silently until it slows down, so a flood costs us one dict
  lookup per packet and sends nothing back.
- :class:`CallCounter`: concurrent inbound calls (and live server
  transactions) per source.
- :class:`FailureLockout`: failed digests per key (the registrar's
  ``(username, source)``); after ``max_failures`` within ``window`` seconds the
  key is locked out for ``window`` seconds.
- :class:`TrustedNetworks`: the CIDR list of ``--trusted-peer`` sources that no
  limit applies to (a proxy in front, a load generator).

Every table is bounded: the least recently seen source is forgotten first, which
at worst gives a forgotten source a fresh bucket, never unbounded memory.
"""

from __future__ import annotations

import enum
import ipaddress
from collections import OrderedDict
from collections.abc import Callable, Hashable, Iterable
from dataclasses import dataclass

__all__ = [
    "Admission",
    "CallCounter",
    "FailureLockout",
    "RateLimiter",
    "SourceGuard",
    "TrustedNetworks",
    "source_group",
]

MAX_SOURCES = 50_000  # sources a table remembers (a bucket is ~100 bytes)
IPV6_SOURCE_PREFIX = 64  # an IPv6 host picks any address of its /64 at will
MAX_TRUST_CACHE = 4_096  # addresses whose trust was looked up, remembered


def source_group(address: str) -> str:
    """The key a source's limits count under: an IPv4 address as it is, an IPv6 one by
    its /64 (otherwise one host would be a new source with every address it picks),
    an IPv4-mapped IPv6 one as its IPv4 address. Text that does not parse is its own key."""
    if ":" not in address:
        return address
    try:
        ip = ipaddress.IPv6Address(address.strip("[]").split("%", 1)[0])
    except ValueError:
        return address
    if ip.ipv4_mapped is not None:
        return str(ip.ipv4_mapped)
    return str(ipaddress.IPv6Network((ip, IPV6_SOURCE_PREFIX), strict=False))


class Admission(enum.Enum):
    """What to do with a request a limiter was asked about."""

    ALLOW = "allow"
    REFUSE = "refuse"  # answer 503 with Retry-After
    DROP = "drop"  # send nothing: the source ignores our 503s


@dataclass(slots=True)
class _Bucket:
    tokens: float
    excess: float  # refusals not yet drained at ``rate``: past ``burst`` we drop
    stamp: float


class RateLimiter:
    """A token bucket per source (``rate`` per second, up to ``burst`` saved up).

    ``admit(source, now)`` takes a token when there is one (ALLOW). Otherwise the
    refusal is counted in ``excess``, which drains at ``rate`` too: while it
    stays under ``burst`` the answer is REFUSE, beyond it DROP. A client that
    honours Retry-After never sees a DROP; one that floods at twice our limit is
    dropped after ``burst / rate`` seconds. A ``rate`` of 0 means no limit.
    """

    def __init__(self, rate: float, burst: float, *, max_sources: int = MAX_SOURCES) -> None:
        if rate < 0 or (rate > 0 and burst < 1):
            raise ValueError("need rate >= 0 and, with a rate, burst >= 1")
        self.rate = rate
        self.burst = burst
        self._max = max_sources
        self._buckets: OrderedDict[str, _Bucket] = OrderedDict()

    def admit(self, source: str, now: float) -> Admission:
        if self.rate == 0:
            return Admission.ALLOW
        buckets = self._buckets
        bucket = buckets.get(source)
        if bucket is None:
            if len(buckets) >= self._max:
                buckets.popitem(last=False)
            bucket = buckets[source] = _Bucket(self.burst, 0.0, now)
        else:
            buckets.move_to_end(source)
            elapsed = max(0.0, now - bucket.stamp)
            bucket.stamp = now
            refill = elapsed * self.rate
            bucket.tokens = min(self.burst, bucket.tokens + refill)
            bucket.excess = max(0.0, bucket.excess - refill)
        if bucket.tokens >= 1.0:
            bucket.tokens -= 1.0
            return Admission.ALLOW
        bucket.excess += 1.0
        return Admission.DROP if bucket.excess > self.burst else Admission.REFUSE

    def retry_after(self) -> int:
        """Whole seconds after which a refused source has tokens again (at least 1)."""
        if self.rate == 0:
            return 1
        return max(1, int(-(-1.0 // self.rate)))

    def __len__(self) -> int:
        return len(self._buckets)


class CallCounter:
    """How many things (calls, transactions) each source holds right now.

    ``acquire(source)`` is False when the source already holds ``limit`` (0: no
    limit); every True must be matched by one ``release(source)``. Sources
    holding nothing are not remembered, so the table is as big as what is held.
    """

    def __init__(self, limit: int) -> None:
        if limit < 0:
            raise ValueError("limit must be >= 0")
        self.limit = limit
        self._held: dict[str, int] = {}

    def acquire(self, source: str) -> bool:
        held = self._held.get(source, 0)
        if self.limit and held >= self.limit:
            return False
        self._held[source] = held + 1
        return True

    def release(self, source: str) -> None:
        held = self._held.get(source, 0)
        if held <= 1:
            self._held.pop(source, None)
        else:
            self._held[source] = held - 1

    def held(self, source: str) -> int:
        return self._held.get(source, 0)

    def __len__(self) -> int:
        return len(self._held)


@dataclass(slots=True)
class _Failures:
    count: int
    since: float  # the first failure of the current window
    locked_until: float | None = None


class FailureLockout:
    """Failed attempts per key; after ``max_failures`` within ``window`` seconds the
    key is locked out for ``window`` seconds (``max_failures`` 0: never).

    ``failed`` returns True when that failure locked the key; ``locked`` says
    whether a key is locked now; ``succeeded`` forgets the key's failures.
    """

    def __init__(self, max_failures: int, window: float, *, max_keys: int = MAX_SOURCES) -> None:
        if max_failures < 0 or window <= 0:
            raise ValueError("need max_failures >= 0 and window > 0")
        self.max_failures = max_failures
        self.window = window
        self._max = max_keys
        self._keys: OrderedDict[Hashable, _Failures] = OrderedDict()

    def locked(self, key: Hashable, now: float) -> bool:
        entry = self._keys.get(key)
        if entry is None or entry.locked_until is None:
            return False
        if now < entry.locked_until:
            return True
        del self._keys[key]  # the cooldown is over: a clean slate
        return False

    def failed(self, key: Hashable, now: float) -> bool:
        if self.max_failures == 0:
            return False
        entry = self._keys.pop(key, None)
        if entry is None or now - entry.since > self.window:
            entry = _Failures(0, now)
        while len(self._keys) >= self._max:
            self._keys.popitem(last=False)
        self._keys[key] = entry
        entry.count += 1
        if entry.locked_until is None and entry.count >= self.max_failures:
            entry.locked_until = now + self.window
            return True
        return False

    def succeeded(self, key: Hashable) -> None:
        self._keys.pop(key, None)

    def __len__(self) -> int:
        return len(self._keys)


class TrustedNetworks:
    """The ``--trusted-peer`` CIDR list: ``address in trusted`` for a source text.

    IPv4-mapped IPv6 sources (``::ffff:10.0.0.1``, from a dual-stack socket)
    match the IPv4 networks; an address that does not parse is never trusted.
    """

    def __init__(self, cidrs: Iterable[str] = ()) -> None:
        self.networks = tuple(ipaddress.ip_network(c, strict=False) for c in cidrs)
        self._cache: dict[str, bool] = {}

    def __contains__(self, source: object) -> bool:
        if not self.networks or not isinstance(source, str):
            return False
        found = self._cache.get(source)
        if found is None:
            found = self._lookup(source)
            if len(self._cache) >= MAX_TRUST_CACHE:
                self._cache.clear()
            self._cache[source] = found
        return found

    def _lookup(self, source: str) -> bool:
        try:
            address = ipaddress.ip_address(source.strip("[]").split("%", 1)[0])
        except ValueError:
            return False
        if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
            address = address.ipv4_mapped
        return any(
            address.version == network.version and address in network for network in self.networks
        )

    def __bool__(self) -> bool:
        return bool(self.networks)


# Live server transactions one source may hold. INVITEs and REGISTERs are rate
# limited, but OPTIONS, MESSAGE, BYE... are not, and each holds its transaction
# for Timer J (32 s over UDP): this bounds what one source's flood of them costs.
MAX_TRANSACTIONS_PER_SOURCE = 1_000
Refused = Callable[..., None]  # refused(reason, source_ip, **fields)


def _nobody(reason: str, source_ip: str, **fields: object) -> None:
    pass


class SourceGuard:
    """The user agent's per-source limits together, with the trusted sources exempt.

    ``rate`` and ``burst`` are the INVITE/REGISTER token bucket, ``max_calls``
    the concurrent inbound calls per source (0: no limit). Each refusal is told
    to ``refused(reason, source_ip)``: ``sip.rate`` (503 or dropped),
    ``sip.calls_per_ip`` and ``sip.transactions_per_ip``.
    """

    def __init__(
        self,
        *,
        rate: float,
        burst: float | None = None,
        max_calls: int = 0,
        max_transactions: int = MAX_TRANSACTIONS_PER_SOURCE,
        trusted: Iterable[str] | TrustedNetworks = (),
        refused: Refused = _nobody,
    ) -> None:
        self.rates = RateLimiter(rate, burst if burst is not None else max(1.0, 5 * rate))
        self.calls = CallCounter(max_calls)
        self.transactions = CallCounter(max_transactions)
        self.trusted = trusted if isinstance(trusted, TrustedNetworks) else TrustedNetworks(trusted)
        self.refused = refused

    def admit(self, source: str, now: float) -> Admission:
        """Whether a new INVITE or REGISTER from ``source`` may go on."""
        if source in self.trusted:
            return Admission.ALLOW
        verdict = self.rates.admit(source_group(source), now)
        if verdict is not Admission.ALLOW:
            self.refused("sip.rate", source, action=verdict.value)
        return verdict

    def acquire_transaction(self, source: str) -> bool:
        if source in self.trusted or self.transactions.acquire(source_group(source)):
            return True
        self.refused("sip.transactions_per_ip", source)
        return False

    def release_transaction(self, source: str) -> None:
        if source not in self.trusted:
            self.transactions.release(source_group(source))

    def acquire_call(self, source: str) -> bool:
        if source in self.trusted or self.calls.acquire(source_group(source)):
            return True
        self.refused("sip.calls_per_ip", source)
        return False

    def release_call(self, source: str) -> None:
        if source not in self.trusted:
            self.calls.release(source_group(source))
