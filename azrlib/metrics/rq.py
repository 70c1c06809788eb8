"""The tests behind the five research questions, built on `azrlib.metrics.stats`.

Each `rqN_*` function turns measurements (per-sample correctness, per-question solve rates,
per-prompt entropies) into the estimates a verdict needs. A test is returned as a dict

    {"rq", "takeaway", "test", "direction", "estimate": Estimate}

where `direction` is the sign the paper's claim predicts ("greater": > 0, "less": < 0) and the
estimate carries its 95% interval; `azrlib.report.verdicts` turns it into supports / contradicts /
inconclusive. The checkpoint-reading measurements (entropy on fixed prompts, sparsity per step)
are in `azrlib.metrics.rq_checkpoints`.

Departures from the paper (it tests nothing formally; these designs are this artifact's):

* RQ1: the paper reads "self-play beats the base at small k, the base catches up at large k, and
  the drop is smaller than RLVR's" off curves. Here each part is a contrast of a two-level
  bootstrap (problems paired across arms, seeds within arm), and "catches up" / "smaller drop"
  are differences of differences, Holm-corrected over the whole family.
* Invisible leash (paper Appendix C): "the tuned model solves at k" means at least one correct
  sample among its n >= k samples; "the base never solves" means zero correct samples.
* RQ2: the paper bins by iteration (every 25) and measures difficulty with the trained model;
  here bins are fractions of training (so presets of different length compare), difficulty is
  measured by the fixed base and by the final model, and the trend is an OLS slope over seeds
  with seed-clustered errors (CR1, t with seeds - 1 dof) beside a two-stage cluster bootstrap.
* RQ5: the paper reports about -2 points of accuracy for 1-2|p-0.5|; here the difference is paired
  by seed and on problems, and the result says whether its interval excludes 0 and -2 points.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np
from scipy import stats as sps

from azrlib.metrics.passk import SampleCounts, pass_at_k_matrix
from azrlib.metrics.stats import (
    Arm,
    Bootstrap,
    Estimate,
    clustered_ols,
    cluster_bootstrap,
    contrast,
    gap,
    hierarchical_bootstrap,
    holm_family,
    moment_contrast,
    seed_t_interval,
    summarize,
)


def _test(rq: str, takeaway: str, test: str, direction: str, estimate: Estimate) -> dict:
    return {"rq": rq, "takeaway": takeaway, "test": test, "direction": direction, "estimate": estimate}


# --------------------------------------------------------------------------------------------
# RQ1: pass@k of self-play and RLVR seeds against the base
# --------------------------------------------------------------------------------------------


def shared_problems(groups: Sequence[SampleCounts]) -> list[str]:
    """Problem ids every result set has, in the first set's order."""
    if not groups:
        raise ValueError("no result sets")
    common = set(groups[0].problem_ids)
    for g in groups[1:]:
        common &= set(g.problem_ids)
    ids = [pid for pid in groups[0].problem_ids if pid in common]
    if not ids:
        raise ValueError("the result sets share no problem_id")
    return ids


def passk_values(seeds: Sequence[SampleCounts], ks: Sequence[int], problem_ids: Sequence[str]) -> np.ndarray:
    """Per-problem pass@k of each seed on `problem_ids`: shape (seeds, problems, len(ks))."""
    return np.stack([pass_at_k_matrix(s.subset(problem_ids).n, s.subset(problem_ids).c, ks) for s in seeds])


