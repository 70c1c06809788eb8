"""The research-question tests of azrlib.metrics.rq against independent computations: pass@k by
exact rationals and the existing one-level paired bootstrap, brute-force subsets, exact bin
enumeration, separate per-model regressions, and scipy's t test."""

from __future__ import annotations

import math
from fractions import Fraction

import numpy as np
import pytest
from scipy import stats as sps

from azrlib.metrics.passk import SampleCounts, paired_bootstrap
from azrlib.metrics.rq import (
    leash_check,
    leash_subset,
    passk_values,
    rq1_arms,
    rq1_bootstrap,
    rq1_family,
    rq2_difficulty_trend,
    rq2_length_interaction,
    rq3_family,
    rq5_comparison,
    training_fraction_bin,
)
from azrlib.metrics.stats import Arm, hierarchical_bootstrap


def counts(c, n=32, ids=None):
    c = np.asarray(c, dtype=np.int64)
    ids = ids or [f"p{i}" for i in range(len(c))]
    return SampleCounts(list(ids), np.full(len(c), n, dtype=np.int64), c)


def simulate(p, n, rng):
    return counts(rng.binomial(n, p), n)


# ------------------------------------------------------------------------------------- RQ1


def test_passk_values_are_exact_pass_at_k():
    s = counts([0, 3, 32, 31], n=32)
    v = passk_values([s], [1, 4, 32], ["p3", "p1"])  # order follows the given ids
    for row, c in enumerate([31, 3]):
        for col, k in enumerate([1, 4, 32]):
            exact = 1 - Fraction(math.comb(32 - c, k), math.comb(32, k))
            assert v[0, row, col] == pytest.approx(float(exact), abs=1e-12)


def test_rq1_one_seed_each_matches_the_one_level_paired_bootstrap():
    rng = np.random.default_rng(0)
    p = rng.beta(0.4, 2.0, 200)
    base, tuned = simulate(p, 16, rng), simulate(np.clip(p * 1.2, 0, 1), 16, rng)
    boot, notes = rq1_bootstrap(base, {"selfplay": [tuned]}, [1, 4, 16], n_bootstrap=20_000, seed=1)
    ref = paired_bootstrap(base, tuned, [1, 4, 16], n_bootstrap=20_000, seed=7)
    diff = boot.replicates["selfplay"] - boot.replicates["base"]
    np.testing.assert_allclose(boot.estimate["selfplay"] - boot.estimate["base"], ref["delta"], atol=1e-12)
    np.testing.assert_allclose(np.quantile(diff, 0.025, axis=0), ref["ci_low"], atol=0.004)
    np.testing.assert_allclose(np.quantile(diff, 0.975, axis=0), ref["ci_high"], atol=0.004)
    assert notes == []


def test_rq1_seed_level_adds_the_between_seed_variance():
    """Three seeds whose per-problem values differ by a constant shift per seed: the two-level
    bootstrap variance is the problem-level variance plus var_pop(shifts) / 3."""
    rng = np.random.default_rng(1)
    base = rng.random((1, 400, 1))
    shifts = np.array([-0.05, 0.0, 0.08])
    arm = base + 0.1 + shifts[:, None, None]
    boot = hierarchical_bootstrap({"base": Arm(base), "sp": Arm(arm)}, 40_000, seed=2)
    d = (boot.replicates["sp"] - boot.replicates["base"])[:, 0]
    assert d.var() == pytest.approx(shifts.var() / 3, rel=0.03)  # the problem part cancels exactly


def test_rq1_family_signs_holm_and_dropped_problems():
    rng = np.random.default_rng(2)
    p = rng.beta(0.3, 1.5, 400)
    base = simulate(p, 32, rng)
    # Self-play: sharper (higher pass@1, same reach); RLVR: sharper still and loses reach.
    sp = [simulate(np.where(p > 0.05, np.clip(p * 1.6, 0, 1), p), 32, rng) for _ in range(3)]
    rl = [simulate(np.where(p > 0.2, np.clip(p * 2.0, 0, 1), p * 0.1), 32, rng) for _ in range(3)]
    extra = SampleCounts(base.problem_ids + ["only_base"], np.append(base.n, 32), np.append(base.c, 1))
    boot, notes = rq1_bootstrap(extra, {"selfplay": sp, "rlvr": rl}, [1, 8, 32], n_bootstrap=4000, seed=0)
    assert notes and "1 problem" in notes[0]
    arms, _ = rq1_arms(extra, {"selfplay": sp, "rlvr": rl}, [1, 8, 32])
    tests = {t["test"]: t for t in rq1_family(boot, [1, 8, 32], arms=arms)}
    for t in tests.values():  # both interval methods estimate the same contrast
        assert t["moment"].estimate == pytest.approx(t["estimate"].estimate)
        assert t["moment"].p_holm is not None
    first = tests["selfplay - base, pass@1"]["estimate"]
    assert first.ci_low > 0  # self-play beats the base at k = 1
    narrowing = tests["(gap@32) - (gap@1), selfplay"]["estimate"]
    assert narrowing.ci_high < 0
    drop = tests["gap change selfplay - gap change rlvr"]["estimate"]
    assert drop.ci_low > 0
    ps = [t["estimate"].p_value for t in tests.values()]
    holm = [t["estimate"].p_holm for t in tests.values()]
    assert all(h >= q for h, q in zip(holm, ps)) and max(holm) <= 1
    assert min(holm) == pytest.approx(min(1.0, len(ps) * min(ps)))


