"""Rewards of AZR's two roles and the format-aware composition (AZR paper Eq. 4-6).

Proposer learnability from the solve rate p of n solver samples on a valid proposed task:
- `azr`      (AZR paper Eq. 4, default): 1 - p if 0 < p < 1, else 0;
- `azr_code` (the shipped AZR code, its issue #37): as `azr`, but p in {0, 1} gives -0.5;
- `band`     (the seed paper's Eq. 3, as R-Zero's paper): 1 - 2|p - 0.5| if 0 < p < 1, else 0
  (peaks at p = 0.5; R-Zero's code uses min(p, 1 - p), half this scale).
Solver: 1 if correct else 0.
Composition (Eq. 6): the role reward when the response is passable; -0.5 when it is well formatted
but wrong (solver) or an invalid proposal; -1 on a format error. For invalid but well-formatted
proposals the paper's -0.5 is the default; `invalid_proposal_reward=-1.0` gives the shipped code's
choice ("Invalid or badly formatted proposal: -1").
"""

from __future__ import annotations

PROPOSER_REWARDS = ("azr", "azr_code", "band")
FORMAT_ERROR_REWARD = -1.0
WRONG_BUT_FORMATTED_REWARD = -0.5


def learnability_reward(p: float, variant: str = "azr") -> float:
    """Reward of a valid proposal whose solver solve rate is p (0 <= p <= 1)."""
    if variant not in PROPOSER_REWARDS:
        raise ValueError(f"proposer reward must be one of {PROPOSER_REWARDS}, got {variant!r}")
    if not 0.0 <= p <= 1.0:
        raise ValueError(f"solve rate must lie in [0, 1], got {p}")
    trivial = p == 0.0 or p == 1.0
    if variant == "azr":
        return 0.0 if trivial else 1.0 - p
    if variant == "azr_code":
        return -0.5 if trivial else 1.0 - p
    return 0.0 if trivial else 1.0 - 2.0 * abs(p - 0.5)


def solver_reward(correct: bool) -> float:
    return 1.0 if correct else 0.0


def solver_total_reward(format_ok: bool, correct: bool) -> float:
    """Eq. 6 for a solver response."""
    if not format_ok:
        return FORMAT_ERROR_REWARD
    return solver_reward(True) if correct else WRONG_BUT_FORMATTED_REWARD


def proposer_total_reward(format_ok: bool, valid: bool, solve_rate: float | None, variant: str = "azr",
                          invalid_proposal_reward: float = WRONG_BUT_FORMATTED_REWARD) -> float:
    """Eq. 6 for a proposer response: learnability when valid, else a penalty."""
    if not format_ok:
        return FORMAT_ERROR_REWARD
    if not valid:
        return invalid_proposal_reward
    if solve_rate is None:
        raise ValueError("a valid proposal needs its solve rate")
    return learnability_reward(solve_rate, variant)
