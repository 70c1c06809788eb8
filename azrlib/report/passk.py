"""RQ1 (paper Fig. 1): pass@k of the self-play model vs its base, per benchmark (the tiny world:
per task type), with bootstrap bands and the per-k paired significance table.

The estimator, the paired bootstrap, McNemar and Holm are azrlib.metrics.passk's; this module
groups the per-sample rows, adds a per-model percentile band for the curves and words the verdict.
"""

from __future__ import annotations

import json
import re
from collections import defaultdict
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from azrlib.metrics.passk import (
    PairedComparison,
    SampleCounts,
    compare,
    counts_from_rows,
    default_k_grid,
    pass_at_k_matrix,
)
from azrlib.report.results import ResultsDir
from azrlib.report.tables import TASK_TYPES, fmt_ci, fmt_p

TINYWORLD = "tinyworld"
_TYPE_RE = re.compile(r"(?<![a-z])(" + "|".join(TASK_TYPES) + r")(?![a-z])")


def task_type_of(row: dict, index_types: dict[str, str] | None = None) -> str | None:
    """A tiny-world row's task type: its `task_type` key, else a task-type word inside the problem
    id (e.g. 'deduction/17'), else the benchmark file's type for that id (`index_types`)."""
    if row.get("task_type") in TASK_TYPES:
        return row["task_type"]
    pid = str(row.get("problem_id", ""))
    m = _TYPE_RE.search(pid.lower())
    if m:
        return m.group(1)
    if index_types is not None:
        return index_types.get(pid)
    return None


def benchmark_index_types(path: str | Path) -> dict[str, str]:
    """problem id -> task type of a tiny-world benchmark file, using the ids `azr eval` gives
    (meta.id, else the row index)."""
    out: dict[str, str] = {}
    for index, line in enumerate(Path(path).read_text().splitlines()):
        if line.strip():
            row = json.loads(line)
            out[str((row.get("meta") or {}).get("id", index))] = row["task_type"]
    return out


def group_rows(rows: list[dict], benchmark: str, index_types: dict[str, str] | None = None) -> dict[str, list[dict]]:
    """Rows of one benchmark file by plot group: tiny world -> '<type>' groups; others -> the benchmark."""
    if benchmark != TINYWORLD:
        return {benchmark: rows}
    groups: dict[str, list[dict]] = defaultdict(list)
    for r in rows:
        t = task_type_of(r, index_types)
        if t is None:
            raise ValueError(f"cannot tell the task type of tiny-world problem {r.get('problem_id')!r}; "
                             "its row has no task_type and its id names none")
        groups[t].append(r)
    return {t: groups[t] for t in TASK_TYPES if t in groups}


def load_groups(rd: ResultsDir, models: tuple[str, str], benchmarks: Sequence[str] | None = None,
                index_types: dict[str, str] | None = None) -> dict[str, tuple[SampleCounts, SampleCounts]]:
    """group -> (counts of models[0], counts of models[1]) for every benchmark both models have."""
    a_name, b_name = models
    shared = [b for b in rd.eval_benchmarks(a_name) if b in rd.eval_benchmarks(b_name)]
    if benchmarks is not None:
        shared = [b for b in shared if b in benchmarks]
    if not shared:
        raise ValueError(f"no benchmark evaluated for both {a_name} and {b_name} under {rd}")
    out: dict[str, tuple[SampleCounts, SampleCounts]] = {}
    for bench in shared:
        ga = group_rows(rd.eval_rows(a_name, bench), bench, index_types)
        gb = group_rows(rd.eval_rows(b_name, bench), bench, index_types)
        for g in ga:
            if g in gb:
                out[g] = (counts_from_rows(ga[g], f"{a_name}/{bench}/{g}"), counts_from_rows(gb[g], f"{b_name}/{bench}/{g}"))
    return out


