"""MMS bodies: multipart parsing and building, accepted types, bounds."""

from __future__ import annotations

import pytest

from control_api.sms.mms import (
    MAX_MEDIA,
    MmsError,
    MmsPart,
    build_multipart,
    is_accepted,
    parse_multipart,
)

PNG = b"\x89PNG\r\n\x1a\n\x00\xff--not a boundary\r\n" * 50


def test_a_built_body_parses_back_to_its_text_and_media_byte_for_byte():
    content_type, body = build_multipart("héllo", [MmsPart("image/png", PNG)])
    assert content_type.startswith("multipart/mixed;boundary=")
    parsed = parse_multipart(content_type, body)
    assert parsed.text == "héllo"
    assert parsed.media == (MmsPart("image/png", PNG),)


def test_base64_parts_and_related_bodies_are_read():
    body = (
        b"--b\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nhi\r\n"
        b"--b\r\nContent-Type: image/gif\r\nContent-Transfer-Encoding: base64\r\n\r\n"
        b"R0lGODlh\r\n--b--\r\n"
    )
    parsed = parse_multipart("multipart/related; boundary=b", body)
    assert parsed.text == "hi"
    assert parsed.media == (MmsPart("image/gif", b"GIF89a"),)


def test_parts_of_types_twilio_does_not_accept_are_dropped():
    content_type, body = build_multipart(
        "", [MmsPart("application/x-msdownload", b"MZ"), MmsPart("image/jpeg", b"\xff\xd8")]
    )
    assert parse_multipart(content_type, body).media == (MmsPart("image/jpeg", b"\xff\xd8"),)
    assert is_accepted("image/PNG; name=a.png") and not is_accepted("text/html")


def test_more_media_than_a_message_holds_are_refused():
    parts = [MmsPart("image/png", b"x")] * (MAX_MEDIA + 1)
    with pytest.raises(MmsError):
        parse_multipart(*build_multipart("", parts))


@pytest.mark.parametrize(
    "content_type",
    ["text/plain", "multipart/mixed", "image/png; boundary=b"],
)
def test_a_body_that_is_not_multipart_with_a_boundary_is_refused(content_type):
    with pytest.raises(MmsError):
        parse_multipart(content_type, b"--b\r\n\r\nx\r\n--b--\r\n")
