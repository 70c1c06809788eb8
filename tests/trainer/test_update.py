"""The packed update (azrlib.trainer.update) against the padded reference (ppo.pack/token_logprobs/ppo_loss):
same log-probs, entropies, loss and gradients (fp32, atol 1e-5), for PPO and SFT, with grouped-query
heads, a temperature, frozen rows and chunked logits; and the packed attention never attends
across sequences."""

import types

import pytest
import torch

from tiny_model import build_tiny_model
from azrlib.trainer import update
from azrlib.trainer.ppo import pack, ppo_loss, token_logprobs

PROMPTS = [[5, 6, 7], [8, 9], [10, 11, 12, 13, 14, 15], [16]]
RESPONSES = [[20, 21], [22, 23, 24, 25, 26], [27], [28, 29, 30]]
OLDS = [[-1.0, -2.0], [-0.5, -0.4, -0.3, -0.2, -0.1], [-3.0], [-1.5, -1.0, -0.5]]
ADV = [1.0, -0.5, 2.0, 0.3]
TRAINABLE = [True, True, False, True]


def _model(seed=0):
    torch.manual_seed(seed)
    return build_tiny_model(97, hidden_size=48, num_layers=2, num_heads=6, num_kv_heads=2, eos_token_id=0).float()


def _grads(model):
    return torch.cat([p.grad.flatten() for p in model.parameters() if p.grad is not None])


def _padded(model, temperature, n_tokens, entropy_coef):
    b = pack(PROMPTS, RESPONSES, OLDS, ADV, pad_id=0)
    b.response_mask = b.response_mask * torch.tensor(TRAINABLE, dtype=torch.float32)[:, None]
    logp, ent = token_logprobs(model, b, temperature)
    loss, stats = ppo_loss(logp, b, 0.2, ent, entropy_coef, token_normalizer=n_tokens)
    loss.backward()
    _padded.stats = stats
    rows = [(k, len(p) - 1, len(r)) for k, (p, r) in enumerate(zip(PROMPTS, RESPONSES))]
    flat = lambda t: torch.cat([t[k, s:s + n] for k, s, n in rows])  # noqa: E731
    return float(loss.detach()), flat(logp.detach()), flat(ent.detach()), _grads(model)


def _packed(model, temperature, n_tokens, entropy_coef, logit_budget=update.LOGIT_BUDGET):
    b = update.flatten(PROMPTS, RESPONSES, OLDS, ADV, TRAINABLE)
    with update.packed_attention([model.config], b.lengths):
        logp, ent = update.packed_logprobs(model, b, temperature, logit_budget=logit_budget)
        loss, _ = ppo_loss(logp, b, 0.2, ent, entropy_coef, token_normalizer=n_tokens)
        loss.backward()
    return float(loss.detach()), logp.detach(), ent.detach(), _grads(model)


@pytest.mark.parametrize("temperature,budget", [(1.0, update.LOGIT_BUDGET), (0.7, 97 * 3)])
def test_packed_ppo_equals_padded(temperature, budget):
    n_tokens = float(sum(len(r) for r, t in zip(RESPONSES, TRAINABLE) if t))
    ref = _padded(_model(), temperature, n_tokens, 0.01)
    got = _packed(_model(), temperature, n_tokens, 0.01, logit_budget=budget)
    assert abs(ref[0] - got[0]) < 1e-5
    for a, b in zip(ref[1:], got[1:]):
        assert a.shape == b.shape
        assert torch.allclose(a, b, atol=1e-5), (a - b).abs().max()
    assert ref[3].abs().max() > 1e-3  # the gradients compared are not trivially zero


def test_packed_attention_does_not_cross_sequences():
    model = _model()
    b = update.flatten(PROMPTS, RESPONSES)
    with update.packed_attention([model.config], b.lengths), torch.no_grad():
        together, _ = update.packed_logprobs(model, b, with_entropy=False)
    alone = []
    for p, r in zip(PROMPTS, RESPONSES):
        one = update.flatten([p], [r])
        with update.packed_attention([model.config], one.lengths), torch.no_grad():
            alone.append(update.packed_logprobs(model, one, with_entropy=False)[0])
    assert torch.allclose(together, torch.cat(alone), atol=1e-6)
    assert model.config._attn_implementation != update.ATTENTION_NAME  # restored
    with pytest.raises(RuntimeError, match="outside"):
        update._packed_attention(None, torch.zeros(1, 2, 3, 4), torch.zeros(1, 2, 3, 4), torch.zeros(1, 2, 3, 4), None)


def _cfg(**kw):
    base = dict(mini_batch_size=64, micro_batch_tokens=12, clip_ratio=0.2, entropy_coef=0.01, kl_coef=0.0,
                temperature=1.0, amp_bf16=False, grad_clip=1e9)
    return types.SimpleNamespace(**(base | kw))


def test_ppo_epoch_matches_a_padded_mini_batch_step():
    """ppo_epoch over several micro-batches == one padded forward/backward of the whole mini-batch."""
    rollouts = [types.SimpleNamespace(prompt_ids=p, response_ids=r, logprobs=o, trainable=t, group="deduction/solve")
                for p, r, o, t in zip(PROMPTS, RESPONSES, OLDS, TRAINABLE)]
    a, b = _model(), _model()
    opt_a = torch.optim.SGD(a.parameters(), lr=0.1)
    opt_b = torch.optim.SGD(b.parameters(), lr=0.1)
    stats = update.ppo_epoch(a, a, opt_a, _cfg(), rollouts, ADV, seed=3)
    n_tokens = float(sum(len(r) for r, t in zip(RESPONSES, TRAINABLE) if t))
    b.train()
    opt_b.zero_grad()
    _padded(b, 1.0, n_tokens, 0.01)
    opt_b.step()
    for pa, pb in zip(a.parameters(), b.parameters()):
        assert torch.allclose(pa, pb, atol=1e-6)
    assert stats["n_sequences"] == 4 and stats["n_trained_sequences"] == 3
    for key, value in _padded.stats.items():  # one value per mini-batch, not per micro-batch
        assert abs(stats[f"loss/{key}"] - value) < 1e-5, key
    assert set(stats) >= {"loss/pg_loss", "loss/clip_frac", "grad_norm", "entropy_full/solve/deduction"}


def test_sft_step_matches_padded_cross_entropy():
    a, b = _model(), _model()
    opt_a = torch.optim.SGD(a.parameters(), lr=0.1)
    opt_b = torch.optim.SGD(b.parameters(), lr=0.1)
    stats = update.sft_step(a, a, opt_a, _cfg(micro_batch_tokens=8), PROMPTS, RESPONSES)
    loss = stats["loss"]
    assert stats["n_trained_response_tokens"] == sum(len(r) for r in RESPONSES)
    assert stats["n_trained_tokens"] == sum(len(p) + len(r) for p, r in zip(PROMPTS, RESPONSES))
    n = sum(len(r) for r in RESPONSES)
    batch = pack(PROMPTS, RESPONSES, [[0.0] * len(r) for r in RESPONSES], [0.0] * 4, 0)
    b.train()
    logp, _ = token_logprobs(b, batch, 1.0, with_entropy=False)
    ref = -(logp * batch.response_mask).sum() / n
    ref.backward()
    opt_b.step()
    assert abs(loss - float(ref)) < 1e-5
    for pa, pb in zip(a.parameters(), b.parameters()):
        assert torch.allclose(pa, pb, atol=1e-6)


def test_micro_batches_respect_the_token_budget():
    assert update.micro_batches([5, 5, 5, 20, 1], 10) == [[0, 1], [2], [3], [4]]
    assert update.micro_batches([], 10) == []
