"""The TURN server core (RFC 8656) fed with bytes and time: no sockets."""

from __future__ import annotations

import os

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from turn.allocation import (
    CHANNEL_LIFETIME,
    DEFAULT_LIFETIME,
    MAX_LIFETIME,
    PERMISSION_LIFETIME,
    AllocationManager,
    FiveTuple,
    RelayPorts,
)
from turn.auth import Credentials, rest_credentials
from turn.policy import PeerPolicy, Quotas
from turn.stun import (
    ALLOCATE,
    BINDING,
    CHANNEL_BIND,
    CREATE_PERMISSION,
    ERROR,
    INDICATION,
    REFRESH,
    REQUEST,
    SEND,
    SUCCESS,
    Attr,
    Message,
    long_term_key,
    parse,
)

WALL = 1_800_000_000.0
PEER = ("198.51.100.20", 4000)
SERVER = ("192.0.2.1", 3478)


class Harness:
    """A manager with fake relays, and a client that speaks to it through bytes."""

    def __init__(self, **options) -> None:
        self.opened: list[int] = []
        self.closed: list[int] = []
        self.sent: list[tuple[bytes, tuple]] = []
        self.busy: set[int] = options.pop("busy", set())
        self.now = 100.0
        self.manager = AllocationManager(
            options.pop("credentials", Credentials(users={"alice": "pw", "bob": "pw"})),
            ports=RelayPorts(*options.pop("ports", (50000, 50009))),
            relay_address="192.0.2.1",
            relay_address6=options.pop("relay_address6", None),
            policy=options.pop("policy", PeerPolicy(own_addresses={"192.0.2.1"})),
            open_relay=self._open,
            close_relay=lambda a: self.closed.append(a.relayed[1]),
            send_to_peer=lambda a, data, peer: self.sent.append((data, peer)),
            protected_ports=frozenset({3478}),
            **options,
        )

    def _open(self, allocation, port):
        if port in self.busy:
            return False
        self.opened.append(port)
        return True

    def raw(self, data: bytes, client=("203.0.113.5", 40000), transport="udp"):
        answer = self.manager.handle(data, FiveTuple(transport, client, SERVER), self.now, WALL)
        return None if answer is None else parse(answer)

    def ask(
        self,
        method,
        *attrs,
        user="alice",
        password="pw",
        client=("203.0.113.5", 40000),
        nonce=None,
        cls=REQUEST,
        tid=None,
        transport="udp",
    ):
        """Sends a request the way a client does after its first 401: with credentials."""
        m = Message(method, cls, tid or os.urandom(12))
        for attr, value in attrs:
            m.add(attr, value)
        m.add(Attr.USERNAME, user).add(Attr.REALM, "callswitch")
        m.add(Attr.NONCE, nonce or self.manager.credentials.nonce(client[0], WALL))
        return self.raw(m.encode(long_term_key(user, "callswitch", password)), client, transport)

    def allocate(self, *attrs, **kw):
        return self.ask(ALLOCATE, (Attr.REQUESTED_TRANSPORT, 17), *attrs, **kw)


def code(answer: Message) -> int | None:
    assert answer is not None
    if answer.cls == SUCCESS:
        return None
    assert answer.cls == ERROR
    return answer.get(Attr.ERROR_CODE)[0]


def test_binding_answers_the_reflexive_address_without_credentials():
    h = Harness()
    answer = h.raw(Message(BINDING, REQUEST, b"b" * 12).encode())
    assert answer.cls == SUCCESS
    assert answer.get(Attr.XOR_MAPPED_ADDRESS) == ("203.0.113.5", 40000)


def test_first_allocate_gets_401_with_realm_and_nonce_then_succeeds():
    h = Harness()
    first = h.raw(Message(ALLOCATE, REQUEST, b"a" * 12).add(Attr.REQUESTED_TRANSPORT, 17).encode())
    assert code(first) == 401
    nonce = first.get(Attr.NONCE)
    assert first.get(Attr.REALM) == "callswitch" and nonce
    answer = h.allocate(nonce=nonce)
    assert code(answer) is None
    relayed = answer.get(Attr.XOR_RELAYED_ADDRESS)
    assert relayed[0] == "192.0.2.1" and 50000 <= relayed[1] <= 50009
    assert answer.get(Attr.LIFETIME) == DEFAULT_LIFETIME
    assert answer.get(Attr.XOR_MAPPED_ADDRESS) == ("203.0.113.5", 40000)
    assert answer.check_integrity(long_term_key("alice", "callswitch", "pw"))
    assert answer.fingerprint_ok


