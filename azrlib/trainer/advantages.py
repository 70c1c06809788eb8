"""Advantage estimators: Task-Relative REINFORCE++ (AZR) and the two it is compared with.

Every response carries one scalar reward (outcome reward on the last token, as veRL; with no KL
and gamma = lambda = 1 every token of the response gets the same return). Then:
- `trr++` (AZR): whiten separately within each of the six (task type, role) groups, using the
  *token-weighted* mean and variance of the group (each response counts once per token, as veRL's
  masked whitening over the batch of that group);
- `reinforce++`: the same whitening, once over all responses of the step (one global baseline);
- `grpo`: per-prompt groups (responses to the same prompt), (r - mean) / (std + eps) with
  unweighted per-group statistics; groups of one get advantage 0.
Responses are described by parallel lists so the estimator knows nothing about models.
"""

from __future__ import annotations

import math
from collections import defaultdict

ESTIMATORS = ("trr++", "reinforce++", "grpo")
EPS = 1e-8  # veRL's masked_whiten


def whiten_token_weighted(rewards: list[float], lengths: list[int]) -> list[float]:
    """(r - mean) / sqrt(var + eps) over all response tokens (each response weighted by its
    length), with the unbiased variance over tokens as veRL's masked_whiten."""
    total = sum(lengths)
    if total == 0:
        return [0.0] * len(rewards)
    mean = sum(r * n for r, n in zip(rewards, lengths)) / total
    var = sum(n * (r - mean) ** 2 for r, n in zip(rewards, lengths)) / total
    if total > 1:
        var *= total / (total - 1)
    scale = 1.0 / math.sqrt(var + EPS)
    return [(r - mean) * scale for r in rewards]


def compute_advantages(rewards: list[float], lengths: list[int], groups: list[str],
                       prompt_ids: list[str], estimator: str = "trr++") -> list[float]:
    """One advantage per response. `groups` names each response's (task type, role) group,
    `prompt_ids` its prompt (for grpo)."""
    if estimator not in ESTIMATORS:
        raise ValueError(f"advantage estimator must be one of {ESTIMATORS}, got {estimator!r}")
    n = len(rewards)
    if not (len(lengths) == len(groups) == len(prompt_ids) == n):
        raise ValueError("rewards, lengths, groups and prompt_ids must have the same length")
    if estimator == "reinforce++":
        return whiten_token_weighted(rewards, lengths)
    key_of = groups if estimator == "trr++" else prompt_ids
    members: dict[str, list[int]] = defaultdict(list)
    for k, key in enumerate(key_of):
        members[key].append(k)
    out = [0.0] * n
    for idx in members.values():
        if estimator == "trr++":
            adv = whiten_token_weighted([rewards[k] for k in idx], [lengths[k] for k in idx])
        else:
            rs = [rewards[k] for k in idx]
            if len(rs) < 2:
                adv = [0.0] * len(rs)
            else:
                mean = sum(rs) / len(rs)
                std = math.sqrt(sum((r - mean) ** 2 for r in rs) / (len(rs) - 1))
                adv = [(r - mean) / (std + EPS) for r in rs]
        for k, a in zip(idx, adv):
            out[k] = a
    return out


def zero_advantage_fraction(advantages: list[float], keys: list[str], tol: float = 1e-8) -> float:
    """Fraction of groups (by key) whose advantages are all ~0: groups that teach nothing."""
    groups: dict[str, list[float]] = defaultdict(list)
    for a, k in zip(advantages, keys):
        groups[k].append(a)
    if not groups:
        return 0.0
    return sum(all(abs(a) <= tol for a in v) for v in groups.values()) / len(groups)
