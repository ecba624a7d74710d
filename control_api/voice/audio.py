"""Audio for ``<Play>``: fetched over HTTP, decoded once, kept in a small cache.

With a ``guard`` (``--fetch-deny``, control_api/fetch_policy.py) every hop of a
fetch, redirects included, is checked before it connects and connects to the
checked address (the URL's host as Host header and TLS server name)."""

from __future__ import annotations

import asyncio
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from urllib.parse import urljoin, urlsplit

import httpx
import numpy as np

from control_api.fetch_policy import pinned_url
from media.audio_file import decode_audio

__all__ = ["AudioLoadError", "AudioLoader"]

MAX_BYTES = 32 * 1024 * 1024
CACHE_ENTRIES = 64
CACHE_SECONDS = 300.0
MAX_REDIRECTS = 5


class AudioLoadError(RuntimeError):
    """The URL did not give us audio we can play (Twilio 11100 / 12300)."""


class AudioLoader:
    """Fetches and decodes audio files to 8 kHz samples, caching by URL."""

    def __init__(
        self,
        http: httpx.AsyncClient | None = None,
        guard: Callable[[str, int], Awaitable[str]] | None = None,
    ) -> None:
        self.http = http or httpx.AsyncClient(timeout=15.0, follow_redirects=True)
        self.guard = guard
        self._cache: OrderedDict[str, tuple[float, np.ndarray]] = OrderedDict()
        self._loading: dict[str, asyncio.Future[np.ndarray]] = {}

    async def load(self, url: str) -> np.ndarray:
        hit = self._cache.get(url)
        if hit is not None and time.monotonic() - hit[0] < CACHE_SECONDS:
            self._cache.move_to_end(url)
            return hit[1]
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
        self._cache[url] = (time.monotonic(), samples)
        while len(self._cache) > CACHE_ENTRIES:
            self._cache.popitem(last=False)
        return samples

    async def _fetch(self, url: str) -> np.ndarray:
        if not url.startswith(("http://", "https://")):
            raise AudioLoadError(f"not an http(s) URL: {url!r}")
        try:
            data = await self._get(url)
        except (httpx.HTTPError, OSError) as exc:  # OSError: --fetch-deny (PermissionError)
            raise AudioLoadError(f"GET {url}: {exc}") from exc
        try:
            return await asyncio.to_thread(decode_audio, data)
        except ValueError as exc:
            raise AudioLoadError(f"{url}: {exc}") from exc

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
                chunks, size = [], 0
                async for chunk in response.aiter_bytes():
                    size += len(chunk)
                    if size > MAX_BYTES:
                        raise AudioLoadError(f"GET {url}: larger than {MAX_BYTES} bytes")
                    chunks.append(chunk)
                return b"".join(chunks)
        raise AudioLoadError(f"GET {url}: more than {MAX_REDIRECTS} redirects")

    async def close(self) -> None:
        await self.http.aclose()
