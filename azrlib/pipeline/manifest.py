"""R/manifest.json: what a pipeline run was (preset, seeds, base, runs and their resolved configs),
how long each step took, package versions and the sandbox isolation.

The workflow writes it twice: the `manifest` rule after the data steps (the notebooks read it), and
its onsuccess/onerror handler at the end with every step, the status and the total. Per-step
seconds come from Snakemake's benchmark files (`R/benchmarks/<step>.tsv`, one per job); a step
whose benchmark file is older than this invocation was skipped (up to date). `overhead_seconds`
is the invocation's wall time during which no step's command was running (Snakemake's own work:
parsing, the DAG, scheduling, file checks).
"""

from __future__ import annotations

import importlib.metadata
import json
import os
import sys
import time
from pathlib import Path

PACKAGES = ("azrlib", "torch", "transformers", "tokenizers", "safetensors", "numpy", "scipy", "papermill",
            "matplotlib", "pandas", "snakemake", "jupytext", "vllm")


def versions() -> dict:
    out = {"python": sys.version.split()[0]}
    for pkg in PACKAGES:
        try:
            out[pkg] = importlib.metadata.version(pkg)
        except importlib.metadata.PackageNotFoundError:
            out[pkg] = None
    return out


def sandbox_isolation(results: Path, runs: list[dict]) -> dict | None:
    """The isolation the first run recorded (every run records its own in environment.json)."""
    for run in runs:
        env = results / "train" / run["name"] / "environment.json"
        if env.is_file():
            try:
                return json.loads(env.read_text()).get("sandbox_isolation")
            except json.JSONDecodeError:
                continue
    return None


def read_benchmark(path: Path) -> float | None:
    """Seconds from a Snakemake benchmark TSV (header `s h:m:s ...`, one row per repeat)."""
    try:
        lines = path.read_text().splitlines()
        return float(lines[1].split("\t")[0])
    except (OSError, IndexError, ValueError):
        return None


def step_times(results: Path, since: float | None) -> dict[str, dict]:
    """step -> {seconds, skipped, status, log, finished}; `since` is this invocation's start."""
    steps = {}
    bench = results / "benchmarks"
    for tsv in sorted(bench.rglob("*.tsv")) if bench.is_dir() else ():
        name = tsv.relative_to(bench).with_suffix("").as_posix()
        seconds = read_benchmark(tsv)
        finished = tsv.stat().st_mtime
        ran = since is not None and finished >= since
        steps[name] = {"seconds": round(seconds, 2) if ran and seconds is not None else 0.0,
                       "recorded_seconds": None if seconds is None else round(seconds, 2),
                       "skipped": not ran, "status": "ran" if ran else "skipped",
                       "log": str(results / "logs" / f"{name}.log"), "finished": finished}
    return steps


def busy_seconds(steps: dict[str, dict]) -> float:
    """Wall seconds during which at least one step of this invocation was running."""
    intervals = sorted((s["finished"] - s["seconds"], s["finished"]) for s in steps.values() if not s["skipped"])
    busy, end = 0.0, float("-inf")
    for a, b in intervals:
        if b <= end:
            continue
        busy += b - max(a, end)
        end = b
    return busy


def write(path: Path, record: dict, keep_mtime: bool = False) -> None:
    """Atomic write; `keep_mtime` keeps the file's old mtime so that completing the manifest at the
    end does not make the notebooks (which read it) look out of date to the next run."""
    old = path.stat() if keep_mtime and path.exists() else None
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(json.dumps(record, indent=1) + "\n")
    os.replace(tmp, path)
    if old is not None:
        os.utime(path, ns=(old.st_atime_ns, old.st_mtime_ns))


def build(plan: dict, results: Path, started: float | None, status: str) -> dict:
    """The manifest of `plan` (preset, seeds, settings, runs, evaluations, notebooks, dirs)."""
    steps = step_times(results, started)
    total = time.time() - started if started is not None else None
    record = dict(plan)
    record.update({
        "status": status,
        "steps": {k: {kk: vv for kk, vv in v.items() if kk != "finished"} for k, v in steps.items()},
        "total_seconds": None if total is None else round(total, 2),
        "steps_seconds": round(busy_seconds(steps), 2),
        "versions": versions(),
        "sandbox_isolation": sandbox_isolation(results, plan.get("runs", [])),
        "finished": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    })
    if total is not None:
        record["overhead_seconds"] = round(max(0.0, total - record["steps_seconds"]), 2)
    return record


def finalize(plan: dict, results: Path, started: float, status: str) -> Path | None:
    """The end-of-invocation manifest (onsuccess / onerror); None when the results dir has none yet."""
    path = results / "manifest.json"
    if not path.exists() and status == "complete":
        return None
    results.mkdir(parents=True, exist_ok=True)
    write(path, build(plan, results, started, status), keep_mtime=True)
    return path
