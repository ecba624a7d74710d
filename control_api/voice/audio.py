"""Audio for ``<Play>``: fetched over HTTP, decoded once, kept in a bounded cache.

The URL is the tenant's and the file whatever its server returns, so both costs are
bounded: a fetch reads at most :data:`MAX_BYTES`, decoding stops after
``max_seconds`` of audio (:data:`MAX_PLAY_SECONDS`, ten minutes: a one-hour FLAC of
silence, 4 MB on the wire, would otherwise take ~58 MB decoded, and as much again
encoded), and the decoded audio kept for reuse is bounded in bytes (``max_bytes``,
``--audio-cache-mb``), least recently used first, each entry for at most
:data:`CACHE_SECONDS` (expired entries are dropped whenever one is added, not only
when read). A file cut short is still played, its first ``max_seconds``; the cut is
reported once through ``refused`` as ``play.too_long``.

With a ``guard`` (``--fetch-deny``, control_api/fetch_policy.py) every hop of a
fetch, redirects included, is checked before it connects and connects to the
checked address (the URL's host as Host header and TLS server name).
"""

from __future__ import annotations

import asyncio
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from dataclasses import KW_ONLY, dataclass, field
from urllib.parse import urljoin, urlsplit

import httpx
import numpy as np

from control_api.fetch_policy import pinned_url, read_capped
from media.audio_file import decode_audio

__all__ = ["MAX_PLAY_SECONDS", "AudioLoadError", "AudioLoader"]

MAX_BYTES = 32 * 1024 * 1024
CACHE_SECONDS = 300.0
MAX_REDIRECTS = 5
CACHE_BYTES = 256 * 1024 * 1024
MAX_PLAY_SECONDS = 600.0
RATE = 8000


class AudioLoadError(RuntimeError):
    """The URL did not give us audio we can play (Twilio 11100 / 12300)."""


def _no_refusal(reason: str, source_ip: str, **fields: object) -> None:
    pass


def _http_client() -> httpx.AsyncClient:
    return httpx.AsyncClient(timeout=15.0, follow_redirects=True)


@dataclass(eq=False)
class AudioLoader:
    """Fetches and decodes audio files to 8 kHz samples, caching by URL."""

    http: httpx.AsyncClient = field(default_factory=_http_client)
    _: KW_ONLY
    guard: Callable[[str, int], Awaitable[str]] | None = None
    max_bytes: int = CACHE_BYTES
    max_seconds: float = MAX_PLAY_SECONDS
    ttl: float = CACHE_SECONDS
    refused: Callable[..., None] = _no_refusal
    clock: Callable[[], float] = time.monotonic

    def __post_init__(self) -> None:
        self._cache: OrderedDict[str, tuple[float, np.ndarray]] = OrderedDict()
        self._loading: dict[str, asyncio.Future[np.ndarray]] = {}
        self.bytes = 0  # decoded audio held in the cache
        self.evictions = 0

    def __len__(self) -> int:
        return len(self._cache)

    async def load(self, url: str) -> np.ndarray:
        hit = self._cache.get(url)
        if hit is not None:
            if self.clock() - hit[0] < self.ttl:
                self._cache.move_to_end(url)
                return hit[1]
            self._drop(url)
        if url in self._loading:  # many calls playing the same prompt fetch it once
            return await asyncio.shield(self._loading[url])
        future = asyncio.get_running_loop().create_future()
        self._loading[url] = future
        try:
            samples = await self._fetch(url)
        except BaseException as exc:
            future.set_exception(exc)
            future.exception()  # retrieved: no "never retrieved" warning when nobody waits
            raise
        finally:
            del self._loading[url]
        future.set_result(samples)
        self._insert(url, samples)
        return samples

    # -- the cache

    def _insert(self, url: str, samples: np.ndarray) -> None:
        now = self.clock()
        for key in [k for k, (at, _) in self._cache.items() if now - at >= self.ttl]:
            self._drop(key)
        if samples.nbytes > self.max_bytes:
            return  # played, not kept: it alone would fill the cache
        if url in self._cache:
            self._drop(url)
        self._cache[url] = (now, samples)
        self.bytes += samples.nbytes
        while self.bytes > self.max_bytes:
            self._drop(next(iter(self._cache)))
            self.evictions += 1

    def _drop(self, url: str) -> None:
        _, samples = self._cache.pop(url)
        self.bytes -= samples.nbytes

    # -- fetching

    async def _fetch(self, url: str) -> np.ndarray:
        if not url.startswith(("http://", "https://")):
            raise AudioLoadError(f"not an http(s) URL: {url!r}")
        try:
            data = await self._get(url)
        except (httpx.HTTPError, OSError) as exc:  # OSError: --fetch-deny (PermissionError)
            raise AudioLoadError(f"GET {url}: {exc}") from exc
        try:
            samples = await asyncio.to_thread(
                decode_audio, data, RATE, max_seconds=self.max_seconds
            )
        except ValueError as exc:
            raise AudioLoadError(f"{url}: {exc}") from exc
        if samples.size >= int(self.max_seconds * RATE):
            self.refused(
                "play.too_long",
                urlsplit(url).hostname or "",
                url=url,
                max_seconds=self.max_seconds,
            )
        return samples

    async def _get(self, url: str) -> bytes:
        """The body of ``url``: redirects followed, each hop checked by the guard."""
        for _ in range(MAX_REDIRECTS + 1):
            options: dict = {}
            target = url
            if self.guard is not None:
                parts = urlsplit(url)
                port = parts.port or (443 if parts.scheme == "https" else 80)
                address = await self.guard(parts.hostname or "", port)
                target, host = pinned_url(url, address)
                options = {"headers": {"Host": host}, "follow_redirects": False}
                if parts.scheme == "https":
                    options["extensions"] = {"sni_hostname": parts.hostname}
            async with self.http.stream("GET", target, **options) as response:
                if self.guard is not None and response.is_redirect:
                    url = urljoin(url, response.headers["Location"])
                    continue
                if response.status_code != 200:
                    raise AudioLoadError(f"GET {url}: HTTP {response.status_code}")
                body = await read_capped(response.aiter_bytes(), MAX_BYTES)
                if body is None:
                    raise AudioLoadError(f"GET {url}: larger than {MAX_BYTES} bytes")
                return body
        raise AudioLoadError(f"GET {url}: more than {MAX_REDIRECTS} redirects")

    async def close(self) -> None:
        await self.http.aclose()
