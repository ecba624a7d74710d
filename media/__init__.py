"""The media plane: legs, RTP sessions, codecs, bridges, conferences, players,
recorders and Media Streams.

``__all__`` names the modules other packages may import; each module's own
``__all__`` names its public names. The rest (``jitter``, ``rtp``, ``websocket``)
serve the modules here and are private to the package.
"""

__all__ = [
    "amd",
    "audio_file",
    "bridge",
    "clock",
    "codecs",
    "conference",
    "dtmf",
    "g711",
    "hold_music",
    "leg",
    "mixer",
    "player",
    "ports",
    "quality",
    "recorder",
    "resample",
    "ring_tones",
    "rtcp",
    "rtpengine",
    "sdp",
    "session",
    "speech",
    "srtp",
    "stream_client",
    "streams",
    "taps",
    "tones",
    "tts",
    "watchdog",
]
