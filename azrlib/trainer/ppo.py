"""The policy update: PPO-clip on whole responses with token-mean aggregation (AZR paper branch).

`pack` right-pads prompt+response token sequences into one batch with a mask over the response
tokens; `token_logprobs` runs the model once and returns per-token log-probs of the taken tokens
and the full-vocabulary entropy at each response position (temperature-scaled, as Cui et al. log
it); `ppo_loss` is -min(ratio * A, clip(ratio) * A) averaged over all response tokens of the
micro-batch, minus an optional entropy bonus, plus an optional KL penalty to a reference model
(k3 estimator, off by default as in AZR).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
import torch.utils.checkpoint


@dataclass
class PackedBatch:
    input_ids: torch.Tensor  # [B, T]
    attention_mask: torch.Tensor  # [B, T]
    response_mask: torch.Tensor  # [B, T-1]: 1 where position t predicts a response token t+1
    old_logprobs: torch.Tensor  # [B, T-1] (zeros outside the response)
    advantages: torch.Tensor  # [B, T-1]
    ref_logprobs: torch.Tensor | None = None

    def to(self, device) -> "PackedBatch":
        move = lambda t: None if t is None else t.to(device, non_blocking=True)  # noqa: E731
        return PackedBatch(move(self.input_ids), move(self.attention_mask), move(self.response_mask),
                           move(self.old_logprobs), move(self.advantages), move(self.ref_logprobs))


def pack(prompts: list[list[int]], responses: list[list[int]], old_logprobs: list[list[float]],
         advantages: list[float], pad_id: int) -> PackedBatch:
    """Right-padded batch of prompt+response sequences."""
    seqs = [p + r for p, r in zip(prompts, responses)]
    T = max(len(s) for s in seqs)
    B = len(seqs)
    input_ids = torch.full((B, T), pad_id, dtype=torch.long)
    attention = torch.zeros((B, T), dtype=torch.long)
    resp_mask = torch.zeros((B, T - 1), dtype=torch.float32)
    old = torch.zeros((B, T - 1), dtype=torch.float32)
    adv = torch.zeros((B, T - 1), dtype=torch.float32)
    for b, (p, r, lp, a) in enumerate(zip(prompts, responses, old_logprobs, advantages)):
        n = len(p) + len(r)
        input_ids[b, :n] = torch.tensor(p + r, dtype=torch.long)
        attention[b, :n] = 1
        if r:
            start = len(p) - 1  # position start predicts the first response token
            resp_mask[b, start:start + len(r)] = 1.0
            old[b, start:start + len(r)] = torch.tensor(lp[: len(r)], dtype=torch.float32)
            adv[b, start:start + len(r)] = float(a)
    return PackedBatch(input_ids, attention, resp_mask, old, adv)


def token_logprobs(model, batch: PackedBatch, temperature: float = 1.0, with_entropy: bool = True,
                   chunk_tokens: int = 4096):
    """(log-probs of the next tokens [B, T-1], entropy [B, T-1] or None) in one forward pass.

    The vocabulary projection runs in chunks of positions under activation checkpointing, so the
    full [B, T, vocab] logits never exist at once (151,936 x 16k tokens of fp32 logits would be
    10 GB for a Qwen micro-batch); backward recomputes each chunk's logits."""
    position_ids = (batch.attention_mask.cumsum(-1) - 1).clamp(min=0)
    hidden = model.model(input_ids=batch.input_ids, attention_mask=batch.attention_mask,
                         position_ids=position_ids).last_hidden_state[:, :-1]
    head = model.get_output_embeddings()
    target = batch.input_ids[:, 1:]
    B, T = target.shape
    step = max(1, chunk_tokens // max(B, 1))
    logps, ents = [], []
    for start in range(0, T, step):
        h, y = hidden[:, start:start + step], target[:, start:start + step]
        if torch.is_grad_enabled() and h.requires_grad:
            lp, ent = torch.utils.checkpoint.checkpoint(_head_logprobs, head, h, y, temperature, with_entropy,
                                                        use_reentrant=False)
        else:
            lp, ent = _head_logprobs(head, h, y, temperature, with_entropy)
        logps.append(lp)
        ents.append(ent)
    logp = torch.cat(logps, dim=1)
    entropy = torch.cat(ents, dim=1) if with_entropy else None
    return logp, entropy


def _head_logprobs(head, h, y, temperature: float, with_entropy: bool):
    logits = head(h).float()
    if temperature != 1.0:
        logits = logits / temperature
    logp_all = F.log_softmax(logits, dim=-1)
    logp = logp_all.gather(-1, y.unsqueeze(-1)).squeeze(-1)
    if not with_entropy:
        return logp, torch.zeros_like(logp)
    return logp, -(logp_all.exp() * logp_all).sum(-1)


def ppo_loss(logp: torch.Tensor, batch: PackedBatch, clip: float = 0.2, entropy: torch.Tensor | None = None,
             entropy_coef: float = 0.0, kl_coef: float = 0.0, token_normalizer: float | None = None):
    """Returns (loss, stats). `token_normalizer`: total response tokens of the whole mini-batch, so
    that micro-batches accumulate to the token-mean of the mini-batch."""
    mask = batch.response_mask
    n_tokens = token_normalizer if token_normalizer is not None else mask.sum().clamp(min=1.0)
    ratio = torch.exp(logp - batch.old_logprobs)
    unclipped = ratio * batch.advantages
    clipped = torch.clamp(ratio, 1.0 - clip, 1.0 + clip) * batch.advantages
    pg = -torch.min(unclipped, clipped)
    loss = (pg * mask).sum() / n_tokens
    stats = {
        "pg_loss": float((pg.detach() * mask).sum() / n_tokens),
        "clip_frac": float((((ratio.detach() - 1).abs() > clip).float() * mask).sum() / mask.sum().clamp(min=1)),
        "ratio_mean": float((ratio.detach() * mask).sum() / mask.sum().clamp(min=1)),
    }
    if entropy is not None:
        ent = (entropy * mask).sum() / n_tokens
        stats["entropy_bonus_term"] = float(ent.detach())
        if entropy_coef:
            loss = loss - entropy_coef * ent
    if kl_coef and batch.ref_logprobs is not None:
        log_ratio = batch.ref_logprobs - logp
        k3 = torch.exp(log_ratio) - log_ratio - 1.0
        kl = (k3 * mask).sum() / n_tokens
        loss = loss + kl_coef * kl
        stats["kl"] = float(kl.detach())
    return loss, stats
