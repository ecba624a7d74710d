"""The parties ``<Dial>`` (and a transfer) ring: child calls of the call whose TwiML
runs, each with its own Calls record (``outbound-dial``, twiml_call.py's
:func:`~control_api.voice.twiml_call.follow_child`).

A phone, SIP address or trunk number is one :class:`OutboundCall` per destination the
dialer resolved; ``client:identity`` is one :class:`ClientCall` per browser tab.
"""

from __future__ import annotations

from typing import TYPE_CHECKING
from weakref import WeakKeyDictionary

from control_api.voice.twiml_call import follow_child

if TYPE_CHECKING:
    from control_api.calls.browser import ClientCall
    from control_api.calls.leg import PlacedLeg
    from control_api.calls.outbound_call import Destination, OutboundCall
    from control_api.twiml.verbs import Client, Dial, Number, Sip
    from control_api.voice.context import VoiceContext
    from control_api.voice.lifecycle import CallLifecycle
    from control_api.voice.runner import TwimlRunner

__all__ = ["child_call", "child_params", "client_children", "from_user"]

# The record of every child call still referenced: its webhook parameters (a whisper's).
_LIFECYCLES: WeakKeyDictionary[PlacedLeg, CallLifecycle] = WeakKeyDictionary()


def from_user(address: str) -> str:
    """The user part for our From header: +1555… stays, ``client:alice`` → alice."""
    scheme, colon, rest = address.partition(":")
    if colon and scheme.lower() == "client":
        return rest
    if colon and scheme.lower() in ("sip", "sips"):
        return rest.split("@", 1)[0] or "callswitch"
    return address


def _caller_id(runner: TwimlRunner, verb: Dial) -> str:
    """Who a child call is from: ``callerId``, else the parent's From."""
    return verb.caller_id or dict(runner.params()).get("From") or "anonymous"


def child_call(
    context: VoiceContext,
    runner: TwimlRunner,
    destination: Destination,
    noun: Number | Sip | Client | None,
    verb: Dial,
) -> OutboundCall:
    """One destination ``<Dial>`` rings over SIP; a trunk's caller ID, if it forces one,
    replaces the parent's From (never an explicit ``callerId``) on the hops through that
    trunk; the child's record shows the first trunk's."""
    caller_id = _caller_id(runner, verb)
    forced = not verb.caller_id
    assert context.dialer is not None  # <Dial> and transfers ring only with a dialer
    call = context.dialer.call(
        destination, from_user=from_user(caller_id), timeout=verb.timeout, trunk_caller_id=forced
    )
    trunk = destination.trunk
    if trunk is not None and trunk.caller_id and forced:
        caller_id = trunk.caller_id
    call.direction = "outbound-dial"
    _follow(context, runner, call, destination.label, caller_id, noun)
    return call


def client_children(
    context: VoiceContext, runner: TwimlRunner, address: str, noun: Client, verb: Dial
) -> list[ClientCall]:
    """``<Dial><Client>``: a child call for each tab of that identity (none without WebRTC)."""
    browsers = context.browsers
    if browsers is None:
        return []
    caller_id = _caller_id(runner, verb)
    leg = runner.call.leg
    # PCMU toward a PCMU caller (or one not answered yet: most trunks and phones are).
    prefer_pcmu = leg is None or leg.codec.upper() == "PCMU"
    calls = browsers.calls_to(
        runner.account_sid,
        address,
        from_=caller_id,
        timeout=verb.timeout,
        prefer_pcmu=prefer_pcmu,
        params=dict(noun.parameters),
    )
    for call in calls:
        _follow(context, runner, call, address, caller_id, noun)
    return calls


def child_params(call: PlacedLeg) -> list[tuple[str, str]]:
    """The webhook parameters of a child call as of now (CallSid, ParentCallSid, From,
    To, ``Direction=outbound-dial``, CallStatus...): what its whisper document gets."""
    return _LIFECYCLES[call].params()


def _follow(context: VoiceContext, runner: TwimlRunner, call, to: str, caller_id: str, noun):
    _LIFECYCLES[call] = follow_child(
        context,
        call,
        account_sid=runner.account_sid,
        parent_sid=runner.call.sid,
        to=to,
        caller_id=caller_id,
        noun=noun,
    )
