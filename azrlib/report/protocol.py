"""The protocol's tests per research question, read from a results directory (docs/experiments/protocol.md).

Each `rqN_*` function loads what the pipeline wrote, calls the statistics of `azrlib.metrics.rq`
and returns (tests, tables): tests are dicts {"rq", "takeaway", "test", "direction", "estimate",
"n", ...} that `azrlib.report.verdicts.overview_table` turns into estimate [95% CI] | verdict.
A notebook applies Holm over the tests it reports; `all_tests` gathers every notebook's tests for
the overview, whose Holm covers the whole table. Nothing here decides a verdict by hand.

Which interval decides: the two-level bootstrap (problems, and seeds within arm), which is
conservative when every seed answers every problem (protocol.md: coverage 98-99%); the crossed
moment interval is printed beside it where it exists. Paper quotes are only what the paper says;
claims the paper does not make (RQ4's RL-sparse / SFT-dense framing, Mukherjee et al.) are marked
as this artifact's.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence

import numpy as np
import pandas as pd

from azrlib.metrics.pass_at_k import SampleCounts, counts_from_rows
from azrlib.metrics.rq import (LeashResult, leash_check, rq1_arms, rq1_family, rq2_difficulty_trend,
                               rq2_length_interaction, rq3_family, rq5_comparison)
from azrlib.metrics.stats import Arm, Estimate, contrast, hierarchical_bootstrap, holm_family, seed_t_interval
from azrlib.report.results import ResultsDir, parse_run_name, read_jsonl

SPLITS = {"tinyworld": "in-distribution held-out", "tinyworld_ood": "out-of-distribution"}


def settings(rd: ResultsDir) -> dict:
    return (rd.manifest.get("settings") or {}) if rd.has_manifest else {}


def training_steps(rd: ResultsDir) -> int:
    runs = rd.manifest.get("runs", []) if rd.has_manifest else []
    for r in runs if isinstance(runs, list) else []:
        if isinstance(r, dict) and r.get("resolved_config", {}).get("steps"):
            return int(r["resolved_config"]["steps"])
    return int(max(rd.metrics(rd.run_names()[0])["step"]))


def runs_of(rd: ResultsDir, kind: str) -> list[str]:
    return rd.runs_of(kind)


def seed_of(run: str) -> int:
    return (parse_run_name(run) or ("", -1))[1]


def _label(split: str) -> str:
    return SPLITS.get(split, split)


# --------------------------------------------------------------------------------------------
# RQ1 and the invisible leash
# --------------------------------------------------------------------------------------------


def eval_counts(rd: ResultsDir, model: str, bench: str) -> SampleCounts:
    return counts_from_rows(rd.eval_rows(model, bench), f"{model}/{bench}")


def rq1_data(rd: ResultsDir, bench: str, kinds: Sequence[str] = ("selfplay", "rlvr")) -> tuple[SampleCounts, dict]:
    """The base's counts and every evaluated seed of each kind on one benchmark."""
    arms = {k: [eval_counts(rd, r, bench) for r in runs_of(rd, k) if bench in rd.eval_benchmarks(r)] for k in kinds}
    return eval_counts(rd, "base", bench), {k: v for k, v in arms.items() if v}


def k_grid(n: int) -> list[int]:
    ks, k = [], 1
    while k <= n:
        ks.append(k)
        k *= 2
    return ks if ks[-1] == n else ks + [n]


