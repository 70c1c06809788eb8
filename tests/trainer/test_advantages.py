"""Advantage estimators against direct token-level computations."""

import random

import numpy as np
import pytest

from azrlib.trainer.advantages import compute_advantages, zero_advantage_fraction


def _token_whiten(rewards, lengths):
    tokens = np.concatenate([np.full(n, r, dtype=float) for r, n in zip(rewards, lengths)])
    mean, var = tokens.mean(), tokens.var(ddof=1)
    return [(r - mean) / np.sqrt(var + 1e-8) for r in rewards]


def test_trr_whitens_each_group_over_tokens():
    rng = random.Random(0)
    rewards = [rng.choice([-1, -0.5, 0, 0.25, 1]) for _ in range(40)]
    lengths = [rng.randint(1, 30) for _ in range(40)]
    groups = [rng.choice(["deduction/solve", "abduction/propose", "induction/solve"]) for _ in range(40)]
    adv = compute_advantages(rewards, lengths, groups, [str(k) for k in range(40)], "trr++")
    for g in set(groups):
        idx = [k for k in range(40) if groups[k] == g]
        expected = _token_whiten([rewards[k] for k in idx], [lengths[k] for k in idx])
        assert np.allclose([adv[k] for k in idx], expected)


def test_reinforce_pp_uses_one_global_baseline():
    rewards, lengths = [1.0, 0.0, 0.5, -1.0], [3, 5, 2, 7]
    adv = compute_advantages(rewards, lengths, ["a", "a", "b", "b"], ["p"] * 4, "reinforce++")
    assert np.allclose(adv, _token_whiten(rewards, lengths))


def test_grpo_per_prompt_and_singletons_get_zero():
    adv = compute_advantages([1, 0, 1, 1, 0.5], [1] * 5, ["g"] * 5, ["p", "p", "q", "q", "r"], "grpo")
    assert adv[0] > 0 > adv[1] and abs(adv[0] + adv[1]) < 1e-9
    assert adv[2] == adv[3] == 0.0 and adv[4] == 0.0


def test_groups_with_identical_rewards_teach_nothing():
    adv = compute_advantages([1, 1, 0, 1], [2, 3, 4, 5], ["a", "a", "b", "b"], list("wxyz"), "trr++")
    assert adv[0] == adv[1] == 0.0
    assert zero_advantage_fraction(adv, ["a", "a", "b", "b"]) == 0.5


def test_unknown_estimator_is_an_error():
    with pytest.raises(ValueError, match="estimator"):
        compute_advantages([1], [1], ["a"], ["p"], "ppo")
