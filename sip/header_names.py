"""SIP header field names: canonical spellings and compact forms (RFC 3261 §7.3.1, §7.3.3).

``CANONICAL`` maps the well-known spellings (any case of them) and the compact
forms to the canonical name with one dict lookup; ``canonical_or_none`` handles
the rest (and caches a bounded number of the spellings peers use).
"""

from __future__ import annotations

from sip.headers import is_token

__all__ = ["CANONICAL", "canonical_name", "canonical_or_none"]

# RFC 3261 §7.3.3 and the IANA registry of compact forms.
_COMPACT = {
    "i": "Call-ID",
    "m": "Contact",
    "e": "Content-Encoding",
    "l": "Content-Length",
    "c": "Content-Type",
    "f": "From",
    "s": "Subject",
    "k": "Supported",
    "t": "To",
    "v": "Via",
    "o": "Event",
    "r": "Refer-To",
    "b": "Referred-By",
    "u": "Allow-Events",
    "x": "Session-Expires",
    "y": "Identity",
    "a": "Accept-Contact",
    "j": "Reject-Contact",
    "d": "Request-Disposition",
}

# Names whose canonical spelling is not plain Title-Case, and the common ones,
# so that ordinary traffic canonicalises with one dict lookup.
_WELL_KNOWN = """
    Accept Accept-Contact Accept-Encoding Accept-Language Accept-Resource-Priority
    Alert-Info Allow Allow-Events Authentication-Info Authorization Call-ID Call-Info
    Contact Content-Disposition Content-Encoding Content-ID Content-Language Content-Length
    Content-Type CSeq Date Diversion Error-Info Event Expires From History-Info Identity
    Identity-Info In-Reply-To Join Max-Breadth Max-Forwards MIME-Version Min-Expires Min-SE
    Organization P-Access-Network-Info P-Asserted-Identity P-Associated-URI
    P-Called-Party-ID P-Charging-Vector P-Charging-Function-Addresses P-Early-Media
    P-Preferred-Identity P-Visited-Network-ID Path Priority Privacy Proxy-Authenticate
    Proxy-Authorization Proxy-Require RAck Reason Record-Route Refer-Sub Refer-To
    Referred-By Reject-Contact Remote-Party-ID Replaces Reply-To Request-Disposition Require
    Resource-Priority Retry-After Route RSeq Security-Client Security-Server Security-Verify
    Server Service-Route Session-Expires SIP-ETag SIP-If-Match Subject Subscription-State
    Supported Target-Dialog Timestamp To Unsupported User-Agent User-to-User Via Warning
    WWW-Authenticate
""".split()  # noqa: SIM905 (a word list reads better than 88 quoted lines)

CANONICAL: dict[str, str] = {}
for _name in _WELL_KNOWN:
    CANONICAL[_name] = _name
    CANONICAL[_name.lower()] = _name
for _short, _name in _COMPACT.items():
    CANONICAL[_short] = _name
    CANONICAL[_short.upper()] = _name
del _name, _short

# Spellings met at run time. Peers choose header names, so the cache is bounded.
_SEEN: dict[str, str] = {}
_SEEN_LIMIT = 4096


def canonical_or_none(name: str) -> str | None:
    """Canonical spelling of a header name, or None if it is not a token."""
    found = CANONICAL.get(name) or _SEEN.get(name)
    if found is not None:
        return found
    # RFC 3261 §7.3.1 allows whitespace between the name and the colon.
    key = name.rstrip(" \t")
    found = CANONICAL.get(key.lower())
    if found is None:
        if not is_token(key):
            return None
        found = "-".join(w[:1].upper() + w[1:].lower() for w in key.split("-"))
    if len(_SEEN) < _SEEN_LIMIT:
        _SEEN[name] = found
    return found


def canonical_name(name: str) -> str:
    """Canonical spelling of a header name (RFC 3261 §7.3.3 compact forms expanded).

    Raises ValueError if ``name`` is not a token.
    """
    found = canonical_or_none(name) if is_token(name) else None
    if found is None:
        raise ValueError(f"not a header name: {name!r}")
    return found
