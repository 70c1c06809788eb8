"""`azr reproduce`: the step DAG on cheap fake steps (skip when unchanged, redo when an input
changes, --force, --only, failures naming the step, resume), and the quick preset end to end
(training, evaluation, RQ2, sparsity, every notebook through papermill) into a temporary directory."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from azrlib.reproduce import PRESETS, Pipeline, Step, StepFailed, build_plan, resolve_settings, run_plan

ROOT = Path(__file__).resolve().parents[1]


# ---------------------------------------------------------------------------------------------
# The DAG on fake steps
# ---------------------------------------------------------------------------------------------

class Counter:
    """Fake steps that copy their input (plus a suffix) to their output and count their runs."""

    def __init__(self, tmp: Path):
        self.tmp = tmp
        self.calls: list[tuple[str, bool]] = []
        self.fail: set[str] = set()

    def step(self, name, src, dst, deps=(), config=None):
        def fn(step, log, resume):
            self.calls.append((name, resume))
            log.write(f"running {name}\n")
            if name in self.fail:
                raise RuntimeError(f"{name} is broken")
            dst.write_text(src.read_text() + f"+{name}")
        return Step(name, outputs=(dst,), inputs=(src,), deps=deps, config=config or {}, fn=fn)

    def dag(self, config_b=None):
        t = self.tmp
        return [
            self.step("a", t / "in.txt", t / "R" / "a.txt"),
            self.step("b", t / "R" / "a.txt", t / "R" / "b.txt", deps=("a",), config=config_b),
            self.step("c", t / "in.txt", t / "R" / "c.txt"),
            self.step("d", t / "R" / "b.txt", t / "R" / "d.txt", deps=("b", "c")),
        ]

    def run(self, config_b=None, **kw):
        self.calls.clear()
        Pipeline(self.dag(config_b), self.tmp / "R", echo=lambda s: None, **kw).run()
        return [name for name, _ in self.calls]


@pytest.fixture
def fake(tmp_path):
    (tmp_path / "R").mkdir()
    (tmp_path / "in.txt").write_text("x")
    return Counter(tmp_path)


def test_runs_in_dependency_order_then_skips_when_unchanged(fake):
    assert fake.run() == ["a", "b", "c", "d"]
    assert (fake.tmp / "R" / "d.txt").read_text() == "x+a+b+d"
    assert fake.run() == []
    stamp = json.loads((fake.tmp / "R" / ".stamps" / "a.json").read_text())
    assert stamp["state"] == "done" and len(stamp["fingerprint"]) == 64
    assert "running a" in (fake.tmp / "R" / "logs" / "a.log").read_text()


def test_a_changed_input_file_reruns_the_step_and_everything_downstream(fake):
    fake.run()
    (fake.tmp / "in.txt").write_text("y")
    assert fake.run() == ["a", "b", "c", "d"]
    assert (fake.tmp / "R" / "d.txt").read_text() == "y+a+b+d"


def test_a_changed_config_reruns_that_step_and_its_dependents_only(fake):
    fake.run()
    assert fake.run(config_b={"lr": 2}) == ["b", "d"]
    assert fake.run(config_b={"lr": 2}) == []


def test_a_missing_output_reruns_its_step(fake):
    fake.run()
    (fake.tmp / "R" / "c.txt").unlink()
    assert fake.run() == ["c"]  # c rewrites the same content: d's inputs are unchanged


def test_force_redoes_every_step_and_only_selects_steps_and_their_needs(fake):
    fake.run()
    assert fake.run(force=True) == ["a", "b", "c", "d"]
    assert fake.run(force=True, only=["b"]) == ["b"]  # a is needed but up to date
    (fake.tmp / "R" / "a.txt").unlink()
    assert fake.run(only=["b"]) == ["a"]  # a rewrites the same a.txt, so b stays up to date


def test_only_rejects_an_unknown_step(fake):
    with pytest.raises(ValueError, match="matches no step"):
        Pipeline(fake.dag(), fake.tmp / "R", only=["nope"])


def test_a_failing_step_stops_the_pipeline_naming_the_step_and_its_log_and_a_rerun_resumes(fake):
    fake.fail.add("b")
    lines = []
    pipeline = Pipeline(fake.dag(), fake.tmp / "R", echo=lines.append)
    with pytest.raises(StepFailed) as info:
        pipeline.run()
    assert info.value.step == "b"
    assert info.value.log == fake.tmp / "R" / "logs" / "b.log"
    assert "RuntimeError: b is broken" in info.value.log.read_text()
    assert any("b: FAILED" in line and "b.log" in line for line in lines)
    assert "d" not in [n for n, _ in fake.calls]
    assert pipeline.results["d"].status == "not_run"
    fake.fail.clear()
    fake.calls.clear()
    Pipeline(fake.dag(), fake.tmp / "R", echo=lambda s: None).run()
    # a is done; b was interrupted with an unchanged fingerprint: resumed; c and d run
    assert ("b", True) in fake.calls and "a" not in [n for n, _ in fake.calls]
    assert sorted(n for n, _ in fake.calls) == ["b", "c", "d"]


def test_a_command_step_logs_its_output_and_fails_with_its_exit_status(tmp_path):
    ok = Step("ok", outputs=(tmp_path / "R" / "out.json",), stdout=tmp_path / "R" / "out.json",
              cmd=(sys.executable, "-c", "import sys; print('{}'); print('to the log', file=sys.stderr)"))
    bad = Step("bad", deps=("ok",), cmd=(sys.executable, "-c", "raise SystemExit(3)"))
    with pytest.raises(StepFailed, match=r"step bad failed: exit status 3; its log: .*bad\.log"):
        Pipeline([ok, bad], tmp_path / "R", echo=lambda s: None).run()
    assert (tmp_path / "R" / "out.json").read_text() == "{}\n"
    assert "to the log" in (tmp_path / "R" / "logs" / "ok.log").read_text()


def test_two_jobs_run_independent_steps_at_the_same_time(tmp_path):
    # each step waits until the other has started: only passes when both run concurrently
    a, b = tmp_path / "a.started", tmp_path / "b.started"
    code = ("import pathlib, sys, time; pathlib.Path(sys.argv[1]).touch(); t = time.time()\n"
            "while not pathlib.Path(sys.argv[2]).exists():\n"
            "    time.sleep(0.05)\n"
            "    if time.time() - t > 20: raise SystemExit(1)\n")
    steps = [Step("a", cmd=(sys.executable, "-c", code, str(a), str(b))),
             Step("b", cmd=(sys.executable, "-c", code, str(b), str(a)))]
    results = Pipeline(steps, tmp_path / "R", jobs=2, echo=lambda s: None).run()
    assert {r.status for r in results.values()} == {"ran"}


def test_a_stale_output_is_removed_before_its_step_reruns_but_never_outside_the_roots(tmp_path):
    outside = tmp_path / "keep.txt"
    outside.write_text("mine")
    run_dir = tmp_path / "R" / "train" / "x"

    def fn(step, log, resume):
        assert not (run_dir / "old.txt").exists()
        run_dir.mkdir(parents=True, exist_ok=True)
        (run_dir / "new.txt").write_text(str(step.config))

    def steps(v):
        return [Step("t", outputs=(run_dir, outside), config=v, fn=fn)]

    Pipeline(steps(1), tmp_path / "R", echo=lambda s: None).run()
    (run_dir / "old.txt").write_text("stale")
    Pipeline(steps(2), tmp_path / "R", echo=lambda s: None).run()
    assert (run_dir / "new.txt").read_text() == "2" and outside.read_text() == "mine"


# ---------------------------------------------------------------------------------------------
# The paper's plan
# ---------------------------------------------------------------------------------------------

def test_the_plan_has_every_run_of_the_results_layout(tmp_path):
    settings = resolve_settings("quick", [])
    names = [r.name for r in run_plan(settings, (0, 1, 2))]
    assert names == ["selfplay_s0", "selfplay_s1", "selfplay_s2", "band_s0", "band_s1", "band_s2",
                     "azr_code_s0", "frozen_s0", "rlvr_s0", "sft_s0"]
    plan = build_plan("quick", settings, tmp_path / "R", (0, 1, 2), notebooks_dir=tmp_path / "none")
    steps = {s.name: s for s in plan.steps}
    assert {"eval/base/tinyworld", "eval/selfplay_s0/tinyworld", "rq2", "sparsity/selfplay_s0",
            "sparsity/rlvr_s0", "sparsity/sft_s0"} <= set(steps)
    train = steps["train/frozen_s0"].cmd
    assert "train" in train and "freeze_proposer=true" in train and "run_name=frozen_s0" in train
    assert "train-rlvr" in steps["train/rlvr_s0"].cmd
    # thread counts are not part of a fingerprint, so --jobs 2 reuses a --jobs 1 result
    assert "torch_threads" not in steps["train/selfplay_s0"].config
    parallel = {s.name: s for s in build_plan("quick", settings, tmp_path / "R", (0, 1, 2), jobs=2,
                                              notebooks_dir=tmp_path / "none").steps}
    assert parallel["train/selfplay_s0"].config == steps["train/selfplay_s0"].config
    assert "torch_threads=1" in parallel["train/selfplay_s0"].cmd


def test_the_base_is_a_local_directory_or_a_hub_download(tmp_path):
    def base_step(model):
        settings = resolve_settings("quick", [f"model={model}"])
        plan = build_plan("quick", settings, tmp_path / "R", (0,), notebooks_dir=tmp_path / "none")
        return plan, next(s for s in plan.steps if s.name == "base")

    plan, step = base_step("data/tiny_base")  # relative to the project root, from any directory
    assert step.cmd is None and (plan.base_dir / "config.json").resolve() == (ROOT / "data/tiny_base/config.json")
    plan, step = base_step("Qwen/Qwen2.5-Coder-3B")
    assert plan.base_dir.resolve() == tmp_path / "R" / "base_model"
    assert "download-base" in step.cmd and "Qwen/Qwen2.5-Coder-3B" in step.cmd
    plan, step = base_step(str(tmp_path / "missing"))  # not a hub id: a local path the base step checks
    assert step.cmd is None and plan.base_dir.resolve() == tmp_path / "missing"


def test_gpu_presets_evaluate_like_the_paper_and_settings_are_overridable():
    s = PRESETS["coder7b"]
    assert s.config == "coder7b" and s.eval_n == 256 and {"humaneval+", "mbpp+"} <= set(s.benchmarks)
    assert resolve_settings("quick", ["eval_n=4"]).eval_n == 4
    with pytest.raises(ValueError, match="unknown config key"):
        resolve_settings("quick", ["nope=1"])


def test_the_tinyworld_eval_subset_spreads_over_types_and_levels(tmp_path):
    settings = resolve_settings("quick", ["eval_per_type=5"])
    plan = build_plan("quick", settings, tmp_path / "R", (0,), notebooks_dir=tmp_path / "none")
    Pipeline(plan.steps, plan.results, only=["data/eval_tasks"], echo=lambda s: None).run()
    rows = [json.loads(line) for line in (tmp_path / "R" / "data" / "tinyworld_eval.jsonl").read_text().splitlines()]
    assert len(rows) == 15
    for row in rows:
        assert row["meta"]["id"].split("/")[0] == row["task_type"]
    assert len({r["meta"]["level"] for r in rows if r["task_type"] == "deduction"}) > 1


# ---------------------------------------------------------------------------------------------
# End to end: the quick preset from zero, notebooks included
# ---------------------------------------------------------------------------------------------

@pytest.mark.slow
@pytest.mark.skipif(not (ROOT / "data" / "tiny_base" / "config.json").is_file(),
                    reason="data/tiny_base is not committed in this clone (azr pretrain-tiny builds it)")
def test_quick_preset_end_to_end(tmp_path):
    import nbformat

    R, reports, figures = tmp_path / "R", tmp_path / "reports", tmp_path / "figures"
    cmd = [sys.executable, "-m", "azrlib.cli", "reproduce", "--preset", "quick", "--results", str(R),
           "--reports", str(reports), "--figures", str(figures), "--jobs", "2"]
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    proc = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=1500)
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-4000:]

    manifest = json.loads((R / "manifest.json").read_text())
    assert manifest["status"] == "complete" and manifest["preset"] == "quick" and manifest["seeds"] == [0, 1, 2]
    assert manifest["sandbox_isolation"] and manifest["versions"]["torch"]
    runs = [r["name"] for r in manifest["runs"]]
    assert set(runs) == {"selfplay_s0", "selfplay_s1", "selfplay_s2", "band_s0", "band_s1", "band_s2",
                         "azr_code_s0", "frozen_s0", "rlvr_s0", "sft_s0"}
    for run in runs:
        d = R / "train" / run
        files = ["config.yaml", "environment.json", "metrics.jsonl", "timings.jsonl"]
        if not run.startswith(("rlvr", "sft")):  # the baselines propose nothing
            files.append("tasks.jsonl")
        for name in files:
            assert (d / name).is_file(), d / name
        assert (d / "checkpoints" / "step_000003" / "model.safetensors").is_file()
    for model in ("base", "selfplay_s0"):
        rows = [json.loads(line) for line in (R / "eval" / model / "tinyworld.jsonl").read_text().splitlines()]
        per_problem = {}
        for row in rows:
            per_problem.setdefault(row["problem_id"], set()).add(row["sample_idx"])
        assert len(per_problem) == 12 and all(len(s) == 16 for s in per_problem.values())
        assert {p.split("/")[0] for p in per_problem} == {"deduction", "abduction", "induction"}
    assert (R / "rq2" / "questions.jsonl").is_file()
    for run in ("selfplay_s0", "rlvr_s0", "sft_s0"):
        sparsity = json.loads((R / "sparsity" / f"{run}.json").read_text())
        assert set(sparsity) == {"stored", "bf16", "fp32"} and 0 <= sparsity["fp32"]["sparsity"] <= 1
    assert all(not s["skipped"] for s in manifest["steps"].values())

    notebooks = sorted((ROOT / "notebooks").glob("*.ipynb"))
    assert notebooks, "no notebooks/*.ipynb to execute"
    assert sorted(n for n in manifest["steps"] if n.startswith("notebook/")) == sorted(
        f"notebook/{nb.stem}" for nb in notebooks)
    for nb in notebooks:
        executed = nbformat.read(reports / nb.name, as_version=4)
        errors = [o for c in executed.cells if c.cell_type == "code" for o in c.get("outputs", [])
                  if o.get("output_type") == "error"]
        assert not errors, f"{nb.name}: {errors[:1]}"
        assert list(figures.glob(f"{nb.stem}_*.png")), f"{nb.name} wrote no figure into {figures}"

    # a second run finds everything up to date
    again = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert again.returncode == 0, again.stdout[-4000:] + again.stderr[-4000:]
    steps = json.loads((R / "manifest.json").read_text())["steps"]
    assert all(s["skipped"] for s in steps.values()), [n for n, s in steps.items() if not s["skipped"]]
