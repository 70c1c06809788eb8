"""The paper's workflow (workflow/Snakefile) as Snakemake runs it: the plan of every preset, the SLURM
profile's dry run, a failing step naming itself and its log, the lock on a results directory, a
killed training run resuming from its checkpoint, and the quick preset end to end from zero, then a
rerun that does nothing and changes that rerun exactly the steps downstream of them."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from azrlib.config import CONFIG_DIR, ConfigError
from azrlib.pipeline.settings import load_settings, presets, run_plan
from azrlib.pipeline.steps import eval_subset, stale_reason

ROOT = Path(__file__).resolve().parents[2]
SNAKEFILE = ROOT / "workflow" / "Snakefile"
HAS_TINY_BASE = (ROOT / "data" / "tiny_base" / "config.json").is_file()
needs_tiny_base = pytest.mark.skipif(not HAS_TINY_BASE, reason="data/tiny_base is not in this clone (azr pretrain-tiny)")
QUICK_RUNS = ["selfplay_s0", "selfplay_s1", "band_s0", "band_s1", "frozen_s0", "frozen_s1", "rlvr_s0", "rlvr_s1",
              "azr_code_s0", "sft_s0"]
# the protocol's steps on the quick preset (2 seeds): base + 2 x (selfplay, rlvr) on both splits, band on the first
QUICK_DATA_JOBS = {"base": 1, "eval_tasks": 2, "rlvr_tasks": 1, "train": 10, "eval": 12, "leash_tasks": 1,
                   "leash_eval": 1, "rq2": 2, "rq3_entropy": 8, "sparsity": 3, "sparsity_curve": 5}


def snakemake(results: Path, *args: str, profile: str = "local", timeout: int = 1800, **popen):
    cmd = [sys.executable, "-m", "snakemake", "-s", str(SNAKEFILE), "--directory", str(results),
           "--profile", str(ROOT / "workflow" / "profiles" / profile), *args]
    env = dict(os.environ, PYTHONUNBUFFERED="1", TQDM_DISABLE="1")
    if popen:
        return subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                                **popen)
    proc = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout)
    return proc.returncode, proc.stdout + proc.stderr


def planned_jobs(output: str) -> dict[str, int]:
    """The 'Job stats' table of a (dry) run: rule -> jobs; empty when nothing is to be done."""
    jobs, lines = {}, output.splitlines()
    if "Job stats:" not in lines:
        return jobs
    for line in lines[lines.index("Job stats:") + 3:]:
        parts = line.split()
        if len(parts) != 2 or parts[0] == "total":
            break
        jobs[parts[0]] = int(parts[1])
    return jobs


NOTEBOOK_RULES = {f"notebook_{p.stem}": 1 for p in (ROOT / "notebooks").glob("*.ipynb")}


# ---------------------------------------------------------------------------------------------
# Settings and the plan
# ---------------------------------------------------------------------------------------------

def test_every_pipeline_preset_loads_and_has_its_training_preset():
    assert set(presets()) >= {"tiny", "quick", "coder3b", "coder7b"}
    for preset in presets():
        s = load_settings(preset)
        assert (CONFIG_DIR / f"{s.config or preset}.yaml").is_file(), preset
    assert [r.name for r in run_plan(load_settings("quick"))] == QUICK_RUNS
    gpu = load_settings("coder7b")
    assert gpu.eval_n == 256 and gpu.train_gpus == 4 and {"humaneval+", "mbpp+"} <= set(gpu.benchmarks)
    # the GPU presets' RLVR/SFT baselines train on AZR's seed files; without any task source they are left out
    assert gpu.rlvr_source == "azr_seeds" and sum(r.command == "train-rlvr" for r in run_plan(gpu)) == len(gpu.seeds)
    assert not [r for r in run_plan(load_settings("coder7b", ["rlvr_tasks=0"])) if r.command != "train"]
    with pytest.raises(ConfigError, match="rlvr_source"):
        load_settings("coder7b", ["rlvr_source=web"])
    assert load_settings("quick", ["eval_n=4"]).eval_n == 4
    with pytest.raises(ConfigError, match="unknown config key nope"):
        load_settings("quick", ["nope=1"])
    with pytest.raises(ConfigError, match="unknown preset"):
        load_settings("nope")


def test_the_tinyworld_eval_subset_spreads_over_types_and_levels():
    rows = [json.loads(line) for line in (ROOT / "data/tinyworld/benchmark.jsonl").read_text().splitlines()]
    chosen = eval_subset(rows, 5)
    assert len(chosen) == 15
    for row in chosen:
        task_type, index = row["meta"]["id"].split("/")
        assert task_type == row["task_type"] and rows[int(index)]["program"] == row["program"]
    assert len({r["meta"]["level"] for r in chosen if r["task_type"] == "deduction"}) > 1
    assert len(eval_subset(rows, 0)) == len(rows)


def test_a_run_directory_is_resumed_only_with_a_checkpoint_of_the_same_config(tmp_path):
    import yaml

    run = tmp_path / "run"
    assert stale_reason(run, {"lr": 1}) is None  # nothing there: a fresh start
    (run / "checkpoints").mkdir(parents=True)
    (run / "config.yaml").write_text(yaml.safe_dump({"lr": 1, "torch_threads": 2}))
    assert stale_reason(run, {"lr": 1}) == "no checkpoint yet"
    (run / "checkpoints" / "latest").write_text("step_000002")
    assert stale_reason(run, {"lr": 1}) is None  # thread counts do not matter
    assert "lr" in stale_reason(run, {"lr": 2})


def test_every_step_of_the_workflow_is_an_azr_subcommand(capsys):
    """Each rule's command is `azr <name>`: every name the rules use parses its own --help."""
    from azrlib.cli import SUBCOMMANDS, main

    used = set()
    for smk in (ROOT / "workflow" / "rules").glob("*.smk"):
        for word in smk.read_text().split("{AZR} ")[1:]:
            used.add(word.split()[0])
    used.add("train")  # launched through {params.launcher}
    assert used >= {"check-base", "eval-tasks", "rlvr-tasks", "prepare-run", "eval", "rq2", "sparsity", "notebooks",
                    "leash-tasks", "leash-eval", "rq3-entropy", "sparsity-curve"}
    for name in sorted(used):
        assert name in SUBCOMMANDS, name
        with pytest.raises(SystemExit) as info:
            main([name, "--help"])
        assert info.value.code == 0, name
        assert f"azr {name}" in capsys.readouterr().out


