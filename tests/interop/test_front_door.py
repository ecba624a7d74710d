"""The front door of a running node: Chromium opening ``/`` gets a page naming the
node's real SIP addresses and nothing else is fetched; the REST clients' ``/`` is
the JSON 404 it always was."""

from __future__ import annotations

import json
import urllib.error
import urllib.request

import pytest

from .chromium import CHROMIUM, FLAGS, require_chromium
from .harness import LOOPBACK


def _get(url: str, accept: str) -> tuple[int, str, str]:
    request = urllib.request.Request(url, headers={"Accept": accept})
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, response.headers["content-type"], response.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, error.headers["content-type"], error.read().decode()


@pytest.mark.callswitch_shared
def test_json_clients_still_get_twilios_404(server):
    base = f"http://127.0.0.1:{server.http_port}"
    for accept in ("application/json", "*/*"):
        status, kind, body = _get(base + "/", accept)
        assert (status, kind) == (404, "application/json")
        assert json.loads(body)["code"] == 20404


@pytest.mark.callswitch_shared
async def test_chromium_opens_the_front_door_and_fetches_nothing_else(server):
    require_chromium()
    from playwright.async_api import async_playwright

    base = f"http://127.0.0.1:{server.http_port}"
    requests: list[str] = []
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
        try:
            page = await browser.new_page()
            page.on("request", lambda request: requests.append(request.url))
            response = await page.goto(base + "/")
            assert response is not None and response.status == 200
            text = await page.inner_text("body")
            title = await page.title()
            # The docs and the phone are one click away, on this node.
            await page.click('a[href="/docs/webrtc.md"]')
            await page.wait_for_url(base + "/docs/webrtc.md")
            doc = await page.inner_text("body")
            await page.goto(base + "/")
            await page.click('a[href="/phone"]')
            await page.wait_for_url(base + "/phone")
            phone = await page.title()
        finally:
            await browser.close()
    assert f"sip:echo@{LOOPBACK}:{server.sip_port}" in text, text
    assert f"sip:echo@{LOOPBACK}:{server.sip_port};transport=tcp" in text
    assert f"{base}/phone/callswitch.js" in text and f"127.0.0.1:{server.http_port}" in text
    assert title.startswith("callswitch")
    assert doc.startswith("# Browser calls")
    assert phone, "the /phone link did not load the softphone"
    # Nothing but this node was asked for anything (Chromium's own favicon request aside).
    assert requests and all(url.startswith(base + "/") for url in requests), requests
