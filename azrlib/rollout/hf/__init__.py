"""The transformers rollout engine: `HFSampler` (sampler.py) with its KV cache (kv_cache.py), the
Llama/Qwen fast path (fast_path.py) and token sampling (sampling.py)."""

from azrlib.rollout.hf.sampler import HFSampler

__all__ = ["HFSampler"]
