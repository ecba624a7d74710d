"""callswitch/descriptors.py: the open-file limit and the connections' share of it."""

from __future__ import annotations

import resource

from callswitch.descriptors import BASE_RESERVE, connection_budget, raise_open_files_limit


def test_the_reserve_keeps_the_port_ranges_and_the_base_back():
    budget = connection_budget(65536, 20000)
    assert budget.reserve == BASE_RESERVE + 20000
    assert budget.sip + budget.http == 65536 - budget.reserve
    assert abs(budget.sip - budget.http) <= 1


def test_connections_get_a_quarter_of_the_limit_when_the_ranges_would_take_it_all():
    budget = connection_budget(20000, 20000)
    assert budget.sip + budget.http == 5000
    assert budget.reserve == 15000


def test_a_small_limit_still_leaves_a_reserve():
    budget = connection_budget(1024, 300)
    assert budget.sip + budget.http == 256
    assert budget.reserve == 768 >= BASE_RESERVE


def test_raising_the_limit_reaches_the_hard_limit():
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    try:
        if hard != resource.RLIM_INFINITY and hard > 64:
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard // 2, hard))
        raised = raise_open_files_limit()
        assert raised == resource.getrlimit(resource.RLIMIT_NOFILE)[0]
        if hard != resource.RLIM_INFINITY:
            assert raised == hard
    finally:
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