def k_grid(groups: dict[str, tuple[SampleCounts, SampleCounts]], ks: Sequence[int] | None = None) -> dict[str, list[int]]:
    """group -> k grid: the given grid for every group, else powers of two up to the group's
    smallest sample count (benchmarks sampled with different n, e.g. AIME 1024 vs code 128, each
    get their own)."""
    if ks is not None:
        return {g: [int(k) for k in ks] for g in groups}
    return {g: default_k_grid(int(min(a.n.min(), b.n.min()))) for g, (a, b) in groups.items()}


def _ks_for(ks, group: str) -> list[int]:
    return list(ks[group]) if isinstance(ks, dict) else [int(k) for k in ks]


def curve_band(counts: SampleCounts, ks: Sequence[int], n_bootstrap: int = 2000, seed: int = 0,
               confidence: float = 0.95) -> pd.DataFrame:
    """pass@k of one model with a percentile bootstrap band over problems: columns k, pass_at_k,
    ci_low, ci_high."""
    per_problem = pass_at_k_matrix(counts.n, counts.c, ks)  # (P, K)
    n_problems = per_problem.shape[0]
    rng = np.random.default_rng(seed)
    weights = rng.multinomial(n_problems, np.full(n_problems, 1.0 / n_problems), size=n_bootstrap)
    replicates = weights @ per_problem / n_problems
    alpha = 1.0 - confidence
    return pd.DataFrame({
        "k": [int(k) for k in ks],
        "pass_at_k": per_problem.mean(axis=0),
        "ci_low": np.quantile(replicates, alpha / 2, axis=0),
        "ci_high": np.quantile(replicates, 1 - alpha / 2, axis=0),
    })


def curves_table(groups: dict[str, tuple[SampleCounts, SampleCounts]], models: tuple[str, str], ks,
                 n_bootstrap: int = 2000, seed: int = 0) -> pd.DataFrame:
    """Long table: group, model, k, pass_at_k, ci_low, ci_high, n_problems."""
    frames = []
    for g, pair in groups.items():
        for name, counts in zip(models, pair):
            df = curve_band(counts, _ks_for(ks, g), n_bootstrap, seed)
            df.insert(0, "model", name)
            df.insert(0, "group", g)
            df["n_problems"] = len(counts.problem_ids)
            frames.append(df)
    return pd.concat(frames, ignore_index=True)


def significance_table(groups: dict[str, tuple[SampleCounts, SampleCounts]], models: tuple[str, str],
                       ks, n_bootstrap: int = 10_000, seed: int = 0) -> pd.DataFrame:
    """Per group and k: both pass@k, delta = models[1] - models[0], its paired bootstrap CI, p,
    Holm-adjusted p (across the k grid of the group) and the exact McNemar p at pass@n."""
    rows = []
    for g, (a, b) in groups.items():
        r: PairedComparison = compare(a, b, _ks_for(ks, g), n_bootstrap=n_bootstrap, seed=seed)
        for i, k in enumerate(r.k):
            rows.append({"group": g, "k": k, models[0]: r.pass_at_k_a[i], models[1]: r.pass_at_k_b[i],
                         "delta": r.delta[i], "ci_low": r.ci_low[i], "ci_high": r.ci_high[i],
                         "p": r.p_value[i], "p_holm": r.p_value_holm[i], "n_problems": r.n_problems,
                         "mcnemar_p": r.mcnemar_p})
    return pd.DataFrame(rows)


def plot_curves(curves: pd.DataFrame, models: tuple[str, str]):
    """One panel per group: pass@k vs log2 k for both models with their bootstrap bands."""
    from azrlib.report.plots import color_for, legend_once, line_with_band, log2_k_axis, new_figure

    groups = list(dict.fromkeys(curves["group"]))
    fig, axes = new_figure(1, len(groups), sharey=True)  # each panel its own k axis
    for ax, g in zip(axes[0], groups):
        for i, m in enumerate(models):
            d = curves[(curves["group"] == g) & (curves["model"] == m)]
            line_with_band(ax, d["k"], d["pass_at_k"], d["ci_low"], d["ci_high"], label=m,
                           color=color_for("base" if i == 0 else "selfplay"), linestyle="--" if i == 0 else "-")
        log2_k_axis(ax, sorted(set(curves.loc[curves["group"] == g, "k"])))
        n = int(curves.loc[curves["group"] == g, "n_problems"].iloc[0])
        ax.set_title(f"{g} ({n} problems)", fontsize=10)
        ax.grid(alpha=0.3)
    axes[0][0].set_ylabel("pass@k")
    legend_once(fig, axes)
    return fig


