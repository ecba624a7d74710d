"""How a call we place shows its caller: the From user and name, ``P-Asserted-Identity``
and ``Privacy`` (RFC 3323, RFC 3325).

- A withheld caller (Twilio's ``+266696687`` and the other keypad forms, or the
  word ``anonymous``; a ``<Dial>`` from a caller who withheld the number passes
  it on this way) goes out as ``From: "Anonymous" <sip:anonymous@our-host>``
  with ``Privacy: id``, and without ``P-Asserted-Identity``: there is no number
  to assert. The REST API cannot ask for this (its ``From`` must be a number of
  the account), ``<Dial callerId="anonymous">`` can.
- Through a trunk, a caller number of the trunk's own country is shown
  nationally when the trunk has a ``national_prefix`` (``+4420…`` → ``020…``);
  other numbers stay E.164 (``strip_plus`` is about the number dialled, not the
  caller). A trunk with ``pai`` also gets ``P-Asserted-Identity:
  <sip:+CALLER@our-host>``, always E.164.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TYPE_CHECKING

from control_api.calls.numbers import is_withheld, presented_number

if TYPE_CHECKING:
    from control_api.calls.trunks import Trunk

__all__ = ["Presentation", "present_caller"]

_E164 = re.compile(r"\+[0-9]{3,15}")


@dataclass(frozen=True, slots=True)
class Presentation:
    """The From user and display name of an INVITE we send, and headers to add."""

    from_user: str
    from_display: str | None = None
    headers: tuple[tuple[str, str], ...] = ()


def present_caller(
    from_user: str, from_display: str | None, trunk: Trunk | None, host: str
) -> Presentation:
    """The caller ``from_user`` (a number, a SIP user) of a call through ``trunk`` (None:
    not a trunk's call) as it goes out; ``host`` is our host in its From."""
    if is_withheld(from_user):
        return Presentation("anonymous", "Anonymous", (("Privacy", "id"),))
    if trunk is None or not _E164.fullmatch(from_user):
        return Presentation(from_user, from_display)
    headers: tuple[tuple[str, str], ...] = ()
    if trunk.pai:
        headers = (("P-Asserted-Identity", f"<sip:{from_user}@{host}>"),)
    return Presentation(presented_number(from_user, trunk), from_display, headers)
