"""The proposer phase of a self-play step: propose, validate, measure learnability, reward.

For each task type, `batch_size` proposer prompts with K references from that type's buffer
(induction: a program from the deduction/abduction buffers), sampled once at the rollout
temperature; every proposal is parsed and validated in the sandbox. A valid proposal whose solve
prompt cannot fit the context (with `max_new_tokens_solve`) is rejected (`solve_prompt_too_long`).
Each valid proposal then gets `n_solver_samples` solver samples from the current policy at the
rollout temperature (AZR's master branch accidentally sampled these greedily); their solve rate p
gives the proposer reward (`azr`, `azr_code` or `band`). Every rated valid proposal joins its buffer
(AZR), or with `keep_tasks: learnable` only those with 0 < p < 1 (a departure the tiny preset takes:
unsolvable self-proposed induction tasks made the solver's induction worse). A valid proposal left without samples (the
engine failed) is logged (`no_learnability_samples`) and left out of the step: no reward, no
gradient, not added to the buffer. The learnability samples are not trained on.
"""

from __future__ import annotations

import time
from collections import Counter, defaultdict

from azrlib.rewards import learnability_reward, proposer_total_reward
from azrlib.tasks.grade import grade_samples
from azrlib.tasks.parsing import format_ok, parse_proposal
from azrlib.tasks.templates import propose_prompt, solve_prompt
from azrlib.tasks.types import Task
from azrlib.tasks.validation import Validation, validate_induction, validate_triplets
from azrlib.trainer import dist
from azrlib.trainer.rollouts import PhaseResult, Rollout, mean, sampled_token_entropy_mean

REWARD_BINS = (-1.0, -0.5, 0.0, 0.25, 0.5, 0.75, 1.0)
TOO_LONG = "solve_prompt_too_long"
UNRATED = "no_learnability_samples"
UNSTABLE_GOLD = "gold_not_reproduced"  # the gold changed when re-run for grading (validation passed)


def propose(runner, step: int, with_learnability: bool = True) -> PhaseResult:
    """One proposer phase on this rank (`runner`: the StepRunner: cfg, rng, buffers, executor,
    guard, sampling). Without learnability (buffer seeding) it returns only the new valid tasks."""
    cfg = runner.cfg
    timings: dict[str, float] = defaultdict(float)
    t0 = time.perf_counter()
    # the full list of prompts comes from the shared RNG; this rank takes k % world == rank
    prompts, meta = [], []
    for t in cfg.task_types:
        for _ in range(cfg.batch_size):
            refs = runner.buffers[t].sample_references(cfg.n_references, runner.rng)
            program = None
            if t == "induction":
                pool = [x for tt in ("deduction", "abduction") if tt in runner.buffers for x in runner.buffers[tt].tasks]
                program = runner.rng.choice(pool or list(runner.buffers[t].tasks))
            prompts.append(propose_prompt(t, refs, style=cfg.prompt_style, banned_modules=cfg.banned_modules,
                                          program_for_induction=program, allow_helpers=cfg.allow_helpers))
            meta.append((t, program))
    mine = list(range(dist.rank(), len(prompts), dist.world()))
    completions = runner.sample([prompts[k] for k in mine], 1, cfg.max_new_tokens_propose, runner.phase_seed(step, 0))
    timings["propose"] += time.perf_counter() - t0

    t0 = time.perf_counter()
    kept = [(k, comps) for k, comps in zip(mine, completions) if comps]
    mine = [k for k, _ in kept]
    parsed = []
    for k, comps in kept:
        t, program = meta[k]
        c = comps[0]
        parsed.append((t, program, c, format_ok(c.text, prompt_ends_with_think=True),
                       parse_proposal(t, c.text, allow_helpers=cfg.allow_helpers,
                                      allow_extra_inputs=cfg.allow_extra_inputs)))
    validations = _validate(runner, step, parsed)
    timings["validate"] += time.perf_counter() - t0

    valid_idx = [j for j in validations if validations[j].ok]
    if not with_learnability:
        new_tasks: dict[str, list[Task]] = {t: [] for t in cfg.task_types}
        for j in valid_idx:
            new_tasks[validations[j].task.task_type].append(validations[j].task)
        new_tasks = {t: [x for part in dist.gather_lists(v) for x in part] for t, v in new_tasks.items()}
        return PhaseResult(new_tasks=new_tasks, timings=dict(timings))

    # learnability: n solver samples per valid proposal, at the rollout temperature
    t0 = time.perf_counter()
    tasks = [validations[j].task for j in valid_idx]
    solve_prompts = [solve_prompt(task, style=cfg.prompt_style, n_shown=cfg.n_shown) for task in tasks]
    samples = runner.sample(solve_prompts, cfg.n_solver_samples, cfg.max_new_tokens_solve, runner.phase_seed(step, 1))
    timings["learnability_sample"] += time.perf_counter() - t0
    t0 = time.perf_counter()
    graded = grade_samples(runner.executor, tasks, samples, n_shown=cfg.n_shown)
    correct = {j: [g.correct for g in gs] for j, gs in zip(valid_idx, graded)}
    # a gold that does not reproduce when re-run for grading makes the proposal invalid
    unstable = {j for j, gs in zip(valid_idx, graded) if not all(g.gold_ok for g in gs)}
    timings["learnability_verify"] += time.perf_counter() - t0

    result = PhaseResult(timings=dict(timings))
    records = []
    for j, (k, (t, program, c, fmt, p)) in enumerate(zip(mine, parsed)):
        v = validations.get(j)
        valid = bool(v is not None and v.ok) and j not in unstable
        rate = sum(correct[j]) / len(correct[j]) if valid and correct.get(j) else None
        reason = "format" if not fmt else (p.reason if not p.ok else (v.reason if v is not None else "ok"))
        if j in unstable:
            reason = UNSTABLE_GOLD
        if valid and rate is None:  # no learnability samples: logged, left out of the step
            reward, reason = None, UNRATED
        else:
            reward = proposer_total_reward(fmt, valid, rate, cfg.proposer_reward, cfg.invalid_proposal_reward)
            result.rollouts.append(Rollout(t, "propose", list(c.prompt_token_ids), list(c.token_ids),
                                           list(c.logprobs), reward, prompt_key=f"p{step}-{k}",
                                           trainable=not cfg.freeze_proposer))
        task = v.task if valid else None
        records.append({
            "step": step, "task_type": t, "valid": valid, "format_ok": fmt,
            "reason": reason if not valid or rate is None else "ok", "solve_rate": rate, "reward": reward,
            "response_length": len(c.token_ids),
            "program": task.program if task else (p.program if p.ok else (program.program if program else None)),
            "inputs": list(task.inputs) if task else list(p.inputs),
            "outputs": list(task.outputs) if task else [],
            "message": task.message if task else p.message,
            "_entropy": sampled_token_entropy_mean([c.logprobs]),
            "_task": task.to_json() if task else None,
        })
    records = dist.interleave(dist.gather_lists(records))  # global prompt order, on every rank
    result.new_tasks = {t: [] for t in cfg.task_types}
    per_type = defaultdict(lambda: defaultdict(list))
    for rec in records:
        t = rec["task_type"]
        g = per_type[t]
        g["valid"].append(rec["valid"])
        g["format"].append(rec["format_ok"])
        g["length"].append(rec["response_length"])
        g["entropy"].append(rec.pop("_entropy"))
        task = rec.pop("_task")
        if rec["reward"] is not None:
            g["reward"].append(rec["reward"])
        if rec["solve_rate"] is not None:
            g["solve_rate"].append(rec["solve_rate"])
            g["learnability"].append(learnability_reward(rec["solve_rate"], cfg.proposer_reward))
            if _kept(rec["solve_rate"], cfg.keep_tasks):
                result.new_tasks[t].append(Task.from_json(task))
        result.task_rows.append(rec)
    for t, g in per_type.items():
        result.stats.update(_type_stats(t, g))
    unrated = sum(r["reason"] == UNRATED for r in records)
    if unrated:
        result.stats["skipped/unrated_proposals"] = unrated
    return result


