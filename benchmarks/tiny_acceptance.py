"""Acceptance on the tiny world: does a trained checkpoint beat its base?

    .venv/bin/python benchmarks/tiny_acceptance.py MODEL_DIR [--base data/tiny_base] [--per-type 300]
    .venv/bin/python benchmarks/tiny_acceptance.py --base-only [--base DIR] [--benchmark data/tinyworld/benchmark_ood.jsonl]

Samples base and model on the held-out tiny-world benchmark (`per_type` tasks per type, evenly
over the levels; all 300 by default) at temperature 1.0 with 8 samples per task (the issue's
protocol: the training temperature, not the RQ1 pass@k one), checks every sample with `azr eval`,
and prints per task type the mean solve rate of each model and the paired bootstrap 95% CI over
tasks of the difference (`azr passk --vs`, k=1). Results go to `--out` (default
runs/acceptance/<model name>/); an existing eval file there is reused (azr eval resumes).
`--base-only`: the base's solve rate alone, with a bootstrap 95% CI over tasks (e.g. on the
out-of-distribution split, data/tinyworld/benchmark_ood.jsonl).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

TYPES = ("deduction", "abduction", "induction")


def write_subset(bench: Path, out: Path, per_type: int) -> None:
    rows = [json.loads(line) for line in bench.read_text().splitlines() if line.strip()]
    chosen = []
    for t in TYPES:
        group = [(i, r) for i, r in enumerate(rows) if r["task_type"] == t]
        if per_type and per_type < len(group):  # evenly spaced: the file is sorted by level
            group = [group[(j * len(group)) // per_type] for j in range(per_type)]
        chosen += [dict(r, meta=dict(r.get("meta") or {}, id=f"{t}/{i}")) for i, r in group]
    out.write_text("".join(json.dumps(r, sort_keys=True) + "\n" for r in chosen))


def evaluate(model: str, subset: Path, out: Path, args: argparse.Namespace) -> None:
    cmd = [sys.executable, "-m", "azrlib.cli", "eval", model, "--benchmark", "tinyworld", "--data", str(subset),
           "--n", str(args.n), "--temperature", "1.0", "--top-p", "1.0", "--max-new-tokens", str(args.max_new_tokens),
           "--prompt-style", "plain", "--seed", str(args.seed), "--num-threads", str(args.threads), "--quiet",
           "--out", str(out)]
    subprocess.run(cmd, check=True, cwd=ROOT)


def compare(base: Path, model: Path, bootstrap: int) -> dict:
    out = {}
    with tempfile.TemporaryDirectory() as tmp:
        for t in TYPES:
            files = []
            for name, src in (("a", base), ("b", model)):
                rows = [line for line in src.read_text().splitlines() if json.loads(line)["problem_id"].startswith(t + "/")]
                files.append(Path(tmp, f"{name}_{t}.jsonl"))
                files[-1].write_text("\n".join(rows) + "\n")
            res = subprocess.run([sys.executable, "-m", "azrlib.cli", "passk", str(files[0]), "--vs", str(files[1]),
                                  "--k", "1", "--bootstrap", str(bootstrap), "--json"],
                                 check=True, cwd=ROOT, capture_output=True, text=True)
            out[t] = json.loads(res.stdout)
    return out


def solve_rates(results: Path, bootstrap: int, seed: int = 0) -> dict:
    """Per type: the mean solve rate over tasks (pass@1 from n samples) of one model's eval file,
    with a percentile bootstrap 95% CI over tasks."""
    import numpy as np

    per_task: dict[str, list[bool]] = {}
    for line in results.read_text().splitlines():
        row = json.loads(line)
        per_task.setdefault(row["problem_id"], []).append(bool(row["correct"]))
    rng = np.random.default_rng(seed)
    out = {}
    for t in TYPES:
        rates = np.array([np.mean(v) for k, v in sorted(per_task.items()) if k.startswith(t + "/")])
        means = rng.choice(rates, size=(bootstrap, len(rates))).mean(axis=1)
        out[t] = {"solve_rate": float(rates.mean()), "ci_low": float(np.quantile(means, 0.025)),
                  "ci_high": float(np.quantile(means, 0.975)), "n_tasks": len(rates),
                  "mixed": float(np.mean((rates > 0) & (rates < 1)))}
    return out


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("model", nargs="?", help="trained checkpoint directory")
    p.add_argument("--base-only", action="store_true", help="evaluate the base alone (no model)")
    p.add_argument("--base", default="data/tiny_base")
    p.add_argument("--benchmark", default="data/tinyworld/benchmark.jsonl")
    p.add_argument("--per-type", type=int, default=300)
    p.add_argument("--n", type=int, default=8)
    p.add_argument("--max-new-tokens", type=int, default=256)
    p.add_argument("--threads", type=int, default=1,
                   help="torch threads (1: on a loaded 2-core machine 2 threads sampled the tiny model ~20x slower)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--bootstrap", type=int, default=10000)
    p.add_argument("--out", type=Path, default=None)
    args = p.parse_args()
    if (args.model is None) != args.base_only:
        p.error("give a MODEL directory, or --base-only")
    name = Path(args.benchmark).stem if args.base_only else Path(args.model).resolve().parent.parent.name
    out = args.out or ROOT / "runs" / "acceptance" / name
    out.mkdir(parents=True, exist_ok=True)
    subset = out / "tasks.jsonl"
    write_subset(ROOT / args.benchmark, subset, args.per_type)
    evaluate(args.base, subset, out / "base.jsonl", args)
    if args.base_only:
        rates = solve_rates(out / "base.jsonl", args.bootstrap)
        print(f"{args.benchmark}, T=1.0, n={args.n}, up to {args.per_type} tasks per type; base {args.base}")
        for t, r in rates.items():
            print(f"{t:10s} {r['solve_rate']:.3f} [{r['ci_low']:.3f}, {r['ci_high']:.3f}] over {r['n_tasks']} tasks; "
                  f"mixed (0 < solved < n) {r['mixed']:.2f}")
        (out / "base_rates.json").write_text(json.dumps(rates, indent=1))
        return 0
    evaluate(args.model, subset, out / "model.jsonl", args)
    result = compare(out / "base.jsonl", out / "model.jsonl", args.bootstrap)
    print(f"held-out tiny world, T=1.0, n={args.n}, {args.per_type} tasks per type; base {args.base} vs {args.model}")
    print(f"{'type':10s} {'base':>7s} {'model':>7s} {'delta':>8s}  95% CI (paired bootstrap over tasks)")
    summary = {}
    for t, r in result.items():
        row = {"base": r["pass_at_k"][0], "model": r["pass_at_k_other"][0], "delta": r["delta"][0],
               "ci_low": r["ci_low"][0], "ci_high": r["ci_high"][0], "p_value": r["p_value"][0],
               "n_tasks": r["n_problems"]}
        summary[t] = row
        print(f"{t:10s} {row['base']:7.3f} {row['model']:7.3f} {row['delta']:+8.3f}  "
              f"[{row['ci_low']:+.3f}, {row['ci_high']:+.3f}]")
    (out / "acceptance.json").write_text(json.dumps(summary, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
