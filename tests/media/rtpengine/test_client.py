"""media/rtpengine/client.py against a small ng responder on loopback: replies,
a lost first datagram, an error reply, an instance that is gone, fallback to
another instance, and the re-ping that brings one back."""

from __future__ import annotations

import asyncio
import socket

import pytest

from media.rtpengine.bencode import decode, encode
from media.rtpengine.client import EngineRefused, EngineUnreachable, RtpEngines, call_totals
from media.rtpengine.selection import EngineAddress


class Responder(asyncio.DatagramProtocol):
    """Answers ng commands as rtpengine would; can drop the first few datagrams."""

    def __init__(self, drop: int = 0) -> None:
        self.drop = drop
        self.seen: list[dict] = []
        self.calls: dict[str, int] = {}
        self.transport: asyncio.DatagramTransport | None = None

    def connection_made(self, transport) -> None:
        self.transport = transport

    def datagram_received(self, data: bytes, addr) -> None:
        if self.drop:
            self.drop -= 1
            return
        cookie, _, body = data.partition(b" ")
        message = decode(body)
        self.seen.append(message)
        reply = self.answer(message)
        assert self.transport is not None
        self.transport.sendto(cookie + b" " + encode(reply), addr)

    def answer(self, message: dict) -> dict:
        command = message["command"]
        if command == "ping":
            return {"result": "pong"}
        if command == "offer":
            if message["sdp"] == "refuse":
                return {"result": "error", "error-reason": "Incomplete SDP"}
            self.calls[message["call-id"]] = 0
            return {"result": "ok", "sdp": "v=0 offer"}
        if command == "answer":
            return {"result": "ok", "sdp": "v=0 answer"}
        if command == "query":
            totals = {"RTP": {"packets": 10, "bytes": 1720, "errors": 0}}
            return {"result": "ok", "totals": totals}
        if command == "delete":
            self.calls.pop(message["call-id"], None)
            return {"result": "ok"}
        if command == "subscribe request":
            if message["from-tag"] == "nobody":
                return {"result": "ok", "sdp": "v=0 copy"}  # no to-tag: unusable
            return {"result": "ok", "sdp": "v=0 copy", "to-tag": "sub1"}
        if command in ("subscribe answer", "unsubscribe"):
            return {"result": "ok"}
        if command == "list":
            return {"result": "ok", "calls": list(self.calls)}
        return {"result": "error", "error-reason": "Unrecognized command"}


async def responder(**kwargs) -> tuple[Responder, EngineAddress]:
    loop = asyncio.get_running_loop()
    transport, protocol = await loop.create_datagram_endpoint(
        lambda: Responder(**kwargs), local_addr=("127.0.0.1", 0)
    )
    return protocol, EngineAddress("127.0.0.1", transport.get_extra_info("sockname")[1])


def closed_port() -> EngineAddress:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return EngineAddress("127.0.0.1", sock.getsockname()[1])


async def test_a_call_through_offer_answer_query_list_delete():
    peer, address = await responder()
    engines = RtpEngines([address])
    try:
        assert await engines.offer("c1", "a", "v=0", ICE="remove") == "v=0 offer"
        assert await engines.answer("c1", "a", "b", "v=0") == "v=0 answer"
        assert call_totals(await engines.query("c1")) == (10, 1720, 0)
        heard = engines.last_heard("c1")
        assert heard is not None and heard <= asyncio.get_running_loop().time()
        assert engines.last_heard("unknown") is None
        instance = engines.set.instances[0]
        assert await engines.list(instance) == ["c1"]
        assert instance.calls == 1
        reply = await engines.delete("c1")
        assert call_totals(reply) == (10, 1720, 0)
        assert await engines.list(instance) == []
        assert instance.calls == 0
        assert (engines.totals.offers, engines.totals.deletes, engines.totals.packets) == (1, 1, 10)
        assert peer.seen[0]["ICE"] == "remove" and peer.seen[-2]["delete delay"] == 0
    finally:
        engines.close()


async def test_a_lost_datagram_is_sent_again():
    peer, address = await responder(drop=1)
    engines = RtpEngines([address], interval=0.05, attempts=3)
    try:
        assert await engines.ping(engines.set.instances[0])
        assert peer.drop == 0 and len(peer.seen) == 1  # the first was lost, the resend answered
    finally:
        engines.close()


