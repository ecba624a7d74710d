"""SIP dialogs (RFC 3261 §12), sans-I/O.

A dialog is the peer-to-peer relationship an INVITE creates: identifiers, the
CSeq spaces of both sides, the remote target and the route set. It builds the
requests sent within it and checks the ones received.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from typing import TYPE_CHECKING

from sip.headers import NameAddress, SipUri
from sip.message import Headers, Request, Response
from sip.outbound_proxy import proxied_route_set

if TYPE_CHECKING:
    from sip.transport import Flow

__all__ = ["Dialog", "DialogId"]

DialogId = tuple[str, str, str]  # (Call-ID, local tag, remote tag)


def _to_with_tag(address: NameAddress, tag: str) -> str:
    """``address`` (the request's To, parsed once by the parser) with our tag."""
    if address.tag is not None:
        return str(address)
    return str(NameAddress(address.display_name, address.uri, {**address.params, "tag": tag}))


@dataclass(slots=True)
class Dialog:
    """The state of RFC 3261 §12.1 and the request rules of §12.2."""

    call_id: str
    local_tag: str
    remote_tag: str
    local_uri: str  # our From value in requests we send, with our tag
    remote_uri: str  # the To value in requests we send, with the remote tag
    remote_target: SipUri
    route_set: list[str]
    local_seq: int
    remote_seq: int | None
    local_contact: str
    secure: bool = False
    flow: Flow | None = None  # the transport flow the dialog was set up on (reused for TCP)
    proxied: bool = False  # route_set[0] is our outbound proxy, at ``flow``'s address

    @property
    def id(self) -> DialogId:
        return (self.call_id, self.local_tag, self.remote_tag)

    @classmethod
    def as_uas(
        cls, request: Request, local_tag: str, local_contact: str, flow: Flow | None = None
    ) -> Dialog:
        """The dialog a UAS creates when it answers a request (RFC 3261 §12.1.1)."""
        contacts = request.headers.get_all("Contact")
        target = NameAddress.parse(contacts[0]).uri if contacts else request.from_.uri
        return cls(
            call_id=request.call_id,
            local_tag=local_tag,
            remote_tag=request.from_tag or "",
            local_uri=_to_with_tag(request.to, local_tag),
            remote_uri=request.headers.get("From") or "",
            remote_target=target,
            route_set=list(request.headers.get_all("Record-Route")),
            # Our CSeq space starts anywhere below 2**31 (§8.1.1.5); random avoids
            # collisions with an earlier dialog of the same Call-ID.
            local_seq=secrets.randbelow(2**16),
            remote_seq=request.cseq.seq,
            local_contact=local_contact,
            secure=request.request_uri.scheme == "sips",
            flow=flow,
        )

    @classmethod
    def as_uac(
        cls,
        request: Request,
        response: Response,
        flow: Flow | None = None,
        proxy: str | None = None,
    ) -> Dialog:
        """The dialog a UAC creates from a 101-299 response (RFC 3261 §12.1.2); with an
        outbound ``proxy`` (the INVITE went there) it stays the route set's first hop."""
        contacts = response.headers.get_all("Contact")
        target = NameAddress.parse(contacts[0]).uri if contacts else request.request_uri
        route_set = list(reversed(response.headers.get_all("Record-Route")))
        if proxy is not None:
            route_set = proxied_route_set(route_set, proxy, flow.remote if flow else None)
        return cls(
            call_id=request.call_id,
            local_tag=request.from_tag or "",
            remote_tag=response.to_tag or "",
            local_uri=request.headers.get("From") or "",
            remote_uri=response.headers.get("To") or "",
            remote_target=target,
            route_set=route_set,
            local_seq=request.cseq.seq,
            remote_seq=None,
            local_contact=request.headers.get("Contact") or "",
            secure=request.request_uri.scheme == "sips",
            flow=flow,
            proxied=proxy is not None,
        )

    def next_hop(self) -> SipUri:
        """Where a request in this dialog goes first: the first route, else the target."""
        if self.route_set:
            return NameAddress.parse(self.route_set[0]).uri
        return self.remote_target

    def create_request(
        self,
        method: str,
        body: bytes = b"",
        content_type: str | None = None,
        headers: list[tuple[str, str]] | None = None,
        cseq: int | None = None,
    ) -> Request:
        """A request within the dialog (RFC 3261 §12.2.1.1); the caller adds the Via."""
        if cseq is None:
            self.local_seq += 1
            cseq = self.local_seq
        h = Headers()
        h.add("Max-Forwards", "70")
        h.add("From", self.local_uri)
        h.add("To", self.remote_uri)
        h.add("Call-ID", self.call_id)
        h.add("CSeq", f"{cseq} {method}")
        uri = str(self.remote_target)
        if self.route_set:
            first = NameAddress.parse(self.route_set[0]).uri
            if "lr" in first.params:
                routes = self.route_set
            else:  # strict router (RFC 2543): it becomes the Request-URI
                uri = str(first)
                routes = [*self.route_set[1:], f"<{self.remote_target}>"]
            for route in routes:
                h.add("Route", route)
        if method not in ("ACK", "CANCEL", "BYE"):
            h.add("Contact", self.local_contact)
        for name, value in headers or ():
            h.add(name, value)
        if body and content_type:
            h.add("Content-Type", content_type)
        return Request(method, uri, h, body)

    def accept_request(self, request: Request) -> bool:
        """Check a request's CSeq against the remote sequence (RFC 3261 §12.2.2).

        False means it is out of order and must get a 500.
        """
        if request.method in ("ACK", "CANCEL"):
            return True
        seq = request.cseq.seq
        if self.remote_seq is not None and seq <= self.remote_seq:
            return False
        self.remote_seq = seq
        contacts = request.headers.get_all("Contact") if request.method == "INVITE" else ()
        if contacts:  # a target refresh request (§12.2.2)
            self.remote_target = NameAddress.parse(contacts[0]).uri
        return True
