"""Framing SIP on a byte stream (RFC 3261 §18.3): Content-Length and CRLF keep-alives.

``StreamFramer`` cuts a TCP/TLS byte stream into whole messages (each goes to
:func:`sip.parser.parse_message`) and reports the CRLF keep-alives between them
(RFC 5626 §3.5.1); sans-I/O.
"""

from __future__ import annotations

import re
from enum import Enum

from sip.errors import SipParseError

__all__ = [
    "KEEPALIVE_PING",
    "KEEPALIVE_PONG",
    "MAX_BODY_SIZE",
    "MAX_HEADER_SIZE",
    "PONG",
    "KeepAlive",
    "StreamFramer",
]

MAX_HEADER_SIZE = 64 * 1024
MAX_BODY_SIZE = 1024 * 1024

_FOLD_RE = re.compile(r"\n[ \t]+")
_CONTENT_LENGTH_RE = re.compile(r"^(?:content-length|l)[ \t]*:(.*)$", re.I | re.M)
_CRLF_RUN_RE = re.compile(rb"[\r\n]*")


class KeepAlive(Enum):
    """CRLF keep-alives between messages on a stream (RFC 5626 §3.5.1, §4.4.1)."""

    PING = "ping"  # "\r\n\r\n": answer with PONG
    PONG = "pong"  # a lone "\r\n"


KEEPALIVE_PING = KeepAlive.PING
KEEPALIVE_PONG = KeepAlive.PONG
PONG = b"\r\n"


class StreamFramer:
    """Cut a TCP/TLS byte stream into SIP messages (RFC 3261 §18.3).

    ``feed`` returns, in order, complete raw messages (bytes, for
    ``parse_message``) and ``KeepAlive`` items for CRLF runs between messages.
    A lone CRLF is reported as PONG at once, so a ping split after its first
    CRLF shows up as PONG then PING. Content-Length is mandatory on streams.
    After a ``SipParseError`` the stream cannot be resynchronised: close it.
    """

    def __init__(
        self, *, max_header_size: int = MAX_HEADER_SIZE, max_body_size: int = MAX_BODY_SIZE
    ) -> None:
        self._buf = bytearray()
        self._max_header = max_header_size
        self._max_body = max_body_size
        self._in_message = False
        self._scan = 0  # where the search for the empty line resumes
        self._end = -1  # end of the current message once its length is known
        self._lfs = 0  # line feeds in the current run of CRLFs, modulo a ping
        self._pong_reported = False
        self._error: SipParseError | None = None

    @property
    def pending(self) -> bool:
        """Whether part of a message has arrived and its end has not."""
        return self._in_message

    def feed(self, data: bytes) -> list[bytes | KeepAlive]:
        if self._error is not None:
            raise self._error
        buf = self._buf
        buf += data
        out: list[bytes | KeepAlive] = []
        pos = 0
        try:
            while True:
                if not self._in_message:
                    pos = self._skip_crlf(pos, out)
                    if pos == len(buf):
                        break
                    self._in_message = True
                    self._scan = pos
                    self._end = -1
                if self._end < 0 and not self._find_end(pos):
                    break
                if len(buf) < self._end:
                    break
                out.append(bytes(buf[pos : self._end]))
                pos = self._end
                self._in_message = False
        except SipParseError as exc:
            self._error = exc
            raise
        finally:
            if pos:
                del buf[:pos]
                self._scan -= pos
                if self._end >= 0:
                    self._end -= pos
        return out

    def _skip_crlf(self, pos: int, out: list[bytes | KeepAlive]) -> int:
        buf = self._buf
        end = _CRLF_RUN_RE.match(buf, pos).end()  # type: ignore[union-attr]
        if end > pos:
            lfs = self._lfs + buf.count(b"\n", pos, end)
            if lfs >= 2:
                out.extend([KEEPALIVE_PING] * (lfs // 2))
                self._pong_reported = False
            self._lfs = lfs % 2
        if self._lfs and not self._pong_reported:
            out.append(KEEPALIVE_PONG)
            self._pong_reported = True
        if end < len(buf):
            # A message starts: the run is over.
            self._lfs = 0
            self._pong_reported = False
        return end

    def _find_end(self, start: int) -> bool:
        buf = self._buf
        i = buf.find(b"\n\r\n", self._scan)
        j = buf.find(b"\n\n", self._scan, i + 1 if i >= 0 else len(buf))
        if j < 0 and i < 0:
            # Two bytes of a split "\n\r\n" may already be here.
            self._scan = max(start, len(buf) - 2)
            if len(buf) - start > self._max_header + 2:
                raise SipParseError("Header section too large")
            return False
        head_end, body_start = (j, j + 2) if j >= 0 else (i, i + 3)
        if head_end - start > self._max_header:
            raise SipParseError("Header section too large")
        head = buf[start:head_end].decode("latin-1").replace("\r\n", "\n")
        head = _FOLD_RE.sub(" ", head)
        values = {v.strip(" \t\r") for v in _CONTENT_LENGTH_RE.findall(head)}
        if not values:
            raise SipParseError("Missing Content-Length")
        if len(values) > 1:
            raise SipParseError("Duplicate Content-Length")
        text = values.pop()
        if not (text.isdigit() and text.isascii() and len(text) <= 10):
            raise SipParseError("Bad Content-Length")
        length = int(text)
        if length > self._max_body:
            raise SipParseError("Content-Length too large")
        self._end = body_start + length
        return True