def test_leash_subset_by_brute_force():
    tuned = counts([0, 1, 5, 0, 2], n=32)
    base = counts([0, 0, 1, 0, 0], n=32)
    assert leash_subset(tuned, base, 32) == ["p1", "p4"]
    with pytest.raises(ValueError, match="n >= k"):
        leash_subset(counts([1], n=16), counts([0], n=16), 32)


def test_leash_check_with_an_injected_sampler():
    truth = {"a": 0.0, "b": 0.05, "c": 0.0, "d": 0.3}
    rng = np.random.default_rng(3)
    calls = []

    def sample_base(ids, n):
        calls.append((tuple(ids), n))
        return SampleCounts(list(ids), np.full(len(ids), n), np.array([rng.binomial(n, truth[i]) for i in ids]))

    res = leash_check(sample_base, ["a", "b", "c", "d"], n=256)
    assert calls == [(("a", "b", "c", "d"), 256)]
    assert res.still_unsolved == ["a", "c"]  # P(b never solved in 256) = 0.95^256 ~ 2e-6
    assert res.fraction_unsolved == 0.5
    lo, hi = res.ci()
    ref = sps.binomtest(2, 4).proportion_ci(0.95, method="exact")
    assert (lo, hi) == pytest.approx((ref.low, ref.high))
    with pytest.raises(ValueError, match="n >= 256"):
        leash_check(sample_base, ["a"], n=128)
    with pytest.raises(ValueError, match="fewer than"):
        leash_check(lambda ids, n: SampleCounts(list(ids), np.full(len(ids), 10), np.zeros(len(ids), int)), ["a"], 256)
    assert leash_check(sample_base, [], 256).n_subset == 0
    assert leash_check(sample_base, ["a"], n=16, min_n=16).still_unsolved == ["a"]  # a smoke-test size


# ------------------------------------------------------------------------------------- RQ2


@pytest.mark.parametrize("total,bins", [(40, 8), (10, 8), (7, 3), (100, 8)])
def test_training_fraction_bins_by_exact_fractions(total, bins):
    got = training_fraction_bin(np.arange(1, total + 1), total, bins)
    want = [math.floor(Fraction(s - 1, total) * bins) for s in range(1, total + 1)]
    assert got.tolist() == want
    sizes = np.bincount(got, minlength=bins)
    if total >= bins:
        assert sizes.max() - sizes.min() <= 1 and sizes.min() >= 1
    with pytest.raises(ValueError):
        training_fraction_bin([0], total, bins)


def _rq2_rows(rng, slope=-0.3, inter=40.0, seeds=(0, 1, 2), per_seed=150, total=40):
    rows = []
    for s in seeds:
        shift = rng.normal(0, 0.03)
        for q in range(per_seed):
            step = int(rng.integers(1, total + 1))
            frac = (step - 0.5) / total
            base_rate = float(np.clip(0.6 + slope * frac + shift + rng.normal(0, 0.1), 0, 1))
            d = 1 - base_rate
            for model, rate, length in (("base", base_rate, 50 + 10 * d),
                                        ("final", min(1.0, base_rate + 0.1), 50 + (10 + inter) * d)):
                rows.append({"seed": s, "qid": f"q{q}", "step": step, "model": model, "solve_rate": rate,
                             "lengths": [length + rng.normal(0, 5), length + rng.normal(0, 5)]})
    return rows, {s: total for s in seeds}


def test_rq2_trend_recovers_the_slope_and_matches_pooled_ols():
    rng = np.random.default_rng(4)
    rows, total = _rq2_rows(rng)
    res = rq2_difficulty_trend(rows, total, "base", n_bootstrap=300, seed=0)
    base = [r for r in rows if r["model"] == "base"]
    x = [(r["step"] - 0.5) / 40 for r in base]
    slope = np.polyfit(x, [r["solve_rate"] for r in base], 1)[0]
    for e in res.values():
        assert e.estimate == pytest.approx(slope)
        assert e.ci_low < -0.3 < e.ci_high or abs(e.estimate + 0.3) < 0.05
        assert e.ci_high < 0
    assert res["clustered"].notes[0].endswith("t(2)")


