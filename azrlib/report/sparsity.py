"""RQ4 (paper Fig. 5): update sparsity of self-play vs RLVR vs SFT relative to the same base, in
bf16, fp32 and as stored, exact and within a tolerance, with the per-module breakdown.

Reads R/sparsity/<run>.json (`azr sparsity BASE FINAL --dtype all --json`: one object per
comparison dtype, see azrlib.metrics.sparsity.SparsityResult.to_json_dict). Public checkpoints
(AZR-Coder vs Qwen2.5-Coder) are compared with azrlib.metrics.sparsity.compute_sparsity only when
both are on local disk.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from azrlib.report.paths import resolve
from azrlib.report.results import ResultsDir, parse_run_name

DTYPES = ("bf16", "fp32", "stored")
KIND_LABELS = {"selfplay": "self-play", "rlvr": "RLVR", "sft": "SFT"}
# Public pairs of the paper (tuned, base): local directory names tried under the search roots.
PUBLIC_PAIRS = (
    ("andrewzh/Absolute_Zero_Reasoner-Coder-7b", "Qwen/Qwen2.5-Coder-7B"),
    ("andrewzh/Absolute_Zero_Reasoner-Coder-3b", "Qwen/Qwen2.5-Coder-3B"),
)


def overall_table(rd: ResultsDir, runs: Sequence[str] | None = None) -> pd.DataFrame:
    """One row per (run, dtype): kind, sparsity (exact), sparsity_atol, atol, n_params, n_unchanged."""
    rows = []
    for run in runs or rd.sparsity_runs():
        data = rd.sparsity(run)
        kind = (parse_run_name(run) or (run,))[0]
        for dtype in DTYPES:
            if dtype in data:
                r = data[dtype]
                rows.append({"run": run, "kind": kind, "dtype": dtype, "sparsity": r["sparsity"],
                             "sparsity_atol": r["sparsity_atol"], "atol": r["atol"], "n_params": r["n_params"],
                             "n_unchanged": r["n_unchanged"], "n_unchanged_atol": r["n_unchanged_atol"]})
    return pd.DataFrame(rows)


def wide_table(overall: pd.DataFrame) -> pd.DataFrame:
    """Runs as rows; columns '<dtype> exact' and '<dtype> |d|<=atol' (the figure's numbers)."""
    parts = {}
    for dtype in DTYPES:
        d = overall[overall["dtype"] == dtype].set_index("run")
        if len(d):
            parts[f"{dtype} exact"] = d["sparsity"]
            parts[f"{dtype} atol"] = d["sparsity_atol"]
    out = pd.DataFrame(parts)
    out.index.name = "run"
    return out.reset_index()


def module_table(rd: ResultsDir, runs: Sequence[str] | None = None, dtype: str = "bf16") -> pd.DataFrame:
    """Per run and module: exact and tolerance sparsity and the module's parameter count."""
    rows = []
    for run in runs or rd.sparsity_runs():
        r = rd.sparsity(run).get(dtype)
        if r is None:
            continue
        for module, s in r["per_module"].items():
            rows.append({"run": run, "module": module, "sparsity": s,
                         "sparsity_atol": r.get("per_module_atol", {}).get(module, math.nan),
                         "n_params": r.get("per_module_n_params", {}).get(module, 0)})
    df = pd.DataFrame(rows)
    if len(df):
        order = df.groupby("module")["n_params"].max().sort_values(ascending=False, kind="stable").index
        df["module"] = pd.Categorical(df["module"], categories=list(order), ordered=True)
        df = df.sort_values("module", kind="stable").reset_index(drop=True)
        df["module"] = df["module"].astype(str)
    return df


def plot_overall(overall: pd.DataFrame):
    """Grouped bars: one group per dtype, one bar per run; hatched bars = |d| <= atol."""
    from azrlib.report.plots import color_for, new_figure

    runs = list(dict.fromkeys(overall["run"]))
    dtypes = [d for d in DTYPES if d in set(overall["dtype"])]
    fig, axes = new_figure(1, 1, panel_size=(7.0, 3.4))
    ax = axes[0][0]
    width = 0.8 / (2 * len(runs))
    for i, run in enumerate(runs):
        d = overall[overall["run"] == run].set_index("dtype").reindex(dtypes)
        x = np.arange(len(dtypes)) + (2 * i - len(runs)) * width + width / 2
        kind = (parse_run_name(run) or (run,))[0]
        c = color_for(kind, i)
        ax.bar(x, d["sparsity"], width, color=c, label=f"{run} exact")
        ax.bar(x + width, d["sparsity_atol"], width, color=c, alpha=0.45, hatch="//", label=f"{run} |d|<=atol")
    ax.set_xticks(np.arange(len(dtypes)))
    ax.set_xticklabels([f"compared in {d}" for d in dtypes])
    ax.set_ylabel("update sparsity (fraction unchanged)")
    ax.set_ylim(0, 1.05)
    ax.grid(axis="y", alpha=0.3)
    ax.legend(fontsize=7, frameon=False, ncol=2)
    return fig


def plot_modules(modules: pd.DataFrame, dtype: str = "bf16"):
    """Per-module sparsity (exact), one bar per run, modules ordered by size."""
    from azrlib.report.plots import color_for, new_figure

    mods = list(dict.fromkeys(modules["module"]))
    runs = list(dict.fromkeys(modules["run"]))
    fig, axes = new_figure(1, 1, panel_size=(max(5.0, 0.7 * len(mods) + 2), 3.4))
    ax = axes[0][0]
    width = 0.8 / max(1, len(runs))
    for i, run in enumerate(runs):
        d = modules[modules["run"] == run].set_index("module").reindex(mods)
        kind = (parse_run_name(run) or (run,))[0]
        ax.bar(np.arange(len(mods)) + (i - (len(runs) - 1) / 2) * width, d["sparsity"], width,
               color=color_for(kind, i), label=run)
    ax.set_xticks(np.arange(len(mods)))
    ax.set_xticklabels(mods, rotation=45, ha="right", fontsize=8)
    ax.set_ylabel(f"sparsity ({dtype}, exact)")
    ax.set_ylim(0, 1.05)
    ax.grid(axis="y", alpha=0.3)
    ax.legend(fontsize=7, frameon=False)
    return fig


def find_public_pairs(search_roots: Sequence[str | Path], pairs=PUBLIC_PAIRS) -> list[tuple[str, Path, Path]]:
    """(label, base dir, tuned dir) for every public pair whose two checkpoints are both on disk
    under one of the roots (as <root>/<org>/<name>, <root>/<name> or a Hugging Face cache
    <root>/models--<org>--<name>/snapshots/<rev>)."""
    found = []
    for tuned, base in pairs:
        t, b = _locate(tuned, search_roots), _locate(base, search_roots)
        if t is not None and b is not None:
            found.append((f"{tuned.split('/')[-1]} vs {base.split('/')[-1]}", b, t))
    return found


def _locate(repo_id: str, roots: Sequence[str | Path]) -> Path | None:
    org, name = repo_id.split("/")
    for root in roots:
        root = resolve(root)
        for cand in (root / org / name, root / name):
            if (cand / "config.json").is_file():
                return cand
        snaps = root / f"models--{org}--{name}" / "snapshots"
        if snaps.is_dir():
            for snap in sorted(snaps.iterdir()):
                if (snap / "config.json").is_file():
                    return snap
    return None


def compute_public(pairs: list[tuple[str, Path, Path]], dtypes: Sequence[str] = DTYPES) -> pd.DataFrame:
    """Sparsity of each present public pair (reads both checkpoints; minutes for 7B)."""
    from azrlib.metrics.sparsity import compute_sparsity

    rows = []
    for label, base, tuned in pairs:
        for dtype, r in compute_sparsity(base, tuned, list(dtypes)).items():
            rows.append({"pair": label, "dtype": dtype, "sparsity": r.sparsity, "sparsity_atol": r.sparsity_atol,
                         "n_params": r.n_params})
    return pd.DataFrame(rows, columns=["pair", "dtype", "sparsity", "sparsity_atol", "n_params"])


def check_results(overall: pd.DataFrame, expected_runs: Sequence[str], tol: float = 1e-12) -> None:
    """Every expected run has all three dtypes; sparsities in [0, 1]; the tolerance count is never
    below the exact count; all runs count the same number of parameters (same base)."""
    for run in expected_runs:
        got = set(overall.loc[overall["run"] == run, "dtype"])
        assert set(DTYPES) <= got, f"{run}: sparsity missing for dtype(s) {sorted(set(DTYPES) - got)}"
    for col in ("sparsity", "sparsity_atol"):
        assert overall[col].between(0, 1).all(), f"{col} outside [0, 1]"
    assert (overall["sparsity_atol"] >= overall["sparsity"] - tol).all(), "tolerance sparsity below exact sparsity"
    assert (overall["n_unchanged"] <= overall["n_params"]).all()
    assert overall["n_params"].nunique() == 1, "runs count different numbers of parameters (not the same base?)"


PAPER = ("**Paper (RQ4, Fig. 5):** self-play updates are of intermediate sparsity: AZR-Coder-7B leaves 45.7% of "
         "the weights unchanged (a bf16 comparison), between RL runs (70-95% sparse; Mukherjee et al.) and SFT "
         "(6-15%). Compared in fp32, AZR's fp32 checkpoints look dense: bf16 hides updates smaller than half a "
         "bf16 step.")


def verdict(overall: pd.DataFrame, dtype: str = "bf16") -> str:
    """Markdown: each run's sparsity in `dtype` (exact and tolerance) and fp32, and whether the order
    RLVR > self-play > SFT holds. Sparsity is an exact count on one run each: no CI across seeds."""
    d = overall[overall["dtype"] == dtype].set_index("kind")
    lines = [PAPER, "", f"**This run** (final checkpoint vs base, one run per method, so no CI: the numbers are exact "
             f"counts over {int(overall['n_params'].iloc[0]):,} parameters):", ""]
    for run, g in overall.groupby("run", sort=False):
        g = g.set_index("dtype")
        parts = [f"{dt} {g.loc[dt, 'sparsity']:.1%} exact / {g.loc[dt, 'sparsity_atol']:.1%} within atol "
                 f"{g.loc[dt, 'atol']:g}" for dt in DTYPES if dt in g.index]
        lines.append(f"- **{run}**: " + "; ".join(parts) + ".")
    kinds = [k for k in ("rlvr", "selfplay", "sft") if k in d.index]
    if len(kinds) == 3:
        s = {k: float(d.loc[k, "sparsity"]) for k in kinds}
        order = " > ".join(f"{KIND_LABELS[k]} {s[k]:.1%}" for k in sorted(kinds, key=lambda k: -s[k]))
        if s["rlvr"] >= s["selfplay"] >= s["sft"] and s["rlvr"] > s["sft"]:
            v = "supports it: self-play lies between RLVR and SFT"
        elif s["selfplay"] > s["rlvr"] and s["selfplay"] > s["sft"]:
            v = "partly supports it: self-play is sparser than SFT, but also sparser than RLVR"
        elif max(s.values()) < 0.05:
            v = "does not support it: every method updates nearly every weight at this scale (all dense)"
        else:
            v = "does not support it: self-play is not between RLVR and SFT"
        lines += ["", f"Order in {dtype} (exact): {order}. Verdict: this run {v}."]
        fp32 = overall[overall["dtype"] == "fp32"]
        if len(fp32) and float(fp32["sparsity"].max()) < 0.01 <= float(d["sparsity"].max()):
            lines.append("Compared in fp32 every run is dense (< 1% unchanged): the bf16 sparsity comes from updates "
                         "too small to survive rounding to bf16, the caveat the paper's fp32 note describes.")
    else:
        lines += ["", f"Verdict: cannot compare, runs present: {', '.join(kinds) or 'none'}."]
    return "\n".join(lines)
