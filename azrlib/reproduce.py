"""`azr reproduce`: the whole paper for one preset, as a small DAG of resumable steps.

    azr reproduce --preset tiny|quick|coder3b|coder7b [--results DIR] [--seeds 0,1,2] [--force]
                  [--only STEP ...] [--jobs N] [--dry-run] [--model PATH_OR_HUB_ID] [--set key=value ...]

Everything lands under one results directory `R` (default `runs/<preset>/`) in the layout of
`docs/results_layout.md`; the notebooks then run on it (papermill) into `reports/<preset>/` and
write their figures to `figures/<preset>/`.

Steps (names as `--only` takes them; a group name such as `train` selects all of its steps):

    base                   the base model: a local directory (tiny/quick: the committed
                           data/tiny_base), or a hub id downloaded once and linked as R/base_model
    data/eval_tasks        tiny world: the evaluation subset, `eval_per_type` tasks per type
                           spread over the levels (problem ids `<task_type>/<row in the benchmark>`)
    data/rlvr_tasks        tiny world: verified solver tasks for the RLVR/SFT baselines
    train/<run>            `azr train` / `train-rlvr` / `train-sft` with out_dir=R/train
                           run_name=<run> seed=<k> (runs: see `run_plan`)
    eval/<model>/<bench>   `azr eval` of base and selfplay_s<first seed> (final checkpoint)
    rq2                    RQ2 questions: `metrics.difficulty` sample_questions + evaluate_questions
    sparsity/<run>         `azr sparsity BASE FINAL --dtype all --json` for selfplay, rlvr, sft
    notebook/<name>        papermill of notebooks/<name>.ipynb (results_dir, preset, figures_dir)

A step declares its inputs (files, the resolved config or command, the fingerprints of the steps
it depends on) and its outputs. The fingerprint of the inputs is kept in a stamp file
(`R/.stamps/<step>.json`); a step whose outputs exist and whose fingerprint is unchanged is
skipped. A changed fingerprint removes the step's outputs and redoes it (and so, through the
fingerprint chain, everything downstream); `--force` redoes every selected step. A step that was
interrupted (stamp still `running` with the same fingerprint) is resumed: a training run with
`--resume`, an evaluation by `azr eval`'s own resume. Thread counts are not part of a fingerprint.

Each step's output goes to `R/logs/<step>.log`; the console shows one line per step start and
finish with seconds, and the total. A failing step stops the pipeline with a message naming the
step and its log; rerunning continues where it stopped. `R/manifest.json` records the preset,
seeds, base model, runs with their overrides and resolved config, per-step seconds, versions, the
sandbox isolation and the total time.

Per-preset settings (evaluation sizes, RQ2 sizes, seeds, ...) are the `PipelineSettings` presets
below; `--set key=value` overrides one, `--describe` lists them.

Jobs and threads on 2 cores (tiny preset, two 3-step self-play runs, validation off, on a shared
machine): 2 jobs x 1 thread 70.6 / 69.9 s; 1 job x 1 thread 131 / 140 s; 1 job x 2 threads 96 /
423 s (and 132 / 1100 s in an earlier, busier pair), with 25-170 % more CPU time than 1 thread:
the tiny model's matrices are too small for two intra-op threads, which also stall whenever
another process takes a core. So the CPU presets default to `jobs: 2` (each step 1 thread).
"""

from __future__ import annotations

import argparse
import dataclasses
import fnmatch
import hashlib
import importlib.metadata
import json
import os
import shlex
import shutil
import signal
import subprocess
import sys
import threading
import time
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, TextIO

from azrlib.config import ConfigError, config_to_dict, describe, load_config, option

PROJECT_ROOT = Path(__file__).resolve().parent.parent
TINYWORLD_BENCHMARK = "data/tinyworld/benchmark.jsonl"
TASK_TYPES = ("deduction", "abduction", "induction")


# ============================================================================================
# Settings, one frozen dataclass per preset
# ============================================================================================

@dataclass(frozen=True)
class PipelineSettings:
    """What `azr reproduce` runs for a preset (training sizes live in configs/<config>.yaml)."""

    config: str = option("tiny", "training preset: configs/<config>.yaml (or a YAML path)")
    model: str = option("", "base model: a local HF directory or a hub id (empty: the config's `model`)")
    seeds: tuple[int, ...] = option((0, 1, 2), "seeds of the multi-seed runs (selfplay, band); the first seeds the others")
    multi_seed_runs: tuple[str, ...] = option(("selfplay", "band"), "run kinds trained once per seed")
    single_seed_runs: tuple[str, ...] = option(("azr_code", "frozen", "rlvr", "sft"),
                                               "run kinds trained with the first seed only")
    train_overrides: tuple[str, ...] = option((), "extra key=value overrides for every training run")
    train_launcher: str = option("", "command that starts the trainer instead of `python -m azrlib.cli` "
                                     "(e.g. `torchrun --nproc-per-node 2 -m azrlib.cli`)")
    jobs: int = option(2, "steps run at the same time when --jobs is not given (2 cores: 2 jobs x 1 thread "
                          "beat 1 job x 2 threads, see the module docstring; GPU presets: 1)")
    threads: int = option(2, "torch threads per step when jobs is 1 (with jobs > 1 each job gets 1)")
    rlvr_tasks: int = option(300, "RLVR/SFT baselines: verified tiny-world tasks generated (0: use rlvr_tasks_file)")
    rlvr_tasks_file: str = option("", "RLVR/SFT task JSONL when rlvr_tasks is 0 (empty: skip the rlvr and sft runs)")
    benchmarks: tuple[str, ...] = option(("tinyworld",), "benchmarks evaluated (`azr eval --benchmark`)")
    eval_data: str = option("", "`azr eval --data` directory for non-tiny-world benchmarks (empty: $AZR_DATA_DIR, cache)")
    eval_per_type: int = option(20, "tiny world: evaluation tasks per task type, spread over the levels (0: all 300)")
    eval_limit: int = option(0, "other benchmarks: only the first N problems (0: all)")
    eval_n: int = option(16, "samples per problem (pass@k up to k = eval_n)")
    eval_temperature: float = option(0.6, "sampling temperature (pass@k convention of Yue et al.: 0.6)")
    eval_top_p: float = option(0.95, "nucleus mass (Yue et al.: 0.95)")
    eval_max_new_tokens: int = option(128, "generated tokens per sample")
    eval_prompt_style: str = option("plain", "azr | qwen-boxed | plain (plain on the tiny world = compact, its training format)")
    eval_engine: str = option("hf", "hf | vllm")
    eval_batch_size: int = option(16, "prompts per generation call")
    eval_device: str = option("cpu", "hf engine: torch device")
    rq2_questions: int = option(150, "RQ2: deduction questions sampled from the self-play run's tasks.jsonl")
    rq2_bin_size: int = option(5, "RQ2: training steps per bin (questions are balanced over bins)")
    rq2_m: int = option(8, "RQ2: samples per question and model")
    rq2_temperature: float = option(1.0, "RQ2: sampling temperature (the training temperature)")
    rq2_top_p: float = option(1.0, "RQ2: nucleus mass")
    rq2_max_new_tokens: int = option(128, "RQ2: generated tokens per sample")
    rq2_prompt_style: str = option("compact", "RQ2: solver prompt style (the run's prompt_style)")
    rq2_engine: str = option("hf", "RQ2 sampler: hf | vllm")
    notebooks: bool = option(True, "execute every notebooks/*.ipynb with papermill at the end")
    notebook_timeout_s: int = option(1800, "papermill: longest a notebook cell may run, seconds")


