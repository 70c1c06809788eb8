"""Policy entropy over response tokens: the full-vocabulary value and the sampled-token estimate.

Two quantities per response position t, with z_t = logits_t / temperature and pi_t = softmax(z_t):

* full-vocabulary entropy H_t = -sum_v pi_t(v) log pi_t(v), what Cui et al. (2025) log
  (temperature-scaled, full vocabulary);
* the sampled-token estimate -log pi_t(y_t) for the token y_t actually generated, which the seed
  paper's Eq. 1 averages. Its expectation is H_t only when y_t was drawn from pi_t itself: at the
  same temperature and without top-p/top-k truncation. With truncated or differently tempered
  sampling it is a biased estimate of H_t; this module does not correct for that.

Two ways to average over a batch of responses (`scheme=`):

* ``"seq_mean_token_mean"``: mean over the tokens of each response, then mean over responses
  (the seed paper's Eq. 1). Responses with no tokens in the mask are left out of the outer mean.
* ``"token_mean"``: one mean over all response tokens of the batch pooled (Cui et al.'s logging),
  so long responses weigh more.

Alignment convention: ``logits[b, t]`` is the distribution that produced ``tokens[b, t]`` (shift
the model's outputs by one before calling). ``mask[b, t]`` is true on response tokens.

Computation is done in float32 (float64 input stays float64), one slice of positions at a time
so the temporaries never exceed about ``max_chunk_elements`` entries: with a 150k vocabulary and
a long response the full (positions x vocabulary) float32 softmax would not fit. Entropy is
-sum_v p_v log p_v with log p from log_softmax (the row max is subtracted first, so large logits
neither overflow nor lose precision) and p log p taken as 0 where p = 0 (e.g. -inf logits of banned
tokens). Only masked positions are computed. No gradients are recorded.
"""

from __future__ import annotations

import math

import torch

from azrlib.trainer.rollouts import sampled_token_entropy_mean  # noqa: F401 - Eq. 1 from engine log-probs

SCHEMES = ("seq_mean_token_mean", "token_mean")
DEFAULT_MAX_CHUNK_ELEMENTS = 1 << 23  # 8M logits (32 MB in float32) per temporary


def _check_temperature(temperature: float) -> None:
    if not (temperature > 0 and math.isfinite(temperature)):
        raise ValueError(f"temperature must be a positive finite number (got {temperature})")


def _check_mask(mask: torch.Tensor, positions_shape: torch.Size) -> torch.Tensor:
    if mask.shape != positions_shape:
        raise ValueError(f"mask shape {tuple(mask.shape)} does not match the logits' positions {tuple(positions_shape)}")
    return mask.to(torch.bool)


def _work_dtype(logits: torch.Tensor) -> torch.dtype:
    if not logits.dtype.is_floating_point:
        raise ValueError(f"logits must be a floating-point tensor (got {logits.dtype})")
    return torch.float64 if logits.dtype == torch.float64 else torch.float32