def check_results(curves: pd.DataFrame, sig: pd.DataFrame, tol: float = 1e-9) -> None:
    """Sanity checks that can fail: pass@k in [0, 1] and non-decreasing in k, bands contain the
    estimate, the paired CI contains delta, p-values in [0, 1] with Holm >= raw."""
    for (g, m), d in curves.groupby(["group", "model"]):
        v = d.sort_values("k")["pass_at_k"].to_numpy()
        assert np.all((v >= -tol) & (v <= 1 + tol)), f"{g}/{m}: pass@k outside [0, 1]"
        assert np.all(np.diff(v) >= -tol), f"{g}/{m}: pass@k decreases with k"
        assert np.all(d["ci_low"] <= d["pass_at_k"] + tol) and np.all(d["pass_at_k"] <= d["ci_high"] + tol), \
            f"{g}/{m}: bootstrap band does not contain pass@k"
    assert np.all(sig["ci_low"] <= sig["delta"] + tol) and np.all(sig["delta"] <= sig["ci_high"] + tol), \
        "paired CI does not contain delta"
    for col in ("p", "p_holm", "mcnemar_p"):
        assert sig[col].between(0, 1).all(), f"{col} outside [0, 1]"
    assert np.all(sig["p_holm"] >= sig["p"] - tol), "Holm-adjusted p below raw p"


PAPER = ("**Paper (RQ1, Fig. 1):** self-play raises pass@k at small k over its base model, but the base "
         "catches up as k grows and overtakes it at large k: self-play sharpens the distribution rather than "
         "expanding what the base can solve (its reasoning boundary stays the base's).")


def verdict(sig: pd.DataFrame, models: tuple[str, str], alpha: float = 0.05) -> str:
    """Markdown: per group, delta at the smallest and the largest k with CI and Holm p, then whether
    this run supports the paper (small-k gain significant, and the gap at large k smaller or reversed)."""
    lines = [PAPER, "", f"**This run** (delta = {models[1]} - {models[0]}, 95% paired bootstrap CI, Holm p over the k grid):", ""]
    support = []
    for g, d in sig.groupby("group", sort=False):
        d = d.sort_values("k")
        lo, hi = d.iloc[0], d.iloc[-1]
        gain_small = lo["delta"] > 0 and lo["p_holm"] < alpha
        narrows = hi["delta"] < lo["delta"]
        reversed_sig = hi["delta"] < 0 and hi["p_holm"] < alpha
        if gain_small and narrows:
            v = "supports it" + (" (the base is significantly better at large k)" if reversed_sig else
                                 " (gain at small k, narrower or reversed at large k)")
        elif gain_small:
            v = "partly: a significant gain at small k, but it does not shrink at large k"
        elif lo["delta"] < 0 and lo["p_holm"] < alpha:
            v = "does not support it: self-play is significantly worse already at k=1"
        else:
            v = "does not support it: no significant gain at small k"
        support.append(gain_small and narrows)
        lines.append(f"- **{g}** ({int(lo['n_problems'])} problems): k={int(lo['k'])}: "
                     f"{lo[models[0]]:.3f} -> {lo[models[1]]:.3f}, delta {fmt_ci(lo['delta'], lo['ci_low'], lo['ci_high'], signed=True)}, "
                     f"p_Holm {fmt_p(lo['p_holm'])}; k={int(hi['k'])}: {hi[models[0]]:.3f} -> {hi[models[1]]:.3f}, "
                     f"delta {fmt_ci(hi['delta'], hi['ci_low'], hi['ci_high'], signed=True)}, p_Holm {fmt_p(hi['p_holm'])}. "
                     f"Verdict: {v}.")
    n_ok = sum(support)
    lines += ["", f"Overall: the pattern holds in {n_ok} of {len(support)} group(s)."]
    return "\n".join(lines)
