"""MMS media as plain data: the content types Twilio accepts, their bounds, and the
MIME multipart bodies (RFC 2046 §5.1) a SIP MESSAGE carries them in. Pure: no I/O.

An MMS over SIP MESSAGE is one ``multipart/mixed`` (or ``multipart/related``) body:
``text/plain`` parts are the message's text, every other part of an accepted type is
a medium. ``parse_multipart`` refuses (``MmsError``) a body it cannot read; parts of
types Twilio does not accept are dropped, as Twilio drops them.
"""

from __future__ import annotations

import email.policy
import secrets
from dataclasses import dataclass
from email.parser import BytesParser

__all__ = [
    "ACCEPTED_TYPES",
    "MAX_MEDIA",
    "MAX_MEDIA_BYTES",
    "MULTIPART_TYPES",
    "MmsError",
    "MmsPart",
    "ParsedMms",
    "base_type",
    "build_multipart",
    "is_accepted",
    "parse_multipart",
]

MAX_MEDIA = 10  # Twilio: at most 10 media per message
MAX_MEDIA_BYTES = 5 * 1024 * 1024  # Twilio: 5 MB for a message's media together
MULTIPART_TYPES = frozenset({"multipart/mixed", "multipart/related"})

# Twilio's accepted content types for MMS (its "Accepted Content Types for Media").
ACCEPTED_TYPES = frozenset(
    {
        "image/jpeg",
        "image/jpg",
        "image/gif",
        "image/png",
        "image/bmp",
        "image/tiff",
        "image/webp",
        "audio/basic",
        "audio/l24",
        "audio/mp4",
        "audio/mpeg",
        "audio/ogg",
        "audio/vnd.wave",
        "audio/wav",
        "audio/3gpp",
        "audio/3gpp2",
        "audio/ac3",
        "audio/webm",
        "audio/amr-nb",
        "audio/amr",
        "video/mpeg",
        "video/mp4",
        "video/quicktime",
        "video/webm",
        "video/3gpp",
        "video/3gpp2",
        "video/3gpp-tt",
        "video/h261",
        "video/h263",
        "video/h263-1998",
        "video/h263-2000",
        "video/h264",
        "text/vcard",
        "text/x-vcard",
        "text/csv",
        "text/rtf",
        "text/richtext",
        "text/calendar",
        "text/directory",
        "application/pdf",
        "application/vcard",
        "application/vnd.apple.pkpass",
    }
)


class MmsError(ValueError):
    """A multipart body that cannot be read, or media beyond the bounds."""


@dataclass(frozen=True, slots=True)
class MmsPart:
    """One medium: its content type (as given, parameters and all) and bytes."""

    content_type: str
    content: bytes


@dataclass(frozen=True, slots=True)
class ParsedMms:
    """A multipart MESSAGE body: its text (the text/plain parts) and its media."""

    text: str
    media: tuple[MmsPart, ...]


def base_type(content_type: str) -> str:
    """``image/png`` of ``image/PNG; name=a.png``."""
    return content_type.split(";", 1)[0].strip().lower()


def is_accepted(content_type: str) -> bool:
    return base_type(content_type) in ACCEPTED_TYPES


def parse_multipart(content_type: str, body: bytes) -> ParsedMms:
    """The text and accepted media of a ``multipart/*`` body with ``content_type``
    (its ``boundary`` parameter); MmsError if it is not one or exceeds the bounds."""
    if base_type(content_type) not in MULTIPART_TYPES or "boundary=" not in content_type.lower():
        raise MmsError("not a multipart body with a boundary")
    head = f"Content-Type: {content_type}\r\nMIME-Version: 1.0\r\n\r\n".encode()
    message = BytesParser(policy=email.policy.compat32).parsebytes(head + body)
    if not message.is_multipart() or message.defects:
        raise MmsError("the multipart body cannot be read")
    texts: list[str] = []
    media: list[MmsPart] = []
    total = 0
    for part in message.walk():
        if part.is_multipart():
            continue
        kind = part.get_content_type()
        payload = part.get_payload(decode=True)
        if not isinstance(payload, bytes):
            continue
        if kind == "text/plain":
            charset = part.get_content_charset() or "utf-8"
            texts.append(payload.decode(charset, errors="replace"))
            continue
        if not is_accepted(kind):
            continue
        total += len(payload)
        if len(media) >= MAX_MEDIA or total > MAX_MEDIA_BYTES:
            raise MmsError(f"more than {MAX_MEDIA} media or {MAX_MEDIA_BYTES} bytes of them")
        media.append(MmsPart(part.get("Content-Type", kind), payload))
    return ParsedMms("".join(texts), tuple(media))


def build_multipart(text: str, media: list[MmsPart] | tuple[MmsPart, ...]) -> tuple[str, bytes]:
    """A ``multipart/mixed`` body of ``text`` (when not empty) and ``media``, binary
    parts as they are (SIP is 8-bit clean): (its Content-Type, its bytes)."""
    boundary = f"callswitch-{secrets.token_hex(12)}"
    delimiter = f"--{boundary}\r\n".encode()
    chunks: list[bytes] = []
    if text:
        chunks += [delimiter, b"Content-Type: text/plain;charset=UTF-8\r\n\r\n"]
        chunks += [text.encode("utf-8"), b"\r\n"]
    for number, part in enumerate(media):
        chunks.append(delimiter)
        chunks.append(f"Content-Type: {part.content_type}\r\n".encode())
        chunks.append(f'Content-Disposition: attachment; filename="media{number}"\r\n'.encode())
        chunks.append(b"Content-Transfer-Encoding: binary\r\n\r\n")
        chunks += [part.content, b"\r\n"]
    chunks.append(f"--{boundary}--\r\n".encode())
    return f'multipart/mixed;boundary="{boundary}"', b"".join(chunks)
