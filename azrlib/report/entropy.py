"""RQ3 (paper Figs. 3, 4, 7): policy entropy over training, overall, by role and by task type, with
both estimators the trainer logs, and response length.

metrics.jsonl keys read (azrlib.trainer.loop):
  entropy/<role>/<type>          sampled-token estimate, mean over responses of the token mean of
                                 -log pi(y_t) at sampling time (seed paper's Eq. 1)
  entropy_full/<role>/<type>     full-vocabulary entropy of the update's forward pass, same averaging
  entropy_full/all               the same pooled over every response of the step
  response_length/<type>/<role>  mean generated tokens
role in {propose, solve}, type in {deduction, abduction, induction}. Aggregates over groups that
the trainer does not log ('all' for the sampled estimator, per role, per type) are unweighted means
over the (role, type) groups present at that step; each group holds batch_size responses, so this
is close to the pooled mean.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import pandas as pd

from azrlib.report.results import ResultsDir, parse_run_name
from azrlib.report.tables import TASK_TYPES, fmt_ci, seed_band, t_interval

ROLES = ("propose", "solve")
ESTIMATORS = {"full": "entropy_full/{role}/{t}", "sampled": "entropy/{role}/{t}"}
ESTIMATOR_LABELS = {"full": "full-vocabulary entropy", "sampled": "sampled-token estimate (-log pi)"}


def _group_values(df: pd.DataFrame, template: str) -> pd.DataFrame:
    """Long rows (step, role, task_type, value) for the (role, type) columns of `template` present."""
    parts = []
    for role in ROLES:
        for t in TASK_TYPES:
            col = template.format(role=role, t=t)
            if col in df.columns:
                parts.append(pd.DataFrame({"step": df["step"], "role": role, "task_type": t,
                                           "value": pd.to_numeric(df[col], errors="coerce")}))
    if not parts:
        return pd.DataFrame(columns=["step", "role", "task_type", "value"])
    return pd.concat(parts, ignore_index=True).dropna(subset=["value"])


def _aggregates(groups: pd.DataFrame) -> pd.DataFrame:
    """Per step: (role, 'all') mean over types, ('all', type) mean over roles, ('all', 'all') mean over groups."""
    if groups.empty:
        return groups
    by_role = groups.groupby(["step", "role"], as_index=False)["value"].mean().assign(task_type="all")
    by_type = groups.groupby(["step", "task_type"], as_index=False)["value"].mean().assign(role="all")
    overall = groups.groupby("step", as_index=False)["value"].mean().assign(role="all", task_type="all")
    return pd.concat([by_role, by_type, overall], ignore_index=True)


def entropy_long(df: pd.DataFrame) -> pd.DataFrame:
    """Tidy entropy of one run: step, estimator, role, task_type, value (role/type 'all' = aggregates;
    the full estimator's overall value is the trainer's pooled entropy_full/all when logged)."""
    frames = []
    for est, template in ESTIMATORS.items():
        groups = _group_values(df, template)
        agg = _aggregates(groups)
        if est == "full" and "entropy_full/all" in df.columns and not agg.empty:
            pooled = df[["step", "entropy_full/all"]].dropna()
            pooled = pd.DataFrame({"step": pooled["step"], "role": "all", "task_type": "all",
                                   "value": pooled["entropy_full/all"].astype(float)})
            agg = pd.concat([agg[~((agg["role"] == "all") & (agg["task_type"] == "all"))], pooled], ignore_index=True)
        frames.append(pd.concat([groups, agg], ignore_index=True).assign(estimator=est))
    out = pd.concat(frames, ignore_index=True)
    return out[["step", "estimator", "role", "task_type", "value"]].sort_values(
        ["estimator", "role", "task_type", "step"], kind="stable").reset_index(drop=True)


def length_long(df: pd.DataFrame) -> pd.DataFrame:
    """Tidy response length of one run: step, role, task_type, value (with 'all' aggregates)."""
    groups = _group_values(df, "response_length/{t}/{role}")
    out = pd.concat([groups, _aggregates(groups)], ignore_index=True)
    return out.sort_values(["role", "task_type", "step"], kind="stable").reset_index(drop=True)


def runs_long(rd: ResultsDir, runs: Sequence[str], fn) -> pd.DataFrame:
    """fn(metrics) for every run, with run, kind and seed columns in front."""
    frames = []
    for name in runs:
        kind, seed = parse_run_name(name) or (name, -1)
        d = fn(rd.metrics(name))
        d.insert(0, "seed", seed)
        d.insert(0, "kind", kind)
        d.insert(0, "run", name)
        frames.append(d)
    return pd.concat(frames, ignore_index=True)


def default_runs(rd: ResultsDir) -> list[str]:
    """RQ3's runs: every self-play seed and the frozen-proposer run(s)."""
    return rd.runs_of("selfplay") + rd.runs_of("frozen")


