"""The caller's privacy request: the ``Privacy`` header (RFC 3323 §4.2, RFC 3325 §9.3).

``Privacy: id`` asks the network not to show the asserted identity to the far
end; ``user`` and ``header`` ask that the caller's identity headers be
withheld or anonymized. Any of the three means the caller's number must not be
shown where a caller would be (webhooks, console, logs). ``none``, ``session``
and ``critical`` alone do not withhold the identity.
"""

from __future__ import annotations

from collections.abc import Iterable

__all__ = ["WITHHOLDING", "identity_withheld", "privacy_values"]

# The priv-values that withhold who is calling.
WITHHOLDING = frozenset({"id", "user", "header"})
_MAX_VALUES = 16  # no Privacy header needs more; a longer list is read no further


def privacy_values(headers: Iterable[tuple[str, str]]) -> frozenset[str]:
    """The lower-cased priv-values of every ``Privacy`` line (``;`` or ``,`` separated)."""
    found: set[str] = set()
    for name, value in headers:
        if name.lower() != "privacy":
            continue
        for item in value.replace(",", ";").split(";")[:_MAX_VALUES]:
            item = item.strip(" \t").lower()
            if item:
                found.add(item)
    return frozenset(found)


def identity_withheld(headers: Iterable[tuple[str, str]]) -> bool:
    """True when a ``Privacy`` header asks that the caller's identity be withheld."""
    return not WITHHOLDING.isdisjoint(privacy_values(headers))
