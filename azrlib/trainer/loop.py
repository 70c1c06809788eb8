"""The AZR self-play loop (and its solver-only RLVR and SFT variants), one step at a time.

One step, for each task type (deduction, abduction, induction), as AZR:
1. propose (`propose.py`): `batch_size` proposals per type, validated in the sandbox; each valid
   one gets `n_solver_samples` solver samples whose solve rate p gives the proposer reward;
2. solve (`solve.py`): `batch_size` solver tasks per type, sampled and graded (`tasks.grade`);
3. advantages per (type, role) group (TRR++; or reinforce++ / grpo);
4. one PPO-clip epoch over all proposer and solver responses (proposers excluded when
   `freeze_proposer`), token-mean, AdamW, grad clip; the learnability samples are not trained on;
5. one metrics record (per-group rewards, solve/validity rates, lengths, entropy by both
   estimators, proposer reward distribution, zero-advantage groups, buffers, errors) and every
   proposed task to tasks.jsonl; phase timings go to timings.jsonl.
The modes differ only by their task source and which phases run: self-play proposes and solves
from its buffers (`BufferTasks`); RLVR solves tasks of a fixed verified pool (`FixedTasks`); SFT
trains on the gold answers of that pool (`run_sft_step`). Every phase returns its values
(`rollouts.PhaseResult`); a prompt that cannot fit the context is skipped alone (`context.py`).
"""

from __future__ import annotations

import json
import logging
import random
import time
from collections import defaultdict
from pathlib import Path

from azrlib.tasks.buffer import TaskBuffer
from azrlib.tasks.templates import render_solver_answer, solve_prompt
from azrlib.tasks.types import Task
from azrlib.tasks.validation import ValidationConfig
from azrlib.trainer import dist, fsdp
from azrlib.trainer.advantages import compute_advantages, zero_advantage_fraction
from azrlib.trainer.context import ContextGuard
from azrlib.trainer.propose import REWARD_BINS, propose  # noqa: F401 - REWARD_BINS re-exported
from azrlib.trainer.rollouts import PhaseResult, Rollout
from azrlib.trainer.solve import BufferTasks, FixedTasks, solve
from azrlib.trainer.update import ppo_epoch, sft_step

log = logging.getLogger(__name__)

STOP = ["</answer>"]


def load_tasks_jsonl(path: str | Path) -> list[Task]:
    """Tasks from a JSONL file: rows of `Task.to_json`, or CRUXEval rows (`code`, `input`,
    `output`), each of which gives a deduction and an abduction task on the same triplet."""
    p = Path(path)
    if not p.is_file():
        raise FileNotFoundError(f"task file not found: {p}")
    out = []
    for n, line in enumerate(p.read_text().splitlines(), 1):
        if line.strip():
            try:
                row = json.loads(line)
                if "task_type" not in row and {"code", "input", "output"} <= set(row):
                    out += [Task(t, row["code"], (row["input"],), (row["output"],)) for t in ("deduction", "abduction")]
                else:
                    out.append(Task.from_json(row))
            except (ValueError, KeyError, TypeError) as e:
                raise ValueError(f"{p}:{n}: not a task row ({e})") from None
    return out


