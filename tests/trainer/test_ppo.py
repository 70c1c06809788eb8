"""PPO pieces against direct computations: packing, chunked log-probs/entropy, the clipped loss."""

import torch
import torch.nn.functional as F

from tiny_model import build_tiny_model
from azrlib.trainer.ppo import pack, ppo_loss, token_logprobs


def _model():
    torch.manual_seed(0)
    return build_tiny_model(97, hidden_size=32, num_layers=2, num_heads=4, num_kv_heads=2, eos_token_id=0).float()


def _batch():
    prompts = [[5, 6, 7], [8, 9], [10, 11, 12, 13]]
    responses = [[20, 21], [22, 23, 24, 25], [26]]
    olds = [[-1.0, -2.0], [-0.5, -0.5, -0.5, -0.5], [-3.0]]
    return pack(prompts, responses, olds, [1.0, -0.5, 2.0], pad_id=0), prompts, responses


def test_pack_marks_exactly_the_response_tokens():
    b, prompts, responses = _batch()
    for row, (p, r) in enumerate(zip(prompts, responses)):
        idx = b.response_mask[row].nonzero().flatten().tolist()
        assert idx == list(range(len(p) - 1, len(p) - 1 + len(r)))
        assert b.input_ids[row, 1:][idx].tolist() == r


def test_chunked_logprobs_and_entropy_equal_a_direct_forward():
    model = _model()
    b, prompts, responses = _batch()
    for chunk in (1, 3, 4096):
        logp, ent = token_logprobs(model, b, temperature=0.7, chunk_tokens=chunk)
        for row, (p, r) in enumerate(zip(prompts, responses)):
            ids = torch.tensor([p + r])
            logits = model(input_ids=ids).logits[0, :-1].float() / 0.7
            lp = F.log_softmax(logits, -1)
            start = len(p) - 1
            expect = lp[torch.arange(start, start + len(r)), torch.tensor(r)]
            assert torch.allclose(logp[row, start:start + len(r)], expect, atol=1e-5)
            h = torch.distributions.Categorical(logits=logits[start:start + len(r)]).entropy()
            assert torch.allclose(ent[row, start:start + len(r)], h, atol=1e-5)


def test_chunked_gradient_equals_unchunked():
    b, _, _ = _batch()
    grads = []
    for chunk in (2, 4096):
        model = _model()
        logp, ent = token_logprobs(model, b, chunk_tokens=chunk)
        loss, _ = ppo_loss(logp, b, 0.2, ent, entropy_coef=0.01)
        loss.backward()
        grads.append(torch.cat([p.grad.flatten() for p in model.parameters() if p.grad is not None]))
    assert torch.allclose(grads[0], grads[1], atol=1e-6)


def test_ppo_loss_clips_as_specified():
    b, _, _ = _batch()
    logp = b.old_logprobs.clone()
    logp[0, 2] += 1.0  # ratio e on a positive-advantage token: clipped at 1.2
    loss, stats = ppo_loss(logp, b, clip=0.2)
    mask = b.response_mask
    ratio = torch.exp(logp - b.old_logprobs)
    expect = -torch.min(ratio * b.advantages, ratio.clamp(0.8, 1.2) * b.advantages)
    assert torch.isclose(loss, (expect * mask).sum() / mask.sum())
    assert abs(stats["clip_frac"] - 1 / mask.sum().item()) < 1e-6
