"""Which rollout prompts fit the model's context.

A prompt is sampled only when its tokens plus the phase's response cap (`max_new_tokens`) fit in
the context limit: the model's `max_position_embeddings` (or vLLM's `max_model_len`), lowered by
`context_limit` when set. A prompt that does not fit is left out of the sampler call, so it fails
alone (its own empty result, counted as `skipped/context`) instead of making the engine reject the
whole batch. The proposer's tasks pass the same test for their solve prompt at validation time
(reason `solve_prompt_too_long`), so a task that could never be solved never enters a buffer.
AZR has no such check: veRL filters over-long prompts out of the dataset before training
(`max_prompt_length`, 6144 tokens for the self-play scripts), which self-play cannot do in advance.
"""

from __future__ import annotations


def model_context(model, cfg) -> int | None:
    """The context limit of a run: the smallest of the model's positions, vLLM's max_model_len
    and `context_limit` that is set (None: no limit known)."""
    config = getattr(model, "config", None)
    limits = [getattr(config, "max_position_embeddings", None), cfg.vllm_max_model_len if cfg.rollout_engine == "vllm"
              else None, cfg.context_limit]
    limits = [int(x) for x in limits if x]
    return min(limits) if limits else None


class ContextGuard:
    """`fits(prompts, max_new_tokens)`: one bool per prompt. Prompts are tokenised as the rollout
    engines do (`tokenizer(prompt)["input_ids"]`)."""

    def __init__(self, tokenizer, limit: int | None):
        self.tokenizer = tokenizer
        self.limit = limit

    def n_tokens(self, prompts: list[str]) -> list[int]:
        if not prompts:
            return []
        return [len(ids) for ids in self.tokenizer(list(prompts))["input_ids"]]

    def fits(self, prompts: list[str], max_new_tokens: int) -> list[bool]:
        if self.limit is None:
            return [True] * len(prompts)
        return [n + max_new_tokens <= self.limit for n in self.n_tokens(prompts)]