class StepRunner:
    """Everything one step needs, all given to the constructor: policy, sampler, executor,
    buffers, the task source (`BufferTasks` for self-play, `FixedTasks(rlvr_pool)` for RLVR/SFT),
    the engine's weight sync when it holds its own copy, and the context guard. The Trainer owns it;
    `state_dict`/`load_state_dict` carry its RNG and last step's new tasks across a resume."""

    def __init__(self, cfg, model, tokenizer, sampler, executor, buffers: dict[str, TaskBuffer],
                 optimizer, ref_model=None, *, rollout_sync=None, rlvr_pool: dict[str, list[Task]] | None = None,
                 guard: ContextGuard | None = None):
        self.cfg = cfg
        self.model = model
        self.tokenizer = tokenizer
        self.sampler = sampler
        self.executor = executor
        self.buffers = buffers
        self.optimizer = optimizer
        self.ref_model = ref_model
        self.policy = fsdp.forward_view(model)  # what token_logprobs runs (FSDP: through the root)
        self.rollout_sync = rollout_sync  # the engine's own copy of the weights (weight_sync), or None
        self.source = BufferTasks(buffers) if cfg.mode == "selfplay" else FixedTasks(rlvr_pool or {})
        self.guard = guard or ContextGuard(tokenizer, None)
        self.rng = random.Random(cfg.seed)
        self.newest: dict[str, list[Task]] = {t: [] for t in cfg.task_types}
        self.errors: list[str] = []  # recoverable failures of this step (sampler), logged
        self.too_long = 0  # prompts of this step skipped because they cannot fit the context
        self.vcfg = ValidationConfig(banned_modules=tuple(cfg.banned_modules), allow_helpers=cfg.allow_helpers,
                                     max_output_chars=cfg.max_output_chars, output_overflow=cfg.output_overflow,
                                     timeout_s=cfg.exec_timeout_s)

    def state_dict(self) -> dict:
        return {"rng": self.rng.getstate(), "newest": {t: [x.to_json() for x in v] for t, v in self.newest.items()}}

    def load_state_dict(self, state: dict) -> None:
        self.rng.setstate(state["rng"])
        self.newest = {t: [Task.from_json(x) for x in v] for t, v in state["newest"].items()}

    # ------------------------------------------------------------------ sampling helpers

    def sample(self, prompts: list[str], n: int, max_new_tokens: int, seed: int):
        """Completions per prompt (an empty list for a prompt that got none). A prompt that cannot
        fit the context is not sent (counted in `skipped/context`); a failing rollout engine costs
        this call its samples (logged as `errors/sampler`), not the run."""
        if not prompts:
            return []
        fits = self.guard.fits(prompts, max_new_tokens)
        keep = [i for i, ok in enumerate(fits) if ok]
        self.too_long += len(prompts) - len(keep)
        out: list[list] = [[] for _ in prompts]
        if not keep:
            return out
        try:
            got = self.sampler.generate([prompts[i] for i in keep], n=n, temperature=self.cfg.temperature,
                                        top_p=self.cfg.top_p, max_new_tokens=max_new_tokens, stop=STOP, seed=seed)
        except (RuntimeError, ValueError, OSError) as e:
            self.errors.append(f"sampler: {type(e).__name__}: {str(e)[:200]}")
            return out
        for i, comps in zip(keep, got):
            out[i] = comps
        return out

    def phase_seed(self, step: int, phase: int) -> int:
        """Sampling seed of one phase of one step on this rank."""
        return (self.cfg.seed * 1_000_003 + step * 101 + phase + dist.rank() * 7919) % (2**31 - 1)

    _seed = phase_seed  # the update's shuffle seed (kept under its old name for `_update`)

    def solver_tasks(self, t: str) -> list[Task]:
        return self.source.solver_batch(t, self.cfg.batch_size, self.rng, self.newest[t])

    _solver_tasks = solver_tasks  # the name run_sft_step uses

    # ------------------------------------------------------------------ one step

    def run_step(self, step: int) -> tuple[dict, list[dict]]:
        if self.cfg.mode == "sft":
            return self.run_sft_step(step), []
        cfg = self.cfg
        phases = PhaseResult(new_tasks={t: [] for t in cfg.task_types})
        if self.source.proposes:
            phases = phases.merge(propose(self, step))
        phases = phases.merge(solve(self, step))
        for task in phases.stale_tasks:  # a gold that stopped reproducing leaves the buffer (logged)
            if self.source.proposes and self.buffers[task.task_type].remove(task):
                log.warning("step %d: dropped a %s task whose gold no longer reproduces", step, task.task_type)
        for t in cfg.task_types:
            if self.source.proposes:
                self.buffers[t].extend(phases.new_tasks[t])
            self.newest[t] = phases.new_tasks[t]
        rollouts, stats, timings = phases.rollouts, dict(phases.stats), defaultdict(float, phases.timings)

        t0 = time.perf_counter()
        # TRR++ statistics are over the whole step's groups, so all ranks' rewards are gathered.
        mine = [(r.reward, max(1, len(r.response_ids)), r.group, r.prompt_key) for r in rollouts]
        parts = dist.gather_lists(mine)
        everyone = [x for part in parts for x in part]
        adv_all = compute_advantages([x[0] for x in everyone], [x[1] for x in everyone], [x[2] for x in everyone],
                                     [x[3] for x in everyone], cfg.advantage)
        offset = sum(len(part) for part in parts[: dist.rank()])
        advantages = adv_all[offset: offset + len(mine)]
        stats["zero_adv_group_frac"] = zero_advantage_fraction(adv_all, [x[2] for x in everyone])
        stats["zero_adv_prompt_frac"] = zero_advantage_fraction(adv_all, [x[3] for x in everyone])
        timings["advantages"] += time.perf_counter() - t0

        if self.rollout_sync is not None:  # the engine's copy of the weights: check it, free its memory
            t0 = time.perf_counter()
            stats.update(self.rollout_sync.check(step, rollouts))
            self.rollout_sync.before_update()
            timings["logprob_check"] += time.perf_counter() - t0
        t0 = time.perf_counter()
        stats.update(self._update(rollouts, advantages, step))
        timings["update"] += time.perf_counter() - t0
        if self.rollout_sync is not None:
            t0 = time.perf_counter()
            self.rollout_sync.after_update()
            timings["weight_sync"] += time.perf_counter() - t0

        for t in cfg.task_types:
            stats[f"buffer/{t}"] = len(self.buffers[t])
        stats.update(self._step_errors())
        for k, v in timings.items():
            stats[f"time/{k}"] = round(v, 3)
        return stats, phases.task_rows

    def _step_errors(self) -> dict:
        """This step's recoverable failures over all ranks; resets the counters."""
        errors = [e for part in dist.gather_lists(self.errors) for e in part]
        too_long = int(dist.all_reduce_sum(float(self.too_long)))
        out: dict = {"errors/sampler": len(errors)}
        if errors:
            out["errors/first"] = errors[0]
        if too_long:  # only when it happened, so runs without it keep their records unchanged
            out["skipped/context"] = too_long
        self.errors, self.too_long = [], 0
        return out

    # ------------------------------------------------------------------ buffer seeding

    def seed_buffers(self, target: int, max_rounds: int = 50) -> dict:
        """AZR's seeding: before training, the base model proposes (from the zero triplet) until
        every buffer holds `target` valid tasks or `max_rounds` rounds pass. No gradient, no
        learnability; the tasks are validated like any proposal (step 0)."""
        rounds = 0
        while rounds < max_rounds and any(len(self.buffers[t]) < target for t in self.cfg.task_types):
            rounds += 1
            new_tasks = propose(self, 0, with_learnability=False).new_tasks
            for t in self.cfg.task_types:
                room = max(0, target - len(self.buffers[t]))
                self.buffers[t].extend(new_tasks[t][:room])
        return {f"seed_buffer/{t}": len(self.buffers[t]) for t in self.cfg.task_types} | {"seed_buffer/rounds": rounds}

    # ------------------------------------------------------------------ SFT baseline

    def run_sft_step(self, step: int) -> dict:
        """Cross-entropy on gold solver completions of `batch_size` fixed tasks per type (token
        mean over completion tokens), one optimizer step: the SFT baseline of RQ4. A task whose
        `meta` holds a `completion` (e.g. the tiny corpus's traced answer) trains on it; otherwise
        on the rendered gold answer with an empty <think>."""
        cfg = self.cfg
        t0 = time.perf_counter()
        tasks = [task for t in cfg.task_types for task in self._solver_tasks(t)]
        mine = tasks[dist.rank()::dist.world()]
        prompts, targets = [], []
        for task in mine:
            prompt = solve_prompt(task, style=cfg.prompt_style, n_shown=cfg.n_shown)
            completion = task.meta.get("completion") or render_solver_answer(task)
            prompts.append(self.tokenizer(prompt, add_special_tokens=False)["input_ids"])
            targets.append(self.tokenizer(completion, add_special_tokens=False)["input_ids"])
        stats = sft_step(self.model, self.policy, self.optimizer, cfg, prompts, targets)
        if self.rollout_sync is not None:
            self.rollout_sync.after_update()
        return {"loss/sft": stats["loss"], "grad_norm": stats["grad_norm"], "n_sequences": len(tasks),
                "n_trained_response_tokens": stats["n_trained_response_tokens"],
                "n_trained_tokens": stats["n_trained_tokens"], "time/update": round(time.perf_counter() - t0, 3)}

    # ------------------------------------------------------------------ update

    def _update(self, rollouts: list[Rollout], advantages: list[float], step: int) -> dict:
        """One PPO epoch (azrlib.trainer.update.ppo_epoch: packed micro-batches, shared with SFT)."""
        return ppo_epoch(self.model, self.policy, self.optimizer, self.cfg, rollouts, advantages,
                         seed=self._seed(step, 50), ref_model=self.ref_model)