def test_wrong_password_is_401_and_stale_nonce_is_438_with_a_new_nonce():
    h = Harness()
    assert code(h.allocate(password="wrong")) == 401
    stale = h.manager.credentials.nonce("203.0.113.5", WALL - 10_000)
    answer = h.allocate(nonce=stale)
    assert code(answer) == 438
    assert h.manager.credentials.nonce_valid(answer.get(Attr.NONCE), "203.0.113.5", WALL)


def test_allocate_retransmission_gets_the_same_answer_a_new_one_437():
    h = Harness()
    tid = os.urandom(12)
    first = h.allocate(tid=tid)
    again = h.allocate(tid=tid)
    assert first.raw == again.raw and len(h.opened) == 1
    assert code(h.allocate()) == 437


def test_allocate_needs_udp_transport():
    h = Harness()
    assert code(h.ask(ALLOCATE)) == 400
    assert code(h.ask(ALLOCATE, (Attr.REQUESTED_TRANSPORT, 6))) == 442


def test_ipv6_without_an_ipv6_relay_is_440():
    h = Harness()
    assert code(h.allocate((Attr.REQUESTED_ADDRESS_FAMILY, 2))) == 440
    assert code(h.allocate((Attr.REQUESTED_ADDRESS_FAMILY, 9))) == 440


def test_quotas_per_user_486_and_total_508():
    h = Harness(quotas=Quotas(per_user=2, total=3))
    assert code(h.allocate(client=("203.0.113.5", 1))) is None
    assert code(h.allocate(client=("203.0.113.5", 2))) is None
    assert code(h.allocate(client=("203.0.113.5", 3))) == 486
    assert code(h.allocate(user="bob", client=("203.0.113.6", 1))) is None
    assert code(h.allocate(user="bob", client=("203.0.113.6", 2))) == 508


def test_the_quota_counts_an_account_across_all_of_its_rest_tokens():
    refusals = []
    h = Harness(
        credentials=Credentials(users={"alice": "pw"}, secret="s3cret"),
        quotas=Quotas(per_user=2, total=100),
        refused=lambda reason, source_ip, **fields: refusals.append((reason, source_ip, fields)),
    )
    account, other = "AC" + "1" * 32, "AC" + "2" * 32
    tokens = [rest_credentials("s3cret", account, int(WALL) + 3600 + n) for n in range(3)]
    for n, (user, password) in enumerate(tokens[:2]):
        assert code(h.allocate(user=user, password=password, client=("203.0.113.5", n))) is None
    # A freshly minted token is the same account: no third allocation.
    user, password = tokens[2]
    assert code(h.allocate(user=user, password=password, client=("203.0.113.7", 9))) == 486
    assert refusals == [("turn.quota", "203.0.113.7", {"owner": account})]
    assert h.manager.per_user == {account: 2}
    # Another account, and a static user, have quotas of their own.
    user, password = rest_credentials("s3cret", other, int(WALL) + 3600)
    assert code(h.allocate(user=user, password=password, client=("203.0.113.8", 1))) is None
    assert code(h.allocate(client=("203.0.113.9", 1))) is None
    assert h.manager.per_user == {account: 2, other: 1, "alice": 1}


def test_a_deleted_allocation_gives_its_account_back_its_place():
    h = Harness(
        credentials=Credentials(users={}, secret="s3cret"), quotas=Quotas(per_user=1, total=9)
    )
    account = "AC" + "3" * 32
    first = rest_credentials("s3cret", account, int(WALL) + 3600)
    second = rest_credentials("s3cret", account, int(WALL) + 7200)
    client = ("203.0.113.5", 1)
    assert code(h.allocate(user=first[0], password=first[1], client=client)) is None
    assert code(h.allocate(user=second[0], password=second[1], client=("203.0.113.5", 2))) == 486
    refresh = h.ask(REFRESH, (Attr.LIFETIME, 0), user=first[0], password=first[1], client=client)
    assert code(refresh) is None and not h.manager.per_user
    assert code(h.allocate(user=second[0], password=second[1], client=("203.0.113.5", 2))) is None


def test_no_free_port_is_508():
    h = Harness(ports=(50000, 50001), busy={50000})
    assert code(h.allocate(client=("203.0.113.5", 1))) is None
    assert code(h.allocate(client=("203.0.113.5", 2))) == 508


def test_even_port_with_reservation_and_the_token_claims_the_next_port():
    h = Harness()
    answer = h.allocate((Attr.EVEN_PORT, True), client=("203.0.113.5", 1))
    port = answer.get(Attr.XOR_RELAYED_ADDRESS)[1]
    token = answer.get(Attr.RESERVATION_TOKEN)
    assert port % 2 == 0 and token is not None
    second = h.allocate((Attr.RESERVATION_TOKEN, token), client=("203.0.113.5", 2))
    assert second.get(Attr.XOR_RELAYED_ADDRESS)[1] == port + 1
    # A token works once, and not with EVEN-PORT.
    assert code(h.allocate((Attr.RESERVATION_TOKEN, token), client=("203.0.113.5", 3))) == 508
    both = h.allocate(
        (Attr.RESERVATION_TOKEN, 1), (Attr.EVEN_PORT, False), client=("203.0.113.5", 4)
    )
    assert code(both) == 400


