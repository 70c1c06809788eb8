"""The policy update's micro-batched backward, shared by PPO (`ppo_epoch`) and SFT (`sft_step`).

Sequences are packed without padding. A micro-batch is one row [1, N] holding its prompt+response
sequences back to back, at most `micro_batch_tokens` real tokens; position ids restart at 0 for
each sequence, and attention runs causally inside each sequence only (`_packed_attention`, a
transformers attention implementation: the sequences are gathered into a few right-padded
batches of similar lengths for causal SDPA, then scattered back), so the projections and MLPs see
no padding and no [N, N] mask is ever built. The model's own modules do everything else.
Only the positions that predict a response token go through lm_head and log_softmax (the prompt
positions' logits feed nothing), and the full-vocabulary entropy logged per group comes from that
same log_softmax. When the logits of a micro-batch would be large (Qwen's 151k vocabulary), the
projection runs in chunks under activation checkpointing, as in `ppo.token_logprobs`.

The math is the padded reference's (`ppo.pack` + `ppo.token_logprobs` + `ppo.ppo_loss`, which stay
the scoring path of `weight_sync` and the FSDP tests): the same per-token log-probs, the same loss
(`ppo.ppo_loss` itself, on flat [n_response_tokens] tensors), the same token-mean normaliser per
mini-batch. Only float summation order differs (fewer, fuller micro-batches; no padded columns):
tests/trainer/test_update.py checks loss and gradients against the padded path at atol 1e-5 in fp32.

Old log-probs: as before, pi_old is the sampler's per-token log-prob of the raw logits
(`Completion.logprobs`), not a second forward pass. With AZR's one PPO epoch and temperature 1 the
sampler ran the very weights being trained, so this is exactly pi_old (up to fp32 rounding of a
different kernel order, ~1e-6); at a temperature other than 1 the trainer's log-probs are
temperature-scaled and the ratio starts away from 1 (unchanged behaviour, see `ppo`).

The forward and the backward both run inside `packed_attention(...)`: activation checkpointing
(`gradient_checkpointing`) recomputes the forward during backward and must see the same
attention; outside that context the packed implementation raises instead of attending across
sequences.
"""

from __future__ import annotations

import contextlib
import contextvars
import random
from collections import defaultdict
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F
import torch.utils.checkpoint

from azrlib.trainer import dist, fsdp
from azrlib.trainer.ppo import _head_logprobs, ppo_loss  # one head: log-probs and entropy

ATTENTION_NAME = "azr_packed"
# Logit elements per lm_head chunk before the projection is chunked and checkpointed (fp32: 128 MB).
LOGIT_BUDGET = 1 << 25
_SEGMENTS: contextvars.ContextVar["_Layout | None"] = contextvars.ContextVar("azr_packed_layout", default=None)


# ------------------------------------------------------------------------------ packed attention

class _Layout:
    """Where each packed sequence goes in a few right-padded attention batches: sequences sorted by
    length and grouped while within 20% of their group's longest, so a micro-batch's attention
    is a handful of batched causal SDPA calls instead of one per sequence (on the shared 2-core
    machine the two measured alike within noise, 7.6-8.8 vs 7.6-7.7 CPU s per 9k-token
    forward+backward at 2 threads; the groups keep the op count per layer independent of the
    batch size). Right padding needs no mask: a real query never sees the keys after it. Built
    once per micro-batch and device."""

    def __init__(self, lengths: list[int]):
        self.lengths = lengths
        self._built: tuple | None = None

    def build(self, device):
        if self._built is not None and self._built[0] == device:
            return self._built[1:]
        lengths = self.lengths
        starts = [0]
        for n in lengths[:-1]:
            starts.append(starts[-1] + n)
        order = sorted(range(len(lengths)), key=lambda i: -lengths[i])
        groups, cur = [], []
        for i in order:
            if cur and lengths[i] < 0.8 * lengths[cur[0]]:
                groups.append(cur)
                cur = []
            cur.append(i)
        if cur:
            groups.append(cur)
        gather, inverse, shapes, offset = [], [0] * sum(lengths), [], 0
        for g in groups:
            width = lengths[g[0]]
            for r, i in enumerate(g):
                n, s0 = lengths[i], starts[i]
                gather.extend(range(s0, s0 + n))
                gather.extend([s0 + n - 1] * (width - n))  # padding: a copy of the last token
                for t in range(n):
                    inverse[s0 + t] = offset + r * width + t
            shapes.append((len(g), width))
            offset += len(g) * width
        long = lambda xs: torch.tensor(xs, dtype=torch.long, device=device)  # noqa: E731
        self._built = (device, long(gather), long(inverse), shapes)
        return self._built[1:]