def rq1_arms(base: SampleCounts | Sequence[SampleCounts], arms: Mapping[str, Sequence[SampleCounts]],
             ks: Sequence[int]) -> tuple[dict[str, Arm], list[str]]:
    """Per-seed, per-problem pass@k (trailing axis = ks) of "base" and every arm, on the problems
    all of them share. Returns the arms and a note on problems left out."""
    base_list = [base] if isinstance(base, SampleCounts) else list(base)
    everything = base_list + [s for seeds in arms.values() for s in seeds]
    ids = shared_problems(everything)
    notes = []
    dropped = max(len(g.problem_ids) for g in everything) - len(ids)
    if dropped:
        notes.append(f"{dropped} problem(s) not evaluated by every model were left out; {len(ids)} remain")
    values = {"base": Arm(passk_values(base_list, ks, ids))}
    for name, seeds in arms.items():
        if name == "base":
            raise ValueError("'base' is reserved for the reference model")
        values[name] = Arm(passk_values(seeds, ks, ids))
    return values, notes


def rq1_bootstrap(base: SampleCounts | Sequence[SampleCounts], arms: Mapping[str, Sequence[SampleCounts]],
                  ks: Sequence[int], n_bootstrap: int = 10_000, seed: int = 0) -> tuple[Bootstrap, list[str]]:
    """Two-level bootstrap of `rq1_arms` (problems paired across all models, seeds within arm)."""
    values, notes = rq1_arms(base, arms, ks)
    return hierarchical_bootstrap(values, n_bootstrap, seed), notes


def rq1_family(boot: Bootstrap, ks: Sequence[int], small_k: int = 1, large_k: int | None = None,
               selfplay: str = "selfplay", rlvr: str | None = "rlvr", arms: Mapping[str, Arm] | None = None) -> list[dict]:
    """The paper's RQ1 claims as tests, Holm-corrected together:
    (a) self-play - base > 0 at small k; (b) the gap shrinks from small to large k (difference of
    differences < 0); (c) self-play's gap shrinks less than RLVR's (> 0); and, for the record,
    the gap at large k and RLVR's own gaps (no direction claimed by the paper: "two-sided").
    With `arms` (from `rq1_arms`), each test also gets "moment": the same contrast with the
    crossed-design moment interval (`stats.moment_contrast`), Holm-corrected as its own family."""
    ks = list(ks)
    large_k = ks[-1] if large_k is None else large_k
    i, j = ks.index(small_k), ks.index(large_k)

    def gap_terms(arm, idx):
        return [(arm, idx, 1.0), ("base", idx, -1.0)]

    def change_terms(arm):  # gap at large k minus gap at small k
        return gap_terms(arm, j) + [(a, x, -c) for a, x, c in gap_terms(arm, i)]

    specs = [
        (f"self-play beats the base at pass@{small_k}", f"{selfplay} - base, pass@{small_k}", "greater",
         gap_terms(selfplay, i)),
        (f"the base catches up at pass@{large_k}", f"(gap@{large_k}) - (gap@{small_k}), {selfplay}", "less",
         change_terms(selfplay)),
        (f"gap at pass@{large_k}", f"{selfplay} - base, pass@{large_k}", "two-sided", gap_terms(selfplay, j)),
    ]
    if rlvr is not None:
        specs += [
            ("self-play's drop is smaller than RLVR's", f"gap change {selfplay} - gap change {rlvr}", "greater",
             change_terms(selfplay) + [(a, x, -c) for a, x, c in change_terms(rlvr)]),
            (f"RLVR vs base at pass@{small_k}", f"{rlvr} - base, pass@{small_k}", "two-sided", gap_terms(rlvr, i)),
            (f"RLVR vs base at pass@{large_k}", f"{rlvr} - base, pass@{large_k}", "two-sided", gap_terms(rlvr, j)),
        ]
    tests = []
    for takeaway, test, direction, terms in specs:
        t = _test("RQ1", takeaway, test, direction, contrast(boot, terms, test))
        t["terms"] = terms
        if arms is not None:
            t["moment"] = moment_contrast(arms, terms, test)
        tests.append(t)
    holm_family([t["estimate"] for t in tests])
    if arms is not None:
        holm_family([t["moment"] for t in tests])
    return tests


# --------------------------------------------------------------------------------------------
# Invisible leash (paper Appendix C)
# --------------------------------------------------------------------------------------------


