"""What an INVITE session needs from the user agent that hosts its dialog.

``InviteSession`` (sip/invite.py), ``OutgoingInvite`` (sip/uac.py) and their
mid-call half (sip/midcall.py) talk to their UA only through this protocol;
``UserAgent`` (sip/ua.py) implements it. In the other direction the UA calls the
sessions' public hooks (``cancel_received``, ``ack_received``, ``bye_received``,
``receive_reinvite``…), so neither side reaches into the other's private state.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from sip.dialog import Dialog
    from sip.invite import InviteSession
    from sip.message import Request, Response
    from sip.session_timer import Deadlines
    from sip.transaction import ClientTransaction
    from sip.transport import Flow
    from sip.uac import OutgoingInvite

__all__ = ["DialogHost", "ResponseCallback"]

ResponseCallback = Callable[["Response | None"], None]


class DialogHost(Protocol):
    """The user agent as its sessions see it."""

    name: str  # our Server / User-Agent header
    host: str  # the address we put in Via and Contact
    deadlines: Deadlines  # session timers and REFER timeouts, run by the UA's timer

    @property
    def allow(self) -> str:
        """The Allow header's value: the methods this UA answers."""
        ...

    def clock(self) -> float: ...

    def host_port(self, flow: Flow | None = None) -> str: ...

    def via_for(self, flow: Flow) -> str: ...

    def contact_for(self, flow: Flow) -> str: ...

    def dialog_flow(self, dialog: Dialog) -> Flow | None:
        """Where requests within ``dialog`` go (None: no route)."""
        ...

    def send_in_dialog(
        self,
        dialog: Dialog,
        method: str,
        body: bytes = b"",
        content_type: str | None = None,
        callback: ResponseCallback | None = None,
        headers: list[tuple[str, str]] | None = None,
    ) -> ClientTransaction | None: ...

    def start_client(
        self, request: Request, flow: Flow, callback: ResponseCallback | None = None
    ) -> ClientTransaction: ...

    def start_invite_client(
        self, outgoing: OutgoingInvite, request: Request, flow: Flow
    ) -> ClientTransaction: ...

    def register_session(self, session: InviteSession | OutgoingInvite) -> None: ...

    def unregister_session(self, session: InviteSession | OutgoingInvite) -> None: ...