PRESETS: dict[str, PipelineSettings] = {
    # the CPU reference: 2 cores, <= 60 min from zero
    "tiny": PipelineSettings(config="tiny", eval_per_type=100, eval_max_new_tokens=256, rq2_max_new_tokens=256),
    # CI / notebook development: every step, a few minutes on 2 cores
    "quick": PipelineSettings(
        config="quick", threads=1, rlvr_tasks=60,
        eval_per_type=4, eval_n=16, eval_max_new_tokens=64, eval_batch_size=4,
        rq2_questions=12, rq2_bin_size=1, rq2_m=4, rq2_max_new_tokens=64,
        notebook_timeout_s=600,
    ),
    # AZR on Qwen2.5-Coder with vLLM; evaluation as the paper's pass@k (n = 256)
    "coder3b": PipelineSettings(
        config="coder3b", seeds=(0, 1, 2), jobs=1, threads=8, rlvr_tasks=0,
        benchmarks=("humaneval+", "mbpp+", "aime24"), eval_n=256, eval_temperature=0.6, eval_top_p=0.95,
        eval_max_new_tokens=4096, eval_prompt_style="azr", eval_engine="vllm", eval_batch_size=64,
        eval_device="cuda",
        rq2_questions=800, rq2_bin_size=25, rq2_m=8, rq2_max_new_tokens=8096, rq2_prompt_style="azr",
        rq2_engine="vllm", notebook_timeout_s=3600,
    ),
}
PRESETS["coder7b"] = dataclasses.replace(PRESETS["coder3b"], config="coder7b")


# ============================================================================================
# The DAG: steps, fingerprints, stamps, scheduling
# ============================================================================================

class StepFailed(RuntimeError):
    """A step exited with an error; `step` and `log` name it."""

    def __init__(self, step: str, log: Path | None, detail: str = ""):
        self.step, self.log, self.detail = step, log, detail
        where = f"; its log: {log}" if log else ""
        super().__init__(f"step {step} failed{': ' + detail if detail else ''}{where}")


@dataclass
class Step:
    """One node. `cmd` runs as a subprocess (output to the step's log, or stdout to `stdout`);
    `fn(step, log, resume)` runs in-process. `config` (JSON-able) and the content of `inputs`
    (files or directories) and the fingerprints of `deps` make the fingerprint."""

    name: str
    outputs: tuple[Path, ...] = ()
    inputs: tuple[Path, ...] = ()
    deps: tuple[str, ...] = ()
    config: Any = None
    cmd: tuple[str, ...] | None = None
    fn: Callable[["Step", TextIO, bool], None] | None = None
    stdout: Path | None = None
    resume_args: tuple[str, ...] = ()
    env: dict[str, str] = field(default_factory=dict)


@dataclass
class StepResult:
    name: str
    status: str  # ran | resumed | skipped | failed | not_run
    seconds: float = 0.0
    recorded_seconds: float | None = None
    log: str | None = None


_HASH_WHOLE_BYTES = 64 << 20  # larger files are fingerprinted by size and mtime


class _Hasher:
    def __init__(self):
        self._cache: dict[tuple, str] = {}

    def file(self, path: Path) -> str:
        st = path.stat()
        key = (str(path), st.st_size, st.st_mtime_ns)
        if key not in self._cache:
            if st.st_size > _HASH_WHOLE_BYTES:
                self._cache[key] = f"size={st.st_size},mtime={st.st_mtime_ns}"
            else:
                h = hashlib.sha256()
                with open(path, "rb") as f:
                    for block in iter(lambda: f.read(1 << 20), b""):
                        h.update(block)
                self._cache[key] = h.hexdigest()
        return self._cache[key]

    def path(self, path: Path) -> list:
        if path.is_file():
            return [self.file(path)]
        if path.is_dir():
            out = []
            for p in sorted(path.rglob("*")):
                rel = p.relative_to(path)
                if any(part.startswith(".") for part in rel.parts) or not p.is_file():
                    continue  # temporary and hidden files (.tmp-step_..., .stamps)
                out.append([str(rel), self.file(p)])
            return out
        return ["missing"]


def _safe_name(name: str) -> str:
    return name.replace("/", "__")


