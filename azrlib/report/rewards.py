"""RQ5 (paper Fig. 6): entropy and validation accuracy over training for the proposer rewards
`azr` (learnability 1-p, runs selfplay_s<k>), `band` (1-2|p-0.5|, band_s<k>) and `azr_code`
(the shipped code's -0.5 for trivial tasks, azr_code_s<k>), seeds as bands.

metrics.jsonl keys read: val/<type>/accuracy (validation steps only: step 0, every
validate_every, the last), entropy_full/all and the sampled estimate (via report.entropy).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import pandas as pd

from azrlib.report.entropy import entropy_long
from azrlib.report.results import ResultsDir, parse_run_name
from azrlib.report.tables import TASK_TYPES, fmt_ci, seed_band, t_interval, welch_interval

VARIANTS = {"selfplay": "azr", "band": "band", "azr_code": "azr_code"}


def variant_runs(rd: ResultsDir) -> dict[str, list[str]]:
    """Proposer-reward variant -> its runs present (azr = the self-play runs)."""
    return {v: rd.runs_of(kind) for kind, v in VARIANTS.items() if rd.runs_of(kind)}


def val_long(df: pd.DataFrame) -> pd.DataFrame:
    """Tidy validation accuracy of one run: step, task_type, value (+ 'mean' over the types logged)."""
    parts = []
    for t in TASK_TYPES:
        col = f"val/{t}/accuracy"
        if col in df.columns:
            parts.append(pd.DataFrame({"step": df["step"], "task_type": t, "value": pd.to_numeric(df[col], errors="coerce")}))
    if not parts:
        return pd.DataFrame(columns=["step", "task_type", "value"])
    d = pd.concat(parts, ignore_index=True).dropna(subset=["value"])
    mean = d.groupby("step", as_index=False)["value"].mean().assign(task_type="mean")
    return pd.concat([d, mean], ignore_index=True)


def overall_entropy(df: pd.DataFrame) -> pd.DataFrame:
    """step, estimator, value: the overall entropy of one run under both estimators."""
    e = entropy_long(df)
    return e[(e["role"] == "all") & (e["task_type"] == "all")][["step", "estimator", "value"]]


def variants_long(rd: ResultsDir, runs: dict[str, list[str]], fn) -> pd.DataFrame:
    frames = []
    for variant, names in runs.items():
        for name in names:
            d = fn(rd.metrics(name))
            d.insert(0, "seed", (parse_run_name(name) or ("", -1))[1])
            d.insert(0, "run", name)
            d.insert(0, "variant", variant)
            frames.append(d)
    return pd.concat(frames, ignore_index=True)


def final_values(long: pd.DataFrame, by: Sequence[str]) -> pd.DataFrame:
    """Per run and `by` group: the value at the run's last logged step."""
    idx = long.sort_values("step", kind="stable").groupby(["variant", "run", "seed", *by], sort=False).tail(1)
    return idx.sort_values(["variant", "seed", *by], kind="stable").reset_index(drop=True)


def across_seeds(df: pd.DataFrame, by: Sequence[str]) -> pd.DataFrame:
    """Mean over seeds with min, max and t CI per variant and `by` (e.g. the final values per
    task type, or every step's values for the curves' bands)."""
    return seed_band(df, ["variant", *by])


def difference(final: pd.DataFrame, a: str, b: str, where: dict) -> tuple[float, float, float, int, int]:
    """(mean_b - mean_a, Welch CI low, high, n_a, n_b) of the final values selected by `where`."""
    sel = final
    for k, v in where.items():
        sel = sel[sel[k] == v]
    xa = sel.loc[sel["variant"] == a, "value"].to_numpy(float)
    xb = sel.loc[sel["variant"] == b, "value"].to_numpy(float)
    d, lo, hi = welch_interval(xa, xb)
    return d, lo, hi, len(xa), len(xb)


