"""A path SID's row or Twilio's 404 (20404): ``path_sid``, ``found`` and ``deleted``."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from control_api.api.resource import deleted, found, path_sid
from control_api.errors import NOT_FOUND, ApiError

SID = "SK" + "0" * 32
PATH = "/2010-04-01/Accounts/AC1/Keys/x.json"
request = SimpleNamespace(url=SimpleNamespace(path=PATH))


def not_found(call) -> None:
    with pytest.raises(ApiError) as raised:
        call()
    assert (raised.value.status, raised.value.code) == (404, NOT_FOUND)
    assert raised.value.message == f"The requested resource {PATH} was not found"


def test_a_path_sid_of_the_prefix_is_kept():
    assert path_sid(request, SID, "SK") == SID
    assert path_sid(request, "MM" + SID[2:], "SM", "MM") == "MM" + SID[2:]


@pytest.mark.parametrize("value", ["", "SK0", "AP" + "0" * 32, SID + "\x00", SID.lower()])
def test_any_other_path_text_is_404(value):
    not_found(lambda: path_sid(request, value, "SK"))


def test_found_is_the_row_or_404():
    row = object()
    assert found(request, row) is row
    not_found(lambda: found(request, None))


def test_deleted_is_204_or_404():
    assert deleted(request, True).status_code == 204
    not_found(lambda: deleted(request, False))
