"""media/rtpengine/dtmf_listener.py on a real loopback socket: events reach the
bridge that watches their call; garbage, strangers' events and a watcher's bug
are counted or logged, and the socket keeps listening; datagrams from an address
that is no instance's are not read."""

from __future__ import annotations

import asyncio
import socket

import pytest

from callswitch.refusals import Refusals
from media.rtpengine.dtmf_listener import (
    REFUSED_REASON,
    DtmfLogListener,
    instance_addresses,
    parse_listen_address,
    source_address,
)
from media.rtpengine.dtmf_log import DtmfEvent
from media.rtpengine.selection import EngineAddress


def event(call_id: str, tag: str = "CA1", code: int = 10) -> bytes:
    return (
        f'{{"callid":"{call_id}","source_tag":"{tag}","tags":["{tag}"],"type":"DTMF",'
        f'"timestamp":1,"source_ip":"127.0.0.1","event":{code},"duration":120,"volume":8}}'
    ).encode()


async def test_events_reach_their_watcher_and_nothing_else_stops_the_socket():
    listener = DtmfLogListener()
    listener.accept_from(["127.0.0.1"])
    await listener.bind("127.0.0.1", 0)
    assert listener.address is not None
    got: asyncio.Queue[DtmfEvent] = asyncio.Queue()

    def broken(_: DtmfEvent) -> None:
        raise RuntimeError("a watcher's bug")

    unwatch = listener.watch("call-1", got.put_nowait)
    listener.watch("call-2", broken)
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sender:
        for data in [b"\x00garbage", event("call-2"), event("other"), event("call-1", code=11)]:
            sender.sendto(data, listener.address)
        first = await asyncio.wait_for(got.get(), 5)
        unwatch()
        listener.watch("call-3", got.put_nowait)
        sender.sendto(event("call-1", code=1), listener.address)  # no longer watched
        sender.sendto(event("call-3", code=5), listener.address)
        # One sender's datagrams on loopback arrive in order: once this one is
        # read, the one before it was.
        last = await asyncio.wait_for(got.get(), 5)
    listener.close()
    assert (first.call_id, first.source_tag, first.digit, first.duration_ms) == (
        "call-1",
        "CA1",
        "#",
        120,
    )
    assert last.digit == "5" and last.call_id == "call-3"
    assert listener.stats.malformed == 1
    assert listener.stats.unknown == 2  # another node's call, then the one unwatched
    assert listener.stats.events == 3  # call-2's (its watcher failed), call-1's, call-3's


async def test_only_the_instances_addresses_are_heard():
    """A stranger's datagram naming a live bridge's call and tag (a forged ``*``) is not
    read: counted, and refused once to the node's refusal counter; the instance's own
    datagram, sent after it, reaches the bridge."""
    refusals = Refusals()
    refused: asyncio.Queue[str] = asyncio.Queue()

    def refuse(reason: str, source_ip: str, **fields: object) -> None:
        refusals(reason, source_ip, **fields)
        refused.put_nowait(source_ip)

    listener = DtmfLogListener(refused=refuse)
    listener.accept_from(await instance_addresses([EngineAddress("127.0.0.1", 2223)]))
    await listener.bind("127.0.0.1", 0)
    assert listener.address is not None
    got: asyncio.Queue[DtmfEvent] = asyncio.Queue()
    listener.watch("bridge-1", got.put_nowait)
    try:
        with (
            socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as stranger,
            socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as instance,
        ):
            stranger.bind(("127.0.0.2", 0))  # loopback, but not the instance's address
            instance.bind(("127.0.0.1", 0))
            stranger.sendto(event("bridge-1", tag="caller", code=10), listener.address)
            assert await asyncio.wait_for(refused.get(), 5) == "127.0.0.2"
            instance.sendto(event("bridge-1", tag="caller", code=3), listener.address)
            heard = await asyncio.wait_for(got.get(), 5)
    finally:
        listener.close()
    assert (heard.digit, heard.source_tag) == ("3", "caller")
    assert got.empty()  # the stranger's * never reached the bridge
    assert listener.stats.foreign == 1 and listener.stats.events == 1
    assert listener.stats.malformed == listener.stats.unknown == 0
    assert refusals.counts == {REFUSED_REASON: 1}


async def test_a_listener_told_no_instance_reads_nothing():
    listener = DtmfLogListener()
    await listener.bind("127.0.0.1", 0)
    assert listener.address is not None
    listener.watch("bridge-1", lambda e: pytest.fail("read"))
    try:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sender:
            sender.sendto(event("bridge-1"), listener.address)
            for _ in range(500):  # bounded: the datagram is read within a few ms
                if listener.stats.foreign:
                    break
                await asyncio.sleep(0.01)
    finally:
        listener.close()
    assert listener.stats.foreign == 1 and listener.stats.events == 0


async def test_instance_hosts_resolve_to_every_address_they_have():
    found = await instance_addresses([EngineAddress("localhost", 2223), EngineAddress("::1", 2223)])
    assert "127.0.0.1" in found and "::1" in found


@pytest.mark.parametrize(
    ("source", "compared"),
    [
        ("127.0.0.1", "127.0.0.1"),
        ("::ffff:127.0.0.1", "127.0.0.1"),  # a dual-stack socket's view of an IPv4 sender
        ("fe80::1%lo", "fe80::1"),
        ("2001:DB8::0:1", "2001:db8::1"),
        ("[::1]", "::1"),
        ("not-an-address", "not-an-address"),
    ],
)
def test_sources_are_compared_as_addresses(source, compared):
    assert source_address(source) == compared


@pytest.mark.parametrize(
    ("spec", "address"),
    [("127.0.0.1:2224", ("127.0.0.1", 2224)), ("[::1]:9", ("::1", 9)), ("h:1", ("h", 1))],
)
def test_listen_addresses(spec, address):
    assert parse_listen_address(spec) == address


@pytest.mark.parametrize("spec", ["", "host", ":1", "h:0", "h:65536", "[::1]", "h:x"])
def test_bad_listen_addresses(spec):
    with pytest.raises(ValueError, match="HOST:PORT"):
        parse_listen_address(spec)


async def test_ng_tcp_follows_each_instance_and_connects_again_when_it_goes():
    """``ng-tcp``: a connection to the instance's ng port; its notifications reach the
    watcher; when the instance closes the connection (a restart), it is made anew."""
    connected: asyncio.Queue[asyncio.StreamWriter] = asyncio.Queue()

    async def instance(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await connected.put(writer)

    server = await asyncio.start_server(instance, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    listener = DtmfLogListener()
    got: asyncio.Queue[DtmfEvent] = asyncio.Queue()
    listener.watch("cid1", got.put_nowait)
    listener.connect([EngineAddress("127.0.0.1", port)], retry_s=0.01)
    writers: list[asyncio.StreamWriter] = []
    try:
        first = await asyncio.wait_for(connected.get(), 5)
        writers.append(first)
        first.write(b"ab12 d6:notify6:onDTMF4:datad6:callid4:cid110:source_tag1:a5:eventi11eee")
        assert (await asyncio.wait_for(got.get(), 5)).digit == "#"
        first.write(b"not ng at all, and longer than any cookie may be" * 2)  # dropped
        second = await asyncio.wait_for(connected.get(), 5)
        writers.append(second)
        second.write(b"cd34 d6:notify6:onDTMF4:datad6:callid4:cid110:source_tag1:a5:eventi10eee")
        assert (await asyncio.wait_for(got.get(), 5)).digit == "*"
        assert listener.stats.connections == 2
    finally:
        listener.close()
        server.close()
        for writer in writers:
            writer.close()