def leash_subset(tuned: SampleCounts, base: SampleCounts, k: int = 32) -> list[str]:
    """Problems the tuned model solves within its samples (n >= k, at least one correct) and the base
    never does (zero correct among its samples), in the tuned model's order."""
    if int(tuned.n.min()) < k:
        raise ValueError(f"the tuned model needs n >= k = {k} samples per problem (has {int(tuned.n.min())})")
    base_c = dict(zip(base.problem_ids, base.c.tolist()))
    return [pid for pid, c in zip(tuned.problem_ids, tuned.c.tolist()) if c > 0 and base_c.get(pid) == 0]


@dataclass
class LeashResult:
    n_subset: int
    n_samples: int
    still_unsolved: list[str]
    solved_counts: dict[str, int]  # problem -> correct samples out of n_samples

    @property
    def fraction_unsolved(self) -> float:
        return len(self.still_unsolved) / self.n_subset if self.n_subset else float("nan")

    def ci(self, confidence: float = 0.95) -> tuple[float, float]:
        """Clopper-Pearson interval of the fraction still unsolved."""
        if not self.n_subset:
            return (float("nan"), float("nan"))
        r = sps.binomtest(len(self.still_unsolved), self.n_subset).proportion_ci(confidence, method="exact")
        return (float(r.low), float(r.high))


def leash_check(sample_base: Callable[[list[str], int], SampleCounts], subset: Sequence[str], n: int = 256,
                min_n: int = 256) -> LeashResult:
    """Sample the base `n` times on each subset problem (`sample_base(ids, n)` returns its counts)
    and report the problems it still never solves. `min_n` (256, paper Appendix C) may be lowered
    only by a smoke-test preset, which must then say so."""
    if n < min_n:
        raise ValueError(f"the leash check needs n >= {min_n} samples per problem (paper Appendix C: 256), got {n}")
    subset = list(subset)
    if not subset:
        return LeashResult(0, n, [], {})
    counts = sample_base(subset, n)
    got = dict(zip(counts.problem_ids, zip(counts.n.tolist(), counts.c.tolist())))
    missing = [pid for pid in subset if pid not in got]
    if missing:
        raise ValueError(f"the sampler returned no results for {len(missing)} problem(s), e.g. {missing[0]!r}")
    short = [pid for pid in subset if got[pid][0] < n]
    if short:
        raise ValueError(f"the sampler returned fewer than n={n} samples for {short[0]!r} ({got[short[0]][0]})")
    solved = {pid: got[pid][1] for pid in subset}
    return LeashResult(len(subset), n, [pid for pid in subset if solved[pid] == 0], solved)


# --------------------------------------------------------------------------------------------
# RQ2: difficulty of proposed questions over training
# --------------------------------------------------------------------------------------------


def training_fraction_bin(step, total_steps: int, n_bins: int = 8) -> np.ndarray:
    """Bin of step s (1-based) out of T as a fraction of training: floor((s - 1) / T * n_bins)."""
    s = np.asarray(step, dtype=np.int64)
    if total_steps < 1 or n_bins < 1:
        raise ValueError("total_steps and n_bins must be >= 1")
    if np.any(s < 1) or np.any(s > total_steps):
        raise ValueError(f"steps must lie in 1..{total_steps}")
    return (s - 1) * n_bins // total_steps


def _question_arrays(rows: Sequence[dict], total_steps: Mapping, model: str) -> dict[str, np.ndarray]:
    rs = [r for r in rows if r["model"] == model]
    if not rs:
        raise ValueError(f"no rows for model {model!r}")
    for r in rs:
        if r.get("seed") not in total_steps:
            raise ValueError(f"row {r.get('qid')!r} has seed {r.get('seed')!r} with no total_steps entry")
    return {
        "seed": np.array([str(r["seed"]) for r in rs]),
        "qid": np.array([str(r["qid"]) for r in rs]),
        "frac": np.array([(int(r["step"]) - 0.5) / total_steps[r["seed"]] for r in rs]),
        "solve_rate": np.array([float(r["solve_rate"]) for r in rs]),
        "length": np.array([float(np.mean(r["lengths"])) for r in rs]),
    }


