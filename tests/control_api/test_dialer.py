"""Where dialled addresses go (control_api/dialer.py), without sockets."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from control_api.dialer import Dialer, DialError
from control_api.trunks import parse_trunk


@dataclass
class FakeFlow:
    transport: str
    remote: tuple[str, int]
    is_open: bool = True
    reliable: bool = False


class FakeUa:
    port = 5060

    def __init__(self) -> None:
        self.opened: list[tuple[str, str, int]] = []

    def flow_for(self, transport, host, port):
        self.opened.append((transport, host, port))
        return FakeFlow(transport, (host, port))

    def host_port(self) -> str:
        return "203.0.113.1:5060"


@dataclass
class FakeBinding:
    contact: str
    owner: str
    source: tuple[str, int]
    flow: FakeFlow | None = None

    def target(self):
        return ("UDP", *self.source, self.flow)


class FakeRegistrar:
    def __init__(self, bindings: dict[str, list[FakeBinding]]) -> None:
        self.bindings = bindings

    def contacts(self, aor: str, owner: str):
        return [b for b in self.bindings.get(aor, []) if b.owner == owner]


async def ours(number: str) -> bool:
    return number == "+15005550006"


def dialer(ua, registrar=None) -> Dialer:
    return Dialer(
        ua,
        media=None,
        trunks=[
            parse_trunk("us=sip:u:p@192.0.2.10:5070;prefix=+1;caller_id=+15550100"),
            parse_trunk("uk=sip:192.0.2.20;prefix=+44;strip_plus"),
        ],
        local_addresses=frozenset({"203.0.113.1", "127.0.0.1"}),
        self_address=("127.0.0.1", 5060),
        is_our_number=ours,
        registrar=registrar,
    )


async def test_numbers_go_to_the_longest_matching_trunk_with_its_login():
    ua = FakeUa()
    [destination] = await dialer(ua).resolve("AC1", "+14155550100")
    assert destination.target == "sip:+14155550100@192.0.2.10:5070"
    assert destination.kind == "trunk" and destination.credentials.username == "u"
    assert ua.opened == [("UDP", "192.0.2.10", 5070)]
    [uk] = await dialer(ua).resolve("AC1", "442071234567")
    assert uk.target == "sip:442071234567@192.0.2.20" and uk.credentials is None


async def test_our_own_number_loops_back_in():
    ua = FakeUa()
    [destination] = await dialer(ua).resolve("AC1", "+15005550006")
    assert destination.target == "sip:+15005550006@203.0.113.1:5060"
    assert destination.flow.remote == ("127.0.0.1", 5060)


async def test_clients_ring_every_phone_of_the_account_only():
    nat = FakeFlow("UDP", ("198.51.100.7", 40000))
    registrar = FakeRegistrar(
        {
            "alice": [
                FakeBinding("sip:alice@192.168.1.5:5060", "AC1", ("198.51.100.7", 40000), nat),
                FakeBinding("sip:alice@10.1.1.1:5062", "AC1", ("10.1.1.1", 5062)),
                FakeBinding("sip:alice@10.9.9.9", "AC2", ("10.9.9.9", 5060)),
            ]
        }
    )
    ua = FakeUa()
    found = await dialer(ua, registrar).resolve("AC1", "client:alice")
    assert [d.target for d in found] == ["sip:alice@192.168.1.5:5060", "sip:alice@10.1.1.1:5062"]
    assert found[0].flow is nat and found[0].kind == "client"
    # sip:alice@<our address> means the registered user too
    local = await dialer(ua, registrar).resolve("AC1", "sip:alice@203.0.113.1")
    assert [d.target for d in local] == [d.target for d in found]
    assert await dialer(ua, registrar).resolve("AC1", "client:bob") == []


async def test_sip_uris_are_called_directly_with_given_credentials():
    ua = FakeUa()
    [destination] = await dialer(ua).resolve(
        "AC1", "sip:bob@192.0.2.30:5080;transport=tcp", username="me", password="pw"
    )
    assert destination.target == "sip:bob@192.0.2.30:5080;transport=tcp"
    assert destination.credentials.password == "pw" and ua.opened[-1] == ("TCP", "192.0.2.30", 5080)


@pytest.mark.parametrize("address", ["+33123456789", "not a number", "sip:@@"])
async def test_unroutable_addresses_are_dial_errors(address):
    with pytest.raises(DialError):
        await dialer(FakeUa()).resolve("AC1", address)
