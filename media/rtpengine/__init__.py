"""rtpengine as a media engine beside the in-process relay (docs/rtpengine.md):
``bencode`` (the encoding), ``ng`` (the control protocol, sans-I/O),
``selection`` (which instance takes a call) and ``client`` (the asyncio side
and the commands)."""

__all__ = ["bencode", "client", "ng", "selection"]