def test_rq2_interaction_equals_difference_of_separate_slopes():
    rng = np.random.default_rng(5)
    rows, total = _rq2_rows(rng, inter=40.0)
    res = rq2_length_interaction(rows, total, "base", "final", n_bootstrap=300, seed=0)
    base = {(r["seed"], r["qid"]): r for r in rows if r["model"] == "base"}
    d = np.array([1 - base[k]["solve_rate"] for k in base])
    slopes = []
    for model in ("base", "final"):
        by = {(r["seed"], r["qid"]): np.mean(r["lengths"]) for r in rows if r["model"] == model}
        slopes.append(np.polyfit(d, [by[k] for k in base], 1)[0])
    assert res["clustered"].estimate == pytest.approx(slopes[1] - slopes[0])
    assert res["bootstrap"].ci_low > 0 and res["clustered"].ci_low > 0
    # a question drawn twice (its rows repeated, as when one proposal lands in two bins) counts once
    repeated = rows + [r for r in rows if r["qid"] == "q0"]
    again = rq2_length_interaction(repeated, total, "base", "final", n_bootstrap=10)
    assert again["clustered"].estimate == pytest.approx(res["clustered"].estimate)
    broken = [r for r in rows if not (r["model"] == "final" and r["qid"] == "q0")]
    with pytest.raises(ValueError, match="same"):
        rq2_length_interaction(broken, total, "base", "final", n_bootstrap=10)


# ------------------------------------------------------------------------------------- RQ3


def test_rq3_family_contrasts_by_hand():
    rng = np.random.default_rng(6)
    ckpts = 5
    solver = 2.0 - 0.2 * np.arange(ckpts) + rng.normal(0, 0.05, (3, 60, ckpts))
    frozen = 2.0 - 0.05 * np.arange(ckpts) + rng.normal(0, 0.05, (3, 60, ckpts))
    proposer = 2.5 + rng.normal(0, 0.05, (3, 40, ckpts))  # its own prompt set
    boot = hierarchical_bootstrap({"selfplay_solver": Arm(solver, seeds="s"), "frozen_solver": Arm(frozen),
                                   "selfplay_proposer": Arm(proposer, problems="proposer", seeds="s")}, 3000, seed=0)
    tests = rq3_family(boot)
    falls, frozen_higher, prop_gt = (t["estimate"] for t in tests)
    assert falls.estimate == pytest.approx(solver[:, :, -1].mean() - solver[:, :, 0].mean())
    assert frozen_higher.estimate == pytest.approx(frozen[:, :, -1].mean() - solver[:, :, -1].mean())
    assert prop_gt.estimate == pytest.approx(proposer.mean() - solver.mean())
    assert falls.ci_high < 0 and frozen_higher.ci_low > 0 and prop_gt.ci_low > 0
    assert all(t["estimate"].p_holm is not None for t in tests)


# ------------------------------------------------------------------------------------- RQ5


def test_rq5_paired_by_seed():
    rng = np.random.default_rng(7)
    p = rng.beta(0.5, 2, 300)
    ref = {s: simulate(p, 8, rng) for s in (0, 1, 2)}
    var = {s: simulate(np.clip(p - 0.02, 0, 1), 8, rng) for s in (0, 1, 2)}
    out = rq5_comparison(ref, var, k=1, n_bootstrap=4000, seed=0)
    manual = [var[s].c.mean() / 8 - ref[s].c.mean() / 8 for s in (0, 1, 2)]
    np.testing.assert_allclose(out["per_seed_difference"], manual)
    t = sps.ttest_1samp(manual, 0.0).confidence_interval(0.95)
    assert (out["t_over_seeds"].ci_low, out["t_over_seeds"].ci_high) == pytest.approx((t.low, t.high))
    b = out["bootstrap"]
    assert b.estimate == pytest.approx(np.mean(manual))
    assert out["bootstrap_excludes_0"] == (not b.ci_low <= 0 <= b.ci_high)
    assert out["bootstrap_excludes_paper"] == (not b.ci_low <= -0.02 <= b.ci_high)
    assert out["n_problems"] == 300 and out["seeds"] == [0, 1, 2]
    assert out["moment"].estimate == pytest.approx(np.mean(manual))
    assert out["moment_excludes_0"] == (not out["moment"].ci_low <= 0 <= out["moment"].ci_high)
    assert out["notes"] == []
    partial = rq5_comparison(ref, {**var, 7: var[0]}, k=1, n_bootstrap=200)
    assert partial["seeds"] == [0, 1, 2] and "[7]" in partial["notes"][0]
    with pytest.raises(ValueError, match="two seeds"):
        rq5_comparison({0: ref[0]}, {0: var[0]})
