"""A list's filters as a table: ``equal``, ``TimeRange``/``DateRange`` and ``query_filters``."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from control_api.api.filters import DateRange, TimeRange, equal, number_text, query_filters
from control_api.api.params import Params, choice_parser
from control_api.errors import ApiError


def at(*parts: int) -> datetime:
    return datetime(*parts, tzinfo=UTC)


def test_an_absent_or_empty_filter_is_none_and_a_given_one_is_parsed():
    filters = {"To": equal("to", number_text), "Status": equal("status")}
    assert query_filters(Params(), filters) == {"to": None, "status": None}
    assert query_filters(Params([("To", ""), ("Status", "")]), filters) == {
        "to": None,
        "status": None,
    }
    given = Params([("To", " 15550100"), ("Status", "queued")])  # '+' decoded as a space
    assert query_filters(given, filters) == {"to": "+15550100", "status": "queued"}


def test_filters_are_refused_in_the_order_of_the_table():
    filters = {
        "Status": equal("status", choice_parser(["completed", "queued"])),
        "StartTime": TimeRange.filter("start_time"),
    }
    params = Params([("StartTime", "not a time"), ("Status", "lost")])
    with pytest.raises(ApiError) as raised:
        query_filters(params, filters)
    assert raised.value.status == 400
    assert raised.value.message == "Status must be one of completed, queued"


def test_a_time_range_is_the_store_s_after_and_before_filters():
    filters = {"StartTime": TimeRange.filter("start_time")}
    params = Params([("StartTime>", "2026-11-24T10:00:00.5Z"), ("StartTime<", "2026-11-25")])
    assert query_filters(params, filters) == {
        "start_time_after": at(2026, 11, 24, 10, 0, 0, 500000),
        "start_time_before": at(2026, 11, 25),
    }


def test_a_bare_name_is_the_whole_day_for_both_kinds():
    for kind in (TimeRange, DateRange):
        bounds = kind.from_params(Params([("Name", "2026-11-24T10:00:00Z")]), "Name")
        assert (bounds.after, bounds.before) == (at(2026, 11, 24), at(2026, 11, 25))


def test_a_date_range_counts_a_date_as_its_day_and_a_date_time_to_the_second():
    by_date = DateRange.from_params(
        Params([("DateCreated>", "2026-11-24"), ("DateCreated<", "2026-11-26")]), "DateCreated"
    )
    assert (by_date.after, by_date.before) == (at(2026, 11, 24), at(2026, 11, 27))
    by_second = DateRange.from_params(
        Params([("DateCreated>", "2026-11-24T10:00:00.5Z"), ("DateCreated<", "2026-11-24T11:00Z")]),
        "DateCreated",
    )
    assert (by_second.after, by_second.before) == (
        at(2026, 11, 24, 10),
        at(2026, 11, 24, 11, 0, 1),
    )


def test_several_bounds_narrow_the_range():
    params = Params([("T>", "2026-11-20"), ("T>=", "2026-11-22"), ("T<", "2026-11-30")])
    bounds = TimeRange.from_params(params, "T")
    assert (bounds.after, bounds.before) == (at(2026, 11, 22), at(2026, 11, 30))


def test_no_bound_past_the_end_of_the_calendar():
    bounds = DateRange.from_params(Params([("D<", "9999-12-31")]), "D")
    assert bounds.filters("d") == {"d_after": None, "d_before": None}
