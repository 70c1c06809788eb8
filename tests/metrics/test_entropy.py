"""Full-vocabulary entropy and the sampled-token estimator against direct computations."""

from __future__ import annotations

import math

import pytest
import torch
from torch.distributions import Categorical

from azrlib.metrics.entropy import entropy_summary, masked_average, token_entropy, token_neg_log_prob


def random_batch(seed: int = 0, batch: int = 4, length: int = 9, vocab: int = 37, scale: float = 3.0):
    gen = torch.Generator().manual_seed(seed)
    logits = torch.randn(batch, length, vocab, generator=gen) * scale
    tokens = torch.randint(0, vocab, (batch, length), generator=gen)
    lengths = [length, 5, 1, 7][:batch]
    mask = torch.zeros(batch, length, dtype=torch.bool)
    for b, n in enumerate(lengths):
        mask[b, length - n :] = True  # response tokens at the end, prompt before
    return logits, tokens, mask


@pytest.mark.parametrize("temperature", [1.0, 0.6, 1.7])
def test_token_entropy_matches_categorical(temperature):
    logits, _, _ = random_batch()
    expected = Categorical(logits=logits.double() / temperature).entropy()
    got = token_entropy(logits, temperature=temperature)
    assert got.shape == logits.shape[:-1]
    torch.testing.assert_close(got.double(), expected, atol=1e-5, rtol=1e-5)


def test_temperature_changes_entropy_in_the_right_direction():
    logits, _, _ = random_batch(seed=1)
    cold, warm = token_entropy(logits, 0.5), token_entropy(logits, 2.0)
    assert torch.all(cold < token_entropy(logits, 1.0)) and torch.all(token_entropy(logits, 1.0) < warm)
    with pytest.raises(ValueError, match="temperature"):
        token_entropy(logits, 0.0)


def test_extreme_and_banned_logits_are_stable():
    logits = torch.tensor([[[1e4, 1e4 - 1.0, -1e4, float("-inf")], [0.0, 0.0, float("-inf"), float("-inf")]]])
    got = token_entropy(logits)
    p = torch.softmax(torch.tensor([0.0, -1.0]).double(), dim=0)
    assert got[0, 0].item() == pytest.approx(float(-(p * p.log()).sum()), abs=1e-6)
    assert got[0, 1].item() == pytest.approx(math.log(2), abs=1e-6)
    assert torch.isfinite(token_neg_log_prob(logits, torch.tensor([[1, 0]]))).all()


def test_bf16_logits_are_upcast():
    logits, _, _ = random_batch(seed=2)
    low = logits.bfloat16()
    expected = Categorical(logits=low.double()).entropy()
    torch.testing.assert_close(token_entropy(low).double(), expected, atol=1e-5, rtol=1e-5)


def test_masking_skips_positions_and_chunking_is_exact():
    logits, tokens, mask = random_batch(seed=3)
    full = token_entropy(logits, 0.8)
    masked = token_entropy(logits, 0.8, mask=mask)
    assert torch.all(masked[~mask] == 0)
    torch.testing.assert_close(masked[mask], full[mask])
    for chunk in (1, 2, 5, 1000):
        torch.testing.assert_close(token_entropy(logits, 0.8, mask=mask, chunk_positions=chunk), masked, rtol=0, atol=1e-6)
        torch.testing.assert_close(
            token_neg_log_prob(logits, tokens, 0.8, mask=mask, chunk_positions=chunk),
            token_neg_log_prob(logits, tokens, 0.8, mask=mask),
            rtol=0,
            atol=1e-6,
        )
    # The element budget drives the chunk size when no explicit size is given.
    torch.testing.assert_close(token_entropy(logits, 0.8, mask=mask, max_chunk_elements=40), masked, rtol=0, atol=1e-6)


def test_neg_log_prob_matches_log_softmax():
    logits, tokens, _ = random_batch(seed=4)
    for temperature in (1.0, 0.7):
        expected = -torch.log_softmax(logits.double() / temperature, -1).gather(-1, tokens.unsqueeze(-1)).squeeze(-1)
        torch.testing.assert_close(token_neg_log_prob(logits, tokens, temperature).double(), expected, atol=1e-5, rtol=1e-5)
    with pytest.raises(ValueError, match="token ids"):
        token_neg_log_prob(logits, tokens + 100)


