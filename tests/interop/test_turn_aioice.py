"""aioice's TURN client (the one aiortc uses) reaches a UDP peer through our relay."""

from __future__ import annotations

import asyncio
import time

import pytest
from aioice.turn import create_turn_endpoint

from turn.auth import rest_credentials

from .harness import LOOPBACK
from .turn_peers import PASSWORD, SECRET, TURN_ARGS, USER, UdpEcho


class Collector(asyncio.DatagramProtocol):
    def __init__(self) -> None:
        self.received: asyncio.Queue = asyncio.Queue()

    def datagram_received(self, data, addr) -> None:
        self.received.put_nowait((data, addr))


async def _echo_through_relay(server, echo: UdpEcho, username: str, password: str, transport):
    turn, protocol = await create_turn_endpoint(
        Collector,
        server_addr=(LOOPBACK, server.turn_port),
        username=username,
        password=password,
        transport=transport,
    )
    try:
        relayed = turn.get_extra_info("related_address")
        sockname = turn.get_extra_info("sockname")
        assert sockname[0] == LOOPBACK
        assert server.relay_ports[0] <= sockname[1] <= server.relay_ports[1], (sockname, relayed)
        # aioice sends a Send indication first, then ChannelData once its channel
        # is bound: many datagrams cover both paths.
        for n in range(20):
            payload = b"hello %d" % n
            turn.sendto(payload, echo.address)
            data, addr = await asyncio.wait_for(protocol.received.get(), 5)
            assert data == payload and tuple(addr[:2]) == echo.address
        # The peer saw the relayed address, not the client's.
        assert {addr for _, addr in echo.seen} == {tuple(sockname[:2])}
    finally:
        turn.close()


@pytest.mark.callswitch(extra_args=TURN_ARGS)
@pytest.mark.parametrize("transport", ["udp", "tcp"])
async def test_aioice_reaches_a_udp_peer_through_the_relay(server, transport):
    with UdpEcho() as echo:
        await _echo_through_relay(server, echo, USER, PASSWORD, transport)
        username, password = rest_credentials(SECRET, "aioice", int(time.time()) + 600)
        echo.seen.clear()
        await _echo_through_relay(server, echo, username, password, transport)
    server.assert_alive()