class Pipeline:
    """Runs `steps` (a DAG, listed in any order) in dependency order, `jobs` at a time.

    `roots` are the directories whose contents a step may delete (its outputs when they are
    stale); outputs outside them are never removed."""

    def __init__(self, steps: list[Step], state_dir: Path, *, jobs: int = 1, force: bool = False,
                 only: list[str] | None = None, dry_run: bool = False, roots: tuple[Path, ...] = (),
                 echo: Callable[[str], None] = print, cwd: Path | None = None,
                 on_step_done: Callable[[str], None] | None = None):
        self.steps = {s.name: s for s in steps}
        if len(self.steps) != len(steps):
            raise ValueError("step names must be unique")
        for s in steps:
            for d in s.deps:
                if d not in self.steps:
                    raise ValueError(f"step {s.name} depends on unknown step {d}")
        self.order = self._topological(steps)
        self.state_dir = Path(state_dir)
        self.stamp_dir = self.state_dir / ".stamps"
        self.log_dir = self.state_dir / "logs"
        self.jobs = max(1, jobs)
        self.force = force
        self.dry_run = dry_run
        self.roots = tuple(Path(r).resolve() for r in (roots or (self.state_dir,)))
        self.echo = echo
        self.cwd = cwd
        self.on_step_done = on_step_done
        self._only: set[str] | None = None
        self.selected = self._select(only)
        self.forced = (self._only if self._only is not None else set(self.selected)) if force else set()
        self.fingerprints: dict[str, str] = {}
        self.results: dict[str, StepResult] = {}
        self._hasher = _Hasher()
        self._lock = threading.Lock()
        self._procs: dict[str, subprocess.Popen] = {}
        self._stopping = False

    # ------------------------------------------------------------------ graph

    @staticmethod
    def _topological(steps: list[Step]) -> list[str]:
        by_name = {s.name: s for s in steps}
        order: list[str] = []
        state: dict[str, int] = {}

        def visit(name: str, path: tuple[str, ...]) -> None:
            if state.get(name) == 2:
                return
            if state.get(name) == 1:
                raise ValueError(f"dependency cycle: {' -> '.join(path + (name,))}")
            state[name] = 1
            for d in by_name[name].deps:
                visit(d, path + (name,))
            state[name] = 2
            order.append(name)

        for s in steps:
            visit(s.name, ())
        return order

    def _select(self, only: list[str] | None) -> list[str]:
        if not only:
            return list(self.order)
        chosen: set[str] = set()
        for pattern in only:
            hits = [n for n in self.order
                    if n == pattern or n.startswith(pattern.rstrip("/") + "/") or fnmatch.fnmatch(n, pattern)]
            if not hits:
                raise ValueError(f"--only {pattern!r} matches no step; steps: {', '.join(self.order)}")
            chosen.update(hits)
        # the selected steps and what they need (skipped when up to date)
        needed: set[str] = set()
        stack = list(chosen)
        while stack:
            n = stack.pop()
            if n in needed:
                continue
            needed.add(n)
            stack.extend(self.steps[n].deps)
        self._only = chosen
        return [n for n in self.order if n in needed]

    # ------------------------------------------------------------------ stamps

    def stamp_path(self, name: str) -> Path:
        return self.stamp_dir / f"{_safe_name(name)}.json"

    def log_path(self, name: str) -> Path:
        return self.log_dir / f"{_safe_name(name)}.log"

    def read_stamp(self, name: str) -> dict | None:
        try:
            return json.loads(self.stamp_path(name).read_text())
        except (OSError, json.JSONDecodeError):
            return None

    def _write_stamp(self, name: str, record: dict) -> None:
        path = self.stamp_path(name)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}-{threading.get_ident()}")
        tmp.write_text(json.dumps(record, indent=1))
        os.replace(tmp, path)

    def fingerprint(self, name: str) -> str:
        step = self.steps[name]
        payload = {
            "name": name,
            "config": step.config,
            "inputs": [[str(p), self._hasher.path(Path(p))] for p in step.inputs],
            "deps": [[d, self.fingerprints.get(d) or self._stamp_fingerprint(d)] for d in step.deps],
        }
        return hashlib.sha256(json.dumps(payload, sort_keys=True, default=str).encode()).hexdigest()

    def _stamp_fingerprint(self, name: str) -> str | None:
        stamp = self.read_stamp(name)
        return stamp.get("fingerprint") if stamp else None

    def decide(self, name: str) -> tuple[str, str]:
        """('skip' | 'run' | 'resume', fingerprint)."""
        fp = self.fingerprint(name)
        stamp = self.read_stamp(name)
        step = self.steps[name]
        if name in self.forced:
            return "run", fp
        if stamp and stamp.get("fingerprint") == fp:
            if stamp.get("state") == "done" and all(Path(o).exists() for o in step.outputs):
                return "skip", fp
            if stamp.get("state") == "running":
                return "resume", fp
        return "run", fp

    # ------------------------------------------------------------------ running

    def _remove_outputs(self, step: Step) -> None:
        for out in step.outputs:
            p = Path(out).resolve()
            if not any(p == r or r in p.parents for r in self.roots):
                continue  # never delete outside the results / reports directories
            if p.is_dir() and not p.is_symlink():
                shutil.rmtree(p)
            elif p.exists() or p.is_symlink():
                p.unlink()

    def _execute(self, name: str, resume: bool, fp: str) -> float:
        step = self.steps[name]
        log_path = self.log_path(name)
        log_path.parent.mkdir(parents=True, exist_ok=True)
        if not resume:
            self._remove_outputs(step)
        outs = [Path(o) for o in step.outputs]
        for out in outs:  # the parent of each top-level output (not of one inside another output)
            if not any(other != out and other in out.parents for other in outs):
                out.parent.mkdir(parents=True, exist_ok=True)
        self._write_stamp(name, {"step": name, "fingerprint": fp, "state": "running",
                                 "started": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
                                 "command": list(step.cmd) if step.cmd else None})
        t0 = time.perf_counter()
        with open(log_path, "a") as log:
            log.write(f"==== {name} {'resumed' if resume else 'started'} {time.strftime('%Y-%m-%d %H:%M:%S')}\n")
            if step.cmd:
                cmd = list(step.cmd) + (list(step.resume_args) if resume else [])
                log.write("$ " + shlex.join(cmd) + "\n")
                log.flush()
                self._run_command(name, cmd, log, step)
            elif step.fn is not None:
                try:
                    step.fn(step, log, resume)
                except Exception as e:  # noqa: BLE001 - reported as the step's failure
                    import traceback
                    traceback.print_exc(file=log)
                    raise StepFailed(name, log_path, f"{type(e).__name__}: {e}") from e
        seconds = time.perf_counter() - t0
        missing = [str(o) for o in step.outputs if not Path(o).exists()]
        if missing:
            raise StepFailed(name, log_path, f"finished but did not write {', '.join(missing)}")
        self._write_stamp(name, {"step": name, "fingerprint": fp, "state": "done", "seconds": round(seconds, 2),
                                 "finished": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
                                 "command": list(step.cmd) if step.cmd else None})
        return seconds

    def _run_command(self, name: str, cmd: list[str], log: TextIO, step: Step) -> None:
        env = dict(os.environ, PYTHONUNBUFFERED="1", **step.env)
        out_tmp = None
        stdout: Any = log
        if step.stdout is not None:
            out_tmp = Path(step.stdout).with_name(f".{Path(step.stdout).name}.tmp")
            stdout = open(out_tmp, "w")
        try:
            with self._lock:
                if self._stopping:
                    raise StepFailed(name, self.log_path(name), "not started: the pipeline is stopping")
                proc = subprocess.Popen(cmd, stdout=stdout, stderr=log, stdin=subprocess.DEVNULL, env=env,
                                        cwd=self.cwd, start_new_session=True)
                self._procs[name] = proc
            rc = proc.wait()
        finally:
            with self._lock:
                self._procs.pop(name, None)
            if out_tmp is not None:
                stdout.close()
        if rc != 0:
            if out_tmp is not None:
                out_tmp.unlink(missing_ok=True)
            raise StepFailed(name, self.log_path(name), f"exit status {rc}")
        if out_tmp is not None:
            os.replace(out_tmp, step.stdout)

    def _terminate_all(self) -> None:
        with self._lock:
            self._stopping = True
            procs = list(self._procs.values())
        for proc in procs:
            try:
                os.killpg(proc.pid, signal.SIGTERM)
            except (ProcessLookupError, PermissionError):
                pass
        deadline = time.time() + 20
        for proc in procs:
            try:
                proc.wait(timeout=max(0.1, deadline - time.time()))
            except subprocess.TimeoutExpired:
                try:
                    os.killpg(proc.pid, signal.SIGKILL)
                except (ProcessLookupError, PermissionError):
                    pass

    def plan(self) -> list[tuple[str, str]]:
        """(step, 'skip' | 'run' | 'resume' | 'run (after its inputs)') without running anything."""
        out = []
        will_run: set[str] = set()
        for name in self.selected:
            if any(d in will_run for d in self.steps[name].deps):
                action = "run (inputs change first)"
            else:
                action, fp = self.decide(name)
                self.fingerprints[name] = fp
            if action != "skip":
                will_run.add(name)
            out.append((name, action))
        return out

    def run(self) -> dict[str, StepResult]:
        """Run the selected steps; raises StepFailed (after stopping the others) on a failure."""
        if self.dry_run:
            for name, action in self.plan():
                step = self.steps[name]
                what = shlex.join(step.cmd) if step.cmd else (step.fn.__name__ if step.fn else "")
                self.echo(f"  {action:>26s}  {name}   {what}")
            return {}
        total = len(self.selected)
        index = {n: i + 1 for i, n in enumerate(self.selected)}
        pending = list(self.selected)
        done: set[str] = set()
        running: dict[Future, tuple[str, float, str]] = {}
        failure: StepFailed | None = None
        width = len(str(total))

        def tag(n: str) -> str:
            return f"[{index[n]:>{width}}/{total}] {n}"

        pool = ThreadPoolExecutor(max_workers=self.jobs)
        try:
            while pending or running:
                if failure is None:
                    launched = True
                    while launched and len(running) < self.jobs:
                        launched = False
                        for name in list(pending):
                            if not all(d in done for d in self.steps[name].deps):
                                continue
                            pending.remove(name)
                            action, fp = self.decide(name)
                            self.fingerprints[name] = fp
                            stamp = self.read_stamp(name)
                            if action == "skip":
                                done.add(name)
                                self.results[name] = StepResult(name, "skipped", 0.0,
                                                                (stamp or {}).get("seconds"), str(self.log_path(name)))
                                self.echo(f"{tag(name)}: up to date, skipped")
                                if self.on_step_done is not None:
                                    self.on_step_done(name)
                                launched = True
                                continue
                            self.echo(f"{tag(name)}: {'resuming' if action == 'resume' else 'started'}")
                            fut = pool.submit(self._execute, name, action == "resume", fp)
                            running[fut] = (name, time.perf_counter(), action)
                            launched = True
                            break
                if not running:
                    if pending and failure is None:
                        raise RuntimeError(f"no runnable step among {pending}")  # unreachable for a DAG
                    break
                finished, _ = wait(list(running), return_when=FIRST_COMPLETED)
                for fut in finished:
                    name, t0, action = running.pop(fut)
                    try:
                        seconds = fut.result()
                    except StepFailed as e:
                        self.results[name] = StepResult(name, "failed", time.perf_counter() - t0, None,
                                                        str(self.log_path(name)))
                        if failure is None:
                            failure = e
                            self.echo(f"{tag(name)}: FAILED after {time.perf_counter() - t0:.1f} s "
                                      f"({e.detail}); log: {e.log}")
                            _echo_tail(self.echo, e.log)
                            self._terminate_all()
                        continue
                    except BaseException as e:  # noqa: BLE001
                        failure = StepFailed(name, self.log_path(name), f"{type(e).__name__}: {e}")
                        self.results[name] = StepResult(name, "failed", time.perf_counter() - t0)
                        self._terminate_all()
                        continue
                    done.add(name)
                    self.results[name] = StepResult(name, "resumed" if action == "resume" else "ran", seconds,
                                                    round(seconds, 2), str(self.log_path(name)))
                    self.echo(f"{tag(name)}: done in {seconds:.1f} s")
                    if self.on_step_done is not None:
                        self.on_step_done(name)
                if failure is not None:
                    pending = []
        except KeyboardInterrupt:
            self._terminate_all()
            raise
        finally:
            pool.shutdown(wait=True)
        for name in self.selected:
            self.results.setdefault(name, StepResult(name, "not_run"))
        if failure is not None:
            raise failure
        return self.results


