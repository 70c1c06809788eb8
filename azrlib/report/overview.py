"""00_overview: what was run (manifest: preset, seeds, runs and their overrides, pipeline steps,
versions, sandbox isolation) and the training curves of every run at a glance."""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd

from azrlib.report.results import ResultsDir, parse_run_name
from azrlib.report.tables import last_value, mean_over_types, seed_band

# Overrides every run gets (where it writes, its name, seed and base): left out of the runs table.
IMPLIED_OVERRIDES = ("out_dir", "run_name", "seed", "model")
# Config keys worth a column in the runs table (what distinguishes the variants).
CONFIG_KEYS = ("mode", "proposer_reward", "freeze_proposer", "steps", "seed", "batch_size", "lr")


def _first(d: dict, *keys, default=None):
    for k in keys:
        if k in d and d[k] is not None:
            return d[k]
    return default


def manifest_summary(rd: ResultsDir) -> pd.DataFrame:
    """Two columns (item, value): preset, seeds, base model, runs, total time."""
    m = rd.manifest
    total = _first(m, "total_seconds", "seconds", "total_s")
    items = [
        ("preset", _first(m, "preset")),
        ("seeds", ", ".join(str(s) for s in rd.seeds)),
        ("base model", _first(m, "base_model", "base", "model")),
        ("training runs", len(rd.run_names())),
        ("expected runs missing", ", ".join(rd.missing_runs()) or "none"),
        ("total time", f"{float(total) / 60:.1f} min" if total is not None else "n/a"),
    ]
    return pd.DataFrame(items, columns=["item", "value"]).astype({"value": str})


def pipeline_table(rd: ResultsDir) -> pd.DataFrame:
    """One row per pipeline step: seconds and whether it was skipped (outputs up to date)."""
    steps = _first(rd.manifest, "steps", "pipeline", default={})
    if isinstance(steps, list):
        steps = {str(s.get("name")): s for s in steps}
    rows = [{"step": name, "status": str(_first(s, "status", default="skipped" if s.get("skipped") else "ran")),
             "seconds": float(_first(s, "seconds", "s", default=math.nan)),
             "skipped": bool(_first(s, "skipped", default=False))} for name, s in steps.items()]
    return pd.DataFrame(rows, columns=["step", "status", "seconds", "skipped"])


def runs_table(rd: ResultsDir) -> pd.DataFrame:
    """One row per training run: kind, seed, overrides (manifest), key config values, last step."""
    overrides = rd.manifest_runs()
    rows = []
    for name in rd.run_names():
        kind, seed = parse_run_name(name) or (name, -1)
        cfg = rd.config(name)
        m = rd.metrics(name)
        ov = overrides.get(name, {}).get("overrides", "")
        if isinstance(ov, dict):
            ov = [f"{k}={v}" for k, v in ov.items()]
        if isinstance(ov, (list, tuple)):
            ov = " ".join(str(x) for x in ov if str(x).split("=")[0] not in IMPLIED_OVERRIDES)
        rows.append({"run": name, "kind": kind, "seed": seed, "overrides": str(ov),
                     **{k: cfg.get(k) for k in CONFIG_KEYS if k not in ("seed",)},
                     "last_step": int(m["step"].max()) if len(m) else -1})
    return pd.DataFrame(rows)


def versions_table(rd: ResultsDir) -> pd.DataFrame:
    """Package versions: the manifest's, else the first run's environment.json."""
    v = _first(rd.manifest, "versions", "package_versions") if rd.has_manifest else None
    if v is None and rd.run_names():
        v = rd.environment(rd.run_names()[0]).get("versions", {})
    rows = [(k, "not installed" if val is None else str(val)) for k, val in sorted((v or {}).items())]
    return pd.DataFrame(rows, columns=["package", "version"])


# Isolation entries that legitimately differ between runs (a fresh sandbox uid per executor).
VOLATILE_ISOLATION_KEYS = ("sandbox_uid",)


def _stable_isolation(iso: dict | None) -> dict:
    return {k: v for k, v in (iso or {}).items() if k not in VOLATILE_ISOLATION_KEYS}


def isolation(rd: ResultsDir) -> dict:
    """Sandbox isolation as recorded: the manifest's, else the first run's environment.json."""
    iso = _first(rd.manifest, "sandbox_isolation", "isolation") if rd.has_manifest else None
    if iso is None and rd.run_names():
        iso = rd.environment(rd.run_names()[0]).get("sandbox_isolation")
    return _stable_isolation(iso)


def isolation_table(iso: dict) -> pd.DataFrame:
    rows = [(k, json.dumps(v) if isinstance(v, (dict, list)) else str(v)) for k, v in iso.items()]
    return pd.DataFrame(rows, columns=["setting", "value"])


def isolation_consistent(rd: ResultsDir) -> list[str]:
    """Runs whose environment.json records a different sandbox isolation than the first run's
    (ignoring the per-run sandbox uid)."""
    names = rd.run_names()
    if not names:
        return []
    ref = _stable_isolation(rd.environment(names[0]).get("sandbox_isolation"))
    return [n for n in names[1:] if _stable_isolation(rd.environment(n).get("sandbox_isolation")) != ref]


