"""Measurements that read saved checkpoints for RQ3 and RQ4: policy entropy on a fixed prompt set,
and update sparsity against optimizer step, with the training budgets stated.

RQ3. The training-rollout entropy mixes two effects: the policy changes, and (in self-play) the
prompts it answers change as the proposer drifts. Measuring every checkpoint on the *same* prompts
removes the second. `response_entropies` teacher-forces given responses through a model and returns,
per response, both estimators of `azrlib.metrics.entropy` (the full-vocabulary entropy, and the
sampled-token -log pi(y_t) of the seed paper's Eq. 1), each a token mean over the response.
`fixed_prompt_entropy` samples those responses from the same model first. The sampled-token
estimate is unbiased for the full entropy only when responses are drawn at the scoring temperature
without top-p, so `fixed_prompt_entropy` samples with top_p = 1 at the given temperature.
Departure: the paper logs entropy of training rollouts only.

RQ4. `sparsity_curve` compares the base with each intermediate checkpoint under bf16 and fp32
(`azrlib.metrics.sparsity.compute_sparsity`): exact equality in each, and |d| <= atol (1e-5, the
seed paper's script's threshold). bf16 rounding hides updates smaller than half a bf16 step, so
the gap between the bf16 and fp32 curves is how much "sparsity" is rounding. `budget_statement`
checks that the compared arms took the same number of optimizer steps and says so, with tokens.
Departure: the paper reports one number (about 45.7% for AZR-Coder-7B) with no dtype or tolerance.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import torch

from azrlib.metrics.entropy import token_entropy, token_neg_log_prob
from azrlib.metrics.sparsity import DEFAULT_ATOL, compute_sparsity

# --------------------------------------------------------------------------------------------
# RQ3: entropy on a fixed prompt set
# --------------------------------------------------------------------------------------------


def _logits(model, input_ids: torch.Tensor) -> torch.Tensor:
    out = model(input_ids=input_ids)
    return out.logits if hasattr(out, "logits") else out


@torch.no_grad()
def response_entropies(model, prompt_ids: Sequence[Sequence[int]], response_ids: Sequence[Sequence[int]],
                       temperature: float = 1.0, batch_size: int = 16) -> dict[str, np.ndarray]:
    """Per response: token-mean full-vocabulary entropy ("full") and token-mean -log pi(y_t)
    ("sampled") of softmax(logits / temperature), teacher-forced. `model(input_ids=...)` returns
    logits (batch, T, V) or an object with `.logits`; it must be causal, since sequences are
    batched with right padding (a pad after a position cannot change that position's logits).
    Empty responses give NaN (left out by callers' nan-means)."""
    if len(prompt_ids) != len(response_ids):
        raise ValueError(f"{len(prompt_ids)} prompts but {len(response_ids)} responses")
    if batch_size < 1:
        raise ValueError("batch_size must be >= 1")
    full, sampled = np.full(len(prompt_ids), np.nan), np.full(len(prompt_ids), np.nan)
    device = next(model.parameters()).device if hasattr(model, "parameters") else "cpu"
    for i, p in enumerate(prompt_ids):
        if len(p) == 0:
            raise ValueError(f"prompt {i} is empty; the first response token needs a context")
    todo = [i for i, r in enumerate(response_ids) if len(r)]
    for start in range(0, len(todo), batch_size):
        rows = todo[start : start + batch_size]
        seqs = [list(prompt_ids[i]) + list(response_ids[i]) for i in rows]
        width = max(len(s) for s in seqs)
        ids = torch.zeros((len(rows), width), dtype=torch.long, device=device)
        for b, seq in enumerate(seqs):
            ids[b, : len(seq)] = torch.tensor(seq, dtype=torch.long)
        # logits[:, t] predicts ids[:, t + 1]; the response tokens of row b are predicted at
        # positions p_len - 1 .. p_len + r_len - 2.
        logits = _logits(model, ids)[:, :-1]
        targets = ids[:, 1:]
        mask = torch.zeros(targets.shape, dtype=torch.bool, device=device)
        for b, i in enumerate(rows):
            mask[b, len(prompt_ids[i]) - 1 : len(prompt_ids[i]) + len(response_ids[i]) - 1] = True
        count = mask.sum(dim=1)
        h = token_entropy(logits, temperature, mask).sum(dim=1) / count
        nll = token_neg_log_prob(logits, targets, temperature, mask).sum(dim=1) / count
        full[rows], sampled[rows] = h.double().cpu().numpy(), nll.double().cpu().numpy()
    return {"full": full, "sampled": sampled}


def fixed_prompt_entropy(sampler, model, prompts: Sequence[str], n: int = 4, temperature: float = 1.0,
                         max_new_tokens: int = 256, seed: int = 0, stop: list[str] | None = None,
                         batch_size: int = 16) -> dict[str, np.ndarray]:
    """Per-prompt mean of both estimators over `n` responses sampled from `sampler` (which must hold
    the same weights as `model`) at `temperature` with top_p = 1. Returns arrays of shape (prompts,)
    under "full" and "sampled", and the mean response length under "length"."""
    samples = sampler.generate(list(prompts), n=n, temperature=temperature, top_p=1.0,
                               max_new_tokens=max_new_tokens, stop=stop, seed=seed)
    prompt_ids, response_ids, owner = [], [], []
    for i, completions in enumerate(samples):
        for c in completions:
            if not c.prompt_token_ids:
                raise ValueError("the sampler did not return prompt_token_ids; cannot teacher-force")
            prompt_ids.append(c.prompt_token_ids)
            response_ids.append(c.token_ids)
            owner.append(i)
    per = response_entropies(model, prompt_ids, response_ids, temperature, batch_size)
    owner = np.asarray(owner)
    lengths = np.array([len(r) for r in response_ids], dtype=float)
    out = {}
    for key, values in (("full", per["full"]), ("sampled", per["sampled"]), ("length", lengths)):
        out[key] = np.array([np.nanmean(values[owner == i]) if np.any(np.isfinite(values[owner == i])) else np.nan
                             for i in range(len(prompts))])
    return out


def checkpoint_entropy(path: str | Path, prompts: Sequence[str], n: int = 4, temperature: float = 1.0,
                       max_new_tokens: int = 256, seed: int = 0, stop: list[str] | None = None,
                       num_threads: int | None = None, make_sampler=None) -> dict[str, np.ndarray]:
    """`fixed_prompt_entropy` for a saved checkpoint directory: one HFSampler (or
    `make_sampler(path)`) samples, and its own `.model` teacher-forces."""
    if make_sampler is not None:
        sampler = make_sampler(path)
    else:
        from azrlib.rollout.hf import HFSampler

        sampler = HFSampler(path, num_threads=num_threads)
    return fixed_prompt_entropy(sampler, sampler.model, prompts, n, temperature, max_new_tokens, seed, stop)


# --------------------------------------------------------------------------------------------
# RQ4: sparsity against optimizer step
# --------------------------------------------------------------------------------------------


def sparsity_curve(base: str | Path, checkpoints: Mapping[int, str | Path], atol: float = DEFAULT_ATOL,
                   workers: int | None = None) -> list[dict]:
    """One row per (optimizer step, dtype in bf16/fp32): exact sparsity and |d| <= atol sparsity of
    the checkpoint at that step against `base`."""
    rows = []
    for step in sorted(checkpoints):
        results = compute_sparsity(base, checkpoints[step], ["bf16", "fp32"], atol=atol, workers=workers)
        for dtype, r in results.items():
            rows.append({"step": int(step), "dtype": dtype, "sparsity": r.sparsity, "sparsity_atol": r.sparsity_atol,
                         "atol": atol, "n_params": r.n_params})
    return rows


def budget_statement(budgets: Mapping[str, Mapping]) -> dict:
    """Check arms' training budgets {arm: {"optimizer_steps": int, "tokens": int (optional)}}.
    Returns {"matched": bool, "statement": str}: matched means equal optimizer steps."""
    if not budgets:
        raise ValueError("no budgets given")
    for arm, b in budgets.items():
        if "optimizer_steps" not in b:
            raise ValueError(f"arm {arm!r} has no optimizer_steps")
    steps = {arm: int(b["optimizer_steps"]) for arm, b in budgets.items()}
    matched = len(set(steps.values())) == 1
    parts = []
    for arm, b in budgets.items():
        t = b.get("tokens")
        tokens = f", {int(t):,} trained tokens" if t is not None and t == t else ""  # None / NaN: not logged
        parts.append(f"{arm}: {steps[arm]} optimizer steps{tokens}")
    head = "budgets matched (equal optimizer steps)" if matched else "budgets NOT matched (optimizer steps differ)"
    return {"matched": matched, "statement": f"{head}: " + "; ".join(parts)}
