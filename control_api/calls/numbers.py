"""Numbers as carriers write them, and as we write them to carriers.

Carriers send numbers without ``+``: national (``02071234567``), international
with the access code (``00442071234567``) or the country code written out
(``442071234567``). A trunk's ``country_code`` and ``national_prefix`` say how to
read them (:func:`carrier_number`) and how the trunk wants the numbers we dial
and present (:func:`dialled_number`, :func:`presented_number`).

Withheld callers are shown as Twilio shows them: Twilio writes the words carriers
use for a hidden number as the digits that spell them on a keypad
(``+266696687`` is ANONYMOUS, ``+7378742833`` RESTRICTED...).
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING
from urllib.parse import unquote

if TYPE_CHECKING:
    from control_api.calls.trunks import Trunk

__all__ = [
    "ANONYMOUS",
    "WITHHELD",
    "carrier_number",
    "dialled_number",
    "international_prefix",
    "is_withheld",
    "presented_number",
    "withheld_caller",
]

ANONYMOUS = "+266696687"  # A-N-O-N-Y-M-O-U-S on a keypad
# The words for a hidden caller and the keypad digits Twilio shows in their place.
WITHHELD = {
    "anonymous": ANONYMOUS,
    "restricted": "+7378742833",
    "unknown": "+8656696",
    "blocked": "+2562533",
    "unavailable": "+86282452253",
    "private": ANONYMOUS,
    "withheld": ANONYMOUS,
}
_WITHHELD_NUMBERS = frozenset(WITHHELD.values())

# The international access code of a country, where it is not ITU-T's "00".
_ACCESS_CODES = {"1": "011", "61": "0011", "81": "010"}
_VISUAL = re.compile(r"[-.() ]")  # RFC 3966 visual separators
_NUMBER = re.compile(r"\+?[0-9]{3,15}")
_DIALLED = re.compile(r"\+?[0-9]{3,19}")  # an access code and up to 15 digits


def international_prefix(country_code: str) -> str:
    """How a caller in ``country_code`` dials abroad: ``011`` in +1, ``0011`` in +61,
    ``010`` in +81, ``00`` elsewhere."""
    return _ACCESS_CODES.get(country_code, "00")


def is_withheld(caller: str) -> bool:
    """True for Twilio's forms of a hidden caller (``+266696687``...) and the words."""
    text = caller.strip()
    return text in _WITHHELD_NUMBERS or text.lower() in WITHHELD


def withheld_caller(word: str) -> str | None:
    """Twilio's digits for a word meaning a hidden caller (``Anonymous``), else None."""
    return WITHHELD.get(word.strip().lower())


def carrier_number(text: str, trunk: Trunk | None = None) -> str | None:
    """A number a carrier sent (a URI's user part or a ``tel:`` number) in E.164, or
    None when it is not a phone number.

    ``+`` numbers are kept. Without ``+`` and without a trunk that has a
    ``country_code``, ``+`` is put in front (``15551234567`` → ``+15551234567``).
    With one (``country_code=44``, ``national_prefix=0``): the access code means
    international (``0033...`` → ``+33...``), the national prefix means national
    (``020...`` → ``+4420...``), a number starting with the country code is
    international already (``4420...`` → ``+4420...``), and any other is a
    national number dialled without its prefix (``20...`` → ``+4420...``).
    """
    number = _VISUAL.sub("", unquote(text.split(";", 1)[0]))
    if not _DIALLED.fullmatch(number):
        return None
    if number.startswith("+"):
        return number if _NUMBER.fullmatch(number) else None
    code = trunk.country_code if trunk is not None else None
    if not code:
        return "+" + number if _NUMBER.fullmatch(number) else None
    access = international_prefix(code)
    national = trunk.national_prefix if trunk is not None else None
    if number.startswith(access):
        number = number[len(access) :]
    elif national and number.startswith(national):
        number = code + number[len(national) :]
    elif not number.startswith(code):
        number = code + number
    return "+" + number if _NUMBER.fullmatch(number) else None


def dialled_number(number: str, trunk: Trunk) -> str:
    """How ``number`` (E.164) is written in the Request-URI of a call through ``trunk``.

    A trunk with ``country_code`` and ``national_prefix`` dials its own country's
    numbers nationally (``+442071234567`` → ``02071234567``); any other number
    is ``+…``, or with ``strip_plus`` the trunk country's access code and the
    digits (``0033…``; without a ``country_code`` just the digits, ``33…``).
    """
    national = _national(number, trunk)
    if national is not None:
        return national
    if not trunk.strip_plus:
        return number
    digits = number.lstrip("+")
    return international_prefix(trunk.country_code) + digits if trunk.country_code else digits


def presented_number(number: str, trunk: Trunk) -> str:
    """The caller's number as a trunk shows it in From: its own country's numbers
    nationally when it has a ``national_prefix``, any other number as given (E.164)."""
    national = _national(number, trunk)
    return national if national is not None else number


def _national(number: str, trunk: Trunk) -> str | None:
    code, prefix = trunk.country_code, trunk.national_prefix
    if not (code and prefix and number.startswith("+" + code)):
        return None
    return prefix + number[len(code) + 1 :]
