"""RQ2 (paper Fig. 2): response length and solve rate of the base and self-play models on questions
proposed at successive training iterations (rows from azrlib.metrics.difficulty.evaluate_questions).

The per-bin means and CIs are azrlib.metrics.difficulty.summarize_by_bin's; this module adds the
trend over training (least-squares slope against the step the question was proposed at, with a
bootstrap CI over questions) and words the verdict.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import pandas as pd

from azrlib.metrics.difficulty import summarize_by_bin
from azrlib.report.tables import fmt_ci

METRICS = ("solve_rate", "response_length")
LABELS = {"solve_rate": "solve rate", "response_length": "response length (tokens)"}


def question_frame(rows: list[dict]) -> pd.DataFrame:
    """One row per (question, model): qid, model, step, bin, solve_rate, response_length (mean over samples)."""
    return pd.DataFrame([{"qid": r["qid"], "model": r["model"], "step": int(r["step"]), "bin": int(r["bin"]),
                          "solve_rate": float(r["solve_rate"]),
                          "response_length": float(np.mean(r["lengths"])) if r["lengths"] else math.nan,
                          "m": len(r["lengths"])} for r in rows])


def bin_table(rows: list[dict], models: Sequence[str] | None = None) -> pd.DataFrame:
    """summarize_by_bin as a DataFrame (model, bin, n, first/last step, means and CIs), models in order."""
    df = pd.DataFrame(summarize_by_bin(rows))
    if models is not None:
        df = df[df["model"].isin(models)].copy()
        df["model"] = pd.Categorical(df["model"], categories=list(models), ordered=True)
        df = df.sort_values(["model", "bin"]).reset_index(drop=True)
        df["model"] = df["model"].astype(str)
    df["mid_step"] = (df["first_step"] + df["last_step"]) / 2
    return df


def slope(x: np.ndarray, y: np.ndarray) -> float:
    """Least-squares slope of y on x (NaN when x has no spread)."""
    x = np.asarray(x, dtype=float)
    y = np.asarray(y, dtype=float)
    dx = x - x.mean()
    denom = float(dx @ dx)
    return float(dx @ (y - y.mean()) / denom) if denom > 0 else math.nan


def trend(questions: pd.DataFrame, model: str, metric: str, n_bootstrap: int = 2000, seed: int = 0,
          confidence: float = 0.95) -> dict:
    """Trend of `metric` over the training step the questions were proposed at, for one model: the
    least-squares slope over questions, reported as the change it implies from the first to the
    last question step (`change` = slope x span), with a percentile bootstrap CI over questions."""
    d = questions[(questions["model"] == model)].dropna(subset=[metric])
    x, y = d["step"].to_numpy(float), d[metric].to_numpy(float)
    span = float(x.max() - x.min()) if len(x) else math.nan
    est = slope(x, y) * span
    rng = np.random.default_rng(seed)
    reps = []
    for _ in range(n_bootstrap):
        idx = rng.integers(0, len(x), len(x))
        s = slope(x[idx], y[idx])
        if not math.isnan(s):
            reps.append(s * span)
    alpha = 1 - confidence
    lo, hi = (np.quantile(reps, alpha / 2), np.quantile(reps, 1 - alpha / 2)) if reps else (math.nan, math.nan)
    return {"model": model, "metric": metric, "change": est, "ci_low": float(lo), "ci_high": float(hi),
            "n_questions": int(len(d)), "first_step": int(x.min()) if len(x) else -1,
            "last_step": int(x.max()) if len(x) else -1}


def trend_table(questions: pd.DataFrame, models: Sequence[str], n_bootstrap: int = 2000, seed: int = 0) -> pd.DataFrame:
    return pd.DataFrame([trend(questions, m, metric, n_bootstrap, seed) for m in models for metric in METRICS])


def plot_bins(table: pd.DataFrame, models: Sequence[str]):
    """Two panels (solve rate, response length) vs the training step the questions came from."""
    from azrlib.report.plots import color_for, legend_once, line_with_band, new_figure

    fig, axes = new_figure(1, 2)
    for ax, metric in zip(axes[0], METRICS):
        for i, m in enumerate(models):
            d = table[table["model"] == m]
            line_with_band(ax, d["mid_step"], d[metric], d[f"{metric}_ci_low"], d[f"{metric}_ci_high"], label=m,
                           color=color_for("base" if i == 0 else "selfplay"), linestyle="--" if i == 0 else "-")
        ax.set_xlabel("training step the question was proposed at")
        ax.set_ylabel(LABELS[metric])
        if metric == "solve_rate":
            ax.set_ylim(-0.02, 1.02)
        ax.grid(alpha=0.3)
    legend_once(fig, axes)
    return fig


def check_results(questions: pd.DataFrame, table: pd.DataFrame, models: Sequence[str], tol: float = 1e-9) -> None:
    """Every model answered the same questions; rates in [0, 1]; lengths >= 0; CIs contain means."""
    assert len(questions), "no RQ2 questions"
    qids = {m: set(questions.loc[questions["model"] == m, "qid"]) for m in models}
    assert all(qids[m] for m in models), f"a model has no RQ2 rows: { {m: len(q) for m, q in qids.items()} }"
    assert all(qids[m] == qids[models[0]] for m in models), "the models were not asked the same questions"
    assert questions["solve_rate"].between(0, 1).all(), "solve rate outside [0, 1]"
    assert (questions["response_length"] >= 0).all(), "negative response length"
    for metric in METRICS:
        assert (table[f"{metric}_ci_low"] <= table[metric] + tol).all() and \
               (table[metric] <= table[f"{metric}_ci_high"] + tol).all(), f"{metric}: CI does not contain the mean"


PAPER = ("**Paper (RQ2, Fig. 2):** the proposer writes increasingly difficult questions as training goes on "
         "(both models solve later questions less often), and the models adjust their response length to "
         "the difficulty (longer responses on the later, harder questions).")


def _direction(row: pd.Series) -> str:
    if math.isnan(row["ci_low"]):
        return "undetermined"
    if row["ci_high"] < 0:
        return "decreases"
    if row["ci_low"] > 0:
        return "increases"
    return "shows no significant trend"


def verdict(trends: pd.DataFrame, table: pd.DataFrame, models: Sequence[str]) -> str:
    lines = [PAPER, "", "**This run** (change from the first to the last question step implied by the least-squares "
             "slope over questions, 95% bootstrap CI over questions):", ""]
    harder = []
    longer = []
    for m in models:
        parts = []
        for metric in METRICS:
            row = trends[(trends["model"] == m) & (trends["metric"] == metric)].iloc[0]
            parts.append(f"{LABELS[metric]} {_direction(row)} ({fmt_ci(row['change'], row['ci_low'], row['ci_high'], signed=True)})")
            if metric == "solve_rate":
                harder.append(row["ci_high"] < 0)
            else:
                longer.append(row["ci_low"] > 0)
        d = table[table["model"] == m]
        first, last = d.iloc[0], d.iloc[-1]
        n = int(trends[(trends["model"] == m)].iloc[0]["n_questions"])
        lines.append(f"- **{m}** ({n} questions, steps {int(first['first_step'])}-{int(last['last_step'])}): "
                     f"{'; '.join(parts)}. Solve rate first bin {first['solve_rate']:.3f} -> last bin {last['solve_rate']:.3f}; "
                     f"length {first['response_length']:.1f} -> {last['response_length']:.1f} tokens.")
    if all(harder) and all(longer):
        v = "supports both parts of the takeaway"
    elif all(harder):
        v = "supports the harder-questions part; response length does not rise significantly"
    elif any(harder):
        v = "supports it only partly: later questions are significantly harder for some models, not all"
    else:
        v = "does not support it: later questions are not significantly harder"
    lines += ["", f"Verdict: this run {v}."]
    return "\n".join(lines)
