"""Trainer -> rollout engine weight sync after each update, and the log-prob agreement check that
verifies it (`rollout/logprob_mismatch`).

When the rollout engine holds its own copy of the weights (vLLM; or an HFSampler beside an FSDP
policy, whose sharded parameters it cannot run on), the trainer's weights are copied into it after
every optimizer update: the full state dict, streamed one tensor at a time (FSDP shards gathered
per tensor, so a 7B model is never gathered whole on a GPU), cast to the engine's dtype. When the
engine shares the trainer's model object (the default HFSampler path) there is nothing to copy.

The check: every N steps, before the update, the trainer recomputes log pi(y_t) of tokens the
engine sampled this step (teacher forcing, temperature 1, the trainer's own forward and precision)
and compares them with the log-probs the engine reported. Both are the same policy (the weights
synced after the previous update), so the mean |difference| over tokens measures engine/trainer
numerical disagreement: ~1e-6 for fp32 on both sides, ~1e-2 for bf16 engines; a weight sync that
silently failed shows up as a jump to the size of an update's effect on the log-probs.
veRL logs the same kind of quantity (the actor's recomputed old log-probs vs the rollout's); AZR
itself does not check. The function is engine-agnostic: it only needs prompt ids, sampled ids and
the engine's per-token log-probs (`Completion.logprobs` / `Rollout.logprobs`).
"""

from __future__ import annotations

import warnings
from collections.abc import Iterator, Sequence

import torch

MISMATCH_KEY = "rollout/logprob_mismatch"


def iter_weights(model: torch.nn.Module, dtype: torch.dtype | None = None) -> Iterator[tuple[str, torch.Tensor]]:
    """(name, full tensor) for every weight of the trainer's model, in state_dict order. For an
    FSDP model this is a collective: every rank must consume the whole iterator."""
    from azrlib.trainer import fsdp

    if fsdp.is_sharded(model):
        yield from fsdp.iter_full_tensors(model, dtype)
        return
    for name, tensor in model.state_dict().items():
        tensor = tensor.detach()
        yield name, (tensor.to(dtype) if dtype is not None and tensor.is_floating_point() else tensor)


def shares_weights(model: torch.nn.Module, sampler: object) -> bool:
    """True when the engine runs on the trainer's own model object (nothing to sync)."""
    return getattr(sampler, "model", None) is model


def sync_weights(model: torch.nn.Module, sampler, dtype: torch.dtype | None = None) -> int:
    """Copy the trainer's weights into the engine; returns the number of tensors sent. Engines
    that set `accepts_weight_iterator` (VLLMSampler) get a stream, others a dict."""
    count = 0

    def counted():
        nonlocal count
        for item in iter_weights(model, dtype):
            count += 1
            yield item

    if getattr(sampler, "accepts_weight_iterator", False):
        sampler.load_weights(counted())
    else:
        sampler.load_weights(dict(counted()))
    return count


@torch.no_grad()
def logprob_mismatch(policy, prompts: Sequence[Sequence[int]], responses: Sequence[Sequence[int]],
                     engine_logprobs: Sequence[Sequence[float]], *, pad_id: int, device: torch.device | str = "cpu",
                     token_budget: int = 16384, autocast_bf16: bool = False) -> dict[str, float]:
    """Mean and max |trainer log-prob - engine log-prob| over the given sampled tokens, pooled over
    ranks (every rank must call it). `policy` is what `ppo.token_logprobs` takes (the model, or
    `fsdp.forward_view(model)`). Returns {MISMATCH_KEY, MISMATCH_KEY + "_max", "rollout/logprob_check_tokens"}."""
    from azrlib.trainer import dist, fsdp
    from azrlib.trainer.ppo import pack, token_logprobs

    device = torch.device(device)
    items = sorted((k for k in range(len(responses)) if len(responses[k]) > 0),
                   key=lambda k: len(prompts[k]) + len(responses[k]))
    micros: list[list[int]] = []
    for k in items:  # sorted by length: padded size (rows x longest) within the budget, >= 1 row
        if not micros or (len(micros[-1]) + 1) * (len(prompts[k]) + len(responses[k])) > token_budget:
            micros.append([])
        micros[-1].append(k)
    sharded = isinstance(policy, fsdp.ShardedPolicy)
    if sharded:
        micros = fsdp.pad_micro_batches(micros)
    total, count, worst = 0.0, 0.0, 0.0
    for micro in micros:
        if micro:
            batch = pack([list(prompts[k]) for k in micro], [list(responses[k]) for k in micro],
                         [list(engine_logprobs[k]) for k in micro], [0.0] * len(micro), pad_id)
        else:
            batch = fsdp.dummy_batch(pad_id)
        batch = batch.to(device)
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=autocast_bf16):
            logp, _ = token_logprobs(policy, batch, 1.0, with_entropy=False)
        diff = (logp.float() - batch.old_logprobs).abs() * batch.response_mask
        total += float(diff.sum())
        count += float(batch.response_mask.sum())
        worst = max(worst, float(diff.max())) if micro else worst
    if sharded:
        fsdp.reshard(policy.root)
    total, count = dist.all_reduce_sum(total), dist.all_reduce_sum(count)
    worst = max(x for part in dist.gather_lists([worst]) for x in part)
    return {MISMATCH_KEY: total / count if count else 0.0, MISMATCH_KEY + "_max": worst,
            "rollout/logprob_check_tokens": int(count)}


