"""Whatever arrives on the TURN ports, the server answers or drops it and stays up."""

from __future__ import annotations

import contextlib
import os
import random
import socket

import pytest

from turn.stun import ALLOCATE, REQUEST, Attr, Message, parse

from .harness import LOOPBACK
from .turn_peers import TURN_ARGS


def _garbage(rng: random.Random) -> list[bytes]:
    valid = Message(ALLOCATE, REQUEST, os.urandom(12))
    valid.add(Attr.REQUESTED_TRANSPORT, 17).add(Attr.LIFETIME, 600).add(Attr.USERNAME, "alice")
    valid = valid.encode()
    out = [b"", b"\x00", b"\x40\x00", b"\x40\x00\xff\xff" + b"x" * 8, b"\xff" * 64]
    for _ in range(1500):
        kind = rng.randrange(3)
        if kind == 0:
            out.append(rng.randbytes(rng.randrange(0, 200)))
        elif kind == 1:
            data = bytearray(valid)
            for _ in range(rng.randrange(1, 5)):
                data[rng.randrange(len(data))] = rng.randrange(256)
            out.append(bytes(data[: rng.randrange(len(data) + 1)]))
        else:
            out.append(bytes([0x40 + rng.randrange(64)]) + rng.randbytes(rng.randrange(3, 60)))
    return out


@pytest.mark.callswitch(extra_args=TURN_ARGS)
def test_random_and_mutated_input_never_stops_the_server(server):
    rng = random.Random(7)
    target = (LOOPBACK, server.turn_port)
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:
        for data in _garbage(rng):
            udp.sendto(data, target)
    for _ in range(10):
        # The server may hang up on a stream that is not STUN.
        hung_up = contextlib.suppress(BrokenPipeError, ConnectionResetError)
        with socket.create_connection(target, timeout=5) as tcp, hung_up:
            tcp.sendall(b"".join(_garbage(rng)[:50]))
    server.assert_alive()
    # And it still answers: an Allocate without credentials gets 401.
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:
        udp.settimeout(5)
        request = Message(ALLOCATE, REQUEST, os.urandom(12)).add(Attr.REQUESTED_TRANSPORT, 17)
        udp.sendto(request.encode(), target)
        answer = parse(udp.recv(2048))
    assert answer.get(Attr.ERROR_CODE)[0] == 401 and answer.get(Attr.NONCE)
    assert not any("Traceback" in line for line in server.lines())
