"""Rollout engines: sample n continuations per prompt with per-token log-probs, re-score given
continuations, and take the trainer's weights.

    from azrlib.rollout import HFSampler
    sampler = HFSampler("data/tiny_base", num_threads=1)
    rows = sampler.generate(prompts, n=8, temperature=1.0, top_p=1.0, max_new_tokens=256,
                            stop=["</answer>"], seed=step)
    rows[i][j].token_ids, rows[i][j].logprobs, rows[i][j].finish_reason, ...
    sampler.load_weights(policy.state_dict())

`HFSampler` (transformers, own batched decoding loop; CPU and GPU) and `VLLMSampler` (vLLM offline
engine; optional dependency, imported lazily) share the `Sampler` interface and `Completion`
records described in `azrlib.rollout.base`.
"""

from azrlib.rollout.base import FINISH_REASONS, GREEDY_TEMPERATURE, Completion, FinishReason, Sampler
from azrlib.rollout.hf import HFSampler
from azrlib.rollout.vllm_sampler import VLLMSampler

__all__ = [
    "Completion",
    "FINISH_REASONS",
    "FinishReason",
    "GREEDY_TEMPERATURE",
    "HFSampler",
    "Sampler",
    "VLLMSampler",
]
