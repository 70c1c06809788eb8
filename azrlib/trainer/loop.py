"""The AZR self-play loop (and its solver-only RLVR variant), one step at a time.

One step, for each task type (deduction, abduction, induction), as AZR:
1. propose: `batch_size` proposer prompts with K references from that type's buffer, sampled at
   temperature 1; each proposal is parsed and validated in the sandbox; valid tasks join the buffer;
2. learnability: each valid proposal gets `n_solver_samples` solver samples from the current policy
   at temperature 1 (AZR's master branch accidentally sampled these greedily); their solve rate p
   gives the proposer reward (`azr`, `azr_code` or `band`);
3. solve: `batch_size` solver tasks (last step's new tasks first, then uniform from the buffer),
   sampled and verified; solver reward with the format-aware composition;
4. advantages per (type, role) group (TRR++; or reinforce++ / grpo);
5. one PPO-clip epoch over all proposer and solver responses (proposers excluded when
   `freeze_proposer`), token-mean, AdamW, grad clip; the learnability samples are not trained on;
6. one metrics record (per-group rewards, solve/validity rates, lengths, entropy by both
   estimators, proposer reward distribution, zero-advantage groups, buffers, phase timings) and
   every proposed task to tasks.jsonl; checkpoints and validation every N steps.
`mode: rlvr` skips 1-2 and draws solver tasks from a fixed verified task file instead.
"""

from __future__ import annotations

import random
import time
from collections import Counter, defaultdict
from dataclasses import dataclass
from pathlib import Path

from azrlib.rewards import learnability_reward, proposer_total_reward, solver_total_reward
from azrlib.tasks.buffer import TaskBuffer
from azrlib.tasks.parsing import format_ok, parse_proposal, parse_solver_answer
from azrlib.tasks.templates import propose_prompt, render_solver_answer, solve_prompt
from azrlib.tasks.types import Task
from azrlib.tasks.validation import ValidationConfig, validate_induction, validate_triplets
from azrlib.tasks.verify import verify_answers
from azrlib.metrics.entropy import sampled_token_entropy_mean
from azrlib.trainer import dist, fsdp
from azrlib.trainer.advantages import compute_advantages, zero_advantage_fraction
from azrlib.trainer.update import ppo_epoch, sft_step

STOP = ["</answer>"]
REWARD_BINS = (-1.0, -0.5, 0.0, 0.25, 0.5, 0.75, 1.0)


@dataclass
class Rollout:
    """One trainable response."""

    task_type: str
    role: str  # "propose" | "solve"
    prompt_ids: list[int]
    response_ids: list[int]
    logprobs: list[float]
    reward: float
    prompt_key: str
    trainable: bool = True

    @property
    def group(self) -> str:
        return f"{self.task_type}/{self.role}"


def load_tasks_jsonl(path: str | Path) -> list[Task]:
    import json
    p = Path(path)
    if not p.is_file():
        raise FileNotFoundError(f"task file not found: {p}")
    out = []
    for n, line in enumerate(p.read_text().splitlines(), 1):
        if line.strip():
            try:
                out.append(Task.from_json(json.loads(line)))
            except (ValueError, KeyError, TypeError) as e:
                raise ValueError(f"{p}:{n}: not a task row ({e})") from None
    return out