def _echo_tail(echo: Callable[[str], None], log: Path | None, lines: int = 15) -> None:
    if not log or not Path(log).is_file():
        return
    text = Path(log).read_text(errors="replace").replace("\r", "\n").splitlines()
    tail = [t for t in text if t.strip()][-lines:]
    for t in tail:
        echo(f"    | {t}")


# ============================================================================================
# The paper's steps for a preset
# ============================================================================================

@dataclass(frozen=True)
class RunSpec:
    name: str
    command: str  # train | train-rlvr | train-sft
    seed: int
    overrides: tuple[str, ...]


def run_plan(settings: PipelineSettings, seeds: tuple[int, ...]) -> list[RunSpec]:
    """The training runs of the results layout: multi-seed kinds once per seed, the others with
    the first seed."""
    kinds = {
        "selfplay": ("train", ("proposer_reward=azr",)),
        "band": ("train", ("proposer_reward=band",)),
        "azr_code": ("train", ("proposer_reward=azr_code",)),
        "frozen": ("train", ("proposer_reward=azr", "freeze_proposer=true")),
        "rlvr": ("train-rlvr", ()),
        "sft": ("train-sft", ()),
    }
    for kind in settings.multi_seed_runs + settings.single_seed_runs:
        if kind not in kinds:
            raise ConfigError(f"unknown run kind {kind!r}; known: {', '.join(kinds)}")
    runs = []
    for kind in settings.multi_seed_runs:
        for k in seeds:
            command, over = kinds[kind]
            runs.append(RunSpec(f"{kind}_s{k}", command, k, over))
    for kind in settings.single_seed_runs:
        if kind in settings.multi_seed_runs:
            continue
        command, over = kinds[kind]
        runs.append(RunSpec(f"{kind}_s{seeds[0]}", command, seeds[0], over))
    return runs


