"""A sans-I/O SIP stack (RFC 3261 and friends) with thin asyncio shells.

``__all__`` names the modules other packages may import; each module's own
``__all__`` names its public names. Start at :mod:`sip.ua` (the user agent) and
:mod:`sip.endpoint` (it on real sockets); docs/architecture.md has the map.
"""

__all__ = [
    "auth",
    "connections",
    "dialog",
    "dialog_host",
    "endpoint",
    "errors",
    "framing",
    "header_names",
    "headers",
    "invite",
    "message",
    "midcall",
    "outbound_proxy",
    "pager",
    "parser",
    "privacy",
    "registrar",
    "registration",
    "rfc3263",
    "session_timer",
    "source_limits",
    "stats",
    "transaction",
    "transport",
    "ua",
    "uac",
    "websocket",
    "ws_transport",
]