class StepRunner:
    """Everything one step needs: policy, sampler, executor, buffers, rngs. The Trainer owns it."""

    def __init__(self, cfg, model, tokenizer, sampler, executor, buffers: dict[str, TaskBuffer],
                 optimizer, ref_model=None):
        self.cfg = cfg
        self.model = model
        self.tokenizer = tokenizer
        self.sampler = sampler
        self.executor = executor
        self.buffers = buffers
        self.optimizer = optimizer
        self.ref_model = ref_model
        self.policy = fsdp.forward_view(model)  # what token_logprobs runs (FSDP: through the root)
        self.rollout_sync = None  # set by the Trainer when the engine holds its own weights (weight_sync)
        self.rng = random.Random(cfg.seed)
        self.newest: dict[str, list[Task]] = {t: [] for t in cfg.task_types}
        self.rlvr_pool: dict[str, list[Task]] = {}
        self.errors: list[str] = []  # recoverable failures of this step (sampler), logged
        self.vcfg = ValidationConfig(banned_modules=tuple(cfg.banned_modules), allow_helpers=cfg.allow_helpers,
                                     max_output_chars=cfg.max_output_chars, output_overflow=cfg.output_overflow,
                                     timeout_s=cfg.exec_timeout_s)

    # ------------------------------------------------------------------ sampling helpers

    def _sample(self, prompts: list[str], n: int, max_new_tokens: int, seed: int):
        """Completions per prompt; a failing rollout engine costs this phase its samples (logged
        as `errors/sampler`), not the run."""
        if not prompts:
            return []
        try:
            return self.sampler.generate(prompts, n=n, temperature=self.cfg.temperature, top_p=self.cfg.top_p,
                                         max_new_tokens=max_new_tokens, stop=STOP, seed=seed)
        except (RuntimeError, ValueError, OSError) as e:
            self.errors.append(f"sampler: {type(e).__name__}: {str(e)[:200]}")
            return [[] for _ in prompts]

    def _seed(self, step: int, phase: int) -> int:
        """Sampling seed of one phase of one step on this rank."""
        return (self.cfg.seed * 1_000_003 + step * 101 + phase + dist.rank() * 7919) % (2**31 - 1)

    # ------------------------------------------------------------------ one step

    def run_step(self, step: int) -> tuple[dict, list[dict]]:
        if self.cfg.mode == "sft":
            return self.run_sft_step(step), []
        cfg = self.cfg
        timings: dict[str, float] = defaultdict(float)
        rollouts: list[Rollout] = []  # this rank's trainable responses
        stats: dict[str, float] = {}
        task_rows: list[dict] = []
        new_tasks: dict[str, list[Task]] = {t: [] for t in cfg.task_types}

        if cfg.mode == "selfplay":
            self._propose(step, timings, rollouts, stats, task_rows, new_tasks)
        for k, t in enumerate(cfg.task_types):
            self._solve(step, t, k, timings, rollouts, stats)
        for t in cfg.task_types:
            if cfg.mode == "selfplay":
                self.buffers[t].extend(new_tasks[t])
            self.newest[t] = new_tasks[t]

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
        errors = [e for part in dist.gather_lists(self.errors) for e in part]
        stats["errors/sampler"] = len(errors)
        if errors:
            stats["errors/first"] = errors[0]
        self.errors = []
        for k, v in timings.items():
            stats[f"time/{k}"] = round(v, 3)
        return stats, task_rows

    # ------------------------------------------------------------------ buffer seeding

    def seed_buffers(self, target: int, max_rounds: int = 50) -> dict:
        """AZR's seeding: before training, the base model proposes (from the zero triplet) until
        every buffer holds `target` valid tasks or `max_rounds` rounds pass. No gradient, no
        learnability; the tasks are validated like any proposal (step 0)."""
        rounds = 0
        while rounds < max_rounds and any(len(self.buffers[t]) < target for t in self.cfg.task_types):
            rounds += 1
            new_tasks: dict[str, list[Task]] = {t: [] for t in self.cfg.task_types}
            self._propose(0, defaultdict(float), [], {}, [], new_tasks, with_learnability=False)
            for t in self.cfg.task_types:
                room = max(0, target - len(self.buffers[t]))
                self.buffers[t].extend(new_tasks[t][:room])
        return {f"seed_buffer/{t}": len(self.buffers[t]) for t in self.cfg.task_types} | {"seed_buffer/rounds": rounds}

    # ------------------------------------------------------------------ propose + learnability

    def _propose(self, step, timings, rollouts, stats, task_rows, new_tasks, with_learnability: bool = True):
        cfg = self.cfg
        t0 = time.perf_counter()
        # the full list of prompts comes from the shared RNG; this rank takes k % world == rank
        prompts, meta = [], []
        for t in cfg.task_types:
            for _ in range(cfg.batch_size):
                refs = self.buffers[t].sample_references(cfg.n_references, self.rng)
                program = None
                if t == "induction":
                    pool = [x for tt in ("deduction", "abduction") if tt in self.buffers for x in self.buffers[tt].tasks]
                    program = self.rng.choice(pool or list(self.buffers[t].tasks))
                prompts.append(propose_prompt(t, refs, style=cfg.prompt_style, banned_modules=cfg.banned_modules,
                                              program_for_induction=program, allow_helpers=cfg.allow_helpers))
                meta.append((t, program))
        mine = list(range(dist.rank(), len(prompts), dist.world()))
        completions = self._sample([prompts[k] for k in mine], 1, cfg.max_new_tokens_propose, self._seed(step, 0))
        timings["propose"] += time.perf_counter() - t0

        t0 = time.perf_counter()
        parsed = []
        kept = [(k, comps) for k, comps in zip(mine, completions) if comps]
        mine = [k for k, _ in kept]
        for k, comps in kept:
            t, program = meta[k]
            c = comps[0]
            parsed.append((t, program, c, format_ok(c.text, prompt_ends_with_think=True),
                           parse_proposal(t, c.text, allow_helpers=cfg.allow_helpers,
                                          allow_extra_inputs=cfg.allow_extra_inputs)))
        triplet_idx = [j for j, (t, _, _, _, p) in enumerate(parsed) if p.ok and t != "induction"]
        induction_idx = [j for j, (t, _, _, _, p) in enumerate(parsed) if p.ok and t == "induction"]
        validations: dict[int, object] = {}
        for j, v in zip(triplet_idx, validate_triplets(
                self.executor, [(parsed[j][0], parsed[j][4].program, parsed[j][4].input) for j in triplet_idx],
                self.vcfg, step=step)):
            validations[j] = v
        for j, v in zip(induction_idx, validate_induction(
                self.executor, [(parsed[j][1].program, list(parsed[j][4].inputs), parsed[j][4].message)
                                for j in induction_idx], self.vcfg, step=step)):
            validations[j] = v
        timings["validate"] += time.perf_counter() - t0

        # learnability: n solver samples per valid proposal, at the rollout temperature
        t0 = time.perf_counter()
        valid_idx = [j for j in validations if validations[j].ok]
        if not with_learnability:
            for j in valid_idx:
                new_tasks[validations[j].task.task_type].append(validations[j].task)
            new_tasks.update({t: [x for part in dist.gather_lists(v) for x in part] for t, v in new_tasks.items()})
            return
        solve_prompts = [solve_prompt(validations[j].task, style=cfg.prompt_style, n_shown=cfg.n_shown) for j in valid_idx]
        samples = self._sample(solve_prompts, cfg.n_solver_samples, cfg.max_new_tokens_solve, self._seed(step, 1))
        timings["learnability_sample"] += time.perf_counter() - t0
        t0 = time.perf_counter()
        flat_tasks, flat_answers, owners = [], [], []
        for j, comps in zip(valid_idx, samples):
            for c in comps:
                a = parse_solver_answer(validations[j].task.task_type, c.text)
                flat_tasks.append(validations[j].task)
                flat_answers.append(a.answer if a.ok and format_ok(c.text, prompt_ends_with_think=True) else None)
                owners.append(j)
        verdicts = verify_answers(self.executor, flat_tasks, flat_answers, n_shown=cfg.n_shown)
        correct: dict[int, list[bool]] = defaultdict(list)
        for j, v in zip(owners, verdicts):
            correct[j].append(v.correct)
        timings["learnability_verify"] += time.perf_counter() - t0

        records = []
        for j, (k, (t, program, c, fmt, p)) in enumerate(zip(mine, parsed)):
            v = validations.get(j)
            valid = bool(v is not None and v.ok)
            rate = sum(correct[j]) / len(correct[j]) if valid and correct[j] else None
            reward = proposer_total_reward(fmt, valid, rate, cfg.proposer_reward, cfg.invalid_proposal_reward)
            reason = "format" if not fmt else (p.reason if not p.ok else (v.reason if v is not None else "ok"))
            rollouts.append(Rollout(t, "propose", list(c.prompt_token_ids), list(c.token_ids), list(c.logprobs),
                                    reward, prompt_key=f"p{step}-{k}", trainable=not cfg.freeze_proposer))
            task = v.task if valid else None
            records.append({
                "step": step, "task_type": t, "valid": valid, "format_ok": fmt,
                "reason": "ok" if valid else reason, "solve_rate": rate, "reward": reward,
                "response_length": len(c.token_ids),
                "program": task.program if task else (p.program if p.ok else (program.program if program else None)),
                "inputs": list(task.inputs) if task else list(p.inputs),
                "outputs": list(task.outputs) if task else [],
                "message": task.message if task else p.message,
                "_entropy": sampled_token_entropy_mean([c.logprobs]),
                "_task": task.to_json() if task else None,
            })
        records = dist.interleave(dist.gather_lists(records))  # global prompt order, on every rank
        per_type = defaultdict(lambda: defaultdict(list))
        for rec in records:
            t = rec["task_type"]
            g = per_type[t]
            g["valid"].append(rec["valid"])
            g["format"].append(rec["format_ok"])
            g["reward"].append(rec["reward"])
            g["length"].append(rec["response_length"])
            g["entropy"].append(rec.pop("_entropy"))
            task = rec.pop("_task")
            if rec["solve_rate"] is not None:
                g["solve_rate"].append(rec["solve_rate"])
                g["learnability"].append(learnability_reward(rec["solve_rate"], cfg.proposer_reward))
                new_tasks[t].append(Task.from_json(task))
            task_rows.append(rec)
        for t, g in per_type.items():
            stats[f"valid_rate/{t}"] = _mean(g["valid"])
            stats[f"format_rate/{t}/propose"] = _mean(g["format"])
            stats[f"reward/{t}/propose"] = _mean(g["reward"])
            stats[f"response_length/{t}/propose"] = _mean(g["length"])
            stats[f"entropy/propose/{t}"] = _mean(g["entropy"])
            stats[f"learnability/{t}/solve_rate"] = _mean(g["solve_rate"]) if g["solve_rate"] else None
            stats[f"learnability/{t}/reward"] = _mean(g["learnability"]) if g["learnability"] else None
            hist = Counter(min(REWARD_BINS, key=lambda b: abs(b - r)) for r in g["reward"])
            for b in REWARD_BINS:
                stats[f"proposer_reward_hist/{t}/{b:g}"] = hist.get(b, 0)

    # ------------------------------------------------------------------ solve

    def _solver_tasks(self, t: str) -> list[Task]:
        cfg = self.cfg
        if cfg.mode in ("rlvr", "sft"):
            pool = self.rlvr_pool.get(t) or []
            if not pool:
                return []
            return [self.rng.choice(pool) for _ in range(cfg.batch_size)]
        return self.buffers[t].solver_batch(cfg.batch_size, self.rng, newest_first=self.newest[t])

    def _solve(self, step, t, k, timings, rollouts, stats):
        cfg = self.cfg
        t0 = time.perf_counter()
        all_tasks = self._solver_tasks(t)  # shared RNG: the same list on every rank
        mine = list(range(dist.rank(), len(all_tasks), dist.world()))
        tasks = [all_tasks[j] for j in mine]
        prompts = [solve_prompt(task, style=cfg.prompt_style, n_shown=cfg.n_shown) for task in tasks]
        samples = self._sample(prompts, 1, cfg.max_new_tokens_solve, self._seed(step, 10 + k))
        timings["solve"] += time.perf_counter() - t0
        t0 = time.perf_counter()
        pairs = [(j, s[0]) for j, s in zip(mine, samples) if s]
        tasks = [all_tasks[j] for j, _ in pairs]
        mine = [j for j, _ in pairs]
        comps = [c for _, c in pairs]
        fmts = [format_ok(c.text, prompt_ends_with_think=True) for c in comps]
        answers = []
        for c in comps:
            a = parse_solver_answer(t, c.text)
            answers.append(a.answer if a.ok else None)
        verdicts = verify_answers(self.executor, tasks, [a if f else None for a, f in zip(answers, fmts)], n_shown=cfg.n_shown)
        timings["verify"] += time.perf_counter() - t0
        records = []
        for j, c, fmt, v in zip(mine, comps, fmts, verdicts):
            r = solver_total_reward(fmt, v.correct)
            rollouts.append(Rollout(t, "solve", list(c.prompt_token_ids), list(c.token_ids), list(c.logprobs),
                                    r, prompt_key=f"s{step}-{t}-{j}"))
            records.append((v.correct, fmt, r, len(c.token_ids), sampled_token_entropy_mean([c.logprobs])))
        records = dist.interleave(dist.gather_lists(records))
        if records:
            stats[f"solve_rate/{t}"] = _mean([x[0] for x in records])
            stats[f"format_rate/{t}/solve"] = _mean([x[1] for x in records])
            stats[f"reward/{t}/solve"] = _mean([x[2] for x in records])
            stats[f"response_length/{t}/solve"] = _mean([x[3] for x in records])
            stats[f"entropy/solve/{t}"] = _mean([x[4] for x in records])

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
        total, norm = sft_step(self.model, self.policy, self.optimizer, cfg, prompts, targets)
        if self.rollout_sync is not None:
            self.rollout_sync.after_update()
        return {"loss/sft": total, "grad_norm": norm, "n_sequences": len(tasks),
                "time/update": round(time.perf_counter() - t0, 3)}

    # ------------------------------------------------------------------ update

    def _update(self, rollouts: list[Rollout], advantages: list[float], step: int) -> dict:
        """One PPO epoch (azrlib.trainer.update.ppo_epoch: packed micro-batches, shared with SFT)."""
        return ppo_epoch(self.model, self.policy, self.optimizer, self.cfg, rollouts, advantages,
                         seed=self._seed(step, 50), ref_model=self.ref_model)


def _mean(xs) -> float:
    xs = [float(x) for x in xs]
    return sum(xs) / len(xs) if xs else 0.0
