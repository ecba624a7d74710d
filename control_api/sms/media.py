"""Messages' media, stored and fetched: what the message service does with MMS.

Inbound: the media a carrier delivered with a message are stored
(``store.message_media``) and named by the URL that serves them
(``…/Messages/{MM}/Media/{ME}``), which the ``SmsUrl`` webhook's ``MediaUrl0``…
give. Outbound: each ``MediaUrl`` of a message is fetched once, before the carrier
gets the message, through the fetch policy (``--fetch-deny``: every hop of a
redirect is checked and the connection pinned to the checked address), bounded in
size, and stored likewise; a carrier that carries media (SIP MESSAGE) sends them, one
that cannot (SMPP) gets the text with the media's URLs, as Twilio's MMS converter.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from urllib.parse import urljoin, urlsplit

import httpx

from control_api.fetch_policy import pinned_url, read_capped
from control_api.sms.mms import MAX_MEDIA_BYTES, MmsPart, base_type, is_accepted

__all__ = [
    "MEDIA_FETCH_FAILED",
    "MEDIA_TYPE_REFUSED",
    "MediaFetchError",
    "MediaFetcher",
    "MessageMedia",
    "media_url",
    "store_media",
    "text_with_links",
]

MEDIA_FETCH_FAILED = 11200  # Twilio: HTTP retrieval failure
MEDIA_TYPE_REFUSED = 12300  # Twilio: invalid Content-Type
MAX_REDIRECTS = 5
FETCH_TIMEOUT_S = 15.0


class MediaFetchError(Exception):
    """A MediaUrl that gave no medium we send; ``error_code`` is Twilio's."""

    def __init__(self, message: str, error_code: int = MEDIA_FETCH_FAILED) -> None:
        super().__init__(message)
        self.error_code = error_code


def media_url(base_url: str, account_sid: str, message_sid: str, media_sid: str) -> str:
    """Where the API serves a medium's bytes (absolute when ``base_url`` is given)."""
    path = f"/2010-04-01/Accounts/{account_sid}/Messages/{message_sid}/Media/{media_sid}"
    return f"{base_url.rstrip('/')}{path}"


async def store_media(
    store, base_url: str, account_sid: str, message_sid: str, media: Sequence[MmsPart]
) -> list[str]:
    """Store ``media`` as the message's; their URLs, in order."""
    urls = []
    for part in media:
        record = await store.message_media.add(
            account_sid, message_sid, part.content_type, part.content
        )
        urls.append(media_url(base_url, account_sid, message_sid, record.sid))
    return urls


def text_with_links(body: str, urls: Sequence[str]) -> str:
    """The text a carrier without media sends: the body, then each medium's URL."""
    return "\n".join([body, *urls] if body else urls)


def _http_client() -> httpx.AsyncClient:
    return httpx.AsyncClient(timeout=FETCH_TIMEOUT_S, follow_redirects=False)


@dataclass(eq=False)
class MediaFetcher:
    """Fetches ``MediaUrl``s: every hop checked by ``guard`` (the fetch policy), at most
    ``max_bytes`` for the media of one message together, accepted types only."""

    guard: Callable[[str, int], Awaitable[str]] | None = None
    max_bytes: int = MAX_MEDIA_BYTES
    http: httpx.AsyncClient = field(default_factory=_http_client)

    async def fetch_all(self, urls: Sequence[str]) -> list[MmsPart]:
        """Each URL's medium, in order; MediaFetchError at the first that fails."""
        parts: list[MmsPart] = []
        budget = self.max_bytes
        for url in urls:
            part = await self.fetch(url, budget)
            budget -= len(part.content)
            parts.append(part)
        return parts

    async def fetch(self, url: str, budget: int) -> MmsPart:
        try:
            return await self._get(url, budget)
        except (httpx.HTTPError, OSError) as exc:  # OSError: --fetch-deny (PermissionError)
            raise MediaFetchError(f"GET {url}: {exc}") from exc

    async def _get(self, url: str, budget: int) -> MmsPart:
        for _ in range(MAX_REDIRECTS + 1):
            parts = urlsplit(url)
            if parts.scheme not in ("http", "https") or not parts.hostname:
                raise MediaFetchError(f"not an http(s) URL: {url[:200]}")
            options: dict = {}
            target = url
            if self.guard is not None:
                port = parts.port or (443 if parts.scheme == "https" else 80)
                address = await self.guard(parts.hostname, port)
                target, host = pinned_url(url, address)
                options = {"headers": {"Host": host}}
                if parts.scheme == "https":
                    options["extensions"] = {"sni_hostname": parts.hostname}
            async with self.http.stream("GET", target, **options) as response:
                if response.is_redirect:
                    url = urljoin(url, response.headers["Location"])
                    continue
                if response.status_code != 200:
                    raise MediaFetchError(f"GET {url}: HTTP {response.status_code}")
                content_type = response.headers.get("content-type", "")
                if not is_accepted(content_type):
                    raise MediaFetchError(
                        f"GET {url}: content type {base_type(content_type)!r} is not accepted",
                        MEDIA_TYPE_REFUSED,
                    )
                return MmsPart(content_type, await _body(response, url, budget))
        raise MediaFetchError(f"GET {url}: more than {MAX_REDIRECTS} redirects")

    async def close(self) -> None:
        await self.http.aclose()


async def _body(response: httpx.Response, url: str, budget: int) -> bytes:
    body = await read_capped(response.aiter_bytes(), budget)
    if body is None:
        raise MediaFetchError(f"GET {url}: the message's media exceed {MAX_MEDIA_BYTES} bytes")
    return body


class MessageMedia:
    """The message service's media: stored for inbound messages, fetched and stored for
    outbound ones, and shaped for the carrier that sends them."""

    def __init__(self, store, fetcher: MediaFetcher, base_url: str = "") -> None:
        self.store = store
        self.fetcher = fetcher
        self.base_url = base_url

    async def received(self, account_sid: str, message_sid: str, media: Sequence[MmsPart]):
        """Store an inbound message's media; their URLs."""
        return await store_media(self.store, self.base_url, account_sid, message_sid, media)

    async def outbound(self, message, carries_media: bool) -> tuple[str, tuple[MmsPart, ...]]:
        """(text, media) for the carrier of ``message`` (a MessageRecord with
        ``media_urls``): its media fetched and stored on the first attempt, read back
        on a later one; a carrier that cannot carry media gets their URLs in the text.
        Raises MediaFetchError."""
        media_store = self.store.message_media
        stored = await media_store.contents(message.account_sid, message.sid)
        if not stored:
            parts = await self.fetcher.fetch_all(message.media_urls)
            await store_media(self.store, self.base_url, message.account_sid, message.sid, parts)
            stored = await media_store.contents(message.account_sid, message.sid)
        if carries_media:
            return message.body, tuple(MmsPart(m.content_type, m.content) for m in stored)
        urls = [media_url(self.base_url, m.account_sid, m.message_sid, m.sid) for m in stored]
        return text_with_links(message.body, urls), ()