def rq2_difficulty_trend(rows: Sequence[dict], total_steps: Mapping, model: str, n_bootstrap: int = 2000,
                         seed: int = 0) -> dict[str, Estimate]:
    """Slope of the `model`'s solve rate on a question against the training fraction at which it was
    proposed, pooled over seeds. Rows: {seed, qid, step, model, solve_rate, lengths}. Returns the OLS
    slope with seed-clustered errors ("clustered") and with a two-stage bootstrap over seeds and
    questions within seed ("bootstrap"). Harder questions later = negative slope. With 3 seeds the
    bootstrap under-covers when seeds differ in slope (power.simulate_trend); use "clustered"
    for the verdict."""
    a = _question_arrays(rows, total_steps, model)
    X = np.column_stack([np.ones_like(a["frac"]), a["frac"]])
    ols = clustered_ols(a["solve_rate"], X, a["seed"], ["intercept", "slope"])
    reps = cluster_bootstrap(lambda r: np.linalg.lstsq(X[r], a["solve_rate"][r], rcond=None)[0][1],
                             a["seed"], a["qid"], n_bootstrap, seed)
    return {"clustered": ols.estimate("slope"), "bootstrap": summarize("slope", ols.coef[1], reps)}


def rq2_length_interaction(rows: Sequence[dict], total_steps: Mapping, reference: str, tuned: str,
                           n_bootstrap: int = 2000, seed: int = 0) -> dict[str, Estimate]:
    """Model x difficulty interaction for response length: on the same questions, mean response
    length ~ 1 + d + tuned + tuned * d, with d = 1 - solve rate of the fixed `reference` model (so
    both models share the difficulty axis). The coefficient of tuned * d is how much more the tuned
    model's length grows with difficulty than the reference's ("adapts its length": > 0). A question
    drawn into two bins (the same program and input proposed twice) carries one answer per model,
    so its repeated rows are counted once."""
    seen, unique = set(), []
    for r in rows:
        k = (r.get("seed"), r["qid"], r["model"])
        if k not in seen:
            seen.add(k)
            unique.append(r)
    rows = unique
    ref, tun = _question_arrays(rows, total_steps, reference), _question_arrays(rows, total_steps, tuned)
    key = lambda a: list(zip(a["seed"].tolist(), a["qid"].tolist()))  # noqa: E731
    position = {k: i for i, k in enumerate(key(ref))}
    if len(position) != len(ref["qid"]) or set(position) != set(key(tun)):
        raise ValueError("the two models must answer the same (seed, question) pairs, each once")
    order = np.array([position[k] for k in key(tun)])
    d = 1.0 - ref["solve_rate"]
    d_all = np.concatenate([d, d[order]])
    m = np.concatenate([np.zeros(len(d)), np.ones(len(d))])
    y = np.concatenate([ref["length"], tun["length"]])
    X = np.column_stack([np.ones_like(d_all), d_all, m, m * d_all])
    clusters = np.concatenate([ref["seed"], tun["seed"]])
    units = np.concatenate([ref["qid"], tun["qid"]])  # a question's two rows move together
    names = ["intercept", "difficulty", "tuned", "tuned_x_difficulty"]
    ols = clustered_ols(y, X, clusters, names)
    reps = cluster_bootstrap(lambda r: np.linalg.lstsq(X[r], y[r], rcond=None)[0][3], clusters, units, n_bootstrap, seed)
    return {"clustered": ols.estimate("tuned_x_difficulty"), "bootstrap": summarize("tuned_x_difficulty", ols.coef[3], reps)}


# --------------------------------------------------------------------------------------------
# RQ3: entropy on a fixed prompt set
# --------------------------------------------------------------------------------------------