def rq1(rd: ResultsDir, benches: Sequence[str] | None = None, n_bootstrap: int = 10_000, seed: int = 0):
    """Per benchmark: the RQ1 family (self-play beats the base at k = 1; the gap shrinks by the largest
    k; self-play's drop smaller than RLVR's) and per-arm pass@k curves with bootstrap bands.
    Returns (tests, curves DataFrame, notes)."""
    benches = list(benches or [b for b in SPLITS if b in rd.eval_benchmarks("base")])
    tests, curves, notes = [], [], []
    for bench in benches:
        base, arms = rq1_data(rd, bench)
        if "selfplay" not in arms:
            notes.append(f"{bench}: no self-play evaluation")
            continue
        n = int(min(c.n.min() for c in [base, *[s for v in arms.values() for s in v]]))
        ks = k_grid(n)
        values, arm_notes = rq1_arms(base, arms, ks)
        notes += [f"{bench}: {x}" for x in arm_notes]
        boot = hierarchical_bootstrap(values, n_bootstrap, seed)
        fam = rq1_family(boot, ks, 1, ks[-1], rlvr="rlvr" if "rlvr" in arms else None, arms=values)
        n_problems = values["base"].values.shape[1]
        for t in fam:
            t["test"] = f"{t['test']} [{_label(bench)}]"
            t["n"] = (f"{n_problems} problems x n={n}; seeds: " +
                      ", ".join(f"{a} {values[a].values.shape[0]}" for a in values if a != "base"))
            t["benchmark"] = bench
        tests += fam
        for arm in values:
            lo, hi = np.quantile(boot.replicates[arm], [0.025, 0.975], axis=0)
            for i, k in enumerate(ks):
                curves.append({"benchmark": bench, "arm": arm, "k": k, "pass@k": boot.estimate[arm][i],
                               "ci_low": lo[i], "ci_high": hi[i], "seeds": values[arm].values.shape[0],
                               "problems": n_problems, "n": n})
    holm_family([t["estimate"] for t in tests])  # the notebook's whole family: both splits
    holm_family([t["moment"] for t in tests if "moment" in t])
    return tests, pd.DataFrame(curves), notes


def leash(rd: ResultsDir) -> tuple[LeashResult, dict]:
    """Invisible leash (paper Appendix C): the subset `azr leash-tasks` chose, and the base's leash_n
    samples on it; returns the result and the sizes (k, n, whether n is below the paper's 256)."""
    s = settings(rd)
    subset_rows = read_jsonl(rd.path / "leash" / "tasks.jsonl")
    subset = [f"{t['task_type']}/{(t.get('meta') or {}).get('id')}" for t in subset_rows]
    rows = read_jsonl(rd.path / "leash" / "base.jsonl")
    counts = counts_from_rows(rows, "leash/base") if rows else None
    n = int(s.get("leash_n", 256))
    result = leash_check(lambda ids, n_: counts, subset, n=n, min_n=int(s.get("leash_min_n", 256)))
    k = min(int(s.get("leash_k", 32)), int(s.get("eval_n", 32)))
    return result, {"k": k, "n": n, "below_paper_n": n < 256}


def leash_sentence(result: LeashResult, info: dict) -> str:
    lo, hi = result.ci()
    warn = (f" **Smoke-test size: n = {info['n']} < 256, the paper's n; this is not the protocol's check.**"
            if info["below_paper_n"] else "")
    if result.n_subset == 0:
        return (f"No held-out problem is solved by a self-play seed within k = {info['k']} samples and never by the "
                f"base, so there is nothing to resample.{warn}")
    return (f"{result.n_subset} problem(s) are solved by a self-play seed within k = {info['k']} samples and never by "
            f"the base in its evaluation samples. Sampled {info['n']} more times, the base still never solves "
            f"{len(result.still_unsolved)} of them: {result.fraction_unsolved:.2f} "
            f"[95% Clopper-Pearson {lo:.2f}, {hi:.2f}].{warn}")


# --------------------------------------------------------------------------------------------
# RQ2
# --------------------------------------------------------------------------------------------


def rq2_rows(rd: ResultsDir) -> list[dict]:
    """Every self-play seed's RQ2 rows, with `seed` added and the seed's final model named "final"."""
    out = []
    for run in runs_of(rd, "selfplay"):
        path = rd.path / "rq2" / f"{run}.jsonl"
        if not path.is_file():
            continue
        for r in read_jsonl(path):
            out.append(dict(r, seed=seed_of(run), model="base" if r["model"] == "base" else "final"))
    return out