@needs_tiny_base
def test_the_quick_dag_has_every_step_of_the_paper(tmp_path):
    rc, out = snakemake(tmp_path / "quick", "--dry-run", "--printshellcmds")
    assert rc == 0, out[-3000:]
    assert planned_jobs(out) == {**QUICK_DATA_JOBS, "manifest": 1, **NOTEBOOK_RULES, "all": 1}
    for run in QUICK_RUNS:
        assert f"train/{run}/checkpoints/step_000003/config.json" in out
    # every run keeps a checkpoint every 10% of training and takes one optimizer step per step
    assert out.count("checkpoint_every=1") >= len(QUICK_RUNS) and "mini_batch_size=1000000" in out


def test_the_tiny_plan_is_the_protocol():
    """Every seed of self-play, band, frozen proposer and RLVR; SFT once; both tiny-world splits."""
    s = load_settings("tiny")
    assert len(s.seeds) >= 3 and s.eval_n >= 32 and s.leash_n >= 256 and s.leash_min_n == 256
    names = [r.name for r in run_plan(s)]
    for kind in ("selfplay", "band", "frozen", "rlvr"):
        assert sum(n.startswith(kind + "_s") for n in names) == len(s.seeds), kind
    assert "sft_s0" in names and set(s.benchmarks) == {"tinyworld", "tinyworld_ood"}


