"""Whose REFERs a bridge honours (control_api/voice/transfer.py, refer_policy.py)."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

from control_api.calls.dialer import Dialer
from control_api.calls.outbound_call import OutboundCall
from control_api.calls.trunks import parse_trunk
from control_api.voice.refer_policy import authenticated_leg, peer_address
from control_api.voice.transfer import TransferWatch
from sip.headers import NameAddress, SipUri
from sip.midcall import ReferHandle
from sip.registrar import Binding

ACCOUNT = "AC" + "a" * 32


@dataclass
class Flow:
    remote: tuple[str, int]


@dataclass
class Request:
    from_: NameAddress


@dataclass
class Session:
    flow: Flow
    request: Request | None = None
    on_refer: object = None


@dataclass
class Leg:
    """A call leg as TransferWatch sees it: a session, an end, a log."""

    session: Session
    sid: str = "CA1"
    ended: asyncio.Event = field(default_factory=asyncio.Event)
    logged: list = field(default_factory=list)

    def log(self, event: str, **fields) -> None:
        self.logged.append((event, fields))


def inbound(user: str, source: tuple[str, int]) -> Leg:
    frm = NameAddress.parse(f"<sip:{user}@node.example>;tag=1")
    return Leg(Session(Flow(source), Request(frm)))


def placed(source: tuple[str, int]) -> OutboundCall:
    call = OutboundCall.__new__(OutboundCall)  # a leg we dialed; its state is not needed
    call.session = Session(Flow(source))
    call.sid = "CA2"
    call.ended = asyncio.Event()
    call.log = lambda event, **fields: None
    return call


class Registrar:
    def __init__(self, *bindings: Binding) -> None:
        self.bindings = bindings

    def contacts(self, aor: str) -> list[Binding]:
        return [b for b in self.bindings if b.aor == aor]


def binding(user: str, owner: str, source: tuple[str, int]) -> Binding:
    contact = f"sip:{user}@{source[0]}:{source[1]}"
    return Binding(user, contact, SipUri.parse(contact), 1e12, source=source, owner=owner)


def watch(registrar) -> tuple[TransferWatch, list]:
    dialer = Dialer(
        ua=type("Ua", (), {"port": 5060})(),
        media=None,
        trunks=[parse_trunk("us=sip:192.0.2.10;prefix=+1")],
        local_addresses=frozenset({"127.0.0.1"}),
        self_address=("127.0.0.1", 5060),
        is_our_number=None,
        registrar=registrar,
    )
    refusals: list = []
    transfers = TransferWatch(
        dialer, ACCOUNT, lambda reason, source_ip, **f: refusals.append((reason, source_ip))
    )
    return transfers, refusals


def refer(leg, target: str):
    return leg.session.on_refer(target, None)


async def test_an_unauthenticated_caller_gets_403_and_nothing_is_dialled():
    transfers, refusals = watch(Registrar())
    stranger = inbound("+15551230000", ("198.51.100.9", 5060))
    transfers.watch(stranger)
    assert refer(stranger, "sip:+15559990000@127.0.0.9") == 403
    # Even a target we would route is refused to a stranger.
    assert refer(stranger, "sip:+15559990000@127.0.0.1") == 403
    assert refusals == [("refer.unauthenticated", "198.51.100.9")] * 2
    assert transfers.requests.empty() and not transfers.busy
    assert stranger.logged[0][0] == "transfer.refused"


async def test_a_registered_phone_of_the_account_may_transfer_through_routing():
    phone = ("198.51.100.7", 40000)
    transfers, refusals = watch(Registrar(binding("alice", ACCOUNT, phone)))
    alice = inbound("alice", phone)
    transfers.watch(alice)
    assert refer(alice, "sip:+15559990000@127.0.0.9") == 403  # an arbitrary host
    assert refusals == [("refer.target", "198.51.100.7")]
    handle = refer(alice, "sip:+15559990000@127.0.0.1")
    assert isinstance(handle, ReferHandle)
    request = transfers.requests.get_nowait()
    assert (request.target, request.address) == ("sip:+15559990000@127.0.0.1", "+15559990000")


async def test_a_registration_counts_only_from_its_source_and_for_its_account():
    phone = ("198.51.100.7", 40000)
    registrar = Registrar(binding("alice", ACCOUNT, phone), binding("bob", "AC" + "b" * 32, phone))
    assert authenticated_leg(inbound("alice", phone), ACCOUNT, registrar)
    # The username alone is not enough: the INVITE must come from where alice registered.
    assert not authenticated_leg(inbound("alice", ("198.51.100.8", 40000)), ACCOUNT, registrar)
    assert not authenticated_leg(inbound("alice", ("198.51.100.7", 40001)), ACCOUNT, registrar)
    # bob is registered, but to another account.
    assert not authenticated_leg(inbound("bob", phone), ACCOUNT, registrar)
    assert not authenticated_leg(inbound("alice", phone), ACCOUNT, None)


async def test_legs_we_placed_are_authenticated():
    transfers, refusals = watch(Registrar())
    child = placed(("192.0.2.50", 5060))
    assert authenticated_leg(child, ACCOUNT, None) and peer_address(child) == "192.0.2.50"
    transfers.watch(child)
    assert isinstance(refer(child, "sip:+14155550100@192.0.2.10"), ReferHandle)
    assert transfers.requests.get_nowait().address == "+14155550100"
    assert refer(child, "sip:+14155550100@192.0.2.10") is None  # busy: 603
    assert refusals == []


async def test_without_a_dialer_every_refer_is_refused():
    transfers = TransferWatch()
    child = placed(("192.0.2.50", 5060))
    transfers.watch(child)
    assert refer(child, "sip:+14155550100@192.0.2.10") == 403
