"""The Privacy header (sip/privacy.py, RFC 3323)."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from sip.privacy import identity_withheld, privacy_values


def test_id_user_and_header_withhold_the_identity():
    for value in ("id", "user", "header", "ID", "header;session", "none; id", "user,critical"):
        assert identity_withheld([("Privacy", value)]), value


def test_none_session_and_no_header_do_not():
    assert not identity_withheld([])
    assert not identity_withheld([("Privacy", "none")])
    assert not identity_withheld([("Privacy", "session;critical")])
    assert not identity_withheld([("From", "<sip:id@example.com>")])


def test_values_of_every_line_are_read():
    headers = [("Privacy", "session"), ("privacy", " Id ")]
    assert privacy_values(headers) == frozenset({"session", "id"})
    assert identity_withheld(headers)


@given(st.lists(st.tuples(st.sampled_from(["Privacy", "From", "X-A"]), st.text(max_size=80))))
def test_anything_is_read_without_error(headers):
    assert isinstance(identity_withheld(headers), bool)
