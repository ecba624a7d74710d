"""The E-model MOS estimate (ITU-T G.107) against its known anchor points."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from media.quality import estimate_mos


def test_a_clean_g711_call_scores_the_models_ceiling():
    # R = 93.2 with nothing impaired: MOS 4.41 (G.107 Annex B)
    assert estimate_mos("PCMU", 0.0, 40) == pytest.approx(4.41, abs=0.01)


def test_loss_lowers_the_score_as_g113_bpl_says():
    # 1% random loss, Bpl 25.1: Ie,eff = 95 * 1 / 26.1 = 3.64, R = 89.56
    assert estimate_mos("PCMA", 0.01, 40) == pytest.approx(4.33, abs=0.01)
    # 10% loss: Ie,eff = 95 * 10 / 35.1 = 27.07, R = 66.1 -> about 3.4
    assert estimate_mos("PCMU", 0.10, 40) == pytest.approx(3.41, abs=0.02)


def test_delay_past_100_ms_costs_and_200_ms_costs_more():
    assert estimate_mos("PCMU", 0, 100) == estimate_mos("PCMU", 0, 40)
    assert estimate_mos("PCMU", 0, 200) < estimate_mos("PCMU", 0, 100)
    assert estimate_mos("PCMU", 0, 400) < estimate_mos("PCMU", 0, 200) - 0.3


@given(st.floats(-1, 2), st.floats(-100, 5000), st.sampled_from(["PCMU", "OPUS", "x"]))
def test_the_score_stays_in_range_and_falls_with_loss(loss, delay, codec):
    mos = estimate_mos(codec, loss, delay)
    assert 1.0 <= mos <= 4.5
    assert estimate_mos(codec, min(max(loss, 0), 1) + 0.05, delay) <= mos + 1e-9


def test_a_nearly_worthless_call_scores_one_not_less():
    # All packets lost and 300 ms one way leave R at about 2.6, where G.107's
    # polynomial gives 0.99.
    assert estimate_mos("PCMU", 1.0, 300) == 1.0
