"""loadtest/soak.py's judgement: least-squares slopes and growth beyond noise."""

from __future__ import annotations

import numpy as np
import pytest

from loadtest import soak


def test_flat_noisy_series_shows_no_growth() -> None:
    rng = np.random.default_rng(7)
    minutes = [i / 12 for i in range(120)]  # every 5 s for 10 minutes
    values = list(150 + rng.normal(0, 1.5, len(minutes)))
    t = soak.trend("rss_mb", minutes, values)
    assert t is not None and not t.growth
    assert abs(t.slope_per_min) < 3 * t.stderr_per_min + 0.1


def test_steady_leak_is_growth() -> None:
    rng = np.random.default_rng(7)
    minutes = [i / 12 for i in range(120)]
    values = list(100 + 3 * np.array(minutes) + rng.normal(0, 2, len(minutes)))
    t = soak.trend("fds", minutes, values)
    assert t is not None and t.growth
    assert 2.5 < t.slope_per_min < 3.5
    assert t.growth_over_run > t.tolerance


def test_significant_but_small_growth_is_within_tolerance() -> None:
    minutes = [i / 12 for i in range(120)]
    values = [200 + 0.1 * m for m in minutes]  # 1 MB over 10 minutes on 200 MB: exact, tiny
    t = soak.trend("rss_mb", minutes, values)
    assert t is not None and not t.growth
    assert t.tolerance == pytest.approx(0.02 * t.median)


def test_too_few_or_missing_samples() -> None:
    assert soak.trend("lag_ms", [0.0, 1.0], [1.0, 2.0]) is None
    assert soak.trend("lag_ms", [0.0, 1.0, 2.0, 3.0], [1.0, None, float("nan"), 2.0]) is None
    assert soak.trend("lag_ms", [1.0, 1.0, 1.0], [1.0, 2.0, 3.0]) is None


def test_slope_matches_numpy_polyfit() -> None:
    minutes = [0.0, 0.5, 1.0, 1.5, 2.0, 2.5]
    values = [10.0, 10.4, 11.1, 11.4, 12.2, 12.4]
    t = soak.trend("lag_ms", minutes, values)
    assert t is not None
    assert t.slope_per_min == pytest.approx(np.polyfit(minutes, values, 1)[0])


def test_metric_sums_samples_of_one_name_only() -> None:
    text = (
        "# HELP callswitch_media_clock_skipped_ticks_total x\n"
        "callswitch_media_clock_skipped_ticks_total 12.0\n"
        'callswitch_calls_active{direction="inbound"} 3.0\n'
        'callswitch_calls_active{direction="outbound"} 2.0\n'
        "callswitch_calls_active_extra 99.0\n"
    )
    assert soak.metric(text, "callswitch_calls_active") == 5.0
    assert soak.metric(text, "callswitch_media_clock_skipped_ticks_total") == 12.0
    assert soak.metric(text, "callswitch_nothing") is None


def test_a_rise_that_levels_off_is_judged_on_the_second_half() -> None:
    # As in the soak of 2026-12-04: RSS rose 4.6 MB over the first 5 minutes, then stayed.
    rng = np.random.default_rng(3)
    minutes = [i / 12 for i in range(121)]
    values = [172 + 4.6 * min(m, 5) / 5 + rng.normal(0, 0.05) for m in minutes]
    whole, late = soak.judge(minutes, {"rss_mb": values})
    assert whole[0].growth and not late[0].growth
    assert late[0].samples == 61


def test_a_steady_leak_is_still_growth_in_the_second_half() -> None:
    rng = np.random.default_rng(5)
    minutes = [i / 12 for i in range(121)]
    values = list(170 + 0.6 * np.array(minutes) + rng.normal(0, 0.3, len(minutes)))
    _whole, late = soak.judge(minutes, {"rss_mb": values})
    # 0.6 MB/min is 6 MB over the 10-minute run: beyond the 4 MB tolerance.
    assert late[0].growth and late[0].growth_over_run == pytest.approx(6, abs=1)


def test_hard_limits_on_the_rss_slope_and_the_idle_rss() -> None:
    minutes = [i / 12 for i in range(120)]
    creeping = [200 + 0.1 * m for m in minutes]  # within the statistical tolerance...
    _, late = soak.judge(minutes, {"rss_mb": creeping})
    idle = {"before": {"rss_mb": 144.0}, "after": {"rss_mb": 148.0, "held": 0}}
    assert soak.over_limits(late, idle) == [  # ...but 144 MB a day
        "RSS +0.100 MB/min > 0.05 in the second half"
    ]
    flat = [200.0 + 0.01 * m for m in minutes]
    _, late = soak.judge(minutes, {"rss_mb": flat})
    assert soak.over_limits(late, idle) == []
    grown = {"before": {"rss_mb": 144.0}, "after": {"rss_mb": 168.0, "held": 0}}
    assert soak.over_limits(late, grown) == ["idle RSS +24.0 MB after the load > 5.0 MB"]
    still_held = {"before": {"rss_mb": 144.0}, "after": {"rss_mb": 168.0, "held": 12}}
    # never idle again: the run has not shown the memory comes back, so it fails
    assert soak.over_limits(late, still_held) == [
        "idle RSS after the load not measured: 12 calls still held"
    ]
    assert soak.over_limits([], idle) == ["RSS slope of the second half not measured"]
    assert soak.over_limits(late, {"before": {"rss_mb": None}, "after": {"rss_mb": 150.0}}) == [
        "idle RSS before or after the load not measured"
    ]


def test_the_idle_limit_reads_the_settled_rss_when_the_soak_waited() -> None:
    minutes = [i / 12 for i in range(120)]
    _, late = soak.judge(minutes, {"rss_mb": [200.0] * len(minutes)})
    # At once after the load the last calls' SIP state (2 x 64*T1) is still held...
    settled = {
        "before": {"rss_mb": 144.0},
        "after": {"rss_mb": 152.0, "held": 0},
        "settled": {"rss_mb": 147.0},
    }
    assert soak.over_limits(late, settled) == []
    settled["settled"] = {"rss_mb": 150.0}  # ...and what stays once it has gone counts
    assert soak.over_limits(late, settled) == ["idle RSS +6.0 MB after the load > 5.0 MB"]


def test_the_limits_line_names_both_figures() -> None:
    minutes = [i / 12 for i in range(120)]
    _, late = soak.judge(minutes, {"rss_mb": [200.0 + 0.01 * m for m in minutes]})
    idle = {"before": {"rss_mb": 144.0}, "after": {"rss_mb": 150.0, "held": 0},
            "settled": {"rss_mb": 146.5}}  # fmt: skip
    assert soak.limits_line(late, idle) == (
        "second-half RSS slope +0.010 MB/min (limit 0.05), idle RSS after the load +2.5 MB "
        "against before (limit 5.0)"
    )


def test_minutes_sets_the_measured_seconds() -> None:
    assert soak.parse_args(["--minutes", "60"]).seconds == 3600
    assert soak.parse_args([]).seconds == 600
    with pytest.raises(SystemExit):
        soak.parse_args(["--minutes", "60", "--seconds", "10"])
