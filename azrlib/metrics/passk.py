"""Unbiased pass@k from per-sample correctness, and a paired significance test between two models.

pass@k is the estimator of Chen et al. (2021) as used by Yue et al. (2025): for a problem with n
samples of which c are correct,

    pass@k = 1                                     if n - c < k
    pass@k = 1 - prod_{j = n-c+1 .. n} (1 - k / j)  otherwise,

which equals 1 - C(n-c, k) / C(n, k) without forming the (huge) binomial coefficients. The dataset
value is the plain mean over problems. Problems may have different n; asking for k > n on any
problem is an error rather than a silent clamp.

Where this departs from the papers: none of them tests significance. `compare` adds, per k,

* a paired percentile bootstrap over problems (both models are resampled with the same problem
  indices, so the problem-difficulty variance cancels), optionally with a second level that also
  resamples each problem's n samples with replacement. Resampling n Bernoulli outcomes with
  replacement makes the new correct count Binomial(n, c/n), so the second level draws that count
  directly instead of materialising sample indices (problems with c = 0 or c = n stay put, as
  they would under index resampling). The second level widens the intervals; for k > 1 it also
  shifts them a little, since pass@k is not linear in c;
* a two-sided bootstrap p-value, p = min(1, 2 * min(P*(delta <= 0), P*(delta >= 0))) with the
  usual +1 correction in numerator and denominator so it is never exactly 0 (its floor is
  2 / (B + 1), 0.0002 for B = 10,000). It is the p-value that matches the percentile interval:
  p < 0.05 roughly when the 95% interval excludes 0;
* the exact McNemar test for "solved by any sample" (pass@n, which is binary per problem), via
  the exact two-sided binomial test on the discordant problems;
* Holm's step-down correction across the k grid (raw and adjusted p are both reported).

Input files are JSONL with one row per sample: {"problem_id": ..., "sample_idx": int,
"correct": bool, ...}; extra keys are ignored. Problem ids are compared as strings (so 7 and "7"
are the same problem).
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field

import numpy as np
from scipy.stats import binomtest

from azrlib.metrics.pass_at_k import (  # noqa: F401 - re-exported: the estimator and result files
    REQUIRED_KEYS, ResultsFileError, SampleCounts, _check_counts, _check_ks, _PassAtKTable, counts_from_rows,
    dataset_pass_at_k, default_k_grid, load_results, pass_at_k, pass_at_k_matrix,
)

# Bootstrap replicates are processed in blocks so memory stays bounded (block x problems x k).
_BOOTSTRAP_BLOCK_CELLS = 4_000_000


# --------------------------------------------------------------------------------------------
# Paired comparison
# --------------------------------------------------------------------------------------------


def holm_adjust(p_values: Sequence[float]) -> np.ndarray:
    """Holm step-down adjusted p-values (family-wise error control), in the input order."""
    p = np.asarray(p_values, dtype=float)
    m = len(p)
    order = np.argsort(p, kind="stable")
    scaled = (m - np.arange(m)) * p[order]
    # Step-down: an adjusted p can never be smaller than the one of a smaller raw p.
    adjusted_sorted = np.minimum(1.0, np.maximum.accumulate(scaled))
    adjusted = np.empty(m)
    adjusted[order] = adjusted_sorted
    return adjusted


def mcnemar_exact(solved_a: np.ndarray, solved_b: np.ndarray) -> tuple[float, int, int]:
    """Exact two-sided McNemar test on paired binary outcomes.

    Returns (p, a_only, b_only) where a_only counts problems solved by A but not B. Under the null
    the discordant problems split Binomial(a_only + b_only, 1/2); no discordant problems gives p = 1.
    """
    solved_a = np.asarray(solved_a, dtype=bool)
    solved_b = np.asarray(solved_b, dtype=bool)
    a_only = int(np.sum(solved_a & ~solved_b))
    b_only = int(np.sum(solved_b & ~solved_a))
    if a_only + b_only == 0:
        return 1.0, a_only, b_only
    return float(binomtest(a_only, a_only + b_only, 0.5, alternative="two-sided").pvalue), a_only, b_only


@dataclass
class PairedComparison:
    """Model B (the `--vs` file) minus model A, per k, on the problems both files share."""

    k: list[int]
    pass_at_k_a: list[float]
    pass_at_k_b: list[float]
    delta: list[float]
    ci_low: list[float]
    ci_high: list[float]
    p_value: list[float]
    p_value_holm: list[float]
    mcnemar_p: float  # exact McNemar on "any sample correct" (pass@n)
    mcnemar_a_only: int
    mcnemar_b_only: int
    n_problems: int
    n_bootstrap: int
    resample_samples: bool
    confidence: float
    seed: int
    notes: list[str] = field(default_factory=list)


def paired_bootstrap(
    a: SampleCounts,
    b: SampleCounts,
    ks: Sequence[int],
    n_bootstrap: int = 10_000,
    seed: int = 0,
    resample_samples: bool = False,
    confidence: float = 0.95,
) -> dict[str, np.ndarray]:
    """Bootstrap distribution of the dataset pass@k difference B - A; a and b must list the same problems.

    Returns arrays: `delta` (k,), `replicates` (n_bootstrap, k), `ci_low`, `ci_high`, `p_value`.
    Level one draws problem indices with replacement (shared by both models). With
    `resample_samples`, level two redraws each drawn problem's correct count as Binomial(n, c/n),
    independently per model and per drawn copy.
    """
    if a.problem_ids != b.problem_ids:
        raise ValueError("paired bootstrap needs both models on the same problems in the same order")
    if n_bootstrap < 1:
        raise ValueError("n_bootstrap must be >= 1")
    if not 0.0 < confidence < 1.0:
        raise ValueError("confidence must be in (0, 1)")
    ks_arr = np.asarray(ks, dtype=np.int64)
    n_problems = len(a.problem_ids)
    table_a = _PassAtKTable(a.n, ks_arr)
    table_b = _PassAtKTable(b.n, ks_arr)
    all_rows = np.arange(n_problems)
    per_problem_delta = table_b.lookup(all_rows, b.c) - table_a.lookup(all_rows, a.c)  # (P, K)
    delta = per_problem_delta.mean(axis=0)

    rng = np.random.default_rng(seed)
    replicates = np.empty((n_bootstrap, len(ks_arr)))
    block = max(1, _BOOTSTRAP_BLOCK_CELLS // max(1, n_problems * len(ks_arr)))
    for start in range(0, n_bootstrap, block):
        size = min(block, n_bootstrap - start)
        if not resample_samples:
            # Only the multiplicity of each problem matters for a mean, so count how often each
            # problem is drawn and take a weighted mean: one (size x P) @ (P x K) product.
            # (multinomial); bincount over offset indices is the fast way to draw them.
            drawn = rng.integers(0, n_problems, size=(size, n_problems))
            drawn += np.arange(size)[:, None] * n_problems
            weights = np.bincount(drawn.ravel(), minlength=size * n_problems).reshape(size, n_problems)
            replicates[start : start + size] = weights @ per_problem_delta / n_problems
        else:
            rows = rng.integers(0, n_problems, size=(size, n_problems))
            c_a = rng.binomial(a.n[rows], a.c[rows] / a.n[rows])
            c_b = rng.binomial(b.n[rows], b.c[rows] / b.n[rows])
            replicates[start : start + size] = table_b.mean_over_last_axis(rows, c_b) - table_a.mean_over_last_axis(rows, c_a)

    alpha = 1.0 - confidence
    ci_low = np.quantile(replicates, alpha / 2, axis=0)
    ci_high = np.quantile(replicates, 1 - alpha / 2, axis=0)
    at_or_below = (np.sum(replicates <= 0, axis=0) + 1) / (n_bootstrap + 1)
    at_or_above = (np.sum(replicates >= 0, axis=0) + 1) / (n_bootstrap + 1)
    p_value = np.minimum(1.0, 2 * np.minimum(at_or_below, at_or_above))
    return {"delta": delta, "replicates": replicates, "ci_low": ci_low, "ci_high": ci_high, "p_value": p_value}


def align(a: SampleCounts, b: SampleCounts) -> tuple[SampleCounts, SampleCounts, list[str]]:
    """Restrict both result sets to the problems they share (A's order); notes say what was dropped."""
    b_ids = set(b.problem_ids)
    shared = [pid for pid in a.problem_ids if pid in b_ids]
    if not shared:
        raise ValueError(
            f"the two result files share no problem_id ({a.source or 'A'}: {len(a.problem_ids)} problems, "
            f"{b.source or 'B'}: {len(b.problem_ids)} problems); are they from the same benchmark?"
        )
    notes = []
    shared_set = set(shared)
    for counts, label in ((a, "A"), (b, "B")):
        dropped = [pid for pid in counts.problem_ids if pid not in shared_set]
        if dropped:
            preview = ", ".join(repr(p) for p in dropped[:5]) + (", ..." if len(dropped) > 5 else "")
            notes.append(f"dropped {len(dropped)} problem(s) only in {label} ({counts.source or label}): {preview}")
    return a.subset(shared), b.subset(shared), notes


def compare(
    a: SampleCounts,
    b: SampleCounts,
    ks: Sequence[int] | None = None,
    n_bootstrap: int = 10_000,
    seed: int = 0,
    resample_samples: bool = False,
    confidence: float = 0.95,
) -> PairedComparison:
    """Paired comparison of model B against model A on their shared problems (see the module doc)."""
    a, b, notes = align(a, b)
    n_min = int(min(a.n.min(), b.n.min()))
    ks_list = list(ks) if ks is not None else default_k_grid(n_min)
    ks_arr = np.asarray(ks_list, dtype=np.int64)
    for counts in (a, b):
        _check_ks(ks_arr, int(counts.n.min()), counts.problem_ids, counts.n)
    if np.any(a.n != b.n):
        notes.append("the two models have different sample counts n on some problems; pass@k is still unbiased per model")
    boot = paired_bootstrap(a, b, ks_arr, n_bootstrap, seed, resample_samples, confidence)
    mc_p, a_only, b_only = mcnemar_exact(a.c > 0, b.c > 0)
    return PairedComparison(
        k=[int(k) for k in ks_arr],
        pass_at_k_a=dataset_pass_at_k(a.n, a.c, ks_arr).tolist(),
        pass_at_k_b=dataset_pass_at_k(b.n, b.c, ks_arr).tolist(),
        delta=boot["delta"].tolist(),
        ci_low=boot["ci_low"].tolist(),
        ci_high=boot["ci_high"].tolist(),
        p_value=boot["p_value"].tolist(),
        p_value_holm=holm_adjust(boot["p_value"]).tolist(),
        mcnemar_p=mc_p,
        mcnemar_a_only=a_only,
        mcnemar_b_only=b_only,
        n_problems=len(a.problem_ids),
        n_bootstrap=n_bootstrap,
        resample_samples=resample_samples,
        confidence=confidence,
        seed=seed,
        notes=notes,
    )


# --------------------------------------------------------------------------------------------
# Command line: azr passk
# --------------------------------------------------------------------------------------------


def _parse_k_grid(text: str) -> list[int]:
    try:
        ks = [int(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"--k expects comma-separated integers like 1,2,4,8 (got {text!r})") from None
    if not ks or any(k < 1 for k in ks):
        raise argparse.ArgumentTypeError(f"--k values must be integers >= 1 (got {text!r})")
    return ks


def configure_parser(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("results", help="per-sample correctness JSONL (model A): problem_id, sample_idx, correct")
    parser.add_argument("--vs", metavar="OTHER.jsonl", help="second model's results (model B); reports B - A, paired")
    parser.add_argument("--k", type=_parse_k_grid, default=None, help="comma-separated k grid (default: powers of two up to min n)")
    parser.add_argument("--bootstrap", type=int, default=10_000, metavar="B", help="bootstrap resamples (default 10000)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the bootstrap's numpy Generator (default 0)")
    parser.add_argument(
        "--resample-samples",
        action="store_true",
        help="second bootstrap level: also resample each problem's n samples (correct count ~ Binomial(n, c/n))",
    )
    parser.add_argument("--json", action="store_true", help="print one JSON object instead of a table")


def _fmt_p(p: float) -> str:
    return f"{p:.2g}" if p < 0.001 else f"{p:.3f}"


def run_cli(args: argparse.Namespace) -> int:
    try:
        a = load_results(args.results)
        if args.vs is None:
            ks = args.k if args.k is not None else default_k_grid(int(a.n.min()))
            _check_ks(np.asarray(ks, dtype=np.int64), int(a.n.min()), a.problem_ids, a.n)
            values = dataset_pass_at_k(a.n, a.c, ks)
            if args.json:
                print(json.dumps({"k": [int(k) for k in ks], "pass_at_k": values.tolist(), "n_problems": len(a.problem_ids)}))
            else:
                print(f"{args.results}: {len(a.problem_ids)} problems, n = {int(a.n.min())}..{int(a.n.max())} samples each")
                print(f"{'k':>6}  {'pass@k':>8}")
                for k, v in zip(ks, values):
                    print(f"{k:>6}  {v:>8.4f}")
            return 0
        b = load_results(args.vs)
        result = compare(a, b, args.k, args.bootstrap, args.seed, args.resample_samples)
    except (OSError, ValueError) as exc:
        print(f"azr passk: error: {exc}", file=sys.stderr)
        return 2
    for note in result.notes:
        print(f"azr passk: note: {note}", file=sys.stderr)
    if args.json:
        out = {
            "k": result.k,
            "pass_at_k": result.pass_at_k_a,
            "pass_at_k_other": result.pass_at_k_b,
            "delta": result.delta,
            "ci_low": result.ci_low,
            "ci_high": result.ci_high,
            "p_value": result.p_value,
            "p_value_holm": result.p_value_holm,
            "mcnemar_p": result.mcnemar_p,
            "mcnemar_discordant": {"a_only": result.mcnemar_a_only, "b_only": result.mcnemar_b_only},
            "n_problems": result.n_problems,
            "n_bootstrap": result.n_bootstrap,
            "resample_samples": result.resample_samples,
            "notes": result.notes,
        }
        print(json.dumps(out))
        return 0
    level = "problems and samples" if result.resample_samples else "problems"
    print(f"A = {args.results}\nB = {args.vs}\n{result.n_problems} shared problems; delta = B - A; "
          f"{result.n_bootstrap} paired bootstrap resamples over {level}, seed {result.seed}")
    print(f"{'k':>6}  {'A':>7}  {'B':>7}  {'delta':>8}  {'95% CI':>19}  {'p':>7}  {'p Holm':>7}")
    for i, k in enumerate(result.k):
        ci = f"[{result.ci_low[i]:+.4f}, {result.ci_high[i]:+.4f}]"
        print(f"{k:>6}  {result.pass_at_k_a[i]:>7.4f}  {result.pass_at_k_b[i]:>7.4f}  {result.delta[i]:>+8.4f}  "
              f"{ci:>19}  {_fmt_p(result.p_value[i]):>7}  {_fmt_p(result.p_value_holm[i]):>7}")
    print(f"exact McNemar on pass@n (any sample correct): solved only by A {result.mcnemar_a_only}, "
          f"only by B {result.mcnemar_b_only}, p = {_fmt_p(result.mcnemar_p)}")
    return 0


def comparison_to_dict(result: PairedComparison) -> dict:
    """Everything in a PairedComparison as plain JSON-able values."""
    return asdict(result)
