"""Statistics for comparing trained arms: a hierarchical bootstrap over problems and seeds,
contrasts of its replicates (differences, differences of differences), a crossed-design moment
interval for the same contrasts, Holm over a family, seed-level t intervals, and an OLS with
cluster-robust errors plus a two-stage cluster bootstrap.

The research questions compare *arms* (the base model, self-play seeds, RLVR seeds, ...) measured
on a set of *problems* (held-out tasks, fixed prompts). Two sources of noise matter: which
problems were drawn, and which training seeds were run. `hierarchical_bootstrap` resamples both:

* level 1, problems: arms measured on the same problem set (`Arm.problems`, a label) share each
  replicate's problem draw, so the comparison is paired on problems and the problem-difficulty
  variance cancels in differences;
* level 2, seeds within arm: each arm's seeds are drawn with replacement; arms that share a seed
  label (`Arm.seeds`) share the draw, so a comparison is paired by seed (RQ5: the two reward arms
  are trained from the same seeds). A single-seed arm (the base) is fixed at that level.

Each arm's value is the mean over (drawn) seeds of the mean over (drawn) problems of a per-seed,
per-problem array (e.g. per-problem pass@k for every k, or per-prompt entropy at every checkpoint).
Only the multiplicity of each draw matters for a mean, so a replicate is a weighted mean with
multinomial weights; the result equals materialising the resampled indices.

Sampling noise of each per-problem value (e.g. which n samples a problem got) needs no third level:
it is part of the spread of the per-problem values, which level 1 already resamples.

Departures and caveats (none of the papers tests significance; these are this artifact's own):

* problems and seeds are crossed, so resampling both counts the per-(seed, problem) residual in
  both levels: the two-level bootstrap is conservative where that residual dominates (pass@k with
  few samples per problem). `moment_contrast` estimates the crossed design's variance components
  instead; docs/experiments/protocol.md reports both and their simulated coverage;
* with few seeds (3) the seed level alone is anti-conservative: the bootstrap variance of a mean
  of S values is (S-1)/S of the usual estimate, and a 3-point distribution has only 10 distinct
  resamples. `seed_t_interval` (Student t over per-seed values, S-1 degrees of freedom) is the
  conservative counterpart for per-seed summaries;
* the p-value is the two-sided bootstrap p that matches the percentile interval (the same
  definition as `azrlib.metrics.passk`), floored at 2 / (B + 1).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
from scipy import stats as sps

from azrlib.metrics.passk import holm_adjust

_BLOCK_CELLS = 2_000_000  # replicates are drawn in blocks of about this many (replicate x problem) cells


# --------------------------------------------------------------------------------------------
# Hierarchical bootstrap
# --------------------------------------------------------------------------------------------


@dataclass
class Arm:
    """Per-seed, per-problem values of one arm: `values` has shape (seeds, problems, *trailing).

    `problems` labels the problem set (arms with the same label must list the same problems in the
    same order and are paired on them); `seeds` labels a seed pairing (arms with the same label
    must have the same number of seeds in the same order); None means the arm's seeds are its own.
    """

    values: np.ndarray
    problems: str = "default"
    seeds: str | None = None

    def __post_init__(self) -> None:
        self.values = np.asarray(self.values, dtype=float)
        if self.values.ndim < 2:
            raise ValueError(f"Arm values need shape (seeds, problems, ...), got {self.values.shape}")
        if self.values.shape[0] < 1 or self.values.shape[1] < 1:
            raise ValueError(f"Arm values need at least one seed and one problem, got {self.values.shape}")
        if not np.all(np.isfinite(self.values)):
            raise ValueError("Arm values must be finite (a NaN or inf would poison every replicate)")


@dataclass
class Bootstrap:
    """Point estimates and bootstrap replicates of every arm's mean: estimate[arm] has the trailing
    shape, replicates[arm] has shape (n_bootstrap, *trailing)."""

    estimate: dict[str, np.ndarray]
    replicates: dict[str, np.ndarray]
    n_bootstrap: int
    n_seeds: dict[str, int]
    n_problems: dict[str, int]
    seed: int
    resample_seeds: bool
    resample_problems: bool


def _check_groups(arms: Mapping[str, Arm]) -> tuple[dict[str, int], dict[str, int]]:
    problem_sizes: dict[str, int] = {}
    seed_sizes: dict[str, int] = {}
    for name, arm in arms.items():
        p = arm.values.shape[1]
        if problem_sizes.setdefault(arm.problems, p) != p:
            raise ValueError(f"arm {name!r}: {p} problems, but problem set {arm.problems!r} has {problem_sizes[arm.problems]}")
        if arm.seeds is not None:
            s = arm.values.shape[0]
            if seed_sizes.setdefault(arm.seeds, s) != s:
                raise ValueError(f"arm {name!r}: {s} seeds, but seed pairing {arm.seeds!r} has {seed_sizes[arm.seeds]}")
    return problem_sizes, seed_sizes


def _weights(rng: np.random.Generator, size: int, count: int) -> np.ndarray:
    """(size, count) multinomial draw counts of `count` items drawn with replacement, divided by count."""
    return rng.multinomial(count, np.full(count, 1.0 / count), size=size) / count


def hierarchical_bootstrap(
    arms: Mapping[str, Arm],
    n_bootstrap: int = 10_000,
    seed: int = 0,
    resample_seeds: bool = True,
    resample_problems: bool = True,
) -> Bootstrap:
    """Bootstrap every arm's mean over seeds and problems (see the module docstring)."""
    if not arms:
        raise ValueError("need at least one arm")
    if n_bootstrap < 1:
        raise ValueError("n_bootstrap must be >= 1")
    problem_sizes, seed_sizes = _check_groups(arms)
    rng = np.random.default_rng(seed)
    estimate = {name: arm.values.mean(axis=(0, 1)) for name, arm in arms.items()}
    replicates = {name: np.empty((n_bootstrap, *arm.values.shape[2:])) for name, arm in arms.items()}
    block = max(1, _BLOCK_CELLS // max(problem_sizes.values()))
    for start in range(0, n_bootstrap, block):
        size = min(block, n_bootstrap - start)
        problem_w = {label: _weights(rng, size, p) if resample_problems else np.full((size, p), 1.0 / p)
                     for label, p in problem_sizes.items()}
        seed_w = {label: _weights(rng, size, s) if resample_seeds else np.full((size, s), 1.0 / s)
                  for label, s in seed_sizes.items()}
        for name, arm in arms.items():
            s_count, p_count = arm.values.shape[:2]
            trailing = arm.values.shape[2:]
            flat = arm.values.reshape(s_count, p_count, -1)  # (S, P, T)
            if arm.seeds is not None:
                sw = seed_w[arm.seeds]
            elif resample_seeds:
                sw = _weights(rng, size, s_count)
            else:
                sw = np.full((size, s_count), 1.0 / s_count)
            per_seed = np.einsum("bp,spt->bst", problem_w[arm.problems], flat)
            replicates[name][start : start + size] = np.einsum("bs,bst->bt", sw, per_seed).reshape(size, *trailing)
    return Bootstrap(estimate, replicates, n_bootstrap, {n: a.values.shape[0] for n, a in arms.items()},
                     {n: a.values.shape[1] for n, a in arms.items()}, seed, resample_seeds, resample_problems)


# --------------------------------------------------------------------------------------------
# Contrasts and families
# --------------------------------------------------------------------------------------------


@dataclass
class Estimate:
    """A scalar estimate with its percentile interval and two-sided bootstrap p (H0: value = 0)."""

    label: str
    estimate: float
    ci_low: float
    ci_high: float
    p_value: float
    se: float
    confidence: float
    n_bootstrap: int
    p_holm: float | None = None
    notes: list[str] = field(default_factory=list)

    @property
    def half_width(self) -> float:
        return (self.ci_high - self.ci_low) / 2


def bootstrap_p(replicates: np.ndarray, null: float = 0.0) -> float:
    """Two-sided bootstrap p of `null`: min(1, 2 min(P*(x <= null), P*(x >= null))), +1 corrected."""
    r = np.asarray(replicates, dtype=float)
    below = (np.sum(r <= null) + 1) / (len(r) + 1)
    above = (np.sum(r >= null) + 1) / (len(r) + 1)
    return float(min(1.0, 2 * min(below, above)))


def summarize(label: str, estimate: float, replicates: np.ndarray, confidence: float = 0.95) -> Estimate:
    """Percentile interval, bootstrap p and bootstrap standard error of one statistic."""
    if not 0.0 < confidence < 1.0:
        raise ValueError("confidence must be in (0, 1)")
    r = np.asarray(replicates, dtype=float)
    alpha = 1.0 - confidence
    lo, hi = np.quantile(r, [alpha / 2, 1 - alpha / 2])
    se = float(r.std(ddof=1)) if len(r) > 1 else float("nan")
    return Estimate(label, float(estimate), float(lo), float(hi), bootstrap_p(r), se, confidence, len(r))


Term = tuple[str, object, float]  # (arm, index into the trailing shape (None for scalars), coefficient)


def contrast(boot: Bootstrap, terms: Sequence[Term], label: str = "", confidence: float = 0.95) -> Estimate:
    """sum(coef * arm[index]) with its interval from the joint replicates.

    E.g. the gap at k index 0: [("selfplay", 0, 1), ("base", 0, -1)]; the difference of
    differences "self-play's drop from k=1 to k=32 is smaller than RLVR's":
    [("selfplay", -1, 1), ("base", -1, -1), ("selfplay", 0, -1), ("base", 0, 1),
     ("rlvr", -1, -1), ("base", -1, 1), ("rlvr", 0, 1), ("base", 0, -1)].
    """
    if not terms:
        raise ValueError("a contrast needs at least one term")
    est = 0.0
    reps = np.zeros(boot.n_bootstrap)
    for arm, index, coef in terms:
        if arm not in boot.estimate:
            raise KeyError(f"unknown arm {arm!r}; the bootstrap has {', '.join(boot.estimate)}")
        e, r = boot.estimate[arm], boot.replicates[arm]
        if index is None:
            if e.ndim:
                raise ValueError(f"arm {arm!r} has trailing shape {e.shape}; give an index")
            est += coef * float(e)
            reps += coef * r
        else:
            idx = index if isinstance(index, tuple) else (index,)
            est += coef * float(e[idx])
            reps += coef * r[(slice(None), *idx)]
    return summarize(label, est, reps, confidence)


def gap(boot: Bootstrap, arm: str, reference: str, index, label: str = "", confidence: float = 0.95) -> Estimate:
    """arm - reference at one index (e.g. one k)."""
    return contrast(boot, [(arm, index, 1.0), (reference, index, -1.0)], label or f"{arm} - {reference} [{index}]", confidence)


def gap_change(boot: Bootstrap, arm: str, reference: str, small, large, label: str = "",
               confidence: float = 0.95) -> Estimate:
    """(arm - reference)[large] - (arm - reference)[small]: negative when the gap narrows at `large`."""
    terms = [(arm, large, 1.0), (reference, large, -1.0), (arm, small, -1.0), (reference, small, 1.0)]
    return contrast(boot, terms, label or f"gap({arm}-{reference}) change {small}->{large}", confidence)


def drop_difference(boot: Bootstrap, arm: str, other: str, reference: str, small, large, label: str = "",
                    confidence: float = 0.95) -> Estimate:
    """gap_change(arm) - gap_change(other): positive when `arm`'s gap shrinks less than `other`'s."""
    terms = [(arm, large, 1.0), (reference, large, -1.0), (arm, small, -1.0), (reference, small, 1.0),
             (other, large, -1.0), (reference, large, 1.0), (other, small, 1.0), (reference, small, -1.0)]
    return contrast(boot, terms, label or f"gap change {arm} - {other} ({small}->{large})", confidence)


def holm_family(estimates: Sequence[Estimate]) -> list[Estimate]:
    """Fill p_holm over the whole family (every test the report makes, not one k grid at a time)."""
    adjusted = holm_adjust([e.p_value for e in estimates]) if estimates else []
    for e, p in zip(estimates, adjusted):
        e.p_holm = float(p)
    return list(estimates)


# --------------------------------------------------------------------------------------------
# Crossed-design moment interval
# --------------------------------------------------------------------------------------------


def moment_contrast(arms: Mapping[str, Arm], terms: Sequence[Term], label: str = "", confidence: float = 0.95) -> Estimate:
    """The same contrast as `contrast`, with a method-of-moments variance for the crossed
    problems x seeds design and a Satterthwaite t interval.

    Problems and seeds are crossed (every seed is evaluated on every problem), so resampling both
    (`hierarchical_bootstrap`) counts the per-(seed, problem) residual twice (once in each level's
    spread; Owen 2007's "pigeonhole" bootstrap is conservative for the same reason). Here, per
    seed group g (arms sharing a seed label, or one arm), x_g[s, p] = sum of coef * value over the
    group's terms, and with z[p] = sum_g mean_s x_g[s, p]:

        Var(C) = Var_p(z) / P + sum_g max(0, MS_seed_g - MS_resid_g) / (P S_g),

    MS_seed_g = P Var_s(mean_p x_g) and MS_resid_g the two-way residual mean square of x_g. The
    first term holds the problem variance and every residual once; the second each group's seed
    variance. Each seed term is truncated at 0: untruncated it is unbiased but often negative, and
    a Satterthwaite df with a negative component can collapse towards 0 (an unbounded interval).
    Truncation makes the variance conservative where the seed variance is small against the
    residual (variance +20% in tests/metrics/test_stats.py's calibration case, against +90% for the
    two-level bootstrap). A single-seed arm (the base) is a fixed model and adds no seed term.
    All arms of a seed group must share one problem set; different problem sets add their terms
    independently.
    """
    if not terms:
        raise ValueError("a contrast needs at least one term")
    groups: dict[tuple[str, str], np.ndarray] = {}
    estimate = 0.0
    for arm_name, index, coef in terms:
        if arm_name not in arms:
            raise KeyError(f"unknown arm {arm_name!r}; have {', '.join(arms)}")
        arm = arms[arm_name]
        idx = () if index is None else (index if isinstance(index, tuple) else (index,))
        cell = coef * arm.values[(slice(None), slice(None), *idx)]
        if cell.ndim != 2:
            raise ValueError(f"index {index!r} does not select a scalar of arm {arm_name!r}")
        key = (arm.seeds or f"arm:{arm_name}", arm.problems)
        groups[key] = groups[key] + cell if key in groups else cell
        estimate += float(cell.mean())
    seed_labels = [k[0] for k in groups]
    if len(set(seed_labels)) != len(seed_labels):
        raise ValueError("a seed group spans two problem sets; use hierarchical_bootstrap for this contrast")
    parts: list[tuple[float, int]] = []  # (variance component, its degrees of freedom)
    by_set: dict[str, np.ndarray] = {}
    for (_, problems), x in groups.items():
        by_set[problems] = by_set[problems] + x.mean(axis=0) if problems in by_set else x.mean(axis=0)
    for z in by_set.values():
        if len(z) < 2:
            raise ValueError("need at least two problems")
        parts.append((float(z.var(ddof=1)) / len(z), len(z) - 1))
    for x in groups.values():
        s_count, p_count = x.shape
        if s_count < 2:
            continue
        seed_means, problem_means = x.mean(axis=1), x.mean(axis=0)
        ms_seed = p_count * float(seed_means.var(ddof=1))
        resid = x - seed_means[:, None] - problem_means[None, :] + x.mean()
        ms_resid = float((resid**2).sum()) / ((s_count - 1) * (p_count - 1))
        component = (ms_seed - ms_resid) / (p_count * s_count)
        if component > 0:  # truncated at 0, as variance components usually are (see the docstring)
            parts.append((component, s_count - 1))
    var = sum(v for v, _ in parts)
    se = float(np.sqrt(var))
    if se == 0:
        return Estimate(label, estimate, estimate, estimate, 1.0 if estimate == 0 else 0.0, 0.0, confidence, 0,
                        notes=["no spread to estimate"])
    dof = var**2 / sum(v**2 / d for v, d in parts)
    tq = float(sps.t.ppf(0.5 + confidence / 2, dof))
    p = float(2 * sps.t.sf(abs(estimate / se), dof))
    return Estimate(label, estimate, estimate - tq * se, estimate + tq * se, p, se, confidence, 0,
                    notes=[f"crossed-design moment variance, Satterthwaite t({dof:.1f})"])


# --------------------------------------------------------------------------------------------
# Seed-level intervals
# --------------------------------------------------------------------------------------------


def seed_t_interval(values: Sequence[float], confidence: float = 0.95, label: str = "") -> Estimate:
    """Student-t interval of the mean of per-seed values (S - 1 degrees of freedom); for paired arms
    pass per-seed differences. p is the two-sided one-sample t test of mean 0."""
    x = np.asarray(values, dtype=float)
    if x.ndim != 1 or len(x) < 2 or not np.all(np.isfinite(x)):
        raise ValueError(f"need at least two finite per-seed values, got {values!r}")
    mean = float(x.mean())
    se = float(x.std(ddof=1) / np.sqrt(len(x)))
    if se == 0:
        return Estimate(label, mean, mean, mean, 1.0 if mean == 0 else 0.0, 0.0, confidence, 0,
                        notes=["all seeds equal: no spread to estimate"])
    tq = float(sps.t.ppf(0.5 + confidence / 2, len(x) - 1))
    p = float(2 * sps.t.sf(abs(mean / se), len(x) - 1))
    return Estimate(label, mean, mean - tq * se, mean + tq * se, p, se, confidence, 0, notes=[f"t interval over {len(x)} seeds"])


# --------------------------------------------------------------------------------------------
# Regression with clustered errors
# --------------------------------------------------------------------------------------------


@dataclass
class OLSResult:
    coef: np.ndarray
    se: np.ndarray  # CR1 cluster-robust standard errors
    dof: int  # clusters - 1, the degrees of freedom of the t reference
    n_obs: int
    n_clusters: int
    names: list[str]

    def estimate(self, name: str, confidence: float = 0.95) -> Estimate:
        i = self.names.index(name)
        tq = float(sps.t.ppf(0.5 + confidence / 2, self.dof))
        b, s = float(self.coef[i]), float(self.se[i])
        p = float(2 * sps.t.sf(abs(b / s), self.dof)) if s > 0 else (1.0 if b == 0 else 0.0)
        return Estimate(name, b, b - tq * s, b + tq * s, p, s, confidence, 0,
                        notes=[f"OLS, CR1 errors clustered on {self.n_clusters} clusters, t({self.dof})"])


def clustered_ols(y, X, clusters, names: Sequence[str] | None = None) -> OLSResult:
    """OLS of y on X (include the intercept column yourself) with CR1 cluster-robust errors:
    V = c (X'X)^-1 [sum_g X_g' u_g u_g' X_g] (X'X)^-1, c = G/(G-1) (N-1)/(N-K), t with G-1 dof.
    Few clusters (seeds) make this interval wide; that width is the honest price of few seeds."""
    y = np.asarray(y, dtype=float)
    X = np.asarray(X, dtype=float)
    clusters = np.asarray(clusters)
    if X.ndim != 2 or y.shape != (X.shape[0],) or clusters.shape != y.shape:
        raise ValueError(f"need y (N,), X (N, K), clusters (N,); got {y.shape}, {X.shape}, {clusters.shape}")
    n, k = X.shape
    labels, group = np.unique(clusters, return_inverse=True)
    g = len(labels)
    if g < 2:
        raise ValueError("clustered errors need at least two clusters")
    if n <= k:
        raise ValueError(f"{n} observations for {k} coefficients")
    xtx_inv = np.linalg.inv(X.T @ X)
    coef = xtx_inv @ X.T @ y
    resid = y - X @ coef
    scores = np.zeros((g, k))
    np.add.at(scores, group, X * resid[:, None])
    meat = scores.T @ scores
    factor = g / (g - 1) * (n - 1) / (n - k)
    cov = factor * xtx_inv @ meat @ xtx_inv
    return OLSResult(coef, np.sqrt(np.diag(cov)), g - 1, n, g, list(names) if names else [f"x{i}" for i in range(k)])


def cluster_bootstrap(stat: Callable[[np.ndarray], np.ndarray], clusters, units=None, n_bootstrap: int = 2000,
                      seed: int = 0) -> np.ndarray:
    """Two-stage bootstrap: draw clusters (seeds) with replacement, then within each drawn cluster
    draw its units (e.g. questions; all rows of a unit move together) with replacement.
    `stat(row_indices)` returns a statistic; the result stacks the replicates (n_bootstrap, ...).
    `units` None makes every row its own unit."""
    clusters = np.asarray(clusters)
    units = np.arange(len(clusters)) if units is None else np.asarray(units)
    if units.shape != clusters.shape:
        raise ValueError("clusters and units must have one entry per row")
    rng = np.random.default_rng(seed)
    cluster_labels = np.unique(clusters)
    # Per cluster: its rows sorted by unit, and each unit's start and length in that order, so a
    # draw of units becomes row indices with one vectorised repeat.
    layout = []
    for c in cluster_labels:
        in_c = np.flatnonzero(clusters == c)
        order = in_c[np.argsort(units[in_c], kind="stable")]
        _, starts, lengths = np.unique(units[order], return_index=True, return_counts=True)
        layout.append((order, starts, lengths))
    out = []
    for _ in range(n_bootstrap):
        rows = []
        for c in rng.integers(0, len(cluster_labels), size=len(cluster_labels)):
            order, starts, lengths = layout[c]
            drawn = rng.integers(0, len(starts), size=len(starts))
            n_rows = lengths[drawn]
            offsets = np.repeat(starts[drawn] - np.cumsum(n_rows) + n_rows, n_rows)
            rows.append(order[offsets + np.arange(int(n_rows.sum()))])
        out.append(np.asarray(stat(np.concatenate(rows))))
    return np.stack(out)
