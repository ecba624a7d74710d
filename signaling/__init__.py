"""Browser calls: the signaling WebSocket, access tokens and WebRTC legs (docs/webrtc.md).

``__all__`` names the modules other packages may import; each module's own
``__all__`` names its public names.
"""

__all__ = [
    "protocol",
    "pstream",
    "pstream_endpoint",
    "pstream_session",
    "sdk_sounds",
    "server",
    "tokens",
    "webrtc_leg",
]
