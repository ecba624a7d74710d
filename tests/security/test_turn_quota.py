"""TURN's per-user quota against a real node: an account's allocations are counted
across all of its tokens, so minting a fresh token does not buy another 100."""

from __future__ import annotations

import os
import socket

import pytest

from tests.interop.test_voice_webhooks import rest_client
from turn.policy import Quotas
from turn.stun import ALLOCATE, ERROR, REQUEST, SUCCESS, Attr, Message, long_term_key, parse

from .node import refusal_counts, refused_events, still_serving

QUOTA = Quotas().per_user  # 100 allocations per account
UDP = 17


def turn_credentials(client, ttl: int) -> tuple[str, str]:
    [server] = [s for s in client.tokens.create(ttl=ttl).ice_servers if "username" in s][:1]
    return server["username"], server["credential"]


def ask(sock: socket.socket, turn: tuple[str, int], message: bytes) -> Message:
    for _ in range(5):  # UDP: resend a lost request (bounded)
        sock.sendto(message, turn)
        try:
            return parse(sock.recvfrom(4096)[0])
        except TimeoutError:
            continue
    raise AssertionError("no answer from the TURN server")


def allocate(turn, username: str, password: str, nonce: str, realm: str) -> tuple[int, object]:
    """One allocation from a fresh socket (a fresh 5-tuple): the answer's error code
    (0 for success) and the socket, which must stay open for the allocation to live."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.1", 0))
    sock.settimeout(2.0)
    request = Message(ALLOCATE, REQUEST, os.urandom(12)).add(Attr.REQUESTED_TRANSPORT, UDP)
    request.add(Attr.USERNAME, username).add(Attr.REALM, realm).add(Attr.NONCE, nonce)
    answer = ask(sock, turn, request.encode(long_term_key(username, realm, password)))
    if answer.cls == SUCCESS:
        return 0, sock
    assert answer.cls == ERROR
    return answer.get(Attr.ERROR_CODE)[0], sock


@pytest.mark.callswitch(relay_size=QUOTA + 20)
def test_the_allocation_quota_counts_the_account_across_its_tokens(server):
    client = rest_client(server)
    first = turn_credentials(client, ttl=600)
    second = turn_credentials(client, ttl=900)  # another username, the same account
    assert first[0] != second[0] and first[0].split(":")[1] == second[0].split(":")[1]
    turn = ("127.0.0.1", server.turn_port)
    probe = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    probe.bind(("127.0.0.1", 0))
    probe.settimeout(2.0)
    challenge = ask(probe, turn, Message(ALLOCATE, REQUEST, os.urandom(12)).encode())
    nonce, realm = challenge.get(Attr.NONCE), challenge.get(Attr.REALM)
    sockets = [probe]
    try:
        codes = []
        for n in range(QUOTA):
            username, password = first if n % 2 else second
            code, sock = allocate(turn, username, password, nonce, realm)
            codes.append(code)
            sockets.append(sock)
        assert codes == [0] * QUOTA, codes
        # A freshly minted token of the same account: over quota all the same.
        third = turn_credentials(client, ttl=1200)
        code, sock = allocate(turn, *third, nonce, realm)
        sockets.append(sock)
        assert code == 486
        counted = refusal_counts(server)
        still_serving(server)
    finally:
        for sock in sockets:
            sock.close()
    assert counted.get("turn.quota") == 1, counted
    [event] = refused_events(server, "turn.quota")
    assert event["source_ip"] == "127.0.0.1" and event["owner"] == first[0].split(":")[1]
