"""Fetching an outbound message's MediaUrl: the fetch policy, accepted types, the size
bound, redirects; the text a carrier without media sends."""

from __future__ import annotations

import asyncio

import httpx
import pytest

from control_api.fetch_policy import FetchPolicy
from control_api.sms.media import (
    MEDIA_FETCH_FAILED,
    MEDIA_TYPE_REFUSED,
    MediaFetcher,
    MediaFetchError,
    media_url,
    text_with_links,
)
from control_api.sms.mms import MmsPart


def _fetcher(handler, **options) -> MediaFetcher:
    return MediaFetcher(http=httpx.AsyncClient(transport=httpx.MockTransport(handler)), **options)


def _serve(request: httpx.Request) -> httpx.Response:
    routes = {
        "/a.png": httpx.Response(200, headers={"content-type": "image/png"}, content=b"PNG"),
        "/page": httpx.Response(200, headers={"content-type": "text/html"}, content=b"<p>"),
        "/moved": httpx.Response(302, headers={"location": "/a.png"}),
        "/big.jpg": httpx.Response(200, headers={"content-type": "image/jpeg"}, content=b"x" * 99),
    }
    return routes.get(request.url.path, httpx.Response(404))


def _fetch(fetcher: MediaFetcher, *urls: str) -> list[MmsPart]:
    return asyncio.run(fetcher.fetch_all(urls))


def test_media_are_fetched_in_order_following_redirects():
    parts = _fetch(_fetcher(_serve), "http://media.test/a.png", "http://media.test/moved")
    assert parts == [MmsPart("image/png", b"PNG"), MmsPart("image/png", b"PNG")]


@pytest.mark.parametrize(
    ("path", "code"),
    [("/page", MEDIA_TYPE_REFUSED), ("/missing.png", MEDIA_FETCH_FAILED)],
)
def test_a_refused_type_or_a_failed_fetch_has_twilios_code(path, code):
    with pytest.raises(MediaFetchError) as caught:
        _fetch(_fetcher(_serve), f"http://media.test{path}")
    assert caught.value.error_code == code


def test_the_media_of_one_message_are_bounded_together():
    fetcher = _fetcher(_serve, max_bytes=150)
    with pytest.raises(MediaFetchError, match="exceed"):
        _fetch(fetcher, "http://media.test/big.jpg", "http://media.test/big.jpg")


def test_a_host_the_fetch_policy_denies_is_never_fetched():
    asked: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        asked.append(request)
        return _serve(request)

    fetcher = _fetcher(handler, guard=FetchPolicy(deny=["127.0.0.0/8"]))
    with pytest.raises(MediaFetchError) as caught:
        _fetch(fetcher, "http://127.0.0.1/a.png")
    assert caught.value.error_code == MEDIA_FETCH_FAILED and asked == []


def test_a_carrier_without_media_sends_their_urls_after_the_text():
    url = media_url("http://node:8080/", "AC1", "MM1", "ME1")
    assert url == "http://node:8080/2010-04-01/Accounts/AC1/Messages/MM1/Media/ME1"
    assert text_with_links("look", [url]) == f"look\n{url}"
    assert text_with_links("", [url, url]) == f"{url}\n{url}"