def _rel(p: Path | str) -> str:
    """A path as short as possible: relative to the working directory when under it."""
    p = Path(p)
    try:
        return os.path.relpath(p.resolve(), Path.cwd()) if p.resolve().is_relative_to(Path.cwd().resolve()) else str(p.resolve())
    except ValueError:
        return str(p.resolve())


@dataclass
class Plan:
    steps: list[Step]
    runs: list[dict]
    base_model: str
    base_dir: Path
    results: Path
    reports: Path
    figures: Path
    notebooks: list[Path]


def build_plan(preset: str, settings: PipelineSettings, results: Path, seeds: tuple[int, ...], *, jobs: int = 1,
               reports: Path | None = None, figures: Path | None = None,
               notebooks_dir: Path | None = None) -> Plan:
    from azrlib.trainer.config import TrainConfig

    python = sys.executable
    R = Path(_rel(results))
    reports = Path(_rel(reports if reports is not None else PROJECT_ROOT / "reports" / preset))
    figures = Path(_rel(figures if figures is not None else PROJECT_ROOT / "figures" / preset))
    notebooks_dir = Path(notebooks_dir if notebooks_dir is not None else PROJECT_ROOT / "notebooks")
    threads = settings.threads if jobs <= 1 else 1
    steps: list[Step] = []

    # ---- base model
    base_cfg = load_config(TrainConfig, settings.config)
    model = settings.model or base_cfg.model
    from azrlib.models import existing_local_path, is_hub_id
    local = existing_local_path(model)
    if local is not None or not is_hub_id(model):  # a missing directory: the base step says so
        base_dir = Path(_rel(local if local is not None else Path(model)))
        steps.append(Step("base", outputs=(base_dir / "config.json",), config={"model": str(base_dir)},
                          fn=_check_base_fn))
    else:  # a hub id: download once (needs the network), link as R/base_model
        base_dir = R / "base_model"
        steps.append(Step("base", outputs=(base_dir,), config={"model": model},
                          cmd=(python, "-m", "azrlib.reproduce", "download-base", model, str(base_dir))))

    # ---- task files
    tinyworld = "tinyworld" in settings.benchmarks
    if tinyworld:
        subset = R / "data" / "tinyworld_eval.jsonl"
        bench_file = Path(_rel(PROJECT_ROOT / TINYWORLD_BENCHMARK))
        steps.append(Step("data/eval_tasks", outputs=(subset,), inputs=(bench_file,),
                          config={"per_type": settings.eval_per_type}, fn=_eval_subset_fn(bench_file, subset,
                                                                                            settings.eval_per_type)))
    runs = run_plan(settings, seeds)
    rlvr_file: Path | None = None
    if any(r.command != "train" for r in runs):
        if settings.rlvr_tasks > 0:
            rlvr_file = R / "data" / "rlvr_tasks.jsonl"
            steps.append(Step("data/rlvr_tasks", outputs=(rlvr_file,), config={"n": settings.rlvr_tasks},
                              cmd=(python, "-m", "azrlib.reproduce", "rlvr-tasks", str(settings.rlvr_tasks),
                                   str(rlvr_file))))
        elif settings.rlvr_tasks_file:
            rlvr_file = Path(settings.rlvr_tasks_file)
        else:
            print(f"note: preset {preset}: no rlvr_tasks_file set, so the rlvr and sft runs are left out "
                  "(--set rlvr_tasks_file=PATH adds them)", file=sys.stderr)
            runs = [r for r in runs if r.command == "train"]

    # ---- training runs
    launcher = shlex.split(settings.train_launcher) if settings.train_launcher else [python, "-m", "azrlib.cli"]
    run_records = []
    finals: dict[str, Path] = {}
    for spec in runs:
        overrides = [f"out_dir={R / 'train'}", f"run_name={spec.name}", f"seed={spec.seed}", f"model={base_dir}",
                     *spec.overrides, *settings.train_overrides]
        if spec.command != "train":
            overrides.append(f"rlvr_tasks={rlvr_file}")
        cfg = load_config(TrainConfig, settings.config, overrides)  # fails early with the key's name
        resolved = config_to_dict(cfg)
        fingerprinted = {k: v for k, v in resolved.items() if k != "torch_threads"}
        final = R / "train" / spec.name / "checkpoints" / f"step_{cfg.steps:06d}"
        finals[spec.name] = final
        inputs = [base_dir] + [Path(p) for p in (cfg.val_tasks, cfg.seed_tasks) if p and Path(p).exists()]
        deps = ["base"]
        if spec.command != "train":
            inputs.append(rlvr_file)
            if settings.rlvr_tasks > 0:
                deps.append("data/rlvr_tasks")
        cmd = (*launcher, spec.command, "--config", settings.config, *overrides, f"torch_threads={threads}")
        steps.append(Step(f"train/{spec.name}", outputs=(R / "train" / spec.name, final / "config.json"),
                          inputs=tuple(inputs), deps=tuple(deps), config=fingerprinted, cmd=cmd,
                          resume_args=("--resume",)))
        run_records.append({"name": spec.name, "command": f"azr {spec.command}", "seed": spec.seed,
                            "config": settings.config, "overrides": overrides, "final_checkpoint": str(final),
                            "resolved_config": resolved})

    # ---- evaluations
    first = f"selfplay_s{seeds[0]}"
    eval_models: dict[str, tuple[Path, list[str]]] = {"base": (base_dir, ["base"])}
    if first in finals:
        eval_models[first] = (finals[first], [f"train/{first}"])
    for model_name, (model_dir, deps) in eval_models.items():
        for bench in settings.benchmarks:
            out = R / "eval" / model_name / f"{bench}.jsonl"
            args = ["--benchmark", bench, "--n", str(settings.eval_n), "--temperature", str(settings.eval_temperature),
                    "--top-p", str(settings.eval_top_p), "--max-new-tokens", str(settings.eval_max_new_tokens),
                    "--prompt-style", settings.eval_prompt_style, "--engine", settings.eval_engine,
                    "--batch-size", str(settings.eval_batch_size), "--seed", "0"]
            step_deps = list(deps)
            inputs = [model_dir]
            if bench == "tinyworld":
                args += ["--data", str(R / "data" / "tinyworld_eval.jsonl")]
                step_deps.append("data/eval_tasks")
                inputs.append(R / "data" / "tinyworld_eval.jsonl")
            else:
                if settings.eval_data:
                    args += ["--data", settings.eval_data]
                if settings.eval_limit:
                    args += ["--limit", str(settings.eval_limit)]
            perf = ["--quiet"]
            if settings.eval_engine == "hf":
                perf += ["--device", settings.eval_device, "--num-threads", str(threads)]
            cmd = (python, "-m", "azrlib.cli", "eval", str(model_dir), *args, *perf, "--out", str(out))
            meta = out.with_name(out.name + ".meta.json")  # azr eval's resume record
            steps.append(Step(f"eval/{model_name}/{bench}", outputs=(out, meta), inputs=tuple(inputs), deps=tuple(step_deps),
                              config={"args": args, "model": str(model_dir)}, cmd=cmd))

    # ---- RQ2
    if first in finals:
        rq2_out = R / "rq2" / "questions.jsonl"
        rq2_cfg = {"questions": settings.rq2_questions, "bin_size": settings.rq2_bin_size, "m": settings.rq2_m,
                   "temperature": settings.rq2_temperature, "top_p": settings.rq2_top_p,
                   "max_new_tokens": settings.rq2_max_new_tokens, "prompt_style": settings.rq2_prompt_style,
                   "engine": settings.rq2_engine, "seed": 0,
                   "models": {"base": str(base_dir), first: str(finals[first])},
                   "tasks": str(R / "train" / first / "tasks.jsonl")}
        cmd = (python, "-m", "azrlib.reproduce", "rq2", json.dumps(rq2_cfg), str(rq2_out), "--threads", str(threads),
               "--device", settings.eval_device)
        steps.append(Step("rq2", outputs=(rq2_out,), inputs=(finals[first], base_dir),
                          deps=("base", f"train/{first}"), config=rq2_cfg, cmd=cmd))

    # ---- sparsity
    for kind in ("selfplay", "rlvr", "sft"):
        name = f"{kind}_s{seeds[0]}"
        if name not in finals:
            continue
        out = R / "sparsity" / f"{name}.json"
        cmd = (python, "-m", "azrlib.cli", "sparsity", str(base_dir), str(finals[name]), "--dtype", "all", "--json",
               "--workers", str(threads))
        steps.append(Step(f"sparsity/{name}", outputs=(out,), inputs=(base_dir, finals[name]),
                          deps=("base", f"train/{name}"), config={"cmd": "sparsity --dtype all"}, cmd=cmd, stdout=out))

    # ---- notebooks
    notebooks = sorted(notebooks_dir.glob("*.ipynb")) if settings.notebooks and notebooks_dir.is_dir() else []
    data_steps = [s.name for s in steps]
    report_code = PROJECT_ROOT / "azrlib" / "report"
    runner_knows = _notebook_runner_names()
    for nb in notebooks:
        out = reports / nb.name
        params = {"results_dir": str(R.resolve()), "preset": preset, "figures_dir": str(figures.resolve())}
        if nb.stem in runner_knows and nb.parent.resolve() == (PROJECT_ROOT / "notebooks").resolve():
            cmd = [python, "-m", "azrlib.report.execute_notebooks", "--results-dir", params["results_dir"],
                   "--preset", preset, "--figures-dir", params["figures_dir"], "--out-dir", str(reports.resolve()),
                   "--only", nb.stem, "--timeout", str(settings.notebook_timeout_s)]
        else:
            cmd = [python, "-m", "papermill", str(nb), str(out), "--kernel", "python3", "--cwd", str(nb.parent),
                   "--no-progress-bar", "--log-output", "--execution-timeout", str(settings.notebook_timeout_s)]
            for k, v in params.items():
                cmd += ["-p", k, v]
        steps.append(Step(f"notebook/{nb.stem}", outputs=(out,), inputs=(nb, report_code), deps=tuple(data_steps),
                          config={"params": params}, cmd=tuple(cmd), env={"MPLBACKEND": "Agg", "TQDM_DISABLE": "1"}))
    return Plan(steps, run_records, model, base_dir, R, reports, figures, notebooks)


