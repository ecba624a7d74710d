"""TURN relay (RFC 8656) on STUN (RFC 8489): sans-I/O cores and a thin asyncio server."""