def test_refresh_lifetimes_and_delete():
    h = Harness()
    h.allocate()
    answer = h.ask(REFRESH, (Attr.LIFETIME, 10 * MAX_LIFETIME))
    assert answer.get(Attr.LIFETIME) == MAX_LIFETIME
    assert code(h.ask(REFRESH, (Attr.LIFETIME, 0))) is None
    assert h.closed and not h.manager.allocations
    assert code(h.ask(REFRESH)) == 437


def test_refresh_by_another_user_is_441():
    h = Harness()
    h.allocate()
    assert code(h.ask(REFRESH, user="bob")) == 441
    assert code(h.ask(CREATE_PERMISSION, (Attr.XOR_PEER_ADDRESS, PEER), user="bob")) == 441


def test_requests_without_an_allocation_are_437():
    h = Harness()
    assert code(h.ask(CREATE_PERMISSION, (Attr.XOR_PEER_ADDRESS, PEER))) == 437
    assert (
        code(h.ask(CHANNEL_BIND, (Attr.CHANNEL_NUMBER, 0x4000), (Attr.XOR_PEER_ADDRESS, PEER)))
        == 437
    )


@pytest.mark.parametrize(
    "peer",
    [
        ("127.0.0.1", 5000),
        ("10.0.0.8", 5000),
        ("192.0.2.1", 5000),
        ("224.0.0.1", 5000),
        ("169.254.3.3", 5000),
    ],
)
def test_denied_peers_are_403_for_permissions_and_channels(peer):
    h = Harness()
    h.allocate()
    assert code(h.ask(CREATE_PERMISSION, (Attr.XOR_PEER_ADDRESS, peer))) == 403
    assert (
        code(h.ask(CHANNEL_BIND, (Attr.CHANNEL_NUMBER, 0x4000), (Attr.XOR_PEER_ADDRESS, peer)))
        == 403
    )
    assert peer[0] not in h.manager.allocations[next(iter(h.manager.allocations))].permissions


def test_create_permission_is_all_or_nothing_and_family_must_match():
    h = Harness()
    h.allocate()
    answer = h.ask(
        CREATE_PERMISSION, (Attr.XOR_PEER_ADDRESS, PEER), (Attr.XOR_PEER_ADDRESS, ("10.0.0.1", 1))
    )
    assert code(answer) == 403
    allocation = next(iter(h.manager.allocations.values()))
    assert not allocation.permissions
    assert code(h.ask(CREATE_PERMISSION, (Attr.XOR_PEER_ADDRESS, ("2001:db8::1", 1)))) == 443
    assert code(h.ask(CREATE_PERMISSION, (Attr.XOR_PEER_ADDRESS, PEER))) is None
    assert allocation.permissions[PEER[0]] == h.now + PERMISSION_LIFETIME


def test_allowed_loopback_but_never_our_own_listener():
    h = Harness(policy=PeerPolicy(allow=["192.0.2.0/24"], own_addresses={"192.0.2.1"}))
    h.allocate()
    bind = (Attr.CHANNEL_NUMBER, 0x4000)
    assert code(h.ask(CHANNEL_BIND, bind, (Attr.XOR_PEER_ADDRESS, ("192.0.2.1", 3478)))) == 403
    assert code(h.ask(CHANNEL_BIND, bind, (Attr.XOR_PEER_ADDRESS, ("192.0.2.1", 7000)))) is None


