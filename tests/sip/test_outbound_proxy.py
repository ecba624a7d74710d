"""Calls placed through an outbound proxy (sip/outbound_proxy.py, sip/uac.py): every
request of the dialog carries the proxy's Route and goes to its address, driven without
sockets."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from sip.message import Request
from sip.outbound_proxy import loose_route, proxied_route_set
from sip.ua import UserAgent
from sip.uac import OutgoingInvite

from .test_ua import Clock, FakeFlow
from .test_uac import SDP, requests, respond

PROXY = "sip:proxy.carrier.example:5070"
CARRIER = "sip:+15550001111@sip.carrier.example"


class Network:
    """A UA whose only reachable place is the proxy's located address: a request it
    tried to send anywhere else (a name, the callee's Contact) would find no flow."""

    def __init__(self) -> None:
        self.proxy = FakeFlow(("192.0.2.50", 5070))
        self.asked: list[tuple[str, str, int | None]] = []
        self.ua = UserAgent(host="127.0.0.1", port=5060, clock=Clock(), flow_for=self.flow_for)

    def flow_for(self, transport, host, port):
        self.asked.append((transport, host, port))
        return self.proxy if (host, port) == self.proxy.remote else None

    def place(self, proxy: str | None = PROXY) -> tuple[OutgoingInvite, Request]:
        call = OutgoingInvite(
            self.ua, target=CARRIER, flow=self.proxy, from_user="+15005550006", sdp=SDP, proxy=proxy
        )
        call.start()
        return call, requests(self.proxy)[-1]


def test_loose_route_adds_lr_once_and_keeps_the_transport():
    assert loose_route("sip:proxy.example:5070") == "<sip:proxy.example:5070;lr>"
    assert loose_route("<sip:192.0.2.1;transport=tcp;lr>") == "<sip:192.0.2.1;transport=tcp;lr>"
    assert loose_route("sips:[2001:db8::1]") == "<sips:[2001:db8::1];lr>"


def test_the_proxy_stays_first_in_the_route_set():
    recorded = ["<sip:proxy.carrier.example:5070;lr;ftag=x>", "<sip:core.example;lr>"]
    assert proxied_route_set(recorded, PROXY) == recorded  # it record-routed itself
    by_address = ["<sip:192.0.2.50:5070;lr;r2=on>"]
    assert proxied_route_set(by_address, PROXY, ("192.0.2.50", 5070)) == by_address
    assert proxied_route_set(["<sip:core.example;lr>"], PROXY) == [
        "<sip:proxy.carrier.example:5070;lr>",
        "<sip:core.example;lr>",
    ]
    assert proxied_route_set([], PROXY) == ["<sip:proxy.carrier.example:5070;lr>"]
    # The default port is the scheme's: 5060 is not the proxy at 5070.
    assert proxied_route_set(["<sip:proxy.carrier.example;lr>"], PROXY)[0].endswith(":5070;lr>")


@given(st.text(max_size=80))
def test_any_record_route_a_peer_sends_gives_a_route_set(route):
    found = proxied_route_set([route], PROXY, ("192.0.2.50", 5070))
    assert found[-1] == route and len(found) in (1, 2)


def test_the_invite_goes_to_the_proxy_with_a_preloaded_route_and_the_carriers_uri():
    net = Network()
    _, invite = net.place()
    assert invite.uri == CARRIER
    assert invite.headers.get_all("Route") == ["<sip:proxy.carrier.example:5070;lr>"]
    assert invite.headers.get("To") == f"<{CARRIER}>"


def test_without_a_proxy_there_is_no_route():
    net = Network()
    _, invite = net.place(proxy=None)
    assert invite.headers.get_all("Route") == []


def test_cancel_and_the_ack_of_its_487_carry_the_route():
    net = Network()
    call, invite = net.place()
    respond(net.ua, net.proxy, invite, 180)
    call.cancel()
    cancel = requests(net.proxy)[-1]
    assert cancel.method == "CANCEL" and cancel.uri == CARRIER
    assert cancel.headers.get_all("Route") == ["<sip:proxy.carrier.example:5070;lr>"]
    respond(net.ua, net.proxy, invite, 487)
    ack = requests(net.proxy)[-1]
    assert ack.method == "ACK" and ack.uri == CARRIER
    assert ack.headers.get_all("Route") == ["<sip:proxy.carrier.example:5070;lr>"]


def test_a_failures_ack_carries_the_route():
    net = Network()
    _, invite = net.place()
    respond(net.ua, net.proxy, invite, 503)
    ack = requests(net.proxy)[-1]
    assert ack.method == "ACK" and ack.headers.get_all("Route") == [
        "<sip:proxy.carrier.example:5070;lr>"
    ]


def test_a_proxy_that_does_not_record_route_still_gets_the_ack_and_bye():
    net = Network()
    call, invite = net.place()
    respond(net.ua, net.proxy, invite, 200, body=SDP)  # Contact: sip:bob@10.0.0.1:5062
    ack = requests(net.proxy)[-1]
    assert ack.method == "ACK" and ack.uri == "sip:bob@10.0.0.1:5062"
    assert ack.headers.get_all("Route") == ["<sip:proxy.carrier.example:5070;lr>"]
    call.hangup()
    bye = requests(net.proxy)[-1]
    assert bye.method == "BYE" and bye.uri == "sip:bob@10.0.0.1:5062"
    assert bye.headers.get_all("Route") == ["<sip:proxy.carrier.example:5070;lr>"]
    # Sent where the INVITE went (the proxy's located address), never to the Contact.
    assert not [a for a in net.asked if a[1] == "10.0.0.1"]


def test_a_record_routing_proxy_is_not_put_in_twice():
    net = Network()
    call, invite = net.place()
    routes = ["<sip:192.0.2.50:5070;lr;ftag=a>", "<sip:edge.carrier.example;lr>"]
    # Record-Route lists the callee's side first: reversed, our proxy is first.
    respond(
        net.ua, net.proxy, invite, 200, body=SDP, extra=[f"Record-Route: {r}" for r in routes[::-1]]
    )
    call.hangup()
    bye = requests(net.proxy)[-1]
    assert bye.method == "BYE" and bye.headers.get_all("Route") == routes


def test_a_closed_connection_to_the_proxy_is_opened_again_to_its_address():
    net = Network()
    net.proxy.transport, net.proxy.reliable = "TCP", True
    call, invite = net.place()
    respond(net.ua, net.proxy, invite, 200, body=SDP)
    net.proxy.is_open = False  # the proxy closed the connection meanwhile
    net.asked.clear()
    call.hangup()
    assert net.asked == [("TCP", "192.0.2.50", 5070)]  # its address, not its name
    assert requests(net.proxy)[-1].method == "BYE"
