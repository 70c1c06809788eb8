"""Figures and checks of the protocol notebooks (azrlib.report.protocol's tables). Every figure's
y-axis is scaled to its data (matplotlib's autoscale with a margin, never a fixed 0-1), and each
function returns the caption that states what the bands are and the n behind them."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from azrlib.report.plots import color_for, legend_once, line_with_band, log2_k_axis, new_figure
from azrlib.report.verdicts import overview_table


def _autoscale(ax) -> None:
    ax.relim()
    ax.autoscale_view()
    ax.margins(y=0.08)


def rq1_figure(curves: pd.DataFrame):
    benches = list(dict.fromkeys(curves["benchmark"]))
    fig, axes = new_figure(1, len(benches))
    for ax, bench in zip(axes[0], benches):
        sub = curves[curves["benchmark"] == bench]
        for i, arm in enumerate(dict.fromkeys(sub["arm"])):
            a = sub[sub["arm"] == arm]
            line_with_band(ax, a["k"], a["pass@k"], a["ci_low"], a["ci_high"],
                           label=f"{arm} ({int(a['seeds'].iloc[0])} seed(s))", color=color_for(arm, i))
        log2_k_axis(ax, sorted(sub["k"].unique()))
        ax.set_ylabel("pass@k")
        ax.set_title(bench)
        _autoscale(ax)
    legend_once(fig, axes)
    first = curves.iloc[0]
    caption = (f"pass@k (mean over seeds) on {int(first['problems'])} problems per split, n = {int(first['n'])} samples "
               "per problem (T = 0.6, top-p 0.95). Bands: 95% two-level bootstrap (problems, and seeds within arm).")
    return fig, caption


def rq2_figure(table: pd.DataFrame):
    fig, axes = new_figure(1, 2)
    for ax, (col, lo, hi, ylabel) in zip(axes[0], (("solve_rate", "solve_min", "solve_max", "solve rate of the question"),
                                                   ("length", "length_min", "length_max", "response tokens"))):
        for i, model in enumerate(("base", "final")):
            t = table[table["model"] == model]
            line_with_band(ax, t["fraction"], t[col], t[lo], t[hi], label=model, color=color_for("base" if model == "base"
                                                                                                     else "selfplay", i))
        ax.set_xlabel("fraction of training when proposed")
        ax.set_ylabel(ylabel)
        ax.xaxis.set_major_locator(__import__("matplotlib").ticker.AutoLocator())
        _autoscale(ax)
    legend_once(fig, axes)
    seeds = int(table["seeds"].max()) if len(table) else 0
    caption = (f"Deduction questions proposed during self-play, by training-fraction bin, answered by the base and by "
               f"each seed's final model. Line: mean over {seeds} seed(s) of the per-seed bin mean; band: min-max over seeds.")
    return fig, caption


def rq3_figure(curves: pd.DataFrame):
    estimators = list(dict.fromkeys(curves["estimator"]))
    fig, axes = new_figure(1, len(estimators))
    for ax, est in zip(axes[0], estimators):
        sub = curves[curves["estimator"] == est]
        for i, arm in enumerate(dict.fromkeys(sub["arm"])):
            a = sub[sub["arm"] == arm]
            line_with_band(ax, a["step"], a["entropy"], a["ci_low"], a["ci_high"],
                           label=f"{arm} ({int(a['seeds'].iloc[0])} seed(s))", color=color_for(arm, i),
                           linestyle="--" if arm.endswith("proposer") else "-")
        ax.set_xlabel("optimizer step (checkpoint)")
        ax.set_ylabel(f"{est.replace('entropy_', '')} entropy (nats/token)")
        _autoscale(ax)
    legend_once(fig, axes)
    prompts = sorted(set(int(p) for p in curves["prompts"]))
    caption = (f"Entropy of each kept checkpoint on one fixed prompt set ({', '.join(map(str, prompts))} prompts per "
               "role), sampled at T = 1, top-p 1. Bands: 95% two-level bootstrap (prompts, and seeds within arm).")
    return fig, caption


def rq4_figure(df: pd.DataFrame):
    panels = (("bf16", "sparsity", "bf16, exact"), ("fp32", "sparsity", "fp32, exact"), ("fp32", "sparsity_atol", "fp32, |d| <= 1e-5"))
    fig, axes = new_figure(1, 3)
    rows = []
    for ax, (dtype, col, title) in zip(axes[0], panels):
        sub = df[df["dtype"] == dtype]
        for i, kind in enumerate(dict.fromkeys(sub["kind"])):
            g = sub[sub["kind"] == kind].groupby("step")[col]
            agg = pd.DataFrame({"mean": g.mean(), "lo": g.min(), "hi": g.max(), "seeds": g.count()}).reset_index()
            line_with_band(ax, agg["step"], agg["mean"], agg["lo"], agg["hi"],
                           label=f"{kind} ({int(agg['seeds'].max())} seed(s))", color=color_for(kind, i))
            rows += [dict(r, kind=kind, panel=title) for r in agg.to_dict("records")]
        ax.set_title(title)
        ax.set_xlabel("optimizer step")
        ax.set_ylabel("fraction of parameters unchanged")
        _autoscale(ax)
    legend_once(fig, axes)
    caption = ("Update sparsity against the base at every kept checkpoint. Line: mean over seeds; band: min-max over "
               "seeds. The gap between the bf16 and fp32 panels is the part of 'sparsity' that is bf16 rounding.")
    return fig, caption, pd.DataFrame(rows)


def table_of(tests) -> pd.DataFrame:
    """overview_table plus the moment / bootstrap interval beside the deciding one where a test has it."""
    df = overview_table(tests)
    other = []
    for t in tests:
        e = t.get("moment") or t.get("bootstrap")
        other.append("" if e is None else f"{e.estimate:+.3f} [{e.ci_low:+.3f}, {e.ci_high:+.3f}]")
    if any(other):
        df.insert(4, "other interval", other)
    return df


def check_tests(tests) -> None:
    """Every estimate lies in its interval, p and Holm p lie in [0, 1] with Holm >= raw, verdicts follow."""
    for t in tests:
        e = t["estimate"]
        assert e.ci_low <= e.estimate <= e.ci_high or any(math.isnan(x) for x in (e.ci_low, e.ci_high)), t["test"]
        assert 0.0 <= e.p_value <= 1.0, t["test"]
        if e.p_holm is not None:
            assert e.p_value - 1e-12 <= e.p_holm <= 1.0, t["test"]


def check_curves(curves: pd.DataFrame, value: str) -> None:
    ok = curves.dropna(subset=["ci_low", "ci_high"])
    assert np.all(ok["ci_low"] <= ok[value] + 1e-12) and np.all(ok[value] <= ok["ci_high"] + 1e-12), "band misses estimate"


def verdict_markdown(tests, conjunction: tuple[str, ...] = ()) -> str:
    """One line per test with its computed verdict; with `conjunction` (substrings of takeaways), also
    the verdict of the claim made of those parts, per benchmark (`conjunction_verdict`)."""
    from azrlib.report.verdicts import conjunction_verdict

    df = overview_table(tests)
    lines = [f"- {r['paper takeaway']}: **{r['verdict']}** ({r['test']}: {r['estimate [95% CI]']}, "
             f"Holm p = {r['p (Holm)']:.3g}; {r['n']})" for r in df.to_dict("records")]
    if conjunction:
        groups = dict.fromkeys(t.get("benchmark", "") for t in tests)
        for g in groups:
            parts = []
            for key in conjunction:
                idx = [i for i, t in enumerate(tests) if t.get("benchmark", "") == g and key in t["takeaway"]]
                parts += [df.iloc[i]["verdict"] for i in idx[:1]]
            if len(parts) == len(conjunction):
                where = f" on {g}" if g else ""
                lines.append(f"- **The claim as a whole{where}** ({' AND '.join(conjunction)}): "
                             f"**{conjunction_verdict(parts)}**")
            else:
                lines.append(f"- The claim as a whole on {g}: not testable here (a part is missing)")
    return "\n".join(lines)


def check_results_passk(curves: pd.DataFrame) -> None:
    assert ((curves["pass@k"] >= -1e-12) & (curves["pass@k"] <= 1 + 1e-12)).all(), "pass@k outside [0, 1]"
    for _, g in curves.groupby(["benchmark", "arm"]):
        v = g.sort_values("k")["pass@k"].to_numpy()
        assert np.all(np.diff(v) >= -1e-12), "pass@k decreases with k"


def check_results(tests, curves: pd.DataFrame | None = None, value: str | None = None) -> None:
    """The notebook's closing checks: its tests (`check_tests`) and, given, its curves' bands."""
    check_tests(tests)
    if curves is not None and value is not None:
        check_curves(curves, value)
