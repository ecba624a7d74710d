"""Who is calling, as an INVITE from a carrier says it: the webhook's ``From``/``Caller``,
``CallerName`` and ``ForwardedFrom``.

- The caller is the ``P-Asserted-Identity`` (RFC 3325) when there is one with a
  number or SIP URI (a ``tel:`` or ``sip:`` entry; the first with a number wins),
  else the ``From``.
- A caller who withheld the number (``Privacy: id``, ``user`` or ``header``, RFC
  3323; or a ``From`` of ``anonymous@anonymous.invalid``, RFC 3323 §4.1.1.3, or
  of a word such as ``Restricted``) is shown as Twilio shows one: ``+266696687``
  (ANONYMOUS on a keypad; the other words have their own digits,
  control_api/calls/numbers.py), with no caller name.
- ``ForwardedFrom`` is the number the call was forwarded from: the first
  ``Diversion`` entry (RFC 5806, the most recent diversion), else the
  ``History-Info`` entry (RFC 7044) that was retargeted (the last one whose URI
  carries a ``Reason``; without any, the entry before the last).
- ``CallerName`` is the display name of the header the caller came from.

Numbers without ``+`` are read with the trunk's rules (:func:`carrier_number`).
Nothing a peer writes here raises: a header that does not parse is ignored, and
the caller falls back to the ``From`` (or to ``sip:unknown.invalid``).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from control_api.calls.numbers import ANONYMOUS, carrier_number, withheld_caller
from sip.errors import SipParseError
from sip.headers import NameAddress, SipUri, split_header_values
from sip.privacy import identity_withheld

if TYPE_CHECKING:
    from control_api.calls.trunks import Trunk

__all__ = ["CallerIdentity", "caller_identity"]

_MAX_ENTRIES = 16  # entries of one identity or diversion header read; the rest are ignored
_MAX_NAME = 64  # characters of a display name kept as CallerName
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
ANONYMOUS_HOST = "anonymous.invalid"
UNKNOWN = "sip:unknown.invalid"


@dataclass(frozen=True, slots=True)
class CallerIdentity:
    """What the webhook shows of who called."""

    caller: str  # From and Caller: E.164, a SIP URI, or Twilio's anonymous digits
    caller_name: str = ""  # the display name the carrier sent ("" when none or withheld)
    forwarded_from: str = ""  # the number the call was forwarded from ("" when not)
    withheld: bool = False  # the caller asked for privacy: never show the number

    def params(self) -> list[tuple[str, str]]:
        """``ForwardedFrom`` and ``CallerName`` as webhook parameters."""
        return [("ForwardedFrom", self.forwarded_from), ("CallerName", self.caller_name)]


def caller_identity(
    headers: Iterable[tuple[str, str]], trunk: Trunk | None = None
) -> CallerIdentity:
    """The caller of an INVITE with ``headers`` (name, value pairs), numbers read
    with ``trunk``'s rules (None: the call did not come from a trunk)."""
    headers = list(headers)
    forwarded = _forwarded_from(headers, trunk)
    from_ = _first(_entries(headers, "from", limit=1))
    hidden = _hidden_word(from_)
    if hidden is not None or identity_withheld(headers):
        return CallerIdentity(hidden or ANONYMOUS, "", forwarded, withheld=True)
    asserted = _asserted(headers, trunk)
    for entry in (asserted, from_):
        if entry is None:
            continue
        address = _address(entry.uri, trunk)
        if address is not None:
            return CallerIdentity(address, _display(entry), forwarded)
    return CallerIdentity(UNKNOWN, "", forwarded)


def _entries(
    headers: list[tuple[str, str]], name: str, limit: int = _MAX_ENTRIES
) -> list[NameAddress]:
    """The name-addr entries of every ``name`` line that parse (at most ``limit``)."""
    found: list[NameAddress] = []
    for header, value in headers:
        if header.lower() != name:
            continue
        for element in split_header_values(value)[:limit]:
            try:
                found.append(NameAddress.parse(element))
            except (SipParseError, ValueError):
                continue
            if len(found) >= limit:
                return found
    return found


def _first(entries: list[NameAddress]) -> NameAddress | None:
    return entries[0] if entries else None


def _hidden_word(entry: NameAddress | None) -> str | None:
    """Twilio's digits when ``From`` itself says the caller is hidden."""
    if entry is None:
        return None
    uri = entry.uri
    if uri.host.lower() == ANONYMOUS_HOST:
        return withheld_caller(uri.user or "") or ANONYMOUS
    user = uri.user or ""
    return withheld_caller(user.split(";", 1)[0]) if user else None


def _asserted(headers: list[tuple[str, str]], trunk: Trunk | None) -> NameAddress | None:
    """The ``P-Asserted-Identity`` entry to show: the first with a number, else the
    first ``sip:`` one."""
    entries = [e for e in _entries(headers, "p-asserted-identity") if _address(e.uri, trunk)]
    numbered = [e for e in entries if _number(e.uri, trunk) is not None]
    return _first(numbered) or _first(entries)


def _number(uri: SipUri, trunk: Trunk | None) -> str | None:
    if uri.scheme not in ("sip", "sips", "tel") or not uri.user:
        return None
    return carrier_number(uri.user, trunk)


def _address(uri: SipUri, trunk: Trunk | None) -> str | None:
    """The caller as Twilio shows it: E.164 for a number, else the SIP URI."""
    number = _number(uri, trunk)
    if number is not None:
        return number
    if uri.scheme not in ("sip", "sips") or not uri.host:
        return None
    if uri.host.lower() == ANONYMOUS_HOST:
        return None
    return f"sip:{uri.user}@{uri.host}" if uri.user else f"sip:{uri.host}"


def _display(entry: NameAddress) -> str:
    name = _CONTROL.sub("", entry.display_name or "").strip()
    if withheld_caller(name) is not None:
        return ""  # "Anonymous" is no name
    return name[:_MAX_NAME]


def _forwarded_from(headers: list[tuple[str, str]], trunk: Trunk | None) -> str:
    for entry in _entries(headers, "diversion"):
        number = _number(entry.uri, trunk)
        if number is not None:
            return number
    history = _entries(headers, "history-info")
    retargeted = [e for e in history if any(k.lower() == "reason" for k in e.uri.headers)]
    candidates = retargeted[-1:] or history[-2:-1]
    for entry in candidates:
        number = _number(entry.uri, trunk)
        if number is not None:
            return number
    return ""