def rq3_family(boot: Bootstrap, selfplay_solver: str = "selfplay_solver", frozen_solver: str = "frozen_solver",
               selfplay_proposer: str = "selfplay_proposer") -> list[dict]:
    """The paper's three entropy statements on per-(seed, prompt, checkpoint) entropies (trailing
    axis = checkpoints, first = start of training, last = end):
    entropy falls (last - first < 0); the frozen-proposer run keeps the solver's entropy higher at
    the end (> 0); the proposer's entropy exceeds the solver's, averaged over checkpoints (> 0)."""
    n_ckpt = boot.estimate[selfplay_solver].shape[0]
    mean_terms = [(selfplay_proposer, c, 1.0 / n_ckpt) for c in range(n_ckpt)] + \
                 [(selfplay_solver, c, -1.0 / n_ckpt) for c in range(n_ckpt)]
    tests = [
        _test("RQ3", "entropy falls during self-play", "solver entropy, last - first checkpoint", "less",
              contrast(boot, [(selfplay_solver, -1, 1.0), (selfplay_solver, 0, -1.0)], "entropy change")),
        _test("RQ3", "a frozen proposer keeps entropy higher", "frozen - self-play solver entropy, last checkpoint",
              "greater", contrast(boot, [(frozen_solver, -1, 1.0), (selfplay_solver, -1, -1.0)], "frozen - selfplay")),
        _test("RQ3", "proposer entropy > solver entropy", "proposer - solver, mean over checkpoints", "greater",
              contrast(boot, mean_terms, "proposer - solver")),
    ]
    holm_family([t["estimate"] for t in tests])
    return tests


# --------------------------------------------------------------------------------------------
# RQ5: proposer reward variants, final checkpoints paired by seed
# --------------------------------------------------------------------------------------------


def rq5_comparison(reference: Mapping, variant: Mapping, k: int = 1, n_bootstrap: int = 10_000,
                   seed: int = 0, paper_effect: float = -0.02) -> dict:
    """variant - reference pass@k on held-out tasks, per seed {seed: SampleCounts} (the arms share
    seeds). Two-level bootstrap paired by seed and on problems, beside a t interval over per-seed
    differences and the crossed-design moment interval; reports whether each interval excludes 0
    and excludes the paper's effect."""
    seeds = sorted(set(reference) & set(variant), key=str)
    unpaired = sorted(set(reference) ^ set(variant), key=str)
    if len(seeds) < 2:
        raise ValueError(f"need at least two seeds both arms were trained with, got {seeds}")
    ids = shared_problems([reference[s] for s in seeds] + [variant[s] for s in seeds])
    arms = {"reference": Arm(passk_values([reference[s] for s in seeds], [k], ids), seeds="shared"),
            "variant": Arm(passk_values([variant[s] for s in seeds], [k], ids), seeds="shared")}
    boot = hierarchical_bootstrap(arms, n_bootstrap, seed)
    est = gap(boot, "variant", "reference", 0, f"variant - reference pass@{k}")
    per_seed = arms["variant"].values[:, :, 0].mean(axis=1) - arms["reference"].values[:, :, 0].mean(axis=1)
    t = seed_t_interval(per_seed, label=f"variant - reference pass@{k} (t over seeds)")
    m = moment_contrast(arms, [("variant", 0, 1.0), ("reference", 0, -1.0)], f"variant - reference pass@{k} (moment)")
    out = {"seeds": seeds, "n_problems": len(ids), "per_seed_difference": per_seed.tolist(), "paper_effect": paper_effect,
           "notes": [f"seeds left out (only one arm has them): {unpaired}"] if unpaired else []}
    for name, e in (("bootstrap", est), ("moment", m), ("t_over_seeds", t)):
        out[name] = e
        out[f"{name}_excludes_0"] = not (e.ci_low <= 0 <= e.ci_high)
        out[f"{name}_excludes_paper"] = not (e.ci_low <= paper_effect <= e.ci_high)
    return out
