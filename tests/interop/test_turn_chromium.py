"""Headless Chromium: two peer connections forced through our relay exchange a message.

Both ``RTCPeerConnection``s use ``iceTransportPolicy: "relay"``, so the data
channel can only open if Chromium's TURN client allocated on our server and
our relay carried the traffic between the two relayed addresses. The ICE
servers and their time-limited credentials come from our ``Tokens`` resource
through the official ``twilio`` library, as a browser app would get them.
"""

from __future__ import annotations

import contextlib
import functools
import http.server
import json
import re
import threading
from pathlib import Path

import pytest

from .chromium import CHROMIUM, FLAGS, require_chromium
from .test_voice_webhooks import rest_client
from .turn_peers import write_page

PAGE = """<!doctype html>
<html><body><script>
function gathered(pc) {
  return new Promise((resolve) => {
    if (pc.iceGatheringState === "complete") return resolve();
    pc.addEventListener("icegatheringstatechange", () => {
      if (pc.iceGatheringState === "complete") resolve();
    });
  });
}
async function selectedTypes(pc) {
  const stats = await pc.getStats();
  let pair = null;
  stats.forEach((s) => {
    if (s.type === "transport" && s.selectedCandidatePairId) {
      pair = stats.get(s.selectedCandidatePairId);
    }
  });
  if (!pair) return null;
  return [stats.get(pair.localCandidateId).candidateType,
          stats.get(pair.remoteCandidateId).candidateType];
}
function run(iceServers) {
  const timeout = new Promise((_, reject) =>
    setTimeout(() => reject(new Error("no data channel through the relay in 20 s")), 20000));
  return Promise.race([connect(iceServers), timeout]);
}
async function connect(iceServers) {
  const config = {iceServers, iceTransportPolicy: "relay"};
  const a = new RTCPeerConnection(config), b = new RTCPeerConnection(config);
  const channel = a.createDataChannel("relay-check");
  const opened = new Promise((resolve) => { channel.onopen = resolve; });
  const received = new Promise((resolve) => {
    b.ondatachannel = (e) => { e.channel.onmessage = (m) => resolve(m.data); };
  });
  await a.setLocalDescription(await a.createOffer());
  await gathered(a);
  await b.setRemoteDescription(a.localDescription);
  await b.setLocalDescription(await b.createAnswer());
  await gathered(b);
  await a.setRemoteDescription(b.localDescription);
  await opened;
  channel.send("hello through callswitch");
  const message = await received;
  const result = {message, offer: a.localDescription.sdp, answer: b.localDescription.sdp,
                  selected: await selectedTypes(a)};
  a.close(); b.close();
  return result;
}
</script></body></html>
"""


@contextlib.contextmanager
def serve_directory(directory: Path):
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(directory))
    handler.log_message = lambda *args: None
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}/index.html"
    finally:
        httpd.shutdown()
        httpd.server_close()


@pytest.fixture
def chromium():
    require_chromium()
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=FLAGS, headless=True)
        try:
            yield browser
        finally:
            browser.close()


def _relay_candidates(sdp: str) -> list[tuple[str, int]]:
    return [
        (host, int(port))
        for host, port in re.findall(r"a=candidate:\S+ \d \S+ \d+ (\S+) (\d+) typ relay", sdp)
    ]


@pytest.mark.callswitch(extra_args=("--turn-allow-peer", "127.0.0.0/8"))
@pytest.mark.parametrize("transport", ["udp", "tcp"])
def test_chromium_peer_connections_meet_through_our_relay(server, chromium, tmp_path, transport):
    client = rest_client(server)
    ice = client.tokens.create(ttl=600).ice_servers
    turn = [
        s for s in ice if s["urls"].startswith("turn:") and f"transport={transport}" in s["urls"]
    ]
    assert turn and turn[0]["urls"] == f"turn:127.0.0.1:{server.turn_port}?transport={transport}"
    page_file = write_page(tmp_path / "page", PAGE)
    with serve_directory(page_file.parent) as url:
        page = chromium.new_page()
        page.goto(url)
        result = page.evaluate("(servers) => run(servers)", turn)
        page.close()
    assert result["message"] == "hello through callswitch"
    assert result["selected"] == ["relay", "relay"], json.dumps(result)[:2000]
    low, high = server.relay_ports
    for sdp in (result["offer"], result["answer"]):
        relays = _relay_candidates(sdp)
        assert relays, sdp
        assert all(host == "127.0.0.1" and low <= port <= high for host, port in relays), relays
    server.assert_alive()