def _packed_attention(module, query, key, value, attention_mask, dropout: float = 0.0, scaling=None,
                      sliding_window=None, **kwargs):
    """Causal attention inside each packed sequence. query [1, heads, N, dim], key/value
    [1, kv_heads, N, dim]; returns [1, N, heads, dim] (what transformers' attention layers expect)."""
    layout = _SEGMENTS.get()
    if layout is None:
        raise RuntimeError("the packed attention ran outside update.packed_attention(): it would attend across "
                           "sequences")
    if sliding_window:
        raise ValueError("packed attention supports full attention only (this layer has a sliding window)")
    if query.shape[0] != 1 or sum(layout.lengths) != query.shape[2]:
        raise ValueError(f"packed attention expects one row of {sum(layout.lengths)} tokens, got {tuple(query.shape)}")
    gather, inverse, shapes = layout.build(query.device)
    group = query.shape[1] // key.shape[1]
    heads, dim = query.shape[1], query.shape[3]
    sizes = [rows * width for rows, width in shapes]
    # token-major [N, heads, dim]: the gather, the split and their backward (index_add, cat) all
    # work on whole rows
    q, k, v = (t[0].transpose(0, 1).index_select(0, gather).split(sizes) for t in (query, key, value))
    outs = []
    for (rows, width), qg, kg, vg in zip(shapes, q, k, v):
        if group > 1:  # grouped-query heads: as transformers' repeat_kv
            kg, vg = kg.repeat_interleave(group, dim=1), vg.repeat_interleave(group, dim=1)
        qg, kg, vg = (x.unflatten(0, (rows, width)).transpose(1, 2) for x in (qg, kg, vg))  # [rows, heads, width, dim]
        o = F.scaled_dot_product_attention(qg, kg, vg, dropout_p=dropout, is_causal=True, scale=scaling)
        outs.append(o.transpose(1, 2).reshape(rows * width, heads, dim))
    out = (outs[0] if len(outs) == 1 else torch.cat(outs)).index_select(0, inverse)
    return out[None], None


def _register() -> None:
    from transformers import AttentionInterface

    AttentionInterface.register(ATTENTION_NAME, _packed_attention)


@contextlib.contextmanager
def packed_attention(configs: Sequence, lengths: Sequence[int]) -> Iterator[None]:
    """Within the block, models with these configs attend inside the given packed sequences."""
    _register()
    token = _SEGMENTS.set(_Layout([int(n) for n in lengths]))
    saved = [(c, c._attn_implementation) for c in {id(c): c for c in configs}.values()]
    try:
        for c, _ in saved:
            c._attn_implementation = ATTENTION_NAME
        yield
    finally:
        for c, impl in saved:
            c._attn_implementation = impl
        _SEGMENTS.reset(token)


# ------------------------------------------------------------------------------ flat batches

@dataclass
class FlatBatch:
    """One micro-batch packed into one row. Per response token (length n): what ppo.ppo_loss reads."""

    input_ids: torch.Tensor  # [1, N]
    position_ids: torch.Tensor  # [1, N]
    lengths: list[int]  # tokens of each sequence (prompt + response), in row order
    predict_index: torch.Tensor  # [n]: row position that predicts each response token
    targets: torch.Tensor  # [n]: the response tokens
    owner: torch.Tensor  # [n]: sequence (0..len(lengths)-1) of each response token
    response_mask: torch.Tensor  # [n]: 1.0 for trainable sequences, 0.0 for forward-only ones
    old_logprobs: torch.Tensor  # [n]
    advantages: torch.Tensor  # [n]
    ref_logprobs: torch.Tensor | None = None

    def to(self, device) -> "FlatBatch":
        move = lambda t: None if t is None else t.to(device, non_blocking=True)  # noqa: E731
        return FlatBatch(move(self.input_ids), move(self.position_ids), self.lengths, move(self.predict_index),
                         move(self.targets), move(self.owner), move(self.response_mask), move(self.old_logprobs),
                         move(self.advantages), move(self.ref_logprobs))