CURVES = {
    "solve rate (train, mean over types)": lambda m: mean_over_types(m, "solve_rate/{t}"),
    "valid proposal rate": lambda m: mean_over_types(m, "valid_rate/{t}"),
    "full-vocabulary entropy": lambda m: m["entropy_full/all"] if "entropy_full/all" in m else pd.Series(np.nan, index=m.index),
    "validation accuracy (mean over types)": lambda m: mean_over_types(m, "val/{t}/accuracy"),
}


def curves_long(rd: ResultsDir) -> pd.DataFrame:
    """run, kind, seed, step, curve, value for the at-a-glance curves of every run."""
    frames = []
    for name in rd.run_names():
        kind, seed = parse_run_name(name) or (name, -1)
        m = rd.metrics(name)
        for label, fn in CURVES.items():
            frames.append(pd.DataFrame({"run": name, "kind": kind, "seed": seed, "step": m["step"],
                                        "curve": label, "value": fn(m).astype(float)}))
    return pd.concat(frames, ignore_index=True).dropna(subset=["value"]).reset_index(drop=True)


def plot_curves(curves: pd.DataFrame):
    """One panel per curve; one line per run kind (mean over seeds, band min-max)."""
    from azrlib.report.plots import color_for, line_with_band, new_figure

    band = seed_band(curves, ["curve", "kind", "step"])
    labels = list(CURVES)
    fig, axes = new_figure(1, len(labels), panel_size=(3.6, 3.0))
    for ax, label in zip(axes[0], labels):
        for kind, g in band[band["curve"] == label].groupby("kind", sort=False):
            line_with_band(ax, g["step"], g["mean"], g["min"], g["max"], label=kind, color=color_for(kind))
        ax.set_title(label, fontsize=9)
        ax.set_xlabel("training step")
        ax.grid(alpha=0.3)
    handles = {}
    for ax in axes[0]:
        for h, lab in zip(*ax.get_legend_handles_labels()):
            handles.setdefault(lab, h)
    fig.legend(list(handles.values()), list(handles), loc="outside lower center", ncol=len(handles), fontsize=8, frameon=False)
    return fig, band


def final_table(rd: ResultsDir) -> pd.DataFrame:
    """Per run: the last logged train solve rate, valid rate, entropy and validation accuracy."""
    rows = []
    for name in rd.run_names():
        m = rd.metrics(name)
        m = m.assign(**{label: fn(m) for label, fn in CURVES.items()})
        rows.append({"run": name, **{label: last_value(m, label)[1] for label in CURVES}})
    return pd.DataFrame(rows)


def check_results(rd: ResultsDir, curves: pd.DataFrame) -> None:
    """Every expected run present with contiguous steps; sandbox isolation strong and the same in
    every run; rates in [0, 1]."""
    missing = rd.missing_runs()
    assert not missing, f"expected runs missing: {missing}"
    if rd.has_manifest:
        steps = pipeline_table(rd)
        bad = steps.loc[steps["status"].isin(["failed", "not_run"]), "step"].tolist()
        assert not bad, f"pipeline steps failed or not run: {bad}"
    for name in rd.run_names():
        steps = rd.metrics(name)["step"].to_numpy()
        assert len(steps) and (np.diff(steps) == 1).all(), f"{name}: steps are not contiguous"
    assert not isolation(rd).get("weak", False), "the sandbox ran with weak isolation"
    assert not isolation_consistent(rd), f"runs with a different sandbox isolation: {isolation_consistent(rd)}"
    rates = curves[curves["curve"] != "full-vocabulary entropy"]["value"]
    assert rates.between(0, 1).all(), "a rate outside [0, 1]"


def summary(rd: ResultsDir) -> str:
    """Markdown: what this results directory holds."""
    kinds = {}
    for name in rd.run_names():
        kind = (parse_run_name(name) or (name,))[0]
        kinds.setdefault(kind, []).append(name)
    iso = isolation(rd)
    iso_text = ("bubblewrap namespaces " + ", ".join(iso.get("namespaces", [])) if iso.get("bubblewrap") else "no bubblewrap")
    iso_text += f", seccomp {'on' if iso.get('seccomp') else 'off'}, Landlock ABI {iso.get('landlock_abi', 'none')}"
    lines = [f"Preset **{rd.manifest.get('preset', '?') if rd.has_manifest else '?'}**, seeds {', '.join(map(str, rd.seeds))}: "
             f"{len(rd.run_names())} training runs (" + "; ".join(f"{k}: {len(v)}" for k, v in kinds.items()) + ").",
             f"Evaluations: " + (", ".join(f"{m} on {', '.join(rd.eval_benchmarks(m))}" for m in rd.eval_models()) or "none") + ".",
             f"Sparsity files: {', '.join(rd.sparsity_runs()) or 'none'}. Sandbox: {iso_text}."]
    return "\n\n".join(lines)
