"""``--fetch-deny``: the addresses URL fetches never reach.

Voice webhooks, status callbacks, ``<Play>`` audio and Media Streams all fetch
URLs an account chose, so an account could point them at the node's
neighbourhood: the cloud metadata service on 169.254.169.254 (always denied),
or whatever the operator lists. A :class:`FetchPolicy` is the check every
fetcher calls *before* it connects: ``await policy(host, port)`` resolves the
name, refuses (:class:`FetchDenied`, reason ``fetch.denied``) when any of its
addresses is denied, and returns the checked address, which the fetcher then
connects to: a name that resolves to a good address for the check and a denied
one for the connection (DNS rebinding) cannot slip through.

Fetchers below control_api (media/) take the policy as a plain callable
``(host, port) -> Awaitable[address]`` raising ``OSError``: :class:`FetchDenied`
is a :class:`PermissionError`, so every fetcher's handling of an unreachable URL
(Twilio error 11200) applies to it unchanged.
"""

from __future__ import annotations

from collections.abc import AsyncIterable, Awaitable, Callable, Iterable
from urllib.parse import urlsplit, urlunsplit

from control_api.address_policy import DenyList, not_told, resolve_all

__all__ = ["FetchDenied", "FetchGuard", "FetchPolicy", "pinned_url", "read_capped"]

FetchGuard = Callable[[str, int], Awaitable[str]]  # (host, port) -> the address to connect to


class FetchDenied(PermissionError):
    """The URL's host resolves into ``--fetch-deny``: it is not fetched."""


class FetchPolicy:
    """The ``--fetch-deny`` check; ``refused(reason, source_ip, **fields)`` hears of
    each refusal (its ``source_ip`` is the denied address: a fetch has no remote
    requester)."""

    def __init__(self, deny: Iterable[str] = (), refused: Callable[..., None] = not_told) -> None:
        self.deny = DenyList(deny)
        self.refused = refused

    async def __call__(self, host: str, port: int) -> str:
        addresses = await resolve_all(host)
        denied = self.deny.first_denied(addresses)
        if denied is not None:
            address, network = denied
            self.refused("fetch.denied", address, host=host, port=port)
            raise FetchDenied(f"fetch denied: {host} is {address}, in --fetch-deny {network}")
        return addresses[0]


async def read_capped(chunks: AsyncIterable[bytes], limit: int) -> bytes | None:
    """A fetched body read to its end, or None as soon as it passes ``limit`` bytes
    (what is left is never read)."""
    read, size = [], 0
    async for chunk in chunks:
        size += len(chunk)
        if size > limit:
            return None
        read.append(chunk)
    return b"".join(read)


def pinned_url(url: str, address: str) -> tuple[str, str]:
    """``url`` with its host replaced by ``address`` (connect there, nowhere else),
    and the Host header the original URL asks for."""
    parts = urlsplit(url)
    host_port = f"[{address}]" if ":" in address else address
    if parts.port is not None:
        host_port += f":{parts.port}"
    host_header = parts.netloc.rpartition("@")[2]
    return urlunsplit(parts._replace(netloc=host_port)), host_header