@pytest.mark.slow  # two Snakemake dry runs through the SLURM executor plugin
def test_the_slurm_profile_dry_run_of_the_gpu_presets(tmp_path):
    """What CI can check of the cluster path: the profile loads the SLURM executor, every rule
    gets its resources, and training launches torchrun on the preset's GPUs."""
    for preset, gpus in (("coder3b", 2), ("coder7b", 4)):
        rc, out = snakemake(tmp_path / preset, "--dry-run", "--printshellcmds", profile="slurm")
        assert rc == 0, out[-3000:]
        assert "Using profile" in out and "profiles/slurm" in out
        jobs = planned_jobs(out)
        # self-play, band, frozen and RLVR per seed (RLVR on AZR's seed files), azr_code and SFT once;
        # base + 3 self-play + 3 RLVR on every benchmark, 3 band on the first
        assert jobs["train"] == 14 and jobs["eval"] == 7 * 3 + 3 and jobs["sparsity"] == 3
        assert jobs["rlvr_tasks"] == 1 and "rlvr-tasks 720 --source azr_seeds" in out
        assert f"torchrun --standalone --nproc-per-node {gpus} -m azrlib.cli train --resume --config {preset}" in out
        train = out[out.index("rule train:"):]
        assert f"gpu={gpus}" in train.split("Shell command")[0] and "runtime=4320" in train.split("Shell command")[0]
        ev = out[out.index("rule eval:"):]
        assert "gpu=1" in ev.split("Shell command")[0] and "--engine vllm" in ev


# ---------------------------------------------------------------------------------------------
# Real runs of the first steps (seconds)
# ---------------------------------------------------------------------------------------------

@needs_tiny_base
def test_a_failing_step_names_itself_and_its_log_and_the_manifest_says_failed(tmp_path):
    R = tmp_path / "quick"
    rc, out = snakemake(R, "--config", f"model={tmp_path / 'no_such_model'}", "--", "data/base.json")
    assert rc != 0
    assert "Error in rule base" in out and "logs/base.log" in out
    assert "no_such_model" in (R / "logs" / "base.log").read_text()
    assert json.loads((R / "manifest.json").read_text())["status"] == "failed"


@needs_tiny_base
def test_an_unchanged_step_is_skipped_and_a_changed_setting_reruns_only_its_step(tmp_path):
    R = tmp_path / "quick"
    targets = ["data/base.json", "data/tinyworld_eval.jsonl"]
    rc, out = snakemake(R, "--", *targets)
    assert rc == 0, out[-3000:]
    assert planned_jobs(out) == {"base": 1, "eval_tasks": 1}
    rows = (R / "data" / "tinyworld_eval.jsonl").read_text().splitlines()
    assert len(rows) == 3 * load_settings("quick").eval_per_type
    rc, out = snakemake(R, "--", *targets)
    assert rc == 0 and "Nothing to be done" in out, out[-3000:]
    rc, out = snakemake(R, "--config", "eval_per_type=2", "--", *targets)
    assert rc == 0 and planned_jobs(out) == {"eval_tasks": 1}, out[-3000:]
    assert len((R / "data" / "tinyworld_eval.jsonl").read_text().splitlines()) == 6


def _wait_for(path: Path, proc, seconds: float) -> None:
    deadline = time.time() + seconds
    while not path.exists():
        assert proc.poll() is None, f"the first pipeline ended early:\n{proc.stdout.read()[-3000:]}"
        assert time.time() < deadline, f"{path} did not appear in {seconds} s"
        time.sleep(0.5)


