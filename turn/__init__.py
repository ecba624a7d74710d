"""TURN relay (RFC 8656) on STUN (RFC 8489): sans-I/O cores and a thin asyncio server.

``__all__`` names the modules other packages may import; each module's own
``__all__`` names its public names. ``indications`` serves the relay path and is
private to the package.
"""

__all__ = ["allocation", "auth", "policy", "server", "stun"]