def test_channel_bind_rules_and_expiry():
    h = Harness()
    h.allocate((Attr.LIFETIME, MAX_LIFETIME))
    peer2 = ("198.51.100.21", 4001)
    assert (
        code(h.ask(CHANNEL_BIND, (Attr.CHANNEL_NUMBER, 0x3FFF), (Attr.XOR_PEER_ADDRESS, PEER)))
        == 400
    )
    assert code(h.ask(CHANNEL_BIND, (Attr.XOR_PEER_ADDRESS, PEER))) == 400
    assert (
        code(h.ask(CHANNEL_BIND, (Attr.CHANNEL_NUMBER, 0x4001), (Attr.XOR_PEER_ADDRESS, PEER)))
        is None
    )
    allocation = next(iter(h.manager.allocations.values()))
    assert allocation.channels == {0x4001: PEER} and allocation.channel_peers == {PEER: 0x4001}
    assert PEER[0] in allocation.permissions
    # The channel is the peer's; the peer is the channel's.
    assert (
        code(h.ask(CHANNEL_BIND, (Attr.CHANNEL_NUMBER, 0x4001), (Attr.XOR_PEER_ADDRESS, peer2)))
        == 400
    )
    assert (
        code(h.ask(CHANNEL_BIND, (Attr.CHANNEL_NUMBER, 0x4002), (Attr.XOR_PEER_ADDRESS, PEER)))
        == 400
    )
    # Expiry: the permission goes first, then the channel, then the allocation.
    h.manager.tick(h.now + PERMISSION_LIFETIME + 1)
    assert PEER[0] not in allocation.permissions and 0x4001 in allocation.channels
    assert h.manager.next_deadline() == h.now + CHANNEL_LIFETIME
    h.manager.tick(h.now + CHANNEL_LIFETIME + 1)
    assert not allocation.channels and not allocation.channel_peers
    assert h.manager.next_deadline() == h.now + MAX_LIFETIME
    ended = h.manager.tick(h.now + MAX_LIFETIME)
    assert ended == [allocation] and h.closed == [allocation.relayed[1]]
    assert not h.manager.per_user


def test_send_indication_reaches_a_permitted_peer_only():
    h = Harness()
    h.allocate()
    send = Message(SEND, INDICATION, os.urandom(12))
    send.add(Attr.XOR_PEER_ADDRESS, PEER).add(Attr.DATA, b"hello")
    assert h.raw(send.encode()) is None
    assert h.sent == []
    h.ask(CREATE_PERMISSION, (Attr.XOR_PEER_ADDRESS, PEER))
    assert h.raw(send.encode()) is None
    assert h.sent == [(b"hello", PEER)]


def test_unknown_attribute_is_420_and_garbage_is_400_or_silence():
    h = Harness()
    raw = bytearray(
        Message(ALLOCATE, REQUEST, b"x" * 12).add(Attr.LIFETIME, 1).encode(fingerprint=False)
    )
    raw[20:22] = b"\x00\x7f"  # LIFETIME becomes an unknown comprehension-required type
    answer = h.raw(bytes(raw))
    assert code(answer) == 420 and answer.get(Attr.UNKNOWN_ATTRIBUTES) == [0x7F]
    bad = Message(ALLOCATE, REQUEST, b"y" * 12).encode(fingerprint=False)[:20] + b"\x00\x0d\x00\x02"
    assert h.raw(bad) is None  # header length disagrees with the datagram: not answerable
    truncated = bytearray(
        Message(ALLOCATE, REQUEST, b"y" * 12).add(Attr.LIFETIME, 1).encode(fingerprint=False)
    )
    truncated[22:24] = b"\x00\x02"
    assert code(h.raw(bytes(truncated))) == 400


def test_unknown_method_is_400():
    h = Harness()
    assert code(h.ask(0x0FF)) == 400


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=200), st.sampled_from(["udp", "tcp"]))
def test_the_manager_never_raises_on_any_bytes(data, transport):
    h = Harness()
    h.raw(data, transport=transport)
    h.raw(b"\x00\x03" + data[2:], transport=transport)


def test_a_reservation_token_keeps_the_family_of_the_allocation_that_reserved_it():
    h = Harness(relay_address6="2001:db8::1")
    client = ("2001:db8::99", 1)
    first = h.allocate((Attr.EVEN_PORT, True), (Attr.REQUESTED_ADDRESS_FAMILY, 2), client=client)
    assert first.get(Attr.XOR_RELAYED_ADDRESS)[0] == "2001:db8::1"
    token = first.get(Attr.RESERVATION_TOKEN)
    second = h.allocate((Attr.RESERVATION_TOKEN, token), client=("2001:db8::99", 2))
    relayed = second.get(Attr.XOR_RELAYED_ADDRESS)
    assert relayed == ("2001:db8::1", first.get(Attr.XOR_RELAYED_ADDRESS)[1] + 1)
    # An IPv6 relay refuses IPv4 peers.
    assert code(h.ask(CREATE_PERMISSION, (Attr.XOR_PEER_ADDRESS, PEER), client=client)) == 443


def test_bytes_relayed_are_summed_from_the_budgets_each_second_and_at_the_end():
    h = Harness()
    h.allocate()
    [allocation] = h.manager.allocations.values()
    allocation.budget -= 1200  # what the relay path takes off per packet, both ways
    assert h.manager.bytes_relayed == 0  # not yet: counted when the budget is refilled
    h.manager.tick(h.now + 1)
    assert h.manager.bytes_relayed == 1200
    allocation.budget -= 300
    assert code(h.ask(REFRESH, (Attr.LIFETIME, 0))) is None  # the allocation ends
    assert h.manager.bytes_relayed == 1500
