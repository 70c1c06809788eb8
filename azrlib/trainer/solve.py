"""The solver phase of a step: for each task type, `batch_size` tasks from the run's task source
(self-play: last step's new tasks first, then uniform from the buffer, as AZR; RLVR/SFT: uniform
from a fixed verified pool), one sample each at the rollout temperature, graded by
`tasks.grade` (format gate, parse, sandbox verification) and rewarded by AZR's Eq. 6.

AZR samples each type's batch separately; here the three types' prompts go to the engine in one
call and one sandbox batch (same tasks, same policy, so the same distribution; the draws differ
from a per-type call because the engine's random stream is shared by the whole phase).
"""

from __future__ import annotations

import json
import random
import time

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


def solve(runner, step: int) -> PhaseResult:
    """The solver phase for every task type of the run, on this rank: each type's tasks are drawn
    in the run's type order (the shared RNG: the same lists on every rank), all prompts are
    sampled in one engine call, then each type is graded and reported as before (results merged
    in type order)."""
    cfg = runner.cfg
    t0 = time.perf_counter()
    batches = []  # (type, all tasks of the type, this rank's indices, index of its first prompt)
    prompts: list[str] = []
    for t in cfg.task_types:
        all_tasks = runner.solver_tasks(t)
        mine = list(range(dist.rank(), len(all_tasks), dist.world()))
        batches.append((t, all_tasks, mine, len(prompts)))
        prompts += [solve_prompt(all_tasks[j], style=cfg.prompt_style, n_shown=cfg.n_shown) for j in mine]
    samples = runner.sample(prompts, 1, cfg.max_new_tokens_solve, runner.phase_seed(step, 10))
    timings = {"solve": time.perf_counter() - t0}
    t0 = time.perf_counter()
    per_type = [(t, all_tasks, [(j, s[0]) for j, s in zip(mine, samples[first: first + len(mine)]) if s])
                for t, all_tasks, mine, first in batches]
    everything = [(all_tasks[j], c.text) for _, all_tasks, pairs in per_type for j, c in pairs]
    graded = grade(runner.executor, [x[0] for x in everything], [x[1] for x in everything], n_shown=cfg.n_shown)
    timings["verify"] = time.perf_counter() - t0
    result = PhaseResult(timings=timings)
    for t, all_tasks, pairs in per_type:
        result = result.merge(_type_result(step, t, all_tasks, pairs, graded[: len(pairs)]))
        graded = graded[len(pairs):]
    return result


def _type_result(step: int, t: str, all_tasks: list[Task], pairs: list, graded: list) -> PhaseResult:
    """One type's rollouts and metrics from its graded samples (`pairs`: (task index, completion))."""
    result = PhaseResult()
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
