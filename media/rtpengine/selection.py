"""Which rtpengine instance takes a call, as Kamailio's rtpengine module chooses.

- **Weighted set**: each instance has a weight (``HOST:PORT=WEIGHT``, default 1);
  a call's instance is picked by a stable hash of its Call-ID over the summed
  weights of the instances that are up, so calls spread by weight and the same
  Call-ID lands on the same instance while the set does not change.
- **Remembered**: once a call has an instance, every later command of that call
  goes there (:meth:`EngineSet.remember`, :meth:`EngineSet.instance_for`),
  whatever happens to the weights, until :meth:`EngineSet.forget`.
- **Disabled for a while**: an instance that did not answer is disabled for
  ``disable_s`` seconds (Kamailio's ``rtpengine_disable_tout``, 60); after that
  it is due for a ping (:meth:`EngineSet.due_for_ping`), which enables it again.
- **Drained**: an instance marked for maintenance takes no new calls but keeps
  the ones it has (:meth:`EngineSet.drain`; the operator's way in is
  ``/admin/rtpengine``, callswitch/rtpengine_admin.py).

Pure: the time is passed in; the asyncio side pings and sends.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass

__all__ = ["EngineAddress", "EngineSet", "Instance", "parse_engine", "split_host_port"]

DISABLE_S = 60.0


@dataclass(slots=True, frozen=True)
class EngineAddress:
    """``HOST:PORT=WEIGHT`` of one instance."""

    host: str
    port: int
    weight: int = 1

    def __str__(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{host}:{self.port}"


def parse_engine(spec: str) -> EngineAddress:
    """``HOST:PORT[=WEIGHT]`` (an IPv6 host in brackets), also as Kamailio's
    rtpengine module writes it (``udp:HOST:PORT``, ``udp6:[HOST]:PORT``);
    ValueError names the fault."""
    text = spec.strip()
    scheme, colon, rest = text.partition(":")
    if colon and scheme in ("udp", "udp6"):
        text = rest
    weight = 1
    if "=" in text:
        text, _, raw_weight = text.rpartition("=")
        if not raw_weight.isdigit() or not 0 < int(raw_weight) <= 1000:
            raise ValueError(f"rtpengine weight must be 1-1000: {spec!r}")
        weight = int(raw_weight)
    address = split_host_port(text)
    unbracketed_colon = address is not None and ":" in address[0] and not text.startswith("[")
    if address is None or unbracketed_colon:  # tcp:..., or a bare IPv6 address
        raise ValueError(f"rtpengine must be HOST:PORT[=WEIGHT]: {spec!r}")
    return EngineAddress(address[0], address[1], weight)


def split_host_port(text: str) -> tuple[str, int] | None:
    """``HOST:PORT`` (an IPv6 host in brackets) as host and port; None when it is not."""
    if text.startswith("["):
        host, sep, rest = text[1:].partition("]")
        port = rest[1:] if sep and rest.startswith(":") else ""
    else:
        host, _, port = text.rpartition(":")
    if not host or not port.isdigit() or not 0 < int(port) < 65536:
        return None
    return host, int(port)


@dataclass(slots=True, eq=False)
class Instance:
    address: EngineAddress
    disabled_until: float | None = None  # None: up
    draining: bool = False
    calls: int = 0  # calls it holds now
    failures: int = 0  # times it was disabled

    @property
    def up(self) -> bool:
        return self.disabled_until is None


def _call_hash(call_id: str) -> int:
    return zlib.crc32(call_id.encode("utf-8", "surrogateescape"))


class EngineSet:
    """The configured instances and the calls each holds (see the module doc)."""

    def __init__(self, addresses: list[EngineAddress], *, disable_s: float = DISABLE_S) -> None:
        if not addresses:
            raise ValueError("an rtpengine set needs at least one instance")
        self.instances = [Instance(address) for address in addresses]
        self.disable_s = disable_s
        self._calls: dict[str, Instance] = {}

    def pick(self, call_id: str, *, exclude: tuple[Instance, ...] = ()) -> Instance | None:
        """The instance a new call goes to: weighted by Call-ID hash among those up,
        not draining and not in ``exclude``; None when there is none."""
        usable = [i for i in self.instances if i.up and not i.draining and i not in exclude]
        total = sum(i.address.weight for i in usable)
        if not total:
            return None
        point = _call_hash(call_id) % total
        for instance in usable:
            point -= instance.address.weight
            if point < 0:
                return instance
        return usable[-1]  # not reached: the weights sum to total

    def remember(self, call_id: str, instance: Instance) -> None:
        if self._calls.get(call_id) is not instance:
            self.forget(call_id)
            self._calls[call_id] = instance
            instance.calls += 1

    def instance_for(self, call_id: str) -> Instance | None:
        return self._calls.get(call_id)

    def forget(self, call_id: str) -> None:
        instance = self._calls.pop(call_id, None)
        if instance is not None:
            instance.calls -= 1

    def disable(self, instance: Instance, now: float) -> None:
        """It did not answer: no new calls for ``disable_s``, then a ping."""
        if instance.up:
            instance.failures += 1
        instance.disabled_until = now + self.disable_s

    def enable(self, instance: Instance) -> None:
        instance.disabled_until = None

    def due_for_ping(self, now: float) -> list[Instance]:
        """Disabled instances whose time is up: ping them, then enable or disable."""
        return [
            i for i in self.instances if i.disabled_until is not None and i.disabled_until <= now
        ]

    def drain(self, address: EngineAddress | str, draining: bool = True) -> list[Instance]:
        """Mark the instance at ``address`` (``HOST:PORT``, whatever its weight; ``all``:
        every one) drained, or not: a drained one takes no new calls while the calls
        it holds keep going there (Kamailio's ``rtpengine.enable URL 0``). The
        instances it applied to (none: no such instance)."""
        wanted = str(address)
        if isinstance(address, str) and wanted != "all":
            wanted = str(parse_engine(wanted))  # the same spelling as the instances'
        chosen = [i for i in self.instances if wanted in ("all", str(i.address))]
        for instance in chosen:
            instance.draining = draining
        return chosen
