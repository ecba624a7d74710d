"""rtpengine as a media engine beside the in-process relay (docs/rtpengine.md):
``bencode`` (the encoding), ``ng`` (the control protocol, sans-I/O),
``selection`` (which instance takes a call), ``client`` (the asyncio side
and the commands), ``dtmf_log`` and ``dtmf_listener`` (the digits its DTMF log
reports)."""

__all__ = ["bencode", "client", "dtmf_listener", "dtmf_log", "ng", "selection"]