def _notebook_runner_names() -> tuple[str, ...]:
    """The notebooks `azrlib.report.execute_notebooks` runs (it strips volatile metadata and runs
    with cwd notebooks/, as the committed notebooks are refreshed); read from its source, since
    importing azrlib.report pulls in pandas (seconds on a busy machine)."""
    import ast

    source = PROJECT_ROOT / "azrlib" / "report" / "execute_notebooks.py"
    try:
        tree = ast.parse(source.read_text())
    except (OSError, SyntaxError):
        return ()
    for node in tree.body:
        if (isinstance(node, ast.Assign) and any(isinstance(t, ast.Name) and t.id == "NOTEBOOKS" for t in node.targets)):
            try:
                return tuple(ast.literal_eval(node.value))
            except ValueError:
                return ()
    return ()


def _check_base_fn(step: Step, log: TextIO, resume: bool) -> None:
    model_dir = Path(step.config["model"])
    if not (model_dir / "config.json").is_file():
        raise FileNotFoundError(f"base model {model_dir} has no config.json (tiny: `azr pretrain-tiny` rebuilds "
                                "data/tiny_base; GPU presets: --model PATH_OR_HUB_ID)")
    weights = sorted(p.name for p in model_dir.glob("*.safetensors"))
    if not weights:
        raise FileNotFoundError(f"base model {model_dir} has no *.safetensors weights")
    log.write(f"base model {model_dir}: {', '.join(weights)}\n")


