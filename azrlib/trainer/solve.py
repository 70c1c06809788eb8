"""The solver phase of a step, for one task type: `batch_size` tasks from the run's task source
(self-play: last step's new tasks first, then uniform from the buffer, as AZR; RLVR/SFT: uniform
from a fixed verified pool), one sample each at the rollout temperature, graded by
`tasks.grade` (format gate, parse, sandbox verification) and rewarded by AZR's Eq. 6.
"""

from __future__ import annotations

import json
import random
import time
from collections import defaultdict

from azrlib.tasks.buffer import TaskBuffer
from azrlib.tasks.grade import grade
from azrlib.tasks.templates import solve_prompt
from azrlib.tasks.types import Task
from azrlib.trainer import dist
from azrlib.trainer.rollouts import PhaseResult, Rollout, mean, sampled_token_entropy_mean


class BufferTasks:
    """Self-play's solver tasks: the type's buffer, last step's new tasks first (AZR)."""

    proposes = True

    def __init__(self, buffers: dict[str, TaskBuffer]):
        self.buffers = buffers

    def solver_batch(self, t: str, n: int, rng: random.Random, newest: list[Task]) -> list[Task]:
        return self.buffers[t].solver_batch(n, rng, newest_first=newest)


class FixedTasks:
    """RLVR/SFT's solver tasks: drawn uniformly (with replacement) from a fixed pool per type."""

    proposes = False

    def __init__(self, pool: dict[str, list[Task]]):
        self.pool = pool

    def solver_batch(self, t: str, n: int, rng: random.Random, newest: list[Task]) -> list[Task]:
        pool = self.pool.get(t) or []
        if not pool:
            return []
        return [rng.choice(pool) for _ in range(n)]


def solve(runner, step: int, t: str, k: int) -> PhaseResult:
    """The solver phase for task type `t` (the k-th of the run's types) on this rank."""
    cfg = runner.cfg
    timings: dict[str, float] = defaultdict(float)
    t0 = time.perf_counter()
    all_tasks = runner.solver_tasks(t)  # shared RNG: the same list on every rank
    mine = list(range(dist.rank(), len(all_tasks), dist.world()))
    prompts = [solve_prompt(all_tasks[j], style=cfg.prompt_style, n_shown=cfg.n_shown) for j in mine]
    samples = runner.sample(prompts, 1, cfg.max_new_tokens_solve, runner.phase_seed(step, 10 + k))
    timings["solve"] += time.perf_counter() - t0
    t0 = time.perf_counter()
    pairs = [(j, s[0]) for j, s in zip(mine, samples) if s]
    graded = grade(runner.executor, [all_tasks[j] for j, _ in pairs], [c.text for _, c in pairs], n_shown=cfg.n_shown)
    timings["verify"] += time.perf_counter() - t0
    result = PhaseResult(timings=dict(timings))
    records, stale = [], []
    for (j, c), g in zip(pairs, graded):
        if not g.gold_ok:  # the task's gold no longer reproduces: no reward to learn from
            stale.append(all_tasks[j].to_json())
            continue
        result.rollouts.append(Rollout(t, "solve", list(c.prompt_token_ids), list(c.token_ids), list(c.logprobs),
                                       g.reward, prompt_key=f"s{step}-{t}-{j}"))
        records.append((g.correct, g.format_ok, g.reward, len(c.token_ids), sampled_token_entropy_mean([c.logprobs])))
    records = dist.interleave(dist.gather_lists(records))
    seen = set()
    for js in dist.interleave(dist.gather_lists(stale)):
        key = json.dumps(js, sort_keys=True)
        if key not in seen:
            seen.add(key)
            result.stale_tasks.append(Task.from_json(js))
    if records:
        result.stats = {
            f"solve_rate/{t}": mean([x[0] for x in records]),
            f"format_rate/{t}/solve": mean([x[1] for x in records]),
            f"reward/{t}/solve": mean([x[2] for x in records]),
            f"response_length/{t}/solve": mean([x[3] for x in records]),
            f"entropy/solve/{t}": mean([x[4] for x in records]),
        }
    if result.stale_tasks:  # written only when it happens, so older runs' metrics are unchanged
        result.stats[f"skipped/stale_gold/{t}"] = len(result.stale_tasks)
    return result
