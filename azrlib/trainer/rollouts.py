"""The values a training step passes between its phases.

A phase (propose, solve) returns a `PhaseResult`: the trainable responses it produced (`Rollout`),
its metrics, its tasks.jsonl rows, the tasks it added, its wall time per sub-phase and its
recoverable errors. `StepRunner.run_step` merges them in a fixed order, so the metrics record has
the same keys in the same order on every run.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from azrlib.tasks.types import Task


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


@dataclass
class PhaseResult:
    """What one phase of one step produced (on this rank; stats and rows are already global)."""

    rollouts: list[Rollout] = field(default_factory=list)
    stats: dict = field(default_factory=dict)
    task_rows: list[dict] = field(default_factory=list)
    new_tasks: dict[str, list[Task]] = field(default_factory=dict)
    timings: dict[str, float] = field(default_factory=dict)
    stale_tasks: list[Task] = field(default_factory=list)  # golds that stopped reproducing (all ranks)

    def merge(self, other: PhaseResult) -> PhaseResult:
        """This result followed by `other` (timings of the same name add up)."""
        timings = dict(self.timings)
        for k, v in other.timings.items():
            timings[k] = timings.get(k, 0.0) + v
        new_tasks = {t: list(v) for t, v in self.new_tasks.items()}
        for t, v in other.new_tasks.items():
            new_tasks.setdefault(t, []).extend(v)
        return PhaseResult(self.rollouts + other.rollouts, {**self.stats, **other.stats},
                           self.task_rows + other.task_rows, new_tasks, timings,
                           self.stale_tasks + other.stale_tasks)


def sampled_token_entropy_mean(logprobs: list[list[float]]) -> float:
    """The seed paper's Eq. 1 from per-response lists of sampled-token log-probs (as rollout
    engines return them): mean over responses of the token-mean of -log pi(y_t). Empty responses
    are left out, as in `metrics.entropy.masked_average`'s "seq_mean_token_mean"; 0.0 when there
    is none."""
    per_response = [-sum(lp) / len(lp) for lp in logprobs if lp]
    return sum(per_response) / len(per_response) if per_response else 0.0


def mean(xs) -> float:
    xs = [float(x) for x in xs]
    return sum(xs) / len(xs) if xs else 0.0