def _rows_per_chunk(vocab: int, chunk_positions: int | None, max_chunk_elements: int) -> int:
    if chunk_positions is not None:
        if chunk_positions < 1:
            raise ValueError("chunk_positions must be >= 1")
        return chunk_positions
    return max(1, max_chunk_elements // max(1, vocab))


@torch.no_grad()
def token_entropy(
    logits: torch.Tensor,
    temperature: float = 1.0,
    mask: torch.Tensor | None = None,
    chunk_positions: int | None = None,
    max_chunk_elements: int = DEFAULT_MAX_CHUNK_ELEMENTS,
) -> torch.Tensor:
    """Full-vocabulary entropy of softmax(logits / temperature) at each position.

    logits: (..., V). Returns a float tensor of shape logits.shape[:-1]; positions outside `mask`
    (when given) are not computed and hold 0.
    """
    _check_temperature(temperature)
    work = _work_dtype(logits)
    positions_shape = logits.shape[:-1]
    vocab = logits.shape[-1]
    flat = logits.reshape(-1, vocab)
    out = torch.zeros(flat.shape[0], dtype=work, device=logits.device)
    if mask is None:
        rows = torch.arange(flat.shape[0], device=logits.device)
    else:
        rows = torch.nonzero(_check_mask(mask, positions_shape).reshape(-1), as_tuple=True)[0]
    step = _rows_per_chunk(vocab, chunk_positions, max_chunk_elements)
    for start in range(0, rows.numel(), step):
        index = rows[start : start + step]
        z = flat.index_select(0, index).to(work) / temperature
        log_probs = torch.log_softmax(z, dim=-1)  # subtracts the row max internally: no overflow
        probs = log_probs.exp()
        # A -inf logit (a banned token) has p = 0 and contributes 0, not 0 * -inf = NaN.
        plogp = torch.where(probs > 0, probs * log_probs, torch.zeros((), dtype=work, device=z.device))
        out[index] = -plogp.sum(dim=-1)
    return out.reshape(positions_shape)


@torch.no_grad()
def token_neg_log_prob(
    logits: torch.Tensor,
    tokens: torch.Tensor,
    temperature: float = 1.0,
    mask: torch.Tensor | None = None,
    chunk_positions: int | None = None,
    max_chunk_elements: int = DEFAULT_MAX_CHUNK_ELEMENTS,
) -> torch.Tensor:
    """-log pi(y_t) of the given tokens under softmax(logits / temperature); shape tokens.shape.

    Positions outside `mask` (when given) are not computed and hold 0.
    """
    _check_temperature(temperature)
    work = _work_dtype(logits)
    positions_shape = logits.shape[:-1]
    if tokens.shape != positions_shape:
        raise ValueError(f"tokens shape {tuple(tokens.shape)} does not match the logits' positions {tuple(positions_shape)}")
    vocab = logits.shape[-1]
    flat = logits.reshape(-1, vocab)
    flat_tokens = tokens.reshape(-1).to(torch.long)
    if mask is None:
        rows = torch.arange(flat.shape[0], device=logits.device)
    else:
        rows = torch.nonzero(_check_mask(mask, positions_shape).reshape(-1), as_tuple=True)[0]
    chosen = flat_tokens[rows]
    if chosen.numel() and (int(chosen.min()) < 0 or int(chosen.max()) >= vocab):
        raise ValueError(f"token ids must lie in [0, {vocab}) (got {int(chosen.min())}..{int(chosen.max())})")
    out = torch.zeros(flat.shape[0], dtype=work, device=logits.device)
    step = _rows_per_chunk(vocab, chunk_positions, max_chunk_elements)
    for start in range(0, rows.numel(), step):
        index = rows[start : start + step]
        z = flat.index_select(0, index).to(work) / temperature
        log_norm = torch.logsumexp(z, dim=-1)
        picked = z.gather(-1, flat_tokens[index].unsqueeze(-1)).squeeze(-1)
        out[index] = log_norm - picked
    return out.reshape(positions_shape)


@torch.no_grad()
def masked_average(values: torch.Tensor, mask: torch.Tensor, scheme: str = "seq_mean_token_mean") -> float:
    """Average per-token values (batch, T) over mask with either scheme (see the module docstring)."""
    if scheme not in SCHEMES:
        raise ValueError(f"unknown averaging scheme {scheme!r}; choose from {', '.join(SCHEMES)}")
    if values.dim() != 2:
        raise ValueError(f"expected per-token values of shape (batch, T), got {tuple(values.shape)}")
    mask = _check_mask(mask, values.shape)
    weights = mask.to(values.dtype)
    per_response_tokens = weights.sum(dim=-1)
    if float(per_response_tokens.sum()) == 0:
        raise ValueError("the mask selects no response tokens")
    # where() keeps masked-out garbage (even inf/NaN) from leaking into the sums.
    masked_values = torch.where(mask, values, torch.zeros((), dtype=values.dtype, device=values.device))
    if scheme == "token_mean":
        return float(masked_values.sum() / per_response_tokens.sum())
    has_tokens = per_response_tokens > 0
    per_response_mean = masked_values.sum(dim=-1)[has_tokens] / per_response_tokens[has_tokens]
    return float(per_response_mean.mean())


@torch.no_grad()
def entropy_summary(
    logits: torch.Tensor,
    mask: torch.Tensor,
    tokens: torch.Tensor | None = None,
    temperature: float = 1.0,
    chunk_positions: int | None = None,
) -> dict[str, float]:
    """Both averages of the full-vocabulary entropy, and of -log pi(y_t) when tokens are given.

    logits: (batch, T, V); mask: (batch, T). Keys: ``full_<scheme>`` and ``sampled_<scheme>``.
    """
    if logits.dim() != 3:
        raise ValueError(f"expected logits of shape (batch, T, V), got {tuple(logits.shape)}")
    summary = {}
    full = token_entropy(logits, temperature, mask, chunk_positions)
    for scheme in SCHEMES:
        summary[f"full_{scheme}"] = masked_average(full, mask, scheme)
    if tokens is not None:
        sampled = token_neg_log_prob(logits, tokens, temperature, mask, chunk_positions)
        for scheme in SCHEMES:
            summary[f"sampled_{scheme}"] = masked_average(sampled, mask, scheme)
    return summary
