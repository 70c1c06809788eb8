"""Hierarchical bootstrap, contrasts, Holm families, seed t intervals, clustered OLS and the
two-stage cluster bootstrap, each checked against an independent computation (exact enumeration
of the bootstrap distribution, scipy, explicit loops, closed forms, coverage by simulation)."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from scipy import stats as sps

from azrlib.metrics.stats import (
    Arm,
    bootstrap_p,
    cluster_bootstrap,
    clustered_ols,
    drop_difference,
    gap,
    gap_change,
    hierarchical_bootstrap,
    moment_contrast,
    holm_family,
    seed_t_interval,
    summarize,
)


def exact_bootstrap_moments(values: np.ndarray) -> tuple[float, float]:
    """Mean and variance of the two-level bootstrap mean by enumerating every equally likely draw
    sequence: problems (P^P sequences), then seeds (S^S sequences), independently."""
    s_count, p_count = values.shape
    outcomes = []
    for problems in itertools.product(range(p_count), repeat=p_count):
        for seeds in itertools.product(range(s_count), repeat=s_count):
            outcomes.append(np.mean([values[s, list(problems)].mean() for s in seeds]))
    outcomes = np.array(outcomes)
    return float(outcomes.mean()), float(outcomes.var())


def test_bootstrap_matches_exact_enumeration():
    values = np.array([[0.0, 0.5, 1.0], [0.25, 0.25, 0.75]])  # 2 seeds x 3 problems
    mean, var = exact_bootstrap_moments(values)
    boot = hierarchical_bootstrap({"a": Arm(values)}, n_bootstrap=200_000, seed=1)
    reps = boot.replicates["a"]
    assert boot.estimate["a"] == pytest.approx(values.mean())
    assert reps.mean() == pytest.approx(mean, abs=3 * np.sqrt(var / len(reps)) + 1e-12)
    assert reps.var() == pytest.approx(var, rel=0.02)


def test_paired_difference_matches_exact_enumeration():
    """Two arms on the same problems: the problem draw is shared, seed draws are independent."""
    a = np.array([[0.0, 1.0, 0.5]])  # one seed (a base)
    b = np.array([[0.5, 1.0, 0.0], [1.0, 0.5, 0.5]])
    outcomes = []
    for problems in itertools.product(range(3), repeat=3):
        pa = a[0, list(problems)].mean()
        for seeds in itertools.product(range(2), repeat=2):
            outcomes.append(np.mean([b[s, list(problems)].mean() for s in seeds]) - pa)
    exact_var = np.var(outcomes)
    boot = hierarchical_bootstrap({"a": Arm(a), "b": Arm(b)}, n_bootstrap=200_000, seed=2)
    diff = boot.replicates["b"] - boot.replicates["a"]
    assert diff.mean() == pytest.approx(np.mean(outcomes), abs=0.002)
    assert diff.var() == pytest.approx(exact_var, rel=0.02)


def test_pairing_on_problems_and_seeds_cancels_shared_variation():
    rng = np.random.default_rng(0)
    a = rng.random((3, 50, 2))
    b = a + 0.1
    paired = hierarchical_bootstrap({"a": Arm(a, seeds="s"), "b": Arm(b, seeds="s")}, 500, seed=0)
    d = paired.replicates["b"] - paired.replicates["a"]
    np.testing.assert_allclose(d, 0.1, atol=1e-12)
    # Without seed pairing (or on different problem sets) the difference varies.
    unpaired = hierarchical_bootstrap({"a": Arm(a), "b": Arm(b)}, 500, seed=0)
    assert (unpaired.replicates["b"] - unpaired.replicates["a"]).std() > 0.005
    other_set = hierarchical_bootstrap({"a": Arm(a, seeds="s"), "b": Arm(b, problems="other", seeds="s")}, 500, seed=0)
    assert (other_set.replicates["b"] - other_set.replicates["a"]).std() > 0.005


def test_no_resampling_gives_the_estimate_and_blocks_do_not_matter(monkeypatch):
    rng = np.random.default_rng(3)
    values = rng.random((2, 7, 3))
    boot = hierarchical_bootstrap({"a": Arm(values)}, 20, resample_seeds=False, resample_problems=False)
    np.testing.assert_allclose(boot.replicates["a"], np.broadcast_to(values.mean(axis=(0, 1)), (20, 3)))
    # Block size changes how draws are grouped, not their distribution's support: replicates stay
    # within the range of per-seed, per-problem means and have the right shape.
    import azrlib.metrics.stats as st
    monkeypatch.setattr(st, "_BLOCK_CELLS", 7 * 3)
    small_blocks = hierarchical_bootstrap({"a": Arm(values)}, 10, seed=0)
    assert small_blocks.replicates["a"].shape == (10, 3)
    assert np.all(small_blocks.replicates["a"] >= values.min()) and np.all(small_blocks.replicates["a"] <= values.max())


def test_bad_arms_are_rejected():
    with pytest.raises(ValueError, match="problem set"):
        hierarchical_bootstrap({"a": Arm(np.zeros((1, 3))), "b": Arm(np.zeros((1, 4)))})
    with pytest.raises(ValueError, match="seed pairing"):
        hierarchical_bootstrap({"a": Arm(np.zeros((2, 3)), seeds="s"), "b": Arm(np.zeros((3, 3)), seeds="s")})
    with pytest.raises(ValueError, match="finite"):
        Arm(np.array([[0.0, np.nan]]))
    with pytest.raises(ValueError, match="shape"):
        Arm(np.zeros(3))


def test_contrasts_are_the_linear_combinations_of_replicates():
    rng = np.random.default_rng(4)
    arms = {name: Arm(rng.random((3, 20, 4))) for name in ("base", "sp", "rl")}
    arms["base"] = Arm(rng.random((1, 20, 4)))
    boot = hierarchical_bootstrap(arms, 2000, seed=5)
    e, r = boot.estimate, boot.replicates
    g = gap(boot, "sp", "base", 0)
    assert g.estimate == pytest.approx(e["sp"][0] - e["base"][0])
    lo, hi = np.quantile(r["sp"][:, 0] - r["base"][:, 0], [0.025, 0.975])
    assert (g.ci_low, g.ci_high) == pytest.approx((lo, hi))
    ch = gap_change(boot, "sp", "base", 0, 3)
    manual = (r["sp"][:, 3] - r["base"][:, 3]) - (r["sp"][:, 0] - r["base"][:, 0])
    assert ch.se == pytest.approx(manual.std(ddof=1))
    dd = drop_difference(boot, "sp", "rl", "base", 0, 3)
    manual_dd = manual - ((r["rl"][:, 3] - r["base"][:, 3]) - (r["rl"][:, 0] - r["base"][:, 0]))
    assert dd.estimate == pytest.approx((e["sp"][3] - e["sp"][0]) - (e["rl"][3] - e["rl"][0]))
    assert dd.ci_low == pytest.approx(np.quantile(manual_dd, 0.025))
    with pytest.raises(KeyError):
        gap(boot, "nope", "base", 0)


def test_bootstrap_p_by_hand():
    reps = np.array([-1.0, 0.5, 1.0, 2.0, 3.0])
    # P(<= 0) = (1 + 1) / 6, P(>= 0) = (4 + 1) / 6 -> p = 2 * 2/6
    assert bootstrap_p(reps) == pytest.approx(4 / 6)
    assert bootstrap_p(np.ones(999)) == pytest.approx(2 / 1000)
    s = summarize("x", 1.0, np.arange(101.0))
    assert (s.ci_low, s.ci_high) == pytest.approx((2.5, 97.5))


def test_holm_family_matches_a_step_down_loop():
    rng = np.random.default_rng(6)
    ests = [summarize(f"t{i}", 0.0, rng.normal(loc, 1, 999)) for i, loc in enumerate([0.1, 2.5, 1.0, 3.5, -2.2])]
    holm_family(ests)
    p = np.array([e.p_value for e in ests])
    order = np.argsort(p)
    expected = np.empty(len(p))
    running = 0.0
    for rank, i in enumerate(order):
        running = max(running, min(1.0, (len(p) - rank) * p[i]))
        expected[i] = running
    np.testing.assert_allclose([e.p_holm for e in ests], expected)


def test_seed_t_interval_matches_scipy():
    x = [0.012, -0.004, 0.02]
    e = seed_t_interval(x)
    ref = sps.ttest_1samp(x, 0.0)
    ci = ref.confidence_interval(0.95)
    assert (e.ci_low, e.ci_high) == pytest.approx((ci.low, ci.high))
    assert e.p_value == pytest.approx(ref.pvalue)
    with pytest.raises(ValueError):
        seed_t_interval([1.0])


def _cr1_by_loops(y, X, g):
    n, k = X.shape
    beta = np.linalg.lstsq(X, y, rcond=None)[0]
    u = y - X @ beta
    bread = np.linalg.inv(X.T @ X)
    meat = np.zeros((k, k))
    labels = sorted(set(g.tolist()))
    for c in labels:
        s = np.zeros(k)
        for i in range(n):
            if g[i] == c:
                s += X[i] * u[i]
        meat += np.outer(s, s)
    G = len(labels)
    return beta, np.sqrt(np.diag(G / (G - 1) * (n - 1) / (n - k) * bread @ meat @ bread))


def test_clustered_ols_matches_loops_and_hc1():
    rng = np.random.default_rng(7)
    n = 60
    X = np.column_stack([np.ones(n), rng.random(n), rng.random(n)])
    g = rng.integers(0, 5, n)
    y = X @ [1.0, -2.0, 0.5] + rng.normal(0, 1, n) + g * 0.3
    res = clustered_ols(y, X, g)
    beta, se = _cr1_by_loops(y, X, g)
    np.testing.assert_allclose(res.coef, beta)
    np.testing.assert_allclose(res.se, se)
    assert res.dof == 4
    # Every observation its own cluster: CR1 is HC1 = N/(N-K) (X'X)^-1 X' diag(u^2) X (X'X)^-1.
    single = clustered_ols(y, X, np.arange(n))
    u = y - X @ beta
    bread = np.linalg.inv(X.T @ X)
    hc1 = n / (n - 3) * bread @ (X.T * u**2) @ X @ bread
    np.testing.assert_allclose(single.se, np.sqrt(np.diag(hc1)))


def test_clustered_ols_covers_under_cluster_correlation_where_naive_ols_does_not():
    rng = np.random.default_rng(8)
    covered, naive_covered, sims = 0, 0, 300
    for _ in range(sims):
        G, m = 20, 15
        g = np.repeat(np.arange(G), m)
        x = np.repeat(rng.normal(size=G), m) + 0.2 * rng.normal(size=G * m)  # x varies mostly by cluster
        y = 0.5 * x + np.repeat(rng.normal(size=G), m) + 0.5 * rng.normal(size=G * m)
        X = np.column_stack([np.ones_like(x), x])
        e = clustered_ols(y, X, g, ["c", "x"]).estimate("x")
        covered += e.ci_low <= 0.5 <= e.ci_high
        fit = sps.linregress(x, y)
        half = sps.t.ppf(0.975, len(x) - 2) * fit.stderr
        naive_covered += fit.slope - half <= 0.5 <= fit.slope + half
    assert 0.88 <= covered / sims <= 0.99
    assert naive_covered / sims < 0.8


def test_cluster_bootstrap_moves_whole_units_and_matches_the_iid_se():
    clusters = np.array([0, 0, 0, 0, 1, 1, 1, 1])
    units = np.array([0, 0, 1, 1, 2, 2, 3, 3])
    seen = cluster_bootstrap(lambda r: r, clusters, units, n_bootstrap=200, seed=0)
    for rows in seen:
        assert len(rows) == 8
        pairs = set(zip(rows[::2].tolist(), rows[1::2].tolist()))
        assert pairs <= {(0, 1), (2, 3), (4, 5), (6, 7)}  # a unit's two rows always together
    # One cluster, every row its own unit: the ordinary bootstrap, SE of a mean ~ sd / sqrt(n).
    rng = np.random.default_rng(9)
    x = rng.normal(size=400)
    reps = cluster_bootstrap(lambda r: x[r].mean(), np.zeros(400), None, n_bootstrap=2000, seed=1)
    assert reps.std() == pytest.approx(x.std() / np.sqrt(400), rel=0.08)


# ------------------------------------------------------------------------ crossed-design moments


def _anova_by_loops(x):
    """(MS_problem, MS_seed, MS_resid) of a seeds x problems table by explicit sums."""
    S, P = len(x), len(x[0])
    grand = sum(sum(r) for r in x) / (S * P)
    seed_m = [sum(x[s]) / P for s in range(S)]
    prob_m = [sum(x[s][p] for s in range(S)) / S for p in range(P)]
    ms_p = S * sum((m - grand) ** 2 for m in prob_m) / (P - 1)
    ms_s = P * sum((m - grand) ** 2 for m in seed_m) / (S - 1)
    ss_e = sum((x[s][p] - seed_m[s] - prob_m[p] + grand) ** 2 for s in range(S) for p in range(P))
    return ms_p, ms_s, ss_e / ((S - 1) * (P - 1))


def test_moment_contrast_one_group_is_the_two_way_anova_variance():
    rng = np.random.default_rng(10)
    a = rng.normal(size=(3, 25)) + rng.normal(size=(3, 1)) * 0.5
    b = rng.normal(size=(3, 25))
    arms = {"a": Arm(a[:, :, None], seeds="s"), "b": Arm(b[:, :, None], seeds="s")}
    e = moment_contrast(arms, [("b", 0, 1.0), ("a", 0, -1.0)])
    ms_p, ms_s, ms_e = _anova_by_loops((b - a).tolist())
    var = (ms_p + ms_s - ms_e) / (3 * 25)
    assert e.estimate == pytest.approx((b - a).mean())
    assert e.se == pytest.approx(np.sqrt(var))
    comps = [(ms_p / (3 * 25), 24), ((ms_s - ms_e) / (3 * 25), 2)]
    dof = var**2 / sum(v**2 / d for v, d in comps)
    assert e.ci_high - e.estimate == pytest.approx(sps.t.ppf(0.975, dof) * np.sqrt(var))


def test_moment_interval_is_calibrated_where_the_two_level_bootstrap_is_conservative():
    """Crossed random effects y[s, p] = a_p + b_s + e_sp, an arm of 3 seeds against a fixed base
    on 100 problems, residual-dominated: the moment variance (seed term truncated at 0) is close
    to the true variance of the contrast and a little above it, its interval covers about 95%; the
    bootstrap's variance is larger still (it counts the residual in both levels)."""
    rng = np.random.default_rng(11)
    sims, S, P = 400, 3, 100
    est, mvar, bvar, covered = [], [], [], 0
    for i in range(sims):
        a = rng.normal(0, 0.3, P)
        base = a + rng.normal(0, 0.3, P)
        arm = 0.1 + a[None, :] + rng.normal(0, 0.05, (S, 1)) + rng.normal(0, 1.0, (S, P))
        arms = {"base": Arm(base[None, :, None]), "arm": Arm(arm[:, :, None])}
        terms = [("arm", 0, 1.0), ("base", 0, -1.0)]
        m = moment_contrast(arms, terms)
        est.append(m.estimate)
        mvar.append(m.se**2)
        covered += m.ci_low <= 0.1 <= m.ci_high
        if i < 60:
            boot = hierarchical_bootstrap(arms, 800, seed=i)
            bvar.append(np.var(boot.replicates["arm"][:, 0] - boot.replicates["base"][:, 0]))
    true_var = 0.3**2 / P + 0.05**2 / S + 1.0 / (S * P)  # the base's own noise is per problem
    assert np.var(est) == pytest.approx(true_var, rel=0.2)
    assert true_var <= np.mean(mvar) <= 1.3 * true_var
    assert 0.92 <= covered / sims <= 0.99
    assert np.mean(bvar) > 1.15 * np.mean(mvar)
    print(f"variance: true {true_var:.5f}, moment {np.mean(mvar):.5f}, bootstrap {np.mean(bvar):.5f}; "
          f"moment coverage {covered / sims:.3f}")


def test_moment_contrast_rejects_what_it_cannot_do():
    arms = {"a": Arm(np.zeros((2, 5)), seeds="s"), "b": Arm(np.ones((2, 4)), problems="other", seeds="s")}
    with pytest.raises(ValueError, match="problem sets"):
        moment_contrast(arms, [("a", None, 1.0), ("b", None, -1.0)])
    with pytest.raises(KeyError):
        moment_contrast(arms, [("c", None, 1.0)])
