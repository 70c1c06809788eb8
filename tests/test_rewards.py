"""Rewards against hand-computed values (AZR paper Eq. 4-6, the seed paper's Eq. 3)."""

import pytest

from azrlib.rewards import learnability_reward, proposer_total_reward, solver_total_reward


@pytest.mark.parametrize("p,azr,azr_code,band", [
    (0.0, 0.0, -0.5, 0.0),
    (1.0, 0.0, -0.5, 0.0),
    (0.125, 0.875, 0.875, 0.25),
    (0.5, 0.5, 0.5, 1.0),
    (0.75, 0.25, 0.25, 0.5),
])
def test_learnability_variants(p, azr, azr_code, band):
    assert learnability_reward(p, "azr") == pytest.approx(azr)
    assert learnability_reward(p, "azr_code") == pytest.approx(azr_code)
    assert learnability_reward(p, "band") == pytest.approx(band)


def test_band_peaks_at_half_and_azr_prefers_hard_tasks():
    grid = [k / 8 for k in range(1, 8)]
    assert max(grid, key=lambda p: learnability_reward(p, "band")) == 0.5
    assert max(grid, key=lambda p: learnability_reward(p, "azr")) == 1 / 8


def test_bad_arguments_are_errors():
    with pytest.raises(ValueError, match="proposer reward"):
        learnability_reward(0.5, "nope")
    with pytest.raises(ValueError, match="solve rate"):
        learnability_reward(1.5)


def test_format_aware_composition():
    assert solver_total_reward(format_ok=True, correct=True) == 1.0
    assert solver_total_reward(format_ok=True, correct=False) == -0.5
    assert solver_total_reward(format_ok=False, correct=True) == -1.0
    assert proposer_total_reward(True, True, 0.25, "azr") == 0.75
    assert proposer_total_reward(True, False, None) == -0.5
    assert proposer_total_reward(True, False, None, invalid_proposal_reward=-1.0) == -1.0
    assert proposer_total_reward(False, True, 0.25) == -1.0
