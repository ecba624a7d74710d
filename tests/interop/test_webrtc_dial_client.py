"""A SIPp caller reaches a browser: ``<Dial><Client>alice</Client></Dial>`` rings an
aiortc client registered as alice over the signaling WebSocket; it answers, and
each side hears the other's tone (1 kHz from SIPp, 440 Hz from the client)."""

from __future__ import annotations

import asyncio
import re
import time

import pytest

from tests.peers import require

from .audio import level_dbfs, ulaw_decode
from .conftest import sipp_failure
from .test_outbound_calls import heard, tone_dir
from .test_voice_webhooks import rest_client
from .test_webrtc_outgoing import priced_client_usage
from .webhook_app import WebhookApp, twiml
from .webrtc_client import SignalingClient, access_token

TONE_HZ = 1000.0
CLIENT_HZ = 440.0


def _aiortc() -> bool:
    try:
        import aiortc  # noqa: F401
    except ImportError:
        return False
    return True


@pytest.fixture
def app():
    require(_aiortc(), "aiortc is not installed (pip install aiortc)")
    with WebhookApp() as application:
        yield application


@pytest.mark.parametrize(
    "codecs",
    [(), ("audio/opus",)],
    ids=["pcmu-untouched", "opus-transcoded-to-pcmu"],
)
async def test_sipp_call_reaches_alice_in_a_browser_and_audio_flows_both_ways(
    server, sipp, rtp_sink, app, tmp_path, codecs
):
    client = rest_client(server)
    app.routes["/voice"] = lambda r: twiml("<Dial><Client>alice</Client></Dial>")
    number = "+15005550171"
    client.incoming_phone_numbers.create(phone_number=number, voice_url=app.url("/voice"))
    token = access_token(server, "alice")

    tab = await SignalingClient.open(server)
    other = await SignalingClient.open(server)  # bob's tab must not ring
    try:
        registered = await tab.register(token)
        assert registered["type"] == "registered" and registered["identity"] == "alice"
        assert (await other.register(access_token(server, "bob")))["identity"] == "bob"

        caller = asyncio.ensure_future(
            asyncio.to_thread(
                sipp,
                "uac_tone_wait_bye.xml",
                service=number.lstrip("+"),
                keys={"sink_port": rtp_sink.port},
                cwd=tone_dir(tmp_path / "tone", TONE_HZ),
                calls=1,
                timeout=30,
            )
        )
        incoming, peer = await tab.answer_incoming(CLIENT_HZ, codecs=codecs)
        chosen = re.search(r"m=audio \d+ \S+ (\d+)", peer.pc.localDescription.sdp).group(1)
        assert (chosen == "0") == (not codecs), chosen  # PCMU (0) unless Opus was forced
        assert incoming["from"] == "sip:sipp@127.0.0.1"  # the caller, as the webhook saw it
        assert incoming["to"] == "client:alice"
        # The server bound to 127.0.0.1 offers loopback candidates only.
        assert set(re.findall(r"a=candidate:\S+ \d+ \S+ \d+ (\S+) ", incoming["sdp"])) == {
            "127.0.0.1"
        }
        status = await tab.next("status")
        assert status == {"type": "status", "call": incoming["call"], "status": "in-progress"}
        await asyncio.sleep(4)
        frequency, level = peer.heard(1.0)
        # Muted, the tab's audio no longer reaches the caller.
        await tab.send(type="mute", call=incoming["call"], muted=True)
        muted_at = time.monotonic()
        await asyncio.sleep(1.5)
        await tab.send(type="hangup", call=incoming["call"])
        result = await caller
        await peer.close()
    finally:
        await tab.close()
        await other.close()
    assert result.ok(1), sipp_failure(result, server, "the SIPp call did not end cleanly")
    assert abs(frequency - TONE_HZ) < 15 and level > -30, (
        f"the browser heard {frequency:.0f} Hz at {level:.1f} dBFS\n{server.tail()}"
    )
    assert heard(rtp_sink, CLIENT_HZ), f"SIPp did not hear the browser's tone\n{server.tail()}"
    after_mute = b"".join(
        p.payload for p in rtp_sink.packets() if p.arrival > muted_at + 0.3 and p.payload_type == 0
    )
    if after_mute:  # the server may send nothing at all, or silence
        assert level_dbfs(ulaw_decode(after_mute)) < -50, "the caller still hears a muted tab"
    assert not [m for m in other.messages if m["type"] == "incoming"], "bob's tab rang"
    # PCMU both sides: payloads handed across as they are; Opus: transcoded in our bridge.
    modes = [event.get("mode") for event in server.events("dial.bridged")]
    assert modes == (["transcode"] if codecs else ["frames"]), modes

    calls = client.calls.list()
    child = next(c for c in calls if c.to == "client:alice")
    assert child.direction == "outbound-dial" and child.parent_call_sid
    assert child.status == "completed" and int(child.duration) >= 3
    # The call to the tab is a client call: priced as calls-client usage.
    usage = await priced_client_usage(client)
    assert usage is not None and int(usage.count) == 1, usage and usage.count
    assert float(usage.usage) == 1 and float(usage.price) > 0, (usage.usage, usage.price)
    assert client.calls(child.sid).fetch().price is not None