class RolloutSync:
    """The trainer's side of a rollout engine with its own weights: check, release, sync.

    Per step (see `StepRunner.run_step`): `check(step, rollouts)` before the update (every
    `check_every` steps; a warning above `warn_above`, an error above `fail_above` when set), `before_update()` (the engine releases its
    GPU memory when it can: vLLM sleep mode) and `after_update()` (full weight sync; wakes it)."""

    def __init__(self, model: torch.nn.Module, sampler, *, pad_id: int, device: torch.device | str,
                 check_every: int = 10, check_seqs: int = 16, warn_above: float = 0.05, fail_above: float = 0.0,
                 token_budget: int = 16384, autocast_bf16: bool = False, sync_dtype: torch.dtype | None = None):
        from azrlib.trainer import fsdp

        self.model = model
        self.policy = fsdp.forward_view(model)
        self.sampler = sampler
        self.pad_id = pad_id
        self.device = torch.device(device)
        self.check_every = check_every
        self.check_seqs = check_seqs
        self.warn_above = warn_above
        self.fail_above = fail_above  # 0: never
        self.token_budget = token_budget
        self.autocast_bf16 = autocast_bf16
        self.sync_dtype = sync_dtype

    def check(self, step: int, rollouts: Sequence) -> dict[str, float]:
        """`rollouts`: objects with prompt_ids, response_ids, logprobs (this rank's)."""
        from azrlib.trainer import dist

        if not self.check_every or step % self.check_every:
            return {}
        with_tokens = [r for r in rollouts if r.response_ids]
        stride = max(1, len(with_tokens) // max(1, self.check_seqs))
        chosen = with_tokens[::stride][: self.check_seqs]  # spread over the step's groups
        stats = logprob_mismatch(self.policy, [r.prompt_ids for r in chosen], [r.response_ids for r in chosen],
                                 [r.logprobs for r in chosen], pad_id=self.pad_id, device=self.device,
                                 token_budget=self.token_budget, autocast_bf16=self.autocast_bf16)
        if dist.is_main() and stats[MISMATCH_KEY] > self.warn_above:
            warnings.warn(f"step {step}: rollout engine and trainer disagree on sampled tokens' log-probs "
                          f"(mean |diff| {stats[MISMATCH_KEY]:.4g} > {self.warn_above:g}, max "
                          f"{stats[MISMATCH_KEY + '_max']:.4g}): weights out of sync, or a precision gap",
                          RuntimeWarning, stacklevel=2)
        if self.fail_above and stats[MISMATCH_KEY] > self.fail_above:
            raise RuntimeError(f"step {step}: mean |log-prob difference| {stats[MISMATCH_KEY]:.4g} between the rollout "
                               f"engine and the trainer exceeds logprob_mismatch_fail={self.fail_above:g}")
        return stats

    def before_update(self) -> None:
        release = getattr(self.sampler, "sleep", None)
        if callable(release):
            release()

    def after_update(self) -> int:
        return sync_weights(self.model, self.sampler, self.sync_dtype)