async def test_an_error_reply_is_a_refusal_and_the_call_is_not_kept():
    _, address = await responder()
    engines = RtpEngines([address])
    try:
        with pytest.raises(EngineRefused, match="Incomplete SDP"):
            await engines.offer("c1", "a", "refuse")
        assert engines.set.instance_for("c1") is None
        assert engines.totals.refused == 1
        with pytest.raises(EngineRefused, match="no rtpengine holds"):
            await engines.query("c1")
    finally:
        engines.close()


async def test_a_dead_instance_is_disabled_and_new_calls_go_to_the_other():
    now = [1000.0]
    _, alive = await responder()
    dead = closed_port()
    engines = RtpEngines([dead, alive], interval=0.05, attempts=2, clock=lambda: now[0])
    try:
        for n in range(6):  # whichever the hash picks first, every call ends up alive
            await engines.offer(f"call-{n}", "a", "v=0")
            assert engines.set.instance_for(f"call-{n}").address == alive
        gone = engines.set.instances[0]
        assert not gone.up and gone.failures == 1
        assert engines.totals.unreachable >= 1
    finally:
        engines.close()


async def test_a_closed_port_and_a_silent_one_are_told_apart():
    closed = RtpEngines([closed_port()], interval=0.05, attempts=2)
    silent_peer, address = await responder(drop=10)
    silent = RtpEngines([address], interval=0.05, attempts=2)
    try:
        with pytest.raises(EngineUnreachable) as refused:
            await closed.send(closed.set.instances[0], {"command": "ping"})
        assert refused.value.closed  # ICMP port unreachable: nothing listens there
        with pytest.raises(EngineUnreachable) as quiet:
            await silent.send(silent.set.instances[0], {"command": "ping"})
        assert not quiet.value.closed and len(silent_peer.seen) == 0
    finally:
        closed.close()
        silent.close()


async def test_no_instance_left_raises_unreachable():
    engines = RtpEngines([closed_port()], interval=0.05, attempts=2)
    try:
        with pytest.raises(EngineUnreachable):
            await engines.offer("c1", "a", "v=0")
        with pytest.raises(EngineUnreachable, match="no rtpengine instance"):
            await engines.offer("c2", "a", "v=0")  # disabled: not even tried
    finally:
        engines.close()


async def test_a_disabled_instance_is_pinged_once_its_time_is_up():
    now = [0.0]
    _, address = await responder()
    engines = RtpEngines([address], disable_s=60.0, clock=lambda: now[0])
    try:
        instance = engines.set.instances[0]
        engines.set.disable(instance, now=0.0)
        now[0] = 30.0
        await engines.recheck()
        assert not instance.up
        now[0] = 60.0
        assert await engines.offer("c1", "a", "v=0") == "v=0 offer"
        assert instance.up
    finally:
        engines.close()


async def test_subscriptions_go_to_the_calls_instance():
    peer, address = await responder()
    engines = RtpEngines([address])
    try:
        with pytest.raises(EngineRefused, match="no rtpengine holds"):
            await engines.subscribe_request("c1", "a")  # not offered yet: no instance
        await engines.offer("c1", "a", "v=0")
        assert await engines.subscribe_request("c1", "a", ICE="remove") == ("v=0 copy", "sub1")
        await engines.subscribe_answer("c1", "sub1", "v=0 ours", flags=["asymmetric"])
        await engines.unsubscribe("c1", "sub1")
        with pytest.raises(EngineRefused, match="to-tag"):
            await engines.subscribe_request("c1", "nobody")
        request, answer, unsubscribe = peer.seen[1:4]
        assert request == {
            "command": "subscribe request",
            "call-id": "c1",
            "from-tag": "a",
            "ICE": "remove",
        }
        assert answer["to-tag"] == "sub1" and answer["sdp"] == "v=0 ours"
        assert answer["flags"] == ["asymmetric"]
        assert unsubscribe == {"command": "unsubscribe", "call-id": "c1", "to-tag": "sub1"}
    finally:
        engines.close()
