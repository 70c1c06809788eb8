"""Power calculations: the closed form against hand arithmetic, the logit-normal fit against the
moments it should reproduce, and the simulated bootstrap's standard error against the spread of
the estimate over simulations (the quantity it estimates)."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy.special import expit

from azrlib.metrics.power import (
    ArmSpec,
    analytic_half_width,
    binomial_half_width,
    fit_logit_normal,
    simulate_design,
    simulate_trend,
)


def test_analytic_half_width_by_hand():
    z = 1.959963984540054
    assert analytic_half_width(0.2, 100) == pytest.approx(z * 0.02)
    assert analytic_half_width(0.2, 100, [0.03], [3]) == pytest.approx(z * math.sqrt(0.0004 + 0.0009 / 3))
    assert binomial_half_width(0.5, 100) == pytest.approx(z * 0.05)
    with pytest.raises(ValueError):
        analytic_half_width(0.2, 100, [0.1], [])


def test_fit_logit_normal_reproduces_the_moments():
    mu, tau = fit_logit_normal(0.13, 0.62, 16)
    p = expit(np.random.default_rng(0).normal(mu, tau, 400_000))
    assert p.mean() == pytest.approx(0.13, abs=0.005)
    assert np.mean((1 - p) ** 16) == pytest.approx(0.62, abs=0.005)


def test_simulated_bootstrap_se_matches_the_sampling_sd_with_one_seed():
    """One seed per arm, no seed effect: the problem-level bootstrap is consistent, so its mean SE
    matches the estimate's SD over simulations and the 95% interval covers the truth about 95%."""
    arms = {"base": ArmSpec(), "tuned": ArmSpec(effect=0.4, noise_sd=0.5)}
    out = simulate_design(arms, {"gap@1": [("tuned", 0, 1.0), ("base", 0, -1.0)]}, n_problems=200, n_samples=8,
                          ks=[1, 8], mu=-1.5, tau=1.5, n_sims=150, n_bootstrap=400, seed=3, truth_draws=200_000)
    r = out["gap@1"]
    assert r["mean_estimate"] == pytest.approx(r["truth"], abs=3 * r["sd_estimate"] / math.sqrt(150) + 0.003)
    for method in ("bootstrap", "moment"):
        m = r[method]
        assert m["mean_se"] == pytest.approx(r["sd_estimate"], rel=0.2)
        assert 0.88 <= m["coverage"] <= 1.0
        assert m["power"] > 0.5  # the effect (about +0.05) is several SEs from 0
    assert r["bootstrap"]["mean_half_width"] == pytest.approx(1.96 * r["bootstrap"]["mean_se"], rel=0.1)


def test_simulated_seed_shared_problem_deviation_is_not_averaged_away():
    """problem_sd (shared by an arm's seeds) adds a per-problem variance that more seeds cannot
    remove; noise_sd (per seed) is divided by the seed count."""
    spec = dict(n_problems=100, n_samples=8, ks=[1], mu=-1.0, tau=1.0, n_sims=60, n_bootstrap=200, truth_draws=50_000)
    c = {"g": [("t", 0, 1.0), ("base", 0, -1.0)]}
    shared = simulate_design({"base": ArmSpec(), "t": ArmSpec(n_seeds=4, problem_sd=1.0)}, c, seed=4, **spec)
    per_seed = simulate_design({"base": ArmSpec(), "t": ArmSpec(n_seeds=4, noise_sd=1.0)}, c, seed=4, **spec)
    assert shared["g"]["sd_estimate"] > 1.15 * per_seed["g"]["sd_estimate"]
    assert shared["g"]["moment"]["mean_se"] > 1.15 * per_seed["g"]["moment"]["mean_se"]


def test_simulated_trend_test_with_three_seeds():
    """With seed-specific slopes and 3 seeds, the clustered t(2) interval keeps its coverage while
    the two-stage cluster bootstrap (10 distinct seed draws) is too narrow; without seed-specific
    slopes both cover and the bootstrap is the narrower."""
    varying = simulate_trend(3, 80, -0.1, 0.18, seed_slope_sd=0.15, n_sims=60, n_bootstrap=100, seed=1)
    assert varying["clustered"]["coverage"] >= 0.88
    assert varying["bootstrap"]["coverage"] < varying["clustered"]["coverage"] - 0.05
    common = simulate_trend(3, 80, -0.1, 0.18, seed_slope_sd=0.0, n_sims=60, n_bootstrap=100, seed=2)
    assert common["bootstrap"]["coverage"] >= 0.88 and common["clustered"]["coverage"] >= 0.88
    assert common["bootstrap"]["mean_half_width"] < common["clustered"]["mean_half_width"]
