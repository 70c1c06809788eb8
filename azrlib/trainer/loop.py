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

import torch

from azrlib.rewards import learnability_reward, proposer_total_reward, solver_total_reward
from azrlib.tasks.buffer import TaskBuffer
from azrlib.tasks.parsing import format_ok, parse_proposal, parse_solver_answer
from azrlib.tasks.templates import propose_prompt, solve_prompt
from azrlib.tasks.types import Task
from azrlib.tasks.validation import ValidationConfig, validate_induction, validate_triplets
from azrlib.tasks.verify import verify_answers
from azrlib.trainer.advantages import compute_advantages, zero_advantage_fraction
from azrlib.trainer.ppo import pack, ppo_loss, token_logprobs

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
        self.rng = random.Random(cfg.seed)
        self.newest: dict[str, list[Task]] = {t: [] for t in cfg.task_types}
        self.rlvr_pool: dict[str, list[Task]] = {}
        self.vcfg = ValidationConfig(banned_modules=tuple(cfg.banned_modules), allow_helpers=cfg.allow_helpers,
                                     max_output_chars=cfg.max_output_chars, output_overflow=cfg.output_overflow,
                                     timeout_s=cfg.exec_timeout_s)

    # ------------------------------------------------------------------ sampling helpers

    def _sample(self, prompts: list[str], n: int, max_new_tokens: int, seed: int):
        if not prompts:
            return []
        return self.sampler.generate(prompts, n=n, temperature=self.cfg.temperature, top_p=self.cfg.top_p,
                                     max_new_tokens=max_new_tokens, stop=STOP, seed=seed)

    def _seed(self, step: int, phase: int) -> int:
        return (self.cfg.seed * 1_000_003 + step * 101 + phase) % (2**31 - 1)

    # ------------------------------------------------------------------ one step

    def run_step(self, step: int) -> tuple[dict, list[dict]]:
        cfg = self.cfg
        timings: dict[str, float] = defaultdict(float)
        rollouts: list[Rollout] = []
        stats: dict[str, float] = {}
        task_rows: list[dict] = []
        new_tasks: dict[str, list[Task]] = {t: [] for t in cfg.task_types}

        if cfg.mode == "selfplay":
            proposals = self._propose(step, timings, rollouts, stats, task_rows, new_tasks)
            del proposals
        for k, t in enumerate(cfg.task_types):
            self._solve(step, t, k, timings, rollouts, stats)
        for t in cfg.task_types:
            if cfg.mode == "selfplay":
                self.buffers[t].extend(new_tasks[t])
            self.newest[t] = new_tasks[t]

        t0 = time.perf_counter()
        rewards = [r.reward for r in rollouts]
        lengths = [max(1, len(r.response_ids)) for r in rollouts]
        advantages = compute_advantages(rewards, lengths, [r.group for r in rollouts],
                                        [r.prompt_key for r in rollouts], cfg.advantage)
        stats["zero_adv_group_frac"] = zero_advantage_fraction(advantages, [r.group for r in rollouts])
        stats["zero_adv_prompt_frac"] = zero_advantage_fraction(advantages, [r.prompt_key for r in rollouts])
        timings["advantages"] += time.perf_counter() - t0

        t0 = time.perf_counter()
        stats.update(self._update(rollouts, advantages, step))
        timings["update"] += time.perf_counter() - t0

        for t in cfg.task_types:
            stats[f"buffer/{t}"] = len(self.buffers[t])
        for k, v in timings.items():
            stats[f"time/{k}"] = round(v, 3)
        return stats, task_rows

    # ------------------------------------------------------------------ propose + learnability

    def _propose(self, step, timings, rollouts, stats, task_rows, new_tasks):
        cfg = self.cfg
        t0 = time.perf_counter()
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
        completions = self._sample(prompts, 1, cfg.max_new_tokens_propose, self._seed(step, 0))
        timings["propose"] += time.perf_counter() - t0

        t0 = time.perf_counter()
        parsed = []
        for (t, program), comps in zip(meta, completions):
            c = comps[0]
            fmt = format_ok(c.text, prompt_ends_with_think=True)
            p = parse_proposal(t, c.text, allow_helpers=cfg.allow_helpers)
            parsed.append((t, program, c, fmt, p))
        triplet_idx = [k for k, (t, _, _, fmt, p) in enumerate(parsed) if p.ok and t != "induction"]
        induction_idx = [k for k, (t, _, _, fmt, p) in enumerate(parsed) if p.ok and t == "induction"]
        validations: dict[int, object] = {}
        for k, v in zip(triplet_idx, validate_triplets(
                self.executor, [(parsed[k][0], parsed[k][4].program, parsed[k][4].input) for k in triplet_idx],
                self.vcfg, step=step)):
            validations[k] = v
        for k, v in zip(induction_idx, validate_induction(
                self.executor, [(parsed[k][1].program, list(parsed[k][4].inputs), parsed[k][4].message)
                                for k in induction_idx], self.vcfg, step=step)):
            validations[k] = v
        timings["validate"] += time.perf_counter() - t0

        # learnability: n solver samples per valid proposal, at the rollout temperature
        t0 = time.perf_counter()
        valid_idx = [k for k in validations if validations[k].ok]
        solve_prompts = [solve_prompt(validations[k].task, style=cfg.prompt_style, n_shown=cfg.n_shown) for k in valid_idx]
        samples = self._sample(solve_prompts, cfg.n_solver_samples, cfg.max_new_tokens_solve, self._seed(step, 1))
        timings["learnability_sample"] += time.perf_counter() - t0
        t0 = time.perf_counter()
        flat_tasks, flat_answers, owners = [], [], []
        for k, comps in zip(valid_idx, samples):
            for c in comps:
                a = parse_solver_answer(validations[k].task.task_type, c.text)
                flat_tasks.append(validations[k].task)
                flat_answers.append(a.answer if a.ok and format_ok(c.text, prompt_ends_with_think=True) else None)
                owners.append(k)
        verdicts = verify_answers(self.executor, flat_tasks, flat_answers, n_shown=cfg.n_shown)
        correct: dict[int, list[bool]] = defaultdict(list)
        for k, v in zip(owners, verdicts):
            correct[k].append(v.correct)
        timings["learnability_verify"] += time.perf_counter() - t0

        per_type = defaultdict(lambda: defaultdict(list))
        for k, (t, program, c, fmt, p) in enumerate(parsed):
            v = validations.get(k)
            valid = bool(v is not None and v.ok)
            rate = sum(correct[k]) / len(correct[k]) if valid and correct[k] else None
            reward = proposer_total_reward(fmt, valid, rate, cfg.proposer_reward, cfg.invalid_proposal_reward)
            reason = "format" if not fmt else (p.reason if not p.ok else (v.reason if v is not None else "ok"))
            rollouts.append(Rollout(t, "propose", list(c.prompt_token_ids), list(c.token_ids), list(c.logprobs),
                                    reward, prompt_key=f"p{step}-{k}", trainable=not cfg.freeze_proposer))
            g = per_type[t]
            g["valid"].append(valid)
            g["format"].append(fmt)
            g["reward"].append(reward)
            g["length"].append(len(c.token_ids))
            g["entropy"].append(c.logprobs)
            if rate is not None:
                g["solve_rate"].append(rate)
                g["learnability"].append(learnability_reward(rate, cfg.proposer_reward))
                new_tasks[t].append(v.task)
            task = v.task if valid else None
            task_rows.append({
                "step": step, "task_type": t, "valid": valid, "format_ok": fmt,
                "reason": "ok" if valid else reason, "solve_rate": rate, "reward": reward,
                "response_length": len(c.token_ids),
                "program": task.program if task else (p.program if p.ok else (program.program if program else None)),
                "inputs": list(task.inputs) if task else list(p.inputs),
                "outputs": list(task.outputs) if task else [],
                "message": task.message if task else p.message,
            })
        for t, g in per_type.items():
            stats[f"valid_rate/{t}"] = _mean(g["valid"])
            stats[f"format_rate/{t}/propose"] = _mean(g["format"])
            stats[f"reward/{t}/propose"] = _mean(g["reward"])
            stats[f"response_length/{t}/propose"] = _mean(g["length"])
            stats[f"entropy/propose/{t}"] = sampled_token_entropy_mean(g["entropy"])
            stats[f"learnability/{t}/solve_rate"] = _mean(g["solve_rate"]) if g["solve_rate"] else None
            stats[f"learnability/{t}/reward"] = _mean(g["learnability"]) if g["learnability"] else None
            hist = Counter(min(REWARD_BINS, key=lambda b: abs(b - r)) for r in g["reward"])
            for b in REWARD_BINS:
                stats[f"proposer_reward_hist/{t}/{b:g}"] = hist.get(b, 0)
        return parsed

    # ------------------------------------------------------------------ solve

    def _solver_tasks(self, t: str) -> list[Task]:
        cfg = self.cfg
        if cfg.mode == "rlvr":
            pool = self.rlvr_pool.get(t) or []
            if not pool:
                return []
            return [self.rng.choice(pool) for _ in range(cfg.batch_size)]
        return self.buffers[t].solver_batch(cfg.batch_size, self.rng, newest_first=self.newest[t])

    def _solve(self, step, t, k, timings, rollouts, stats):
        cfg = self.cfg
        t0 = time.perf_counter()
        tasks = self._solver_tasks(t)
        prompts = [solve_prompt(task, style=cfg.prompt_style, n_shown=cfg.n_shown) for task in tasks]
        samples = self._sample(prompts, 1, cfg.max_new_tokens_solve, self._seed(step, 10 + k))
        timings["solve"] += time.perf_counter() - t0
        t0 = time.perf_counter()
        comps = [s[0] for s in samples]
        fmts = [format_ok(c.text, prompt_ends_with_think=True) for c in comps]
        answers = []
        for c in comps:
            a = parse_solver_answer(t, c.text)
            answers.append(a.answer if a.ok else None)
        verdicts = verify_answers(self.executor, tasks, [a if f else None for a, f in zip(answers, fmts)], n_shown=cfg.n_shown)
        timings["verify"] += time.perf_counter() - t0
        rewards = []
        for j, (c, fmt, v) in enumerate(zip(comps, fmts, verdicts)):
            r = solver_total_reward(fmt, v.correct)
            rewards.append(r)
            rollouts.append(Rollout(t, "solve", list(c.prompt_token_ids), list(c.token_ids), list(c.logprobs),
                                    r, prompt_key=f"s{step}-{t}-{j}"))
        if comps:
            stats[f"solve_rate/{t}"] = _mean([v.correct for v in verdicts])
            stats[f"format_rate/{t}/solve"] = _mean(fmts)
            stats[f"reward/{t}/solve"] = _mean(rewards)
            stats[f"response_length/{t}/solve"] = _mean([len(c.token_ids) for c in comps])
            stats[f"entropy/solve/{t}"] = sampled_token_entropy_mean([c.logprobs for c in comps])

    # ------------------------------------------------------------------ update

    def _update(self, rollouts: list[Rollout], advantages: list[float], step: int) -> dict:
        cfg = self.cfg
        order = list(range(len(rollouts)))
        random.Random(self._seed(step, 50)).shuffle(order)
        pad = self.tokenizer.pad_token_id if self.tokenizer.pad_token_id is not None else 0
        ent_sum: dict[str, float] = defaultdict(float)
        ent_tok: dict[str, float] = defaultdict(float)
        out = defaultdict(list)
        self.model.train()
        for start in range(0, len(order), cfg.mini_batch_size):
            mini = [k for k in order[start:start + cfg.mini_batch_size] if rollouts[k].response_ids]
            train_ids = [k for k in mini if rollouts[k].trainable]
            n_tokens = float(sum(len(rollouts[k].response_ids) for k in train_ids)) or 1.0
            self.optimizer.zero_grad(set_to_none=True)
            for micro in _micro_batches(mini, [len(rollouts[k].prompt_ids) + len(rollouts[k].response_ids) for k in mini],
                                        cfg.micro_batch_tokens):
                batch = pack([rollouts[k].prompt_ids for k in micro], [rollouts[k].response_ids for k in micro],
                             [rollouts[k].logprobs for k in micro], [advantages[k] for k in micro], pad)
                trainable = torch.tensor([rollouts[k].trainable for k in micro], dtype=torch.float32)
                if cfg.kl_coef and self.ref_model is not None:
                    with torch.no_grad():
                        batch.ref_logprobs, _ = token_logprobs(self.ref_model, batch, cfg.temperature, with_entropy=False)
                grad_ok = bool(trainable.any())
                with torch.set_grad_enabled(grad_ok):
                    logp, entropy = token_logprobs(self.model, batch, cfg.temperature, with_entropy=True)
                    # frozen responses: forward only (their entropy is logged), no gradient
                    batch.response_mask = batch.response_mask * trainable[:, None]
                    if grad_ok:
                        loss, s = ppo_loss(logp, batch, cfg.clip_ratio, entropy, cfg.entropy_coef, cfg.kl_coef,
                                           token_normalizer=n_tokens)
                        loss.backward()
                        for key, val in s.items():
                            out[key].append(val)
                ent = entropy.detach()
                for row, k in enumerate(micro):
                    L = len(rollouts[k].response_ids)
                    first = len(rollouts[k].prompt_ids) - 1
                    vals = ent[row, first:first + L]
                    g = rollouts[k].group
                    ent_sum[g] += float(vals.mean())
                    ent_tok[g] += 1
            if train_ids:
                norm = torch.nn.utils.clip_grad_norm_(self.model.parameters(), cfg.grad_clip)
                out["grad_norm"].append(float(norm))
                self.optimizer.step()
        self.model.eval()
        stats = {f"loss/{k}": _mean(v) for k, v in out.items() if k != "grad_norm"}
        stats["grad_norm"] = _mean(out["grad_norm"]) if out["grad_norm"] else 0.0
        for g in ent_sum:
            t, role = g.split("/")
            stats[f"entropy_full/{role}/{t}"] = ent_sum[g] / ent_tok[g]
        if ent_tok:
            stats["entropy_full/all"] = sum(ent_sum.values()) / sum(ent_tok.values())
        stats["n_sequences"] = len(rollouts)
        stats["n_trained_sequences"] = sum(r.trainable and bool(r.response_ids) for r in rollouts)
        return stats


def _micro_batches(indices: list[int], lengths: list[int], token_budget: int):
    """Chunks whose padded size (count x longest) stays within the budget (at least one each)."""
    batch, longest = [], 0
    for k, n in sorted(zip(indices, lengths), key=lambda kv: kv[1]):
        if batch and max(longest, n) * (len(batch) + 1) > token_budget:
            yield batch
            batch, longest = [], 0
        batch.append(k)
        longest = max(longest, n)
    if batch:
        yield batch


def sampled_token_entropy_mean(logprobs: list[list[float]]) -> float:
    """The seed paper's Eq. 1: mean over responses of the token-mean of -log pi(y_t)."""
    per_response = [-sum(lp) / len(lp) for lp in logprobs if lp]
    return sum(per_response) / len(per_response) if per_response else 0.0


def _mean(xs) -> float:
    xs = [float(x) for x in xs]
    return sum(xs) / len(xs) if xs else 0.0