def band_by_kind(long: pd.DataFrame, by: Sequence[str]) -> pd.DataFrame:
    """Across-seed band (mean, min, max, t CI) per kind and `by` columns, per step."""
    return seed_band(long, ["kind", *by, "step"])


def window_change(long: pd.DataFrame, window: int | None = None) -> pd.DataFrame:
    """Per run and estimator: overall entropy averaged over the first and the last `window` steps
    (default a quarter of the steps, at least one) and the change last - first (absolute, relative)."""
    d = long[(long["role"] == "all") & (long["task_type"] == "all")]
    rows = []
    for (run, kind, seed, est), g in d.groupby(["run", "kind", "seed", "estimator"], sort=False):
        g = g.sort_values("step")
        w = window or max(1, len(g) // 4)
        first, last = g["value"].iloc[:w].mean(), g["value"].iloc[-w:].mean()
        rows.append({"run": run, "kind": kind, "seed": seed, "estimator": est, "window": w,
                     "first_steps": f"{int(g['step'].iloc[0])}-{int(g['step'].iloc[w - 1])}",
                     "last_steps": f"{int(g['step'].iloc[-w])}-{int(g['step'].iloc[-1])}",
                     "early": first, "late": last, "change": last - first,
                     "relative_change": (last - first) / first if first else math.nan})
    return pd.DataFrame(rows)


def plot_overall(band: pd.DataFrame):
    """Overall entropy vs step, one panel per estimator, one band per run kind (mean, min-max over seeds)."""
    from azrlib.report.plots import color_for, legend_once, line_with_band, new_figure

    fig, axes = new_figure(1, len(ESTIMATORS))
    d = band[(band["role"] == "all") & (band["task_type"] == "all")]
    for ax, est in zip(axes[0], ESTIMATORS):
        for kind, g in d[d["estimator"] == est].groupby("kind", sort=False):
            n = int(g["n_seeds"].max())
            line_with_band(ax, g["step"], g["mean"], g["min"], g["max"], label=f"{kind} ({n} seed{'s' * (n > 1)})",
                           color=color_for(kind))
        ax.set_title(ESTIMATOR_LABELS[est], fontsize=10)
        ax.set_xlabel("training step")
        ax.set_ylabel("entropy (nats / token)")
        ax.grid(alpha=0.3)
    legend_once(fig, axes)
    return fig


def plot_breakdown(band: pd.DataFrame, main_kind: str = "selfplay"):
    """Rows: estimators; left: by role (each kind; solid = main kind), right: by task type (main kind)."""
    from azrlib.report.plots import color_for, line_with_band, new_figure

    fig, axes = new_figure(len(ESTIMATORS), 2, sharex=True)
    for row, est in enumerate(ESTIMATORS):
        d = band[band["estimator"] == est]
        ax = axes[row][0]
        for (kind, role), g in d[(d["task_type"] == "all") & (d["role"] != "all")].groupby(["kind", "role"], sort=False):
            line_with_band(ax, g["step"], g["mean"], g["min"], g["max"], label=f"{kind} {role}",
                           color=color_for(role), linestyle="-" if kind == main_kind else "--")
        ax.set_title(f"{ESTIMATOR_LABELS[est]}: by role", fontsize=9)
        ax = axes[row][1]
        sel = d[(d["role"] == "all") & (d["task_type"] != "all") & (d["kind"] == main_kind)]
        for t, g in sel.groupby("task_type", sort=False):
            line_with_band(ax, g["step"], g["mean"], g["min"], g["max"], label=t, color=color_for(t))
        ax.set_title(f"{ESTIMATOR_LABELS[est]}: by task type ({main_kind})", fontsize=9)
        for ax in axes[row]:
            ax.set_ylabel("entropy")
            ax.grid(alpha=0.3)
            if ax.get_legend_handles_labels()[0]:
                ax.legend(fontsize=7, frameon=False)
    for ax in axes[-1]:
        ax.set_xlabel("training step")
    return fig


def plot_lengths(band: pd.DataFrame):
    """Response length vs step per role, one band per run kind."""
    from azrlib.report.plots import color_for, legend_once, line_with_band, new_figure

    fig, axes = new_figure(1, len(ROLES))
    for ax, role in zip(axes[0], ROLES):
        d = band[(band["role"] == role) & (band["task_type"] == "all")]
        for kind, g in d.groupby("kind", sort=False):
            line_with_band(ax, g["step"], g["mean"], g["min"], g["max"], label=kind, color=color_for(kind))
        ax.set_title(f"{role} responses", fontsize=10)
        ax.set_xlabel("training step")
        ax.set_ylabel("response length (tokens)")
        ax.grid(alpha=0.3)
    legend_once(fig, axes)
    return fig


def check_results(long: pd.DataFrame, runs: Sequence[str]) -> None:
    """Every run logged both estimators for both roles; every entropy is finite and >= 0, and the
    full-vocabulary entropy is > 0 (a softmax over a vocabulary is never exactly one-hot in float)."""
    for run in runs:
        d = long[long["run"] == run]
        for est in ESTIMATORS:
            roles = set(d.loc[(d["estimator"] == est) & (d["task_type"] == "all"), "role"])
            assert {"propose", "solve", "all"} <= roles, f"{run}: {est} entropy missing for some role ({sorted(roles)})"
    v = long["value"].to_numpy(float)
    assert np.isfinite(v).all(), "non-finite entropy"
    assert (v >= 0).all(), "negative entropy"
    assert (long.loc[long["estimator"] == "full", "value"] > 0).all(), "full-vocabulary entropy is not positive"


PAPER = ("**Paper (RQ3, Figs. 3, 4, 7):** self-play shows entropy collapse: the policy's entropy falls over "
         "training, for the proposer and the solver and across task types, as in RLVR; the frozen-proposer run "
         "separates the solver's share of it. Response length changes along with it.")


def verdict(changes: pd.DataFrame, main_kind: str = "selfplay") -> str:
    lines = [PAPER, "", "**This run** (overall entropy, mean of the last window minus mean of the first window of steps; "
             "mean over seeds with a 95% t interval across seeds):", ""]
    collapse = {}
    for est in ESTIMATORS:
        for kind, g in changes[changes["estimator"] == est].groupby("kind", sort=False):
            mean, lo, hi = t_interval(g["change"].tolist())
            rel = float(g["relative_change"].mean())
            early, late = float(g["early"].mean()), float(g["late"].mean())
            n = len(g)
            lines.append(f"- {ESTIMATOR_LABELS[est]}, **{kind}** ({n} seed{'s' * (n > 1)}; steps {g['first_steps'].iloc[0]} vs "
                         f"{g['last_steps'].iloc[0]}): {early:.3f} -> {late:.3f}, change {fmt_ci(mean, lo, hi, signed=True)} "
                         f"({rel:+.1%}).")
            if kind == main_kind:
                if n >= 2 and not math.isnan(hi):
                    collapse[est] = "down" if hi < 0 else ("up" if lo > 0 else "flat")
                else:
                    collapse[est] = "down?" if mean < 0 else "up?"
    v = []
    for est, c in collapse.items():
        name = ESTIMATOR_LABELS[est]
        v.append({"down": f"{name}: significant decrease (supports collapse)",
                  "up": f"{name}: significant increase (contradicts collapse)",
                  "flat": f"{name}: no significant change (does not show collapse)",
                  "down?": f"{name}: decreases, one seed so no CI (weak support)",
                  "up?": f"{name}: increases, one seed so no CI (does not show collapse)"}[c])
    lines += ["", "Verdict: " + "; ".join(v) + "."]
    return "\n".join(lines)