@pytest.mark.slow
@needs_tiny_base
def test_a_second_pipeline_is_refused_and_a_killed_training_run_resumes_from_its_checkpoint(tmp_path):
    R = tmp_path / "quick"
    run = R / "train" / "selfplay_s0"
    target = "train/selfplay_s0/checkpoints/step_000003/config.json"
    first = snakemake(R, "--", target, start_new_session=True)
    try:
        _wait_for(run / "metrics.jsonl", first, 600)  # training has started, the locks are held
        rc, out = snakemake(R, "--", target)  # the same files: Snakemake's own lock refuses it
        assert rc != 0 and "cannot be locked" in out, out[-3000:]
        for _ in range(2):  # other files of the same R: refused by the pipeline's lock on R
            rc, out = snakemake(R, "--", "data/tinyworld_eval.jsonl")
            assert rc != 0 and "another pipeline is working on" in out, out[-3000:]
        assert not (R / "data" / "tinyworld_eval.jsonl").exists()
        _wait_for(run / "checkpoints" / "latest", first, 600)  # checkpoint_every 2 of 3 steps
        os.killpg(first.pid, signal.SIGTERM)
        first.wait(timeout=120)
    finally:
        if first.poll() is None:
            os.killpg(first.pid, signal.SIGKILL)
            first.wait()
    assert not (run / "checkpoints" / "step_000003").exists(), "the run finished before it was killed"
    rc, out = snakemake(R, "--", target)
    assert rc == 0, out[-3000:]
    log = (R / "logs" / "train" / "selfplay_s0.log").read_text()
    assert "resuming from its last checkpoint" in log
    steps = [json.loads(line)["step"] for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert steps == [0, 1, 2, 3]


# ---------------------------------------------------------------------------------------------
# End to end: the quick preset from zero, notebooks included, then a rerun that does nothing
# ---------------------------------------------------------------------------------------------

@pytest.mark.slow
@needs_tiny_base
def test_quick_preset_end_to_end_then_a_rerun_does_nothing(tmp_path):
    import nbformat

    R = tmp_path / "quick"
    rc, out = snakemake(R)
    assert rc == 0, out[-6000:]

    manifest = json.loads((R / "manifest.json").read_text())
    assert manifest["status"] == "complete" and manifest["preset"] == "quick" and manifest["seeds"] == [0, 1]
    assert manifest["sandbox_isolation"] and manifest["versions"]["torch"] and manifest["versions"]["snakemake"]
    assert [r["name"] for r in manifest["runs"]] == QUICK_RUNS
    assert manifest["total_seconds"] >= manifest["steps_seconds"] > 0
    steps = manifest["steps"]
    assert all(not s["skipped"] and s["seconds"] > 0 for s in steps.values())
    assert {f"train/{r}" for r in QUICK_RUNS} | {"rq2/selfplay_s0", "eval/base/tinyworld", "eval/rlvr_s1/tinyworld_ood",
                                                 "leash_eval", "rq3/frozen_s1", "sparsity_curve/sft_s0",
                                                 "notebook/00_overview"} <= set(steps)
    for run in QUICK_RUNS:
        d = R / "train" / run
        files = ["config.yaml", "environment.json", "metrics.jsonl", "timings.jsonl"]
        if not run.startswith(("rlvr", "sft")):  # the baselines propose nothing
            files.append("tasks.jsonl")
        for name in files:
            assert (d / name).is_file(), d / name
        for step in range(4):  # checkpoint_fraction 0.1 of 3 steps: every step kept
            assert (d / "checkpoints" / f"step_{step:06d}" / "model.safetensors").is_file()
    for model, bench in (("base", "tinyworld"), ("selfplay_s1", "tinyworld_ood"), ("rlvr_s0", "tinyworld"),
                         ("band_s1", "tinyworld")):
        rows = [json.loads(line) for line in (R / "eval" / model / f"{bench}.jsonl").read_text().splitlines()]
        per_problem = {}
        for row in rows:
            per_problem.setdefault(row["problem_id"], set()).add(row["sample_idx"])
        assert len(per_problem) == 12 and all(len(s) == 4 for s in per_problem.values())
    assert not (R / "eval" / "band_s0" / "tinyworld_ood.jsonl").exists()
    for run in ("selfplay_s0", "selfplay_s1"):
        assert {json.loads(line)["model"] for line in (R / "rq2" / f"{run}.jsonl").read_text().splitlines()} <= {"base", run}
    rq3 = [json.loads(line) for line in (R / "rq3" / "frozen_s0.jsonl").read_text().splitlines()]
    assert {r["step"] for r in rq3} == {0, 1, 2, 3} and {r["role"] for r in rq3} == {"solve", "propose"}
    assert len(rq3) == 4 * 2 * 3 * 2  # checkpoints x roles x types x rq3_per_type
    for run in ("selfplay_s1", "rlvr_s0", "sft_s0"):
        curve = json.loads((R / "sparsity_curve" / f"{run}.json").read_text())
        assert {r["step"] for r in curve["rows"]} == {1, 2, 3} and curve["budget"]["optimizer_steps"] == 3
    for run in ("selfplay_s0", "rlvr_s0", "sft_s0"):
        sparsity = json.loads((R / "sparsity" / f"{run}.json").read_text())
        assert set(sparsity) == {"stored", "bf16", "fp32"} and 0 <= sparsity["fp32"]["sparsity"] <= 1
    for nb in sorted((ROOT / "notebooks").glob("*.ipynb")):
        executed = nbformat.read(R / "reports" / nb.name, as_version=4)
        errors = [o for c in executed.cells if c.cell_type == "code" for o in c.get("outputs", [])
                  if o.get("output_type") == "error"]
        assert not errors, f"{nb.name}: {errors[:1]}"
        assert list((R / "figures").glob(f"{nb.stem}_*.png")), f"{nb.name} wrote no figure"

    # a rerun does nothing and writes nothing
    before = {p: p.stat().st_mtime_ns for p in R.rglob("*") if p.is_file() and ".snakemake" not in p.parts}
    rc, out = snakemake(R)
    assert rc == 0 and "Nothing to be done" in out, out[-3000:]
    after = {p: p.stat().st_mtime_ns for p in R.rglob("*") if p.is_file() and ".snakemake" not in p.parts}
    assert after == before

    # a changed setting reruns exactly the steps downstream of it
    downstream_of_results = {"manifest": 1, **NOTEBOOK_RULES, "all": 1}
    rc, out = snakemake(R, "--dry-run", "--config", "eval_n=8")
    assert rc == 0 and planned_jobs(out) == {"eval": 12, "leash_tasks": 1, "leash_eval": 1,
                                             **downstream_of_results}, out[-3000:]
    rc, out = snakemake(R, "--dry-run", "--config", "rq2_m=2")
    assert rc == 0 and planned_jobs(out) == {"rq2": 2, **downstream_of_results}, out[-3000:]
    rc, out = snakemake(R, "--dry-run", "--config", "rq3_n=3")
    assert rc == 0 and planned_jobs(out) == {"rq3_entropy": 8, **downstream_of_results}, out[-3000:]
    rc, out = snakemake(R, "--dry-run", "--config", "train_overrides=[lr=0.0002]")
    data = {k: v for k, v in QUICK_DATA_JOBS.items() if k not in ("base", "eval_tasks", "rlvr_tasks")}
    data["eval"] -= 2  # the base's two evaluations stay
    assert rc == 0 and planned_jobs(out) == {**data, **downstream_of_results}, out[-3000:]
    # analysis code touched but unchanged: nothing (Snakemake compares checksums of small inputs);
    # changed: the notebooks rerun, nothing else
    code = ROOT / "azrlib" / "report" / "tables.py"
    text, stat = code.read_text(), code.stat()
    try:
        os.utime(code)
        rc, out = snakemake(R, "--dry-run")
        assert rc == 0 and "Nothing to be done" in out, out[-3000:]
        code.write_text(text + "# changed\n")
        rc, out = snakemake(R, "--dry-run")
        assert rc == 0 and planned_jobs(out) == {**NOTEBOOK_RULES, "all": 1}, out[-3000:]
    finally:
        code.write_text(text)
        os.utime(code, ns=(stat.st_atime_ns, stat.st_mtime_ns))
