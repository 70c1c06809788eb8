"""How precise can a comparison of arms be at a given size? A closed-form approximation of the
interval half-width, and a simulation of the whole protocol (sample correctness, pass@k, the
hierarchical bootstrap of `azrlib.metrics.stats`) that reports half-width, power and coverage.

Simulation model (this artifact's, not the paper's): problem i has a base logit a_i ~ N(mu, tau^2)
(a logit-normal solve rate: heterogeneous problems, many almost never solved, as the tiny base's
held-out split shows). Arm A, seed s solves it with probability sigmoid(a_i + effect_A + u_s + e_is + f_i),
u_s ~ N(0, seed_sd^2) a per-seed shift (training-seed variance) and e_is ~ N(0, noise_sd^2) a
per-seed, per-problem deviation (runs differ on which problems they gain); f_i ~ N(0, problem_sd^2),
an arm's per-problem deviation shared by all its seeds, adds to the logit the same way. Arms that share a seed
label share u_s (paired by seed). Each (arm, seed, problem) gets n samples, correct count
~ Binomial(n, p). The estimand is the population value: E[1 - (1 - p)^k] over problems and seeds,
computed by Monte Carlo; coverage is how often the interval contains it.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
from scipy import stats as sps
from scipy.special import expit

from azrlib.metrics.passk import pass_at_k_matrix
from azrlib.metrics.stats import Arm, contrast, hierarchical_bootstrap, moment_contrast


def analytic_half_width(problem_sd: float, n_problems: int, seed_sds: Sequence[float] = (),
                        n_seeds: Sequence[int] = (), confidence: float = 0.95) -> float:
    """z * sqrt(problem_sd^2 / P + sum_a seed_sd_a^2 / S_a): the normal-approximation half-width of
    a difference of arm means when problems are paired (problem_sd = SD over problems of the
    per-problem difference of seed means) and each arm a adds its between-seed SD over S_a seeds."""
    if n_problems < 1 or len(seed_sds) != len(n_seeds) or any(s < 1 for s in n_seeds):
        raise ValueError("need n_problems >= 1 and one n_seeds >= 1 per seed_sd")
    z = float(sps.norm.ppf(0.5 + confidence / 2))
    var = problem_sd**2 / n_problems + sum(sd**2 / s for sd, s in zip(seed_sds, n_seeds))
    return z * math.sqrt(var)


def binomial_half_width(p: float, n: int, confidence: float = 0.95) -> float:
    """Normal-approximation half-width of a proportion p from n independent trials."""
    return float(sps.norm.ppf(0.5 + confidence / 2)) * math.sqrt(p * (1 - p) / n)


@dataclass(frozen=True)
class ArmSpec:
    effect: float = 0.0  # logit shift against the base
    n_seeds: int = 1
    seed_sd: float = 0.0  # SD of the per-seed logit shift u_s
    noise_sd: float = 0.0  # SD of the per-seed, per-problem logit deviation e_is
    problem_sd: float = 0.0  # SD of the arm's per-problem logit deviation f_i, shared by its seeds
    seeds: str | None = None  # arms with the same label share u_s and the bootstrap's seed draw


def _true_pass_at_k(spec: ArmSpec, mu: float, tau: float, ks: Sequence[int], rng: np.random.Generator, draws: int) -> np.ndarray:
    a = rng.normal(mu, tau, draws)
    u = rng.normal(0, 1, draws) * spec.seed_sd
    e = rng.normal(0, math.hypot(spec.noise_sd, spec.problem_sd), draws)
    p = expit(a + spec.effect + u + e)
    return np.array([np.mean(1 - (1 - p) ** k) for k in ks])


def simulate_design(arms: Mapping[str, ArmSpec], contrasts: Mapping[str, Sequence[tuple]], n_problems: int,
                    n_samples: int, ks: Sequence[int], mu: float, tau: float, n_sims: int = 100,
                    n_bootstrap: int = 1000, seed: int = 0, truth_draws: int = 400_000) -> dict[str, dict]:
    """Simulate the protocol `n_sims` times. `contrasts` maps a name to stats.contrast terms
    (arm, k index, coefficient). Returns per contrast: truth, mean estimate, sd of the estimate over
    simulations (the real sampling SD), and per interval method ("bootstrap": the two-level
    percentile interval; "moment": stats.moment_contrast) the mean SE and half-width, coverage of
    the truth and power (fraction of intervals that exclude 0)."""
    rng = np.random.default_rng(seed)
    ks = list(ks)
    truth_vals = {name: _true_pass_at_k(s, mu, tau, ks, rng, truth_draws) for name, s in arms.items()}
    truth = {c: sum(coef * truth_vals[arm][idx] for arm, idx, coef in terms) for c, terms in contrasts.items()}
    records: dict[str, list] = {c: [] for c in contrasts}
    for sim in range(n_sims):
        a = rng.normal(mu, tau, n_problems)
        shared: dict[str, np.ndarray] = {}
        values = {}
        for name, spec in arms.items():
            if spec.seeds is not None:
                z = shared.setdefault(spec.seeds, rng.normal(0, 1, spec.n_seeds))
                if len(z) != spec.n_seeds:
                    raise ValueError(f"arms sharing seeds {spec.seeds!r} need the same n_seeds")
            else:
                z = rng.normal(0, 1, spec.n_seeds)
            logit = a[None, :] + spec.effect + spec.seed_sd * z[:, None]
            if spec.problem_sd:
                logit = logit + rng.normal(0, spec.problem_sd, n_problems)[None, :]
            if spec.noise_sd:
                logit = logit + rng.normal(0, spec.noise_sd, logit.shape)
            c = rng.binomial(n_samples, expit(logit))
            n = np.full(n_problems, n_samples)
            values[name] = Arm(np.stack([pass_at_k_matrix(n, c[s], ks) for s in range(spec.n_seeds)]), seeds=spec.seeds)
        boot = hierarchical_bootstrap(values, n_bootstrap, seed=int(rng.integers(2**31)))
        for cname, terms in contrasts.items():
            for method, e in (("bootstrap", contrast(boot, terms, cname)), ("moment", moment_contrast(values, terms, cname))):
                records[cname].append((method, e.estimate, e.se, e.half_width, e.ci_low <= truth[cname] <= e.ci_high,
                                       not (e.ci_low <= 0 <= e.ci_high)))
    out = {}
    for cname, rec in records.items():
        est = np.array([r[1] for r in rec if r[0] == "bootstrap"])
        out[cname] = {"truth": float(truth[cname]), "mean_estimate": float(est.mean()),
                      "sd_estimate": float(est.std(ddof=1)) if n_sims > 1 else float("nan"), "n_sims": n_sims}
        for method in ("bootstrap", "moment"):
            r = np.array([x[2:] for x in rec if x[0] == method], dtype=float)
            out[cname][method] = {"mean_se": float(r[:, 0].mean()), "mean_half_width": float(r[:, 1].mean()),
                                  "coverage": float(r[:, 2].mean()), "power": float(r[:, 3].mean())}
    return out


def fit_logit_normal(pass_at_1: float, frac_never: float, n_samples: int) -> tuple[float, float]:
    """(mu, tau) of a logit-normal solve rate matching a base's mean pass@1 and the fraction of
    problems with no correct sample among n_samples (a coarse grid search, then a local refine)."""
    nodes, weights = np.polynomial.hermite_e.hermegauss(120)  # E[f(Z)], Z ~ N(0, 1), by quadrature
    weights = weights / weights.sum()

    def loss(mu: float, tau: float) -> float:
        p = expit(mu + tau * nodes)
        return (weights @ p - pass_at_1) ** 2 + (weights @ (1 - p) ** n_samples - frac_never) ** 2

    grid = [(loss(m, t), m, t) for m in np.linspace(-8, 2, 41) for t in np.linspace(0.1, 6, 40)]
    _, mu, tau = min(grid)
    step_m, step_t = 0.25, 0.15
    for _ in range(40):
        cands = [(loss(mu + dm, tau + dt), mu + dm, tau + dt) for dm in (-step_m, 0, step_m)
                 for dt in (-step_t, 0, step_t) if tau + dt > 0]
        _, mu, tau = min(cands)
        step_m, step_t = step_m * 0.7, step_t * 0.7
    return float(mu), float(tau)


def simulate_trend(n_seeds: int, n_questions: int, slope: float, resid_sd: float, seed_slope_sd: float = 0.0,
                   seed_sd: float = 0.0, n_sims: int = 100, n_bootstrap: int = 200, seed: int = 0) -> dict[str, dict]:
    """RQ2's trend test simulated: per seed g, questions at training fractions x ~ U(0, 1) with solve
    rate y = 0.3 + u_g + (slope + v_g) x + e (u_g ~ N(0, seed_sd^2), v_g ~ N(0, seed_slope_sd^2),
    e ~ N(0, resid_sd^2)), run through `rq.rq2_difficulty_trend`. Returns per method ("clustered",
    "bootstrap"): mean half-width, coverage of `slope` and power (interval excludes 0)."""
    from azrlib.metrics.rq import rq2_difficulty_trend

    rng = np.random.default_rng(seed)
    total = 1000
    rec: dict[str, list] = {"clustered": [], "bootstrap": []}
    for sim in range(n_sims):
        rows = []
        for g in range(n_seeds):
            u, v = rng.normal(0, seed_sd), rng.normal(0, seed_slope_sd)
            steps = rng.integers(1, total + 1, n_questions)
            y = 0.3 + u + (slope + v) * (steps - 0.5) / total + rng.normal(0, resid_sd, n_questions)
            rows += [{"seed": g, "qid": f"q{i}", "step": int(s), "model": "base", "solve_rate": float(r), "lengths": [1]}
                     for i, (s, r) in enumerate(zip(steps, y))]
        res = rq2_difficulty_trend(rows, {g: total for g in range(n_seeds)}, "base", n_bootstrap, seed=sim)
        for method, e in res.items():
            rec[method].append((e.half_width, e.ci_low <= slope <= e.ci_high, not (e.ci_low <= 0 <= e.ci_high)))
    out = {}
    for method, r in rec.items():
        a = np.array(r, dtype=float)
        out[method] = {"mean_half_width": float(a[:, 0].mean()), "coverage": float(a[:, 1].mean()),
                       "power": float(a[:, 2].mean()), "n_sims": n_sims}
    return out