def plot_curves(val_band: pd.DataFrame, ent_band: pd.DataFrame):
    """Panels: overall entropy (full, sampled), validation accuracy (mean over types, then each
    type). One line per variant: mean over seeds, band = min-max over seeds."""
    from azrlib.report.plots import color_for, legend_once, line_with_band, new_figure

    panels = [("entropy", e) for e in ("full", "sampled") if e in set(ent_band["estimator"])]
    panels += [("val", t) for t in ("mean", *TASK_TYPES) if t in set(val_band["task_type"])]
    ncols = 3
    nrows = -(-len(panels) // ncols)
    fig, axes = new_figure(nrows, ncols)
    for ax, (what, key) in zip(axes.ravel(), panels):
        data = ent_band[ent_band["estimator"] == key] if what == "entropy" else val_band[val_band["task_type"] == key]
        for v, g in data.groupby("variant", sort=False):
            line_with_band(ax, g["step"], g["mean"], g["min"], g["max"], label=v, color=color_for(v))
        if what == "entropy":
            ax.set_title(f"entropy ({key})", fontsize=10)
        else:
            ax.set_title(f"validation accuracy: {key}", fontsize=10)
            ax.set_ylim(-0.02, 1.02)
        ax.set_xlabel("training step")
        ax.grid(alpha=0.3)
    for ax in axes.ravel()[len(panels):]:
        ax.set_visible(False)
    legend_once(fig, axes)
    return fig


def check_results(val: pd.DataFrame, ent: pd.DataFrame, runs: dict[str, list[str]]) -> None:
    """azr and band present; every run logged validation accuracy (in [0, 1]) and finite positive entropy."""
    assert "azr" in runs and "band" in runs, f"RQ5 needs azr and band runs, found {sorted(runs)}"
    for names in runs.values():
        for name in names:
            assert (val["run"] == name).any(), f"{name}: no val/<type>/accuracy logged"
            assert (ent["run"] == name).any(), f"{name}: no entropy logged"
    assert val["value"].between(0, 1).all(), "validation accuracy outside [0, 1]"
    v = ent["value"].to_numpy(float)
    assert np.isfinite(v).all() and (v > 0).all(), "entropy not finite and positive"


PAPER = ("**Paper (RQ5, Fig. 6):** the proposer is the crucial component. Replacing AZR's learnability "
         "reward (1-p, zero for tasks always or never solved) with a reward peaked at solve rate 0.5 "
         "(1-2|p-0.5|) changes the training dynamics: the question is whether targeting p = 0.5 keeps entropy "
         "higher and improves validation accuracy over AZR's reward.")


def verdict(val_final: pd.DataFrame, ent_final: pd.DataFrame, runs: dict[str, list[str]]) -> str:
    lines = [PAPER, "", "**This run** (final logged step of each run; mean over seeds [95% t CI]; difference vs azr "
             "with a Welch 95% CI across seeds):", ""]
    for variant in runs:
        acc = val_final[(val_final["variant"] == variant) & (val_final["task_type"] == "mean")]["value"]
        ent = ent_final[(ent_final["variant"] == variant) & (ent_final["estimator"] == "full")]["value"]
        n = len(runs[variant])
        lines.append(f"- **{variant}** ({n} seed{'s' * (n > 1)}): validation accuracy (mean over types) "
                     f"{fmt_ci(*t_interval(acc.tolist()))}; full-vocabulary entropy {fmt_ci(*t_interval(ent.tolist()))}.")
    lines.append("")
    verdicts = []
    changed = None
    for other in [v for v in runs if v != "azr"]:
        d_acc = difference(val_final, "azr", other, {"task_type": "mean"})
        d_ent = difference(ent_final, "azr", other, {"estimator": "full"})
        lines.append(f"- {other} - azr: accuracy {fmt_ci(*d_acc[:3], signed=True)}, entropy {fmt_ci(*d_ent[:3], signed=True)}.")
        if other == "band":
            acc_sig = _sign(d_acc)
            ent_sig = _sign(d_ent)
            verdicts.append(f"band vs azr: accuracy {acc_sig}, entropy {ent_sig}")
            changed = "significantly" in acc_sig or "significantly" in ent_sig
    if changed is True:
        verdicts.append("so in this run the proposer reward does change the dynamics, as the paper argues")
    elif changed is False:
        verdicts.append("so this run does not show that the proposer reward changes the dynamics")
    lines += ["", "Verdict: " + ("; ".join(verdicts) if verdicts else "no band runs to compare") +
              ". With few seeds and short runs the intervals are wide; a difference whose CI spans 0 is not evidence "
              "either way."]
    return "\n".join(lines)


def _sign(diff: tuple) -> str:
    d, lo, hi = diff[:3]
    if math.isnan(lo):
        return "undetermined (too few seeds for a CI)" if not math.isnan(d) else "n/a"
    if lo > 0:
        return "significantly higher with band"
    if hi < 0:
        return "significantly lower with band"
    return "no significant difference"


def curves_data(val_band: pd.DataFrame, ent_band: pd.DataFrame) -> pd.DataFrame:
    """The plotted numbers of plot_curves in one table: metric, variant, series, step, band columns."""
    v = val_band.rename(columns={"task_type": "series"}).assign(metric="val_accuracy")
    e = ent_band.rename(columns={"estimator": "series"}).assign(metric="entropy")
    d = pd.concat([e, v], ignore_index=True)
    return d[["metric", "variant", "series", "step", "n_seeds", "mean", "min", "max", "ci_low", "ci_high"]]