def test_averaging_schemes_against_explicit_loops():
    logits, tokens, mask = random_batch(seed=5)
    values = token_entropy(logits, mask=mask)
    per_response = []
    pooled, count = 0.0, 0
    for b in range(values.shape[0]):
        row = [values[b, t].item() for t in range(values.shape[1]) if mask[b, t]]
        per_response.append(sum(row) / len(row))
        pooled += sum(row)
        count += len(row)
    assert masked_average(values, mask, "seq_mean_token_mean") == pytest.approx(sum(per_response) / len(per_response))
    assert masked_average(values, mask, "token_mean") == pytest.approx(pooled / count)
    # The two schemes differ when responses have different lengths.
    assert masked_average(values, mask, "token_mean") != pytest.approx(masked_average(values, mask, "seq_mean_token_mean"))


def test_averaging_ignores_empty_responses_and_garbage_outside_mask():
    values = torch.tensor([[1.0, 3.0, float("nan")], [float("inf"), 0.0, 0.0], [5.0, 5.0, 5.0]])
    mask = torch.tensor([[True, True, False], [False, False, False], [True, False, False]])
    assert masked_average(values, mask, "seq_mean_token_mean") == pytest.approx((2.0 + 5.0) / 2)
    assert masked_average(values, mask, "token_mean") == pytest.approx(9.0 / 3)
    with pytest.raises(ValueError, match="no response tokens"):
        masked_average(values, torch.zeros_like(mask), "token_mean")
    with pytest.raises(ValueError, match="unknown averaging scheme"):
        masked_average(values, mask, "mean")


def test_sampled_estimator_converges_to_the_entropy():
    """Tokens drawn from pi itself: mean -log pi(y) is an unbiased estimate of H(pi)."""
    gen = torch.Generator().manual_seed(11)
    vocab, n_tokens = 30, 40_000
    for temperature in (1.0, 0.7):
        base_logits = torch.randn(vocab, generator=gen) * 2
        probs = torch.softmax(base_logits.double() / temperature, -1)
        true_entropy = float(-(probs * probs.log()).sum())
        tokens = torch.multinomial(probs, n_tokens, replacement=True, generator=gen)
        logits = base_logits.expand(1, n_tokens, vocab)
        mask = torch.ones(1, n_tokens, dtype=torch.bool)
        summary = entropy_summary(logits, mask, tokens.unsqueeze(0), temperature=temperature)
        surprisal = -probs.log()
        standard_error = float(((surprisal - true_entropy) ** 2 * probs).sum().sqrt()) / math.sqrt(n_tokens)
        assert abs(summary["sampled_token_mean"] - true_entropy) < 5 * standard_error
        assert summary["full_token_mean"] == pytest.approx(true_entropy, abs=1e-5)

    # Sampling at a lower temperature than the policy is evaluated at biases the estimate low.
    probs_cold = torch.softmax(base_logits.double() / 0.5, -1)
    cold_tokens = torch.multinomial(probs_cold, n_tokens, replacement=True, generator=gen)
    biased = entropy_summary(base_logits.expand(1, n_tokens, vocab), mask, cold_tokens.unsqueeze(0), temperature=1.0)
    assert biased["sampled_token_mean"] < biased["full_token_mean"] - 0.1


def test_summary_keys_and_shape_errors():
    logits, tokens, mask = random_batch(seed=6)
    summary = entropy_summary(logits, mask, tokens)
    assert set(summary) == {"full_seq_mean_token_mean", "full_token_mean", "sampled_seq_mean_token_mean", "sampled_token_mean"}
    with pytest.raises(ValueError, match="mask shape"):
        token_entropy(logits, mask=mask[:, :-1])
    with pytest.raises(ValueError, match="batch, T, V"):
        entropy_summary(logits[0], mask[0])


def test_sampled_token_entropy_mean_from_lists_matches_the_masked_average():
    from azrlib.metrics.entropy import masked_average, sampled_token_entropy_mean
    lists = [[-0.5, -1.5], [-2.0], [], [-0.1, -0.2, -0.3]]
    T = max(len(x) for x in lists)
    values = torch.zeros(len(lists), T)
    mask = torch.zeros(len(lists), T, dtype=torch.bool)
    for b, lp in enumerate(lists):
        values[b, :len(lp)] = -torch.tensor(lp)
        mask[b, :len(lp)] = True
    expected = masked_average(values, mask, "seq_mean_token_mean")
    assert abs(sampled_token_entropy_mean(lists) - expected) < 1e-6
    assert abs(expected - (1.0 + 2.0 + 0.2) / 3) < 1e-6
    assert sampled_token_entropy_mean([[], []]) == 0.0
