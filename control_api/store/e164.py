"""E.164 phone numbers: the one spelling the store keeps (``+14155550100``)."""

from __future__ import annotations

import re

__all__ = ["format_number", "is_toll_free", "normalize_e164"]

# RFC 3966 visual separators, and the space a form body makes of an unencoded '+'.
_SEPARATORS = re.compile(r"[\s\-.()]")
# Country code and subscriber number: at most 15 digits, never a leading zero. E.164
# sets no minimum; three digits keeps short local numbers such as the demo's +1000.
_E164 = re.compile(r"\+?([1-9][0-9]{2,14})")
# North American toll-free area codes: 800, 833, 844, 855, 866, 877, 888.
_TOLL_FREE = re.compile(r"\+18(00|33|44|55|66|77|88)[0-9]{7}")
_NANP = re.compile(r"\+1([2-9][0-9]{2})([0-9]{3})([0-9]{4})")


def normalize_e164(value: str) -> str | None:
    """``value`` as ``+`` and digits, or None if it is not an E.164 number.

    Accepts the number with or without its '+', and with spaces, dashes, dots or
    parentheses between the digits.
    """
    if len(value) > 64:
        return None
    match = _E164.fullmatch(_SEPARATORS.sub("", value))
    return "+" + match.group(1) if match else None


def is_toll_free(e164: str) -> bool:
    """Whether ``e164`` is a North American toll-free number."""
    return _TOLL_FREE.fullmatch(e164) is not None


def format_number(value: str) -> str:
    """The human spelling Twilio uses: ``(415) 555-0100`` for North American numbers."""
    match = _NANP.fullmatch(value)
    if match is None:
        return value
    return "(%s) %s-%s" % match.groups()