def _eval_subset_fn(bench_file: Path, out: Path, per_type: int):
    def write_eval_subset(step: Step, log: TextIO, resume: bool) -> None:
        rows = [json.loads(line) for line in bench_file.read_text().splitlines() if line.strip()]
        by_type: dict[str, list[tuple[int, dict]]] = {}
        for i, row in enumerate(rows):
            by_type.setdefault(row["task_type"], []).append((i, row))
        chosen = []
        for t in TASK_TYPES:
            group = by_type.get(t, [])
            if per_type and per_type < len(group):  # evenly spaced: the file is sorted by level
                group = [group[(j * len(group)) // per_type] for j in range(per_type)]
            for i, row in group:
                row = dict(row, meta=dict(row.get("meta") or {}, id=f"{t}/{i}"))
                chosen.append(row)
        tmp = out.with_name(f".{out.name}.tmp")
        tmp.write_text("".join(json.dumps(r, sort_keys=True) + "\n" for r in chosen))
        os.replace(tmp, out)
        log.write(f"{len(chosen)} tasks ({per_type or 'all'} per type) from {bench_file} -> {out}\n")
    return write_eval_subset


# ============================================================================================
# Manifest and the command line
# ============================================================================================

def _versions() -> dict:
    out = {"python": sys.version.split()[0]}
    for pkg in ("azrlib", "torch", "transformers", "tokenizers", "safetensors", "numpy", "scipy", "papermill",
                "matplotlib", "pandas", "vllm"):
        try:
            out[pkg] = importlib.metadata.version(pkg)
        except importlib.metadata.PackageNotFoundError:
            out[pkg] = None
    return out


def _sandbox_isolation(plan: Plan) -> dict | None:
    for run in plan.runs:
        env = plan.results / "train" / run["name"] / "environment.json"
        if env.is_file():
            try:
                return json.loads(env.read_text()).get("sandbox_isolation")
            except json.JSONDecodeError:
                continue
    return None


def write_manifest(plan: Plan, preset: str, settings: PipelineSettings, seeds, pipeline: Pipeline, total: float,
                   status: str, jobs: int) -> Path:
    steps = {}
    for name in pipeline.order:  # every step of the plan; ones this invocation did not touch from their stamps
        r = pipeline.results.get(name)
        if r is None:
            stamp = pipeline.read_stamp(name) or {}
            if name not in pipeline.selected:
                r = StepResult(name, "not_selected" if stamp.get("state") != "done" else "skipped", 0.0,
                               stamp.get("seconds"))
            else:
                r = StepResult(name, "pending" if status == "running" else "not_run", 0.0, stamp.get("seconds"))
            r.log = str(pipeline.log_path(name))
        steps[name] = {"seconds": round(r.seconds, 2), "skipped": r.status == "skipped", "status": r.status,
                       "recorded_seconds": r.recorded_seconds, "log": r.log}
    manifest = {
        "preset": preset,
        "status": status,
        "seeds": list(seeds),
        "base_model": plan.base_model,
        "base_model_path": str(plan.base_dir),
        "config": settings.config,
        "settings": config_to_dict(settings),
        "runs": plan.runs,
        "evaluations": sorted(str(o) for s in plan.steps if s.name.startswith("eval/") for o in s.outputs),
        "notebooks": [str(n) for n in plan.notebooks],
        "reports_dir": str(plan.reports),
        "figures_dir": str(plan.figures),
        "steps": steps,
        "jobs": jobs,
        "total_seconds": round(total, 2),
        "versions": _versions(),
        "sandbox_isolation": _sandbox_isolation(plan),
        "argv": sys.argv,
        "finished": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }
    path = plan.results / "manifest.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(".manifest.json.tmp")
    tmp.write_text(json.dumps(manifest, indent=1))
    os.replace(tmp, path)
    return path


def configure_parser(p: argparse.ArgumentParser) -> None:
    p.add_argument("--preset", default="tiny", help=f"one of: {', '.join(PRESETS)} (default tiny)")
    p.add_argument("--results", default=None, help="results directory R (default runs/<preset>)")
    p.add_argument("--reports", default=None,
                   help="executed notebooks go here (default reports/<preset>; with --results: R/reports)")
    p.add_argument("--figures", default=None,
                   help="the notebooks' figures_dir (default figures/<preset>; with --results: R/figures)")
    p.add_argument("--seeds", default=None, help="comma-separated seeds of the multi-seed runs (default: the preset's, 0,1,2)")
    p.add_argument("--model", default=None, help="base model directory or hub id (default: the training preset's)")
    p.add_argument("--force", action="store_true", help="redo every selected step, even when up to date")
    p.add_argument("--only", nargs="+", default=None, metavar="STEP",
                   help="run only these steps (names, groups such as train or eval, or glob patterns) and "
                        "what they need")
    p.add_argument("--jobs", type=int, default=None,
                   help="steps run at the same time, each with 1 torch thread when > 1 (default: the preset's "
                        "`jobs` setting: 2 for tiny/quick, 1 for the GPU presets)")
    p.add_argument("--dry-run", action="store_true", help="show each step and whether it would run, run nothing")
    p.add_argument("--set", dest="settings", action="append", default=[], metavar="KEY=VALUE",
                   help="override a pipeline setting (see --describe), e.g. --set eval_n=8")
    p.add_argument("--describe", action="store_true", help="list the pipeline settings with their help and exit")


def resolve_settings(preset: str, overrides: list[str], model: str | None = None) -> PipelineSettings:
    if preset not in PRESETS:
        raise ConfigError(f"unknown preset {preset!r}; choose from: {', '.join(PRESETS)}")
    base = config_to_dict(PRESETS[preset])
    settings = load_config(PipelineSettings, base, overrides)
    if model:
        settings = dataclasses.replace(settings, model=model)
    return settings


def run_cli(args: argparse.Namespace) -> int:
    if args.describe:
        print(describe(PipelineSettings))
        return 0
    t_start = time.perf_counter()
    try:
        settings = resolve_settings(args.preset, args.settings, args.model)
        seeds = tuple(int(s) for s in args.seeds.split(",") if s.strip()) if args.seeds else settings.seeds
        if args.jobs is None:
            args.jobs = settings.jobs
        if args.jobs < 1:
            raise ConfigError("--jobs must be at least 1")
        if not seeds:
            raise ConfigError("--seeds needs at least one seed")
        results = Path(args.results) if args.results else PROJECT_ROOT / "runs" / args.preset
        # a results directory of one's own gets its own reports and figures (not the preset's)
        own = Path(args.results) if args.results else None
        reports = Path(args.reports) if args.reports else (own / "reports" if own else None)
        figures = Path(args.figures) if args.figures else (own / "figures" if own else None)
        plan = build_plan(args.preset, settings, results, seeds, jobs=args.jobs, reports=reports, figures=figures)
        pipeline = Pipeline(plan.steps, plan.results, jobs=args.jobs, force=args.force, only=args.only,
                            dry_run=args.dry_run, roots=(plan.results, plan.reports), echo=_echo)
    except (ConfigError, ValueError, FileNotFoundError) as e:
        print(f"azr reproduce: {e}", file=sys.stderr)
        return 2
    _echo(f"azr reproduce --preset {args.preset}: {len(pipeline.selected)} steps, results in {plan.results}, "
          f"seeds {','.join(map(str, seeds))}, jobs {args.jobs}"
          + (f", {n_nb} notebooks -> {plan.reports}" if (n_nb := sum(n.startswith("notebook/") for n in pipeline.selected))
             else ", no notebooks"))
    if args.dry_run:
        pipeline.run()
        return 0
    lock = _lock_results(plan.results)
    if lock is None:
        print(f"azr reproduce: another azr reproduce is working on {plan.results} (lock {plan.results / '.lock'}); "
              "wait for it or stop it first", file=sys.stderr)
        return 2
    status, rc = "complete", 0

    def progress(name: str) -> None:  # the manifest is kept current, so notebooks can read it
        write_manifest(plan, args.preset, settings, seeds, pipeline, time.perf_counter() - t_start, "running", args.jobs)

    pipeline.on_step_done = progress
    progress("")
    previous = {sig: signal.signal(sig, _interrupt) for sig in (signal.SIGTERM, signal.SIGHUP)}
    try:
        pipeline.run()
    except StepFailed as e:
        status, rc = "failed", 1
        _echo(f"azr reproduce: stopped: {e}. Fix it and rerun the same command: finished steps are skipped.")
    except KeyboardInterrupt:
        status, rc = "interrupted", 130
        _echo("azr reproduce: interrupted; rerun the same command to continue.")
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    total = time.perf_counter() - t_start
    manifest = write_manifest(plan, args.preset, settings, seeds, pipeline, total, status, args.jobs)
    ran = [r for r in pipeline.results.values() if r.status in ("ran", "resumed")]
    skipped = sum(r.status == "skipped" for r in pipeline.results.values())
    slowest = max(ran, key=lambda r: r.seconds, default=None)
    _echo(f"azr reproduce --preset {args.preset}: {status}; {len(ran)} steps run, {skipped} skipped, "
          f"total {total:.1f} s" + (f"; slowest {slowest.name} {slowest.seconds:.1f} s" if slowest else "")
          + f"; manifest {manifest}")
    return rc


def _interrupt(signum, frame):
    """SIGTERM / SIGHUP: stop like Ctrl-C, so the steps' process groups are stopped too."""
    raise KeyboardInterrupt


def _lock_results(results: Path):
    """An exclusive lock on R/.lock (held until the process exits), or None when taken."""
    import fcntl

    results.mkdir(parents=True, exist_ok=True)
    handle = open(results / ".lock", "a+")
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        handle.close()
        return None
    handle.seek(0)
    handle.truncate()
    handle.write(f"{os.getpid()}\n")
    handle.flush()
    return handle


def _echo(line: str) -> None:
    print(f"{time.strftime('%H:%M:%S')} {line}", flush=True)


# ============================================================================================
# Step programs run as subprocesses: `python -m azrlib.reproduce <name> ...`
# ============================================================================================

def _main_rlvr_tasks(argv: list[str]) -> int:
    from azrlib.sandbox import Executor
    from azrlib.tinyworld.corpus import rlvr_tasks

    n, out = int(argv[0]), Path(argv[1])
    with Executor(timeout_s=2.0) as ex:
        tasks = rlvr_tasks(ex, n)
    tmp = out.with_name(f".{out.name}.tmp")
    tmp.write_text("".join(json.dumps(t.to_json(), sort_keys=True) + "\n" for t in tasks))
    os.replace(tmp, out)
    print(f"{len(tasks)} verified tiny-world tasks -> {out}")
    return 0


def _main_rq2(argv: list[str]) -> int:
    from azrlib.metrics.difficulty import SamplingSettings, evaluate_questions, load_task_rows, sample_questions
    from azrlib.sandbox import Executor

    p = argparse.ArgumentParser(prog="python -m azrlib.reproduce rq2")
    p.add_argument("config")
    p.add_argument("out")
    p.add_argument("--threads", type=int, default=None)
    p.add_argument("--device", default="cpu")
    a = p.parse_args(argv)
    cfg = json.loads(a.config)
    rows = load_task_rows(cfg["tasks"])
    questions = sample_questions(rows, n=cfg["questions"], bin_size=cfg["bin_size"], seed=cfg["seed"])
    print(f"{len(questions)} deduction questions from {cfg['tasks']} "
          f"({len({q.bin for q in questions})} bins of {cfg['bin_size']} steps)")
    settings = SamplingSettings(m=cfg["m"], temperature=cfg["temperature"], top_p=cfg["top_p"],
                                max_new_tokens=cfg["max_new_tokens"], prompt_style=cfg["prompt_style"], seed=cfg["seed"])
    out = Path(a.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    if cfg["engine"] == "vllm":
        from azrlib.rollout.vllm_sampler import VLLMSampler

        def make_sampler(path):  # two engines (base, self-play) live in this process: 0.4 of the GPU each
            return VLLMSampler(str(path), dtype="auto", seed=cfg["seed"], gpu_memory_utilization=0.4)
    else:
        from azrlib.rollout.hf import HFSampler

        def make_sampler(path):
            return HFSampler(str(path), device=a.device, num_threads=a.threads)
    if not questions:
        out.touch()
        print("no valid deduction questions in the run: an empty questions.jsonl")
        return 0
    with Executor(timeout_s=2.0) as ex:
        result = evaluate_questions(questions, cfg["models"], ex, out, settings, make_sampler=make_sampler)
    for model in cfg["models"]:
        mine = [r for r in result if r["model"] == model]
        rate = sum(r["solve_rate"] for r in mine) / max(1, len(mine))
        print(f"{model}: {len(mine)} questions, mean solve rate {rate:.3f}")
    return 0


def _main_download_base(argv: list[str]) -> int:
    repo_id, link = argv[0], Path(argv[1])
    from huggingface_hub import snapshot_download

    path = snapshot_download(repo_id, allow_patterns=["*.json", "*.safetensors", "*.txt", "*.model", "*.py"])
    if link.is_symlink() or link.exists():
        link.unlink()
    link.parent.mkdir(parents=True, exist_ok=True)
    link.symlink_to(Path(path).resolve(), target_is_directory=True)
    print(f"{repo_id} -> {path} (linked as {link})")
    return 0


def _main(argv: list[str]) -> int:
    programs = {"rlvr-tasks": _main_rlvr_tasks, "rq2": _main_rq2, "download-base": _main_download_base}
    if not argv or argv[0] not in programs:
        print(f"usage: python -m azrlib.reproduce {{{'|'.join(programs)}}} ... (steps of `azr reproduce`)",
              file=sys.stderr)
        return 2
    return programs[argv[0]](argv[1:])


if __name__ == "__main__":
    sys.exit(_main(sys.argv[1:]))