def flatten(prompts: Sequence[Sequence[int]], responses: Sequence[Sequence[int]],
            old_logprobs: Sequence[Sequence[float]] | None = None, advantages: Sequence[float] | None = None,
            trainable: Sequence[bool] | None = None) -> FlatBatch:
    """Pack prompt+response sequences into one row (no padding)."""
    ids, pos, lengths, predict, targets, owner, mask, old, adv = [], [], [], [], [], [], [], [], []
    for k, (p, r) in enumerate(zip(prompts, responses)):
        if not p:
            raise ValueError(f"sequence {k} has an empty prompt: nothing predicts its first response token")
        start = len(ids)
        ids.extend(p)
        ids.extend(r)
        n = len(p) + len(r)
        pos.extend(range(n))
        lengths.append(n)
        predict.extend(range(start + len(p) - 1, start + n - 1))
        targets.extend(r)
        owner.extend([k] * len(r))
        mask.extend([1.0 if trainable is None or trainable[k] else 0.0] * len(r))
        old.extend(old_logprobs[k][: len(r)] if old_logprobs is not None else [0.0] * len(r))
        adv.extend([float(advantages[k]) if advantages is not None else 0.0] * len(r))
    long = lambda xs: torch.tensor(xs, dtype=torch.long)  # noqa: E731
    flt = lambda xs: torch.tensor(xs, dtype=torch.float32)  # noqa: E731
    return FlatBatch(long(ids)[None], long(pos)[None], lengths, long(predict), long(targets), long(owner),
                     flt(mask), flt(old), flt(adv))


