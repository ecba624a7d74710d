"""A path SID's row or Twilio's 404 (20404): ``path_sid``, ``found`` and ``deleted``;
and ``Resource``, the routes that read and delete one resource's rows."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from types import SimpleNamespace

import pytest
from fastapi import APIRouter, FastAPI
from fastapi.testclient import TestClient

from control_api.api.auth import path_account
from control_api.api.resource import Resource, deleted, found, path_sid, stored_dates
from control_api.errors import NOT_FOUND, ApiError, install_error_handlers

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


# Resource: one resource's rows and its list, fetch and delete routes, over an in-memory
# table and an app whose path account is given.

ACCOUNT = "AC" + "a" * 32
BASE = "/2010-04-01/Accounts/{account_sid}"
PARENT = "PA" + "1" * 32
CHILD = "CH" + "2" * 32


@dataclass
class MemoryTable:
    """A ``Table`` over a dict: (account SID, path SIDs...) -> row; records every call."""

    rows: dict[tuple[str, ...], dict]
    calls: list[str] = field(default_factory=list)

    async def get(self, account_sid: str, *sids: str) -> dict | None:
        self.calls.append("get")
        return self.rows.get((account_sid, *sids))

    async def delete(self, account_sid: str, *sids: str) -> bool:
        self.calls.append("delete")
        return self.rows.pop((account_sid, *sids), None) is not None

    async def page(self, account_sid: str, *parents: str, offset: int, limit: int) -> list[dict]:
        self.calls.append("page")
        found = [
            row
            for key, row in self.rows.items()
            if key[: 1 + len(parents)] == (account_sid, *parents)
        ]
        return found[offset : offset + limit]


def shown(row: dict) -> dict:
    return {"sid": row["sid"]}


@pytest.fixture
def tables():
    parents = MemoryTable({(ACCOUNT, PARENT): {"sid": PARENT, "status": "open"}})
    children = MemoryTable({(ACCOUNT, PARENT, CHILD): {"sid": CHILD}})
    return parents, children


@pytest.fixture
def client(tables):
    parents, children = tables

    async def refuse_open(request, row: dict) -> None:
        if row["status"] == "open":
            raise ApiError.bad_parameter("An open parent cannot be deleted")

    router = APIRouter()
    parent = Resource(BASE + "/Parents/{sid}.json", ("PA",), lambda r: parents, shown)
    child = Resource(
        BASE + "/Parents/{parent_sid}/Children/{sid}.json",
        ("PA", ("CH", "CX")),
        lambda r: children,
        shown,
        parent=parent,
    )
    parent.add_routes(router, refuse_delete=refuse_open)
    child.add_routes(router)
    app = FastAPI()
    install_error_handlers(app)
    app.include_router(router)
    app.dependency_overrides[path_account] = lambda: SimpleNamespace(sid=ACCOUNT)
    return TestClient(app)


def url(tail: str) -> str:
    return f"/2010-04-01/Accounts/{ACCOUNT}{tail}"


def test_a_list_is_named_by_its_resource_in_snake_case_unless_given():
    table = lambda r: MemoryTable({})  # noqa: E731
    numbers = Resource(BASE + "/IncomingPhoneNumbers/{sid}.json", ("PN",), table, shown)
    assert numbers.list_path == BASE + "/IncomingPhoneNumbers.json"
    assert numbers.list_key == "incoming_phone_numbers"
    triggers = Resource(
        BASE + "/Usage/Triggers/{sid}.json", ("UT",), table, shown, key="usage_triggers"
    )
    assert triggers.list_key == "usage_triggers"


def test_a_resource_has_a_render_or_a_show_not_both():
    table = lambda r: MemoryTable({})  # noqa: E731

    async def show(request, rows):
        return []

    with pytest.raises(TypeError):
        Resource(BASE + "/Keys/{sid}.json", ("SK",), table)
    with pytest.raises(TypeError):
        Resource(BASE + "/Keys/{sid}.json", ("SK",), table, shown, show=show)


def test_a_row_is_fetched_by_its_path_sids(client):
    assert client.get(url(f"/Parents/{PARENT}.json")).json() == {"sid": PARENT}
    assert client.get(url(f"/Parents/{PARENT}/Children/{CHILD}.json")).json() == {"sid": CHILD}


def test_an_unknown_or_malformed_sid_is_404_and_a_malformed_one_never_reaches_the_table(
    client, tables
):
    parents, _ = tables
    missing = client.get(url(f"/Parents/PA{'9' * 32}.json"))
    assert (missing.status_code, missing.json()["code"]) == (404, NOT_FOUND)
    parents.calls.clear()
    malformed = client.get(url("/Parents/CH" + "1" * 32 + ".json"))
    assert (malformed.status_code, malformed.json()["code"]) == (404, NOT_FOUND)
    assert parents.calls == []


def test_a_sid_may_have_either_of_its_prefixes(client, tables):
    _, children = tables
    other = "CX" + "3" * 32
    children.rows[(ACCOUNT, PARENT, other)] = {"sid": other}
    assert client.get(url(f"/Parents/{PARENT}/Children/{other}.json")).json() == {"sid": other}


def test_delete_is_204_then_404(client):
    assert client.delete(url(f"/Parents/{PARENT}/Children/{CHILD}.json")).status_code == 204
    assert client.delete(url(f"/Parents/{PARENT}/Children/{CHILD}.json")).status_code == 404


def test_a_row_refused_deletion_stays(client, tables):
    parents, _ = tables
    refused = client.delete(url(f"/Parents/{PARENT}.json"))
    assert refused.status_code == 400
    assert refused.json()["message"] == "An open parent cannot be deleted"
    assert (ACCOUNT, PARENT) in parents.rows


def test_a_list_pages_the_rows_under_its_parent(client):
    page = client.get(url(f"/Parents/{PARENT}/Children.json")).json()
    assert page["children"] == [{"sid": CHILD}]
    assert page["page_size"] == 50


def test_a_nested_list_of_no_parent_is_404_but_a_bad_query_is_400_first(client):
    missing = url(f"/Parents/PA{'9' * 32}/Children.json")
    assert client.get(missing).status_code == 404
    assert client.get(missing + "?PageSize=0").status_code == 400


def test_a_stored_rows_dates_as_its_json_shows_them():
    when = datetime(2026, 12, 5, 10, tzinfo=UTC)
    row = SimpleNamespace(date_created=when, date_updated=when)
    assert stored_dates(row) == ("Sat, 05 Dec 2026 10:00:00 +0000",) * 2
    with pytest.raises(AssertionError):
        stored_dates(SimpleNamespace(date_created=None, date_updated=when))