def _kept(rate: float, rule: str) -> bool:
    """Whether a rated valid proposal joins the buffer (`keep_tasks`): AZR keeps every one;
    `learnable` only those with 0 < p < 1 (docs/experiments/tiny_base.md, "keep_tasks")."""
    return rule == "all" or 0 < rate < 1


def _validate(runner, step: int, parsed: list) -> dict[int, Validation]:
    """Sandbox validation of the parsed proposals (index into `parsed` -> Validation), then the
    context test of each valid task's solve prompt."""
    cfg = runner.cfg
    triplet_idx = [j for j, (t, _, _, _, p) in enumerate(parsed) if p.ok and t != "induction"]
    induction_idx = [j for j, (t, _, _, _, p) in enumerate(parsed) if p.ok and t == "induction"]
    validations: dict[int, Validation] = {}
    for j, v in zip(triplet_idx, validate_triplets(
            runner.executor, [(parsed[j][0], parsed[j][4].program, parsed[j][4].input) for j in triplet_idx],
            runner.vcfg, step=step)):
        validations[j] = v
    for j, v in zip(induction_idx, validate_induction(
            runner.executor, [(parsed[j][1].program, list(parsed[j][4].inputs), parsed[j][4].message)
                              for j in induction_idx], runner.vcfg, step=step)):
        validations[j] = v
    valid_idx = [j for j in validations if validations[j].ok]
    solve_prompts = [solve_prompt(validations[j].task, style=cfg.prompt_style, n_shown=cfg.n_shown) for j in valid_idx]
    for j, ok in zip(valid_idx, runner.guard.fits(solve_prompts, cfg.max_new_tokens_solve)):
        if not ok:
            validations[j] = Validation(False, TOO_LONG, None,
                                        f"solve prompt + {cfg.max_new_tokens_solve} new tokens > {runner.guard.limit}")
    return validations


def _type_stats(t: str, g: dict) -> dict:
    stats = {
        f"valid_rate/{t}": mean(g["valid"]),
        f"format_rate/{t}/propose": mean(g["format"]),
        f"reward/{t}/propose": mean(g["reward"]),
        f"response_length/{t}/propose": mean(g["length"]),
        f"entropy/propose/{t}": mean(g["entropy"]),
        f"learnability/{t}/solve_rate": mean(g["solve_rate"]) if g["solve_rate"] else None,
        f"learnability/{t}/reward": mean(g["learnability"]) if g["learnability"] else None,
    }
    hist = Counter(min(REWARD_BINS, key=lambda b: abs(b - r)) for r in g["reward"])
    for b in REWARD_BINS:
        stats[f"proposer_reward_hist/{t}/{b:g}"] = hist.get(b, 0)
    return stats