def packed_logprobs(policy, batch: FlatBatch, temperature: float = 1.0, with_entropy: bool = True,
                    logit_budget: int = LOGIT_BUDGET) -> tuple[torch.Tensor, torch.Tensor | None]:
    """(log-probs [n], full-vocabulary entropy [n] or None) of the response tokens; call it inside
    `packed_attention(...)`. `policy` is a model or an `fsdp.ShardedPolicy`."""
    hidden = policy.model(input_ids=batch.input_ids, attention_mask=None,
                          position_ids=batch.position_ids).last_hidden_state[0]
    hidden = hidden.index_select(0, batch.predict_index)
    head = policy.get_output_embeddings()
    n = hidden.shape[0]
    step = max(1, logit_budget // head.weight.shape[0])
    if n <= step:
        lp, ent = _head_logprobs(head, hidden, batch.targets, temperature, with_entropy)
        ent = ent if with_entropy else None
    else:
        parts = []
        for s in range(0, n, step):
            args = (head, hidden[s:s + step], batch.targets[s:s + step], temperature, with_entropy)
            if torch.is_grad_enabled() and hidden.requires_grad:
                parts.append(torch.utils.checkpoint.checkpoint(_head_logprobs, *args, use_reentrant=False))
            else:
                parts.append(_head_logprobs(*args))
        lp = torch.cat([p[0] for p in parts])
        ent = torch.cat([p[1] for p in parts]) if with_entropy else None
    return lp, ent


# ------------------------------------------------------------------------------ the shared backward

def micro_batches(lengths: Sequence[int], token_budget: int) -> list[list[int]]:
    """Consecutive chunks of indices whose total tokens stay within the budget (at least one each)."""
    out, cur, total = [], [], 0
    for k, n in enumerate(lengths):
        if cur and total + n > token_budget:
            out.append(cur)
            cur, total = [], 0
        cur.append(k)
        total += n
    if cur:
        out.append(cur)
    return out


LossFn = Callable[[torch.Tensor, torch.Tensor | None, FlatBatch], tuple[torch.Tensor, dict]]


def backward_micro_batches(model, policy, micros: list[FlatBatch | None], loss_fn: LossFn, *, temperature: float,
                           with_entropy: bool, amp_bf16: bool = False, ref_model=None) -> tuple[dict, list]:
    """Forward + loss + backward of each micro-batch, accumulating gradients (the caller zeroes
    them and steps). A None micro-batch (FSDP: this rank has fewer) runs a masked stand-in so the
    rank joins the collectives. Returns (loss stats: key -> one value per micro-batch with a
    trainable token, per micro-batch the per-sequence mean entropy [len(lengths)] or None)."""
    device = next(model.parameters()).device
    sharded = fsdp.is_sharded(model)
    if sharded:  # every rank runs as many forward/backward passes as the rank with the most
        micros = list(micros) + [None] * (dist.all_reduce_max(len(micros)) - len(micros))
    configs = [model.config] + ([ref_model.config] if ref_model is not None else [])
    stats: dict[str, list[float]] = defaultdict(list)
    entropies = []
    for batch in micros:
        real = batch is not None
        if not real:
            batch = flatten([[0]], [[0]], trainable=[False])
        batch = batch.to(device)
        has_trainable = bool(batch.response_mask.any())
        grad_ok = has_trainable or sharded  # under FSDP every rank runs every backward
        with packed_attention(configs, batch.lengths):
            if ref_model is not None:
                with torch.no_grad():
                    batch.ref_logprobs, _ = packed_logprobs(ref_model, batch, temperature, with_entropy=False)
            with torch.set_grad_enabled(grad_ok), torch.autocast(device.type, dtype=torch.bfloat16, enabled=amp_bf16):
                logp, ent = packed_logprobs(policy, batch, temperature, with_entropy)
                if grad_ok:
                    loss, s = loss_fn(logp, ent, batch)
                    loss.backward()
                    if has_trainable:
                        for key, val in s.items():
                            stats[key].append(val)
                        stats["_tokens"].append(float(batch.response_mask.sum()))
        if real and ent is not None:
            e = ent.detach().float()
            count = torch.bincount(batch.owner, minlength=len(batch.lengths)).float()
            sums = torch.zeros(len(batch.lengths), device=e.device).index_add_(0, batch.owner, e)
            entropies.append((sums / count).tolist())
        else:
            entropies.append(None)
    return stats, entropies


def apply_gradients(model, optimizer, grad_clip: float) -> float:
    """Sum gradients over ranks (DDP; FSDP reduce-scattered them in backward), clip, step."""
    params = [p for p in model.parameters() if p.requires_grad]
    if not fsdp.is_sharded(model):
        dist.sum_gradients(params)
    norm = torch.nn.utils.clip_grad_norm_(params, grad_clip)
    optimizer.step()
    return fsdp.norm_value(norm)


# ------------------------------------------------------------------------------ PPO and SFT

def ppo_epoch(model, policy, optimizer, cfg, rollouts: list, advantages: list[float], seed: int,
              ref_model=None) -> dict:
    """One PPO epoch. Every rank splits its responses into the same number of mini-batches (from the
    global count); per mini-batch the loss is divided by the global number of trainable tokens and
    gradients are summed over ranks, so the result does not depend on how responses were spread
    over ranks. `rollouts` carry prompt_ids, response_ids, logprobs, trainable and group."""
    order = list(range(len(rollouts)))
    random.Random(seed + dist.rank()).shuffle(order)
    n_global = dist.all_reduce_sum(float(len(rollouts)))
    n_mini = max(1, -(-int(n_global) // cfg.mini_batch_size))
    per_mini = -(-len(order) // n_mini) if order else 0
    ent_sum: dict[str, float] = defaultdict(float)
    ent_cnt: dict[str, float] = defaultdict(float)
    out = defaultdict(list)
    kl_coef = cfg.kl_coef if ref_model is not None else 0.0
    model.train()
    for m in range(n_mini):
        mini = [k for k in order[m * per_mini:(m + 1) * per_mini] if rollouts[k].response_ids]
        n_tokens = dist.all_reduce_sum(float(sum(len(rollouts[k].response_ids) for k in mini if rollouts[k].trainable)))
        optimizer.zero_grad(set_to_none=True)
        chunks = [[mini[j] for j in c] for c in micro_batches(
            [len(rollouts[k].prompt_ids) + len(rollouts[k].response_ids) for k in mini], cfg.micro_batch_tokens)]
        batches = [flatten([rollouts[k].prompt_ids for k in c], [rollouts[k].response_ids for k in c],
                           [rollouts[k].logprobs for k in c], [advantages[k] for k in c],
                           [rollouts[k].trainable for k in c]) for c in chunks]

        def loss_fn(logp, ent, batch):
            return ppo_loss(logp, batch, cfg.clip_ratio, ent, cfg.entropy_coef, kl_coef,
                            token_normalizer=max(n_tokens, 1.0))

        stats, entropies = backward_micro_batches(model, policy, batches, loss_fn, temperature=cfg.temperature,
                                                  with_entropy=True, amp_bf16=cfg.amp_bf16,
                                                  ref_model=ref_model if kl_coef else None)
        # one value per mini-batch, whatever its micro-batching: the loss terms (already divided
        # by the mini-batch's tokens) summed, the ratios token-weighted
        weights = stats.pop("_tokens", [])
        for key, vals in stats.items():
            if key in ("clip_frac", "ratio_mean"):
                out[key].append(sum(v * w for v, w in zip(vals, weights)) / max(sum(weights), 1.0))
            else:
                out[key].append(sum(vals))
        for c, ents in zip(chunks, entropies):
            for k, e in zip(c, ents or []):
                ent_sum[rollouts[k].group] += e
                ent_cnt[rollouts[k].group] += 1
        if n_tokens > 0:
            out["grad_norm"].append(apply_gradients(model, optimizer, cfg.grad_clip))
    model.eval()
    stats = {f"loss/{k}": _mean(v) for k, v in out.items() if k != "grad_norm"}
    stats["grad_norm"] = _mean(out["grad_norm"]) if out["grad_norm"] else 0.0
    # full-vocabulary entropy per group: gathered (sum, count) pairs from every rank
    merged_sum: dict[str, float] = defaultdict(float)
    merged_cnt: dict[str, float] = defaultdict(float)
    for part in dist.gather_lists([(g, ent_sum[g], ent_cnt[g]) for g in ent_sum]):
        for g, s_, c_ in part:
            merged_sum[g] += s_
            merged_cnt[g] += c_
    for g in sorted(merged_sum):
        t, role = g.split("/")
        stats[f"entropy_full/{role}/{t}"] = merged_sum[g] / merged_cnt[g]
    if merged_cnt:
        stats["entropy_full/all"] = sum(merged_sum.values()) / sum(merged_cnt.values())
    stats["n_sequences"] = int(n_global)
    trained = [r for r in rollouts if r.trainable and r.response_ids]
    stats["n_trained_sequences"] = int(dist.all_reduce_sum(float(len(trained))))
    stats["n_trained_response_tokens"] = int(dist.all_reduce_sum(float(sum(len(r.response_ids) for r in trained))))
    stats["n_trained_tokens"] = stats["n_trained_response_tokens"] + int(dist.all_reduce_sum(
        float(sum(len(r.prompt_ids) for r in trained))))
    return stats


def sft_step(model, policy, optimizer, cfg, prompts: list[list[int]], targets: list[list[int]]) -> dict:
    """Cross-entropy on `targets` given `prompts`, token mean over all ranks' target tokens, one
    optimizer step. Returns {"loss": summed over ranks, "grad_norm", "n_trained_response_tokens"
    and "n_trained_tokens" (prompt + target tokens), counted over all ranks}."""
    n_tokens = dist.all_reduce_sum(float(sum(len(x) for x in targets)))
    model.train()
    optimizer.zero_grad(set_to_none=True)
    keep = [k for k in range(len(prompts)) if targets[k]]
    chunks = [[keep[j] for j in c] for c in micro_batches([len(prompts[k]) + len(targets[k]) for k in keep],
                                                          cfg.micro_batch_tokens)]
    batches = [flatten([prompts[k] for k in c], [targets[k] for k in c]) for c in chunks]

    def loss_fn(logp, ent, batch):
        loss = -(logp * batch.response_mask).sum() / max(n_tokens, 1.0)
        return loss, {"loss": float(loss.detach())}

    stats, _ = backward_micro_batches(model, policy, batches, loss_fn, temperature=1.0, with_entropy=False)
    norm = apply_gradients(model, optimizer, cfg.grad_clip)
    model.eval()
    n_prompt = dist.all_reduce_sum(float(sum(len(x) for x in prompts)))
    return {"loss": dist.all_reduce_sum(sum(stats.get("loss", []))), "grad_norm": norm,
            "n_trained_response_tokens": int(n_tokens), "n_trained_tokens": int(n_tokens + n_prompt)}


def _mean(xs) -> float:
    xs = [float(x) for x in xs]
    return sum(xs) / len(xs) if xs else 0.0