def _estimable(fit, label: str) -> dict:
    """`fit()`'s {"clustered", "bootstrap"} estimates, or, when the design cannot be estimated (every
    question equally hard, one time point), undefined estimates that say why: their verdict is
    inconclusive and p = 1 keeps them in the Holm family without weight."""
    nan = float("nan")
    try:
        out = fit()
    except (np.linalg.LinAlgError, ValueError) as e:
        est = Estimate(label, nan, nan, nan, 1.0, nan, 0.95, 0, notes=[f"not estimable: {e}"])
        return {"clustered": est, "bootstrap": est}
    for key, e in out.items():  # a zero or undefined clustered SE (too few questions or seeds) is no interval
        if not (np.isfinite(e.se) and e.se > 0):
            out[key] = Estimate(label, e.estimate, nan, nan, 1.0, nan, e.confidence, e.n_bootstrap,
                                notes=[f"not estimable: standard error {e.se}"])
    return out


def rq2(rd: ResultsDir, n_bins: int | None = None, n_bootstrap: int = 2000, seed: int = 0):
    """Difficulty trend (solve rate of base and final model on the questions, against the training
    fraction at which they were proposed, pooled over seeds, seed-clustered) and the length x
    difficulty interaction. Returns (tests, per-bin table)."""
    rows = rq2_rows(rd)
    if not rows:
        raise ValueError("no RQ2 rows (rq2/selfplay_s<k>.jsonl)")
    steps = training_steps(rd)
    seeds = sorted({r["seed"] for r in rows})
    total = {s: steps for s in seeds}
    n_bins = int(n_bins or settings(rd).get("rq2_bins", 8))
    n_q = len({(r["seed"], r["qid"]) for r in rows})
    n_text = f"{n_q} questions over {len(seeds)} seeds"
    tests = []
    for model, who in (("base", "the base (fixed reference)"), ("final", "each seed's final model")):
        est = _estimable(lambda: rq2_difficulty_trend(rows, total, model, n_bootstrap, seed), "slope")
        tests.append({"rq": "RQ2", "takeaway": "proposed questions get harder over training",
                      "test": f"slope of solve rate by {who} vs training fraction (seed-clustered OLS)",
                      "direction": "less", "estimate": est["clustered"], "bootstrap": est["bootstrap"], "n": n_text})
    inter = _estimable(lambda: rq2_length_interaction(rows, total, "base", "final", n_bootstrap, seed),
                       "tuned_x_difficulty")
    tests.append({"rq": "RQ2", "takeaway": "the trained model adapts its response length to difficulty",
                  "test": "model x difficulty interaction on response length (tokens per unit of base failure rate)",
                  "direction": "greater", "estimate": inter["clustered"], "bootstrap": inter["bootstrap"], "n": n_text})
    holm_family([t["estimate"] for t in tests])
    df = pd.DataFrame([{"seed": r["seed"], "model": r["model"], "step": r["step"], "solve_rate": r["solve_rate"],
                        "length": float(np.mean(r["lengths"]))} for r in rows])
    df["bin"] = np.minimum((df["step"] - 1) * n_bins // steps, n_bins - 1)
    per_seed = df.groupby(["model", "bin", "seed"], as_index=False)[["solve_rate", "length"]].mean()
    table = per_seed.groupby(["model", "bin"], as_index=False).agg(
        solve_rate=("solve_rate", "mean"), solve_min=("solve_rate", "min"), solve_max=("solve_rate", "max"),
        length=("length", "mean"), length_min=("length", "min"), length_max=("length", "max"), seeds=("seed", "nunique"))
    table["fraction"] = (table["bin"] + 0.5) / n_bins
    return tests, table


# --------------------------------------------------------------------------------------------
# RQ3
# --------------------------------------------------------------------------------------------


def rq3_frame(rd: ResultsDir) -> pd.DataFrame:
    frames = [pd.DataFrame(read_jsonl(p)) for p in sorted((rd.path / "rq3").glob("*.jsonl"))]
    frames = [f for f in frames if len(f)]
    if not frames:
        raise ValueError("no RQ3 rows (rq3/<run>.jsonl)")
    return pd.concat(frames, ignore_index=True)


def _rq3_arm(df: pd.DataFrame, kind: str, role: str, column: str, steps: list[int], prompts: list) -> np.ndarray:
    sub = df[(df["kind"] == kind) & (df["role"] == role)]
    seeds = sorted(sub["seed"].unique())
    values = np.full((len(seeds), len(prompts), len(steps)), np.nan)
    index = {p: i for i, p in enumerate(prompts)}
    for (sd, tt, pi, st), v in sub.set_index(["seed", "task_type", "prompt_index", "step"])[column].items():
        if (tt, pi) in index and st in steps:
            values[seeds.index(sd), index[(tt, pi)], steps.index(st)] = v
    return values


def rq3(rd: ResultsDir, n_bootstrap: int = 10_000, seed: int = 0):
    """The paper's three entropy statements on the fixed prompt set, for both estimators; returns
    (tests, curves DataFrame: kind, role, estimator, step, mean and bootstrap band, notes)."""
    df = rq3_frame(rd)
    steps = sorted(int(s) for s in df["step"].unique())
    tests, curves, notes = [], [], []
    for column, name in (("entropy_full", "full-vocabulary"), ("entropy_sampled", "sampled-token")):
        arms = {}
        specs = {"selfplay_solver": ("selfplay", "solve"), "selfplay_proposer": ("selfplay", "propose"),
                 "frozen_solver": ("frozen", "solve"), "rlvr_solver": ("rlvr", "solve")}
        for role in ("solve", "propose"):
            prompts = sorted({(t, int(i)) for t, i in df[df["role"] == role][["task_type", "prompt_index"]].itertuples(index=False)})
            for arm, (kind, r) in specs.items():
                if r != role or not (df["kind"] == kind).any():
                    continue
                v = _rq3_arm(df, kind, role, column, steps, prompts)
                arms[arm] = (v, role)
        # drop prompts with a missing value (an empty response) in any arm of the same role
        for role in ("solve", "propose"):
            role_arms = [a for a, (_, r) in arms.items() if r == role]
            if not role_arms:
                continue
            ok = np.all([np.all(np.isfinite(arms[a][0]), axis=(0, 2)) for a in role_arms], axis=0)
            if not ok.all():
                notes.append(f"{name}: {int((~ok).sum())} {role} prompt(s) left out (an empty response)")
            for a in role_arms:
                arms[a] = (arms[a][0][:, ok], role)
        values = {a: Arm(v, problems=role, seeds="selfplay" if a.startswith("selfplay") else None)
                  for a, (v, role) in arms.items()}
        boot = hierarchical_bootstrap(values, n_bootstrap, seed)
        if {"selfplay_solver", "frozen_solver", "selfplay_proposer"} <= set(values):
            fam = rq3_family(boot)
            for t in fam:
                t["test"] = f"{t['test']} ({name} entropy, fixed prompts)"
                t["n"] = (f"{values['selfplay_solver'].values.shape[1]} solver / "
                          f"{values['selfplay_proposer'].values.shape[1]} proposer prompts; "
                          f"seeds: self-play {values['selfplay_solver'].values.shape[0]}, "
                          f"frozen {values['frozen_solver'].values.shape[0]}; checkpoints at steps {steps}")
                t["estimator"] = column
            tests += fam
        for a, arm in values.items():
            lo, hi = np.quantile(boot.replicates[a], [0.025, 0.975], axis=0)
            for i, st in enumerate(steps):
                curves.append({"estimator": column, "arm": a, "step": st, "entropy": boot.estimate[a][i],
                               "ci_low": lo[i], "ci_high": hi[i], "seeds": arm.values.shape[0],
                               "prompts": arm.values.shape[1]})
    holm_family([t["estimate"] for t in tests])
    return tests, pd.DataFrame(curves), notes


# --------------------------------------------------------------------------------------------
# RQ4
# --------------------------------------------------------------------------------------------


def rq4_frame(rd: ResultsDir) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Sparsity per (run, step, dtype) from sparsity_curve/<run>.json, and each run's budget."""
    import json

    rows, budgets = [], []
    for p in sorted((rd.path / "sparsity_curve").glob("*.json")):
        rec = json.loads(p.read_text())
        kind, sd = parse_run_name(rec["run"]) or (rec["run"], -1)
        for r in rec["rows"]:
            rows.append(dict(r, run=rec["run"], kind=kind, seed=sd))
        budgets.append(dict(rec["budget"], run=rec["run"], kind=kind, seed=sd))
    if not rows:
        raise ValueError("no RQ4 rows (sparsity_curve/<run>.json)")
    return pd.DataFrame(rows), pd.DataFrame(budgets)


def rq4(rd: ResultsDir):
    """Final-step sparsity of self-play against SFT and RLVR (t over self-play seeds minus the other
    arm's seed mean), for bf16 exact, fp32 exact and fp32 |d| <= atol. The paper reports one number
    (about 45.7% for AZR-Coder-7B, no dtype or tolerance); "RL updates are sparse, SFT dense" is
    Mukherjee et al.'s framing, tested here as this artifact's own question."""
    df, budgets = rq4_frame(rd)
    final = df[df["step"] == df["step"].max()]
    tests = []
    for label, dtype, col in (("bf16 exact", "bf16", "sparsity"), ("fp32 exact", "fp32", "sparsity"),
                              ("fp32 |d| <= 1e-5", "fp32", "sparsity_atol")):
        sub = final[final["dtype"] == dtype]
        sp = sub[sub["kind"] == "selfplay"].sort_values("seed")[col].to_numpy()
        for other in ("sft", "rlvr"):
            ref = sub[sub["kind"] == other][col].to_numpy()
            if len(sp) < 2 or not len(ref):
                continue
            est = seed_t_interval(sp - ref.mean(), label=f"self-play - {other} sparsity, {label}")
            if other == "sft":
                takeaway, direction = ("(this artifact's question, Mukherjee et al.'s framing) self-play updates are "
                                       "sparser than SFT's"), "greater"
            else:
                takeaway, direction = "self-play vs RLVR sparsity (no claim; this artifact's comparison)", "two-sided"
            tests.append({"rq": "RQ4", "takeaway": takeaway, "test": f"final sparsity, self-play - {other}, {label} "
                          "(t over self-play seeds)", "direction": direction, "estimate": est,
                          "n": f"{len(sp)} self-play seeds, {len(ref)} {other} seed(s)"})
    holm_family([t["estimate"] for t in tests])
    return tests, df, budgets


# --------------------------------------------------------------------------------------------
# RQ5
# --------------------------------------------------------------------------------------------


PAPER_RQ5_EFFECT = -0.02  # the paper: accuracy about -2 points with 1-2|p-0.5|, little effect on entropy


def rq5(rd: ResultsDir, bench: str = "tinyworld", n_bootstrap: int = 10_000, seed: int = 0):
    """band - AZR (self-play) pass@1 on held-out tasks, final checkpoints, paired by seed and on problems."""
    ref = {seed_of(r): eval_counts(rd, r, bench) for r in runs_of(rd, "selfplay") if bench in rd.eval_benchmarks(r)}
    var = {seed_of(r): eval_counts(rd, r, bench) for r in runs_of(rd, "band") if bench in rd.eval_benchmarks(r)}
    out = rq5_comparison(ref, var, 1, n_bootstrap, seed, PAPER_RQ5_EFFECT)
    n_samples = int(min(c.n.min() for c in [*ref.values(), *var.values()]))
    test = {"rq": "RQ5", "takeaway": "1-2|p-0.5| lowers accuracy by about 2 points (paper)",
            "test": f"band - AZR pass@1, {_label(bench)} (paired by seed and problem)", "direction": "less",
            "estimate": out["bootstrap"], "n": f"{out['n_problems']} problems x n={n_samples}; seeds {out['seeds']}"}
    tests = [test]
    try:
        tests.append(rq5_entropy(rd, n_bootstrap=n_bootstrap, seed=seed))
    except (ValueError, FileNotFoundError) as e:  # no band RQ3 rows (an older results folder)
        out["entropy_note"] = f"entropy test not computed: {e}"
    holm_family([t["estimate"] for t in tests])
    return tests, out


RQ5_ENTROPY_BOUND = 0.2  # "little effect on entropy", read here as within +-20% of the AZR arm's entropy


def rq5_entropy(rd: ResultsDir, column: str = "entropy_full", n_bootstrap: int = 10_000, seed: int = 0) -> dict:
    """band - AZR (self-play) solver entropy at the last checkpoint on RQ3's fixed prompt set,
    paired by seed (the arms share seeds) and on prompts; the paper's "little effect" is tested as
    an equivalence claim: the interval within +-RQ5_ENTROPY_BOUND x the AZR arm's entropy."""
    df = rq3_frame(rd)
    df = df[df["role"] == "solve"]
    steps = sorted(int(s) for s in df["step"].unique())
    seeds = sorted(set(df[df["kind"] == "selfplay"]["seed"]) & set(df[df["kind"] == "band"]["seed"]))
    if len(seeds) < 2:
        raise ValueError(f"RQ5 entropy: need at least two seeds with both selfplay and band RQ3 rows, got {seeds}")
    df = df[df["seed"].isin(seeds)]
    prompts = sorted({(t, int(i)) for t, i in df[["task_type", "prompt_index"]].itertuples(index=False)})
    values = {kind: _rq3_arm(df, kind, "solve", column, steps, prompts)[:, :, -1] for kind in ("selfplay", "band")}
    ok = np.all([np.all(np.isfinite(v), axis=0) for v in values.values()], axis=0)
    if not ok.any():
        raise ValueError("RQ5 entropy: no prompt has a value in both arms at the last checkpoint")
    arms = {k: Arm(v[:, ok], problems="solve", seeds="shared") for k, v in values.items()}
    boot = hierarchical_bootstrap(arms, n_bootstrap, seed)
    est = contrast(boot, [("band", None, 1.0), ("selfplay", None, -1.0)], "band - AZR solver entropy")
    ref = float(boot.estimate["selfplay"])
    bound = round(RQ5_ENTROPY_BOUND * ref, 4)
    return {"rq": "RQ5", "takeaway": "1-2|p-0.5| has little effect on entropy (paper)",
            "test": (f"band - AZR solver entropy ({column.replace('entropy_', '')}), step {steps[-1]}, fixed prompts "
                     f"(paired by seed and prompt; 'little' = within +-{RQ5_ENTROPY_BOUND:.0%} of AZR's {ref:.3f})"),
            "direction": "within", "bounds": (-bound, bound), "estimate": est,
            "n": f"{int(ok.sum())} solver prompts; seeds {seeds}"}


def rq5_intervals(out: dict) -> pd.DataFrame:
    """The three intervals of `rq5_comparison` and whether each excludes 0 and the paper's -2 points."""
    rows = []
    for name in ("bootstrap", "moment", "t_over_seeds"):
        e = out[name]
        rows.append({"interval": name, "estimate": e.estimate, "ci_low": e.ci_low, "ci_high": e.ci_high,
                     "excludes 0": out[f"{name}_excludes_0"], "excludes -2 points": out[f"{name}_excludes_paper"]})
    return pd.DataFrame(rows)


def rq5_sentence(out: dict) -> str:
    e = out["bootstrap"]
    zero = "excludes" if out["bootstrap_excludes_0"] else "includes"
    paper = "excludes" if out["bootstrap_excludes_paper"] else "includes"
    return (f"- band - AZR pass@1 = {e.estimate:+.3f} [{e.ci_low:+.3f}, {e.ci_high:+.3f}] over seeds {out['seeds']} and "
            f"{out['n_problems']} problems: the interval {zero} 0 and {paper} the paper's -0.02.")


# --------------------------------------------------------------------------------------------
# Everything, for the overview
# --------------------------------------------------------------------------------------------


def all_tests(rd: ResultsDir, n_bootstrap: int = 10_000, seed: int = 0) -> tuple[list[dict], list[str]]:
    """Every notebook's tests (copies), Holm over the whole family; notes name any RQ that failed to load."""
    tests, notes = [], []
    for name, fn in (("RQ1", lambda: rq1(rd, n_bootstrap=n_bootstrap, seed=seed)[0]),
                     ("RQ2", lambda: rq2(rd, seed=seed)[0]),
                     ("RQ3", lambda: rq3(rd, n_bootstrap=n_bootstrap, seed=seed)[0]),
                     ("RQ4", lambda: rq4(rd)[0]),
                     ("RQ5", lambda: rq5(rd, n_bootstrap=n_bootstrap, seed=seed)[0])):
        try:
            tests += [copy.deepcopy(t) for t in fn()]
        except (ValueError, FileNotFoundError) as e:
            notes.append(f"{name}: not computed ({e})")
    holm_family([t["estimate"] for t in tests])
    return tests, notes
