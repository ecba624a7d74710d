"""Call legs: the four kinds of call the voice runtime drives, and how we place them.

An inbound SIP call (:class:`Call`), a call we place over SIP
(:class:`OutboundCall`), ringing a browser tab (:class:`ClientCall`) and a call a
tab placed (:class:`BrowserOriginatedCall`) all implement :class:`CallLeg`
(leg.py). :class:`Dialer` resolves an address (our numbers, trunks, registered
phones, SIP URIs, with the dial guards) to destinations and places the calls;
failover.py is the order of their hops (trunks, entry points, RFC 3263 targets) and
trunk_health.py the OPTIONS pings that mark trunk hosts down; media_update.py
applies mid-call offers to a leg. This package imports sip/, media/ and signaling/,
never the voice runtime or the HTTP API above it.
"""

from control_api.calls.browser import BrowserClients, BrowserOriginatedCall, ClientCall
from control_api.calls.call import Call, CallManager, CallTimes, MediaSettings, new_call_sid
from control_api.calls.dialer import Dialer, DialError, DialRefused
from control_api.calls.failover import Attempt, Hop
from control_api.calls.leg import CallLeg
from control_api.calls.outbound_call import Destination, OutboundCall, failure_status
from control_api.calls.trunk_health import TrunkHealth, TrunkPinger
from control_api.calls.trunks import Trunk, parse_trunk, select_trunk, select_trunks
from control_api.calls.waiting import until_any

__all__ = [
    "Attempt",
    "BrowserClients",
    "BrowserOriginatedCall",
    "Call",
    "CallLeg",
    "CallManager",
    "CallTimes",
    "ClientCall",
    "Destination",
    "DialError",
    "DialRefused",
    "Dialer",
    "Hop",
    "MediaSettings",
    "OutboundCall",
    "Trunk",
    "TrunkHealth",
    "TrunkPinger",
    "failure_status",
    "new_call_sid",
    "parse_trunk",
    "select_trunk",
    "select_trunks",
    "until_any",
]
