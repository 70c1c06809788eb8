"""`HFSampler`: batched sampling on a transformers causal LM with its own decoding loop.

AZR/veRL roll out with vLLM; this engine exists for CPU runs (tests, the tiny presets) and as the
reference the vLLM engine is checked against. It does not call `model.generate`, which on CPU
spends most of its time outside the model arithmetic. What it does instead (each measured on this
2-core machine, 1M-parameter Qwen2, 64 prompts of 153-258 tokens, 96 new tokens, 1 thread; see
benchmarks/bench_rollout.py):

* KV cache: one preallocated buffer per layer, [rows, kv_heads, prompt_len + max_new_tokens,
  head_dim], written in place. transformers' `DynamicCache` concatenates the whole cache on every
  step (`torch.cat` was ~58% of a `generate` decode step).
* Prefill: prompts sorted by length and prefilled in sub-batches of about `prefill_tokens` padded
  tokens, each written into its rows of the shared cache. Besides wasting little on padding, small
  sub-batches keep activations in cache: 0.42 s for the 64 prompts at 1024 tokens per forward,
  0.48 s at 2048 or 256, 0.89 s as one batch. Each prompt is prefilled once and its cache copied
  to its n sample rows.
* A fast path for Llama-style models (Qwen2/2.5, Qwen3, Llama: `_LlamaFastPath`): the same
  arithmetic as the transformers modules with fewer ops (fused q/k/v and gate/up matmuls, RoPE on
  queries and keys at once, right-padded causal prefill with no mask, keys cached transposed so the
  decode attention is a plain batched matmul, attention skipping slots that are padding in every
  remaining row). A decode step went from ~8 ms (model forward over the same cache) to ~5.4 ms, of
  which ~3 ms is reading the KV cache; the rest is matmuls near the core's fp32 peak. In prefill
  the last layer runs attention and MLP for each prompt's last token only (the cache needs only
  its keys/values): prefill went from ~0.50 s to ~0.39 s. Other architectures use the model's own
  forward (`fast_path=False` forces it; the tests run both).
* Finished sequences are dropped from the batch (the cache rows are compacted) once a quarter of
  the rows are finished, so a batch does not keep paying for rows that stopped early.
* Sampling by inverting the CDF with one uniform per row (`torch.multinomial` draws an exponential
  per vocabulary entry: ~1 ms per step here, 240x that for Qwen's vocabulary).
* `torch.inference_mode`, and a thread count that is an argument (`num_threads`, default: leave
  the process setting). On an idle CPU more threads help this sampler more than `model.generate`
  (device host, 16 idle cores, torch 2.11: 1.03 s with 1 thread, 0.60 s with 2, 0.43 s with 4,
  vs 3.21 / 2.10 / 1.30 s). On this shared 2-core machine use 1 thread: whenever other processes
  held a core, 2 threads made either engine up to 14x slower than 1 thread (OpenMP threads of each
  small parallel op waiting for the busy core); an earlier measurement here saw a 0.4M-parameter
  model ~14x slower with 2 threads and a 5M one ~1.4x faster.
* fp32 is the default dtype. bfloat16 (AMX on these CPUs) made `model.generate` ~1.5x faster but
  this sampler no faster (0.95x-1.03x of its fp32 speed, slower under load): its decode is bound
  by memory reads and per-op overhead, not matmul throughput. fp32 also keeps log-probs exact.

Result, fp32, 1 thread, this shared 2-core machine: 2.40x `model.generate`'s tokens/s by wall time,
2.31x by CPU time (load average ~1.8; 2.2-3.2x wall in runs under heavier load). On an idle
16-core host (torch 2.11): 3.1x / 3.5x / 3.0x with 1 / 2 / 4 threads. On an H100 (device="cuda",
same tiny model) 1.5x; there both are launch-bound and vLLM is the engine to use.
(benchmarks/bench_rollout.py)

Sampling: temperature (0 or < 1e-5 = greedy), top-p (smallest set of most likely tokens whose
probability reaches top_p, renormalised), stop strings and EOS as documented in `base`. A call with
a seed uses its own `torch.Generator`: same seed and arguments -> identical samples on CPU.

Exactness: `logprobs` are the log-softmax of the fp32-upcast logits of the decoding pass; with an
fp32 model they equal a teacher-forced forward pass over prompt + completion to ~4e-6 (the tests
require 1e-5), with left padding, chunking and either path; on CUDA (H100, fp32) to ~6e-6.
`score` is that teacher-forced pass.

Supported models: decoder-only transformers models whose attention layers call
`cache.update(key, value, layer_idx)` and take a prepared 4-D mask (transformers 5.x), with `sdpa`
or `eager` attention and full (not sliding-window) attention.
"""

from __future__ import annotations

import contextlib
import inspect
import math
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path

import torch
import torch.nn.functional as F

from azrlib.rollout.base import (
    GREEDY_TEMPERATURE,
    Completion,
    Sampler,
    check_generate_args,
    check_score_args,
    find_stop,
)

# Compact the decode batch when at least this fraction of its rows have finished: the copy costs
# about one step's attention reads, so compacting on every finish would cost more than it saves.
_COMPACT_FRACTION = 0.25
_REPLACEMENT_CHAR = "\ufffd"
_FAST_PATH_MODEL_TYPES = ("qwen2", "qwen3", "llama")


def _inverse_cdf_sample(probs: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """One draw per row of `probs` [rows, vocab] by inverting the CDF with one uniform per row.

    The CDF is accumulated in float64 so its rounding is far below any probability that matters,
    and tokens of probability 0 own an empty interval, so they are never drawn."""
    cdf = probs.double().cumsum_(dim=-1)
    u = torch.rand(probs.shape[0], 1, dtype=torch.float64, device=probs.device, generator=generator)
    picks = torch.searchsorted(cdf, u * cdf[:, -1:], right=True).squeeze(-1)
    return picks.clamp_(max=probs.shape[-1] - 1)


class _SlotKVCache:
    """Preallocated per-layer K/V buffers, usable as a (duck-typed) transformers cache.

    Values are stored [rows, kv_heads, capacity, head_dim]. Keys are stored the same way, or, with
    `transposed_keys` (the fast path), as [rows, kv_heads, head_dim, capacity]: the decode step
    multiplies queries by keys^T, and a contiguous keys^T made that batched matmul ~25% faster here.
    Prompts are right-aligned at slot `prompt_width`; generated tokens follow.

    As a transformers cache (the model-forward path), one of two modes is set before each forward:
    * prefill (`begin_prefill`): the forward's keys/values (a left-padded sub-batch of unique
      prompts) are copied into rows `dest_rows` from `first_slot` on, taking row `src_rows[k]` of
      the sub-batch for `dest_rows[k]`; attention uses the sub-batch's own keys.
    * decode (`begin_decode(slot)`): one new key/value per row is written at `slot` and attention
      reads slots [0, slot].
    """

    def __init__(self, keys: list[torch.Tensor], values: list[torch.Tensor], transposed_keys: bool) -> None:
        self.keys = keys
        self.values = values
        self.transposed_keys = transposed_keys
        self._slot = 0
        self._prefill: tuple[torch.Tensor, torch.Tensor, int] | None = None

    @classmethod
    def allocate(cls, num_layers: int, rows: int, kv_heads: int, capacity: int, head_dim: int,
                 dtype: torch.dtype, device: torch.device, transposed_keys: bool = False) -> "_SlotKVCache":
        # Zeros, not empty: padding slots are masked out, but garbage there could be NaN/inf and
        # a masked NaN still poisons the attention product.
        shape = (rows, kv_heads, capacity, head_dim)
        key_shape = (rows, kv_heads, head_dim, capacity) if transposed_keys else shape
        return cls([torch.zeros(key_shape, dtype=dtype, device=device) for _ in range(num_layers)],
                   [torch.zeros(shape, dtype=dtype, device=device) for _ in range(num_layers)],
                   transposed_keys)

    def key_view(self, layer: int, start: int, end: int) -> torch.Tensor:
        """Keys of slots [start, end) as [rows, kv_heads, end - start, head_dim] (a view)."""
        keys = self.keys[layer]
        return keys[..., start:end].transpose(-1, -2) if self.transposed_keys else keys[:, :, start:end]

    def write(self, layer: int, rows: torch.Tensor | slice, first_slot: int,
              keys: torch.Tensor, values: torch.Tensor) -> None:
        """Store keys/values [len(rows) or broadcastable, kv_heads, length, head_dim] at slots
        [first_slot, first_slot + length) of `rows`."""
        end = first_slot + keys.shape[-2]
        if self.transposed_keys:
            self.keys[layer][rows, :, :, first_slot:end] = keys.transpose(-1, -2)
        else:
            self.keys[layer][rows, :, first_slot:end] = keys
        self.values[layer][rows, :, first_slot:end] = values

    def keep_rows(self, rows: torch.Tensor) -> None:
        self.keys = [k.index_select(0, rows) for k in self.keys]
        self.values = [v.index_select(0, rows) for v in self.values]

    # transformers cache protocol ---------------------------------------------------------------

    def begin_prefill(self, dest_rows: torch.Tensor, src_rows: torch.Tensor, first_slot: int) -> None:
        self._prefill = (dest_rows, src_rows, first_slot)

    def begin_decode(self, slot: int) -> None:
        self._prefill = None
        self._slot = slot

    def update(self, key_states: torch.Tensor, value_states: torch.Tensor, layer_idx: int,
               *args: object, **kwargs: object) -> tuple[torch.Tensor, torch.Tensor]:
        if self._prefill is not None:
            dest_rows, src_rows, first_slot = self._prefill
            self.write(layer_idx, dest_rows, first_slot, key_states[src_rows], value_states[src_rows])
            return key_states, value_states
        slot = self._slot
        self.write(layer_idx, slice(None), slot, key_states, value_states)
        return self.key_view(layer_idx, 0, slot + 1), self.values[layer_idx][:, :, : slot + 1]

    def get_seq_length(self, layer_idx: int = 0) -> int:
        return self._slot


class _LlamaFastPath:
    """Forward passes for Llama-style decoder stacks (Qwen2/2.5, Qwen3, Llama) written as plain
    tensor code over the model's own weights and modules.

    At the tiny sizes this engine targets on CPU, the transformers module stack costs more in
    per-op overhead than in arithmetic. This computes the same thing with fewer ops: q/k/v and
    gate/up projections fused into one matmul each (weights concatenated when the path is built,
    once per `generate`/`score` call, so weights changed in place between calls are picked up);
    RoPE applied to queries and keys together; prefill/scoring on right-padded rows with SDPA's
    causal kernel and no mask (a real token never sees the padding after it); decode attention for
    the single new query with grouped-query heads packed ([rows, kv_heads, group, dim] x keys^T)
    and one additive mask shared by all layers. Norms, rotary embedding, the o/down projections and
    lm_head are the model's own modules. The tests compare its log-probs with the model's forward.
    """

    def __init__(self, model: torch.nn.Module) -> None:
        inner = model.model
        config = model.config
        self.model = model
        self.inner = inner
        self.num_heads = config.num_attention_heads
        self.kv_heads = getattr(config, "num_key_value_heads", None) or self.num_heads
        self.head_dim = getattr(config, "head_dim", None) or config.hidden_size // self.num_heads
        self.scaling = self.head_dim ** -0.5
        self.layers = []
        with torch.no_grad():
            for layer in inner.layers:
                attn, mlp = layer.self_attn, layer.mlp
                projections = (attn.q_proj, attn.k_proj, attn.v_proj)
                qkv_weight = torch.cat([proj.weight for proj in projections])
                qkv_bias = (torch.cat([proj.bias for proj in projections])
                            if all(proj.bias is not None for proj in projections) else None)
                gate_up_weight = torch.cat([mlp.gate_proj.weight, mlp.up_proj.weight])
                gate_up_bias = (torch.cat([mlp.gate_proj.bias, mlp.up_proj.bias])
                                if mlp.gate_proj.bias is not None else None)
                self.layers.append((layer, qkv_weight, qkv_bias, gate_up_weight, gate_up_bias,
                                    getattr(attn, "q_norm", None), getattr(attn, "k_norm", None)))

    @staticmethod
    def supports(model: torch.nn.Module) -> bool:
        config = model.config
        inner = getattr(model, "model", None)
        if getattr(config, "model_type", None) not in _FAST_PATH_MODEL_TYPES or inner is None:
            return False
        if getattr(config, "hidden_act", None) != "silu" or getattr(config, "pretraining_tp", 1) != 1:
            return False
        if not all(hasattr(inner, name) for name in ("embed_tokens", "layers", "norm", "rotary_emb")):
            return False
        if not hasattr(model, "lm_head"):
            return False
        for layer in inner.layers:
            attn, mlp = getattr(layer, "self_attn", None), getattr(layer, "mlp", None)
            if attn is None or mlp is None:
                return False
            if not all(hasattr(attn, name) for name in ("q_proj", "k_proj", "v_proj", "o_proj", "head_dim")):
                return False
            if not all(hasattr(mlp, name) for name in ("gate_proj", "up_proj", "down_proj")):
                return False
            if abs(getattr(attn, "scaling", 0.0) - attn.head_dim ** -0.5) > 1e-12:
                return False
        return True

    def _rope_tables(self, hidden: torch.Tensor, positions: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """cos and sign-folded sin, [..., 1, head_dim] for broadcasting over heads:
        rotate_half(x) * sin == cat(x2, x1) * cat(-sin1, sin2)."""
        cos, sin = self.inner.rotary_emb(hidden, positions)
        half = self.head_dim // 2
        signed_sin = torch.cat((-sin[..., :half], sin[..., half:]), dim=-1)
        return cos.unsqueeze(-2), signed_sin.unsqueeze(-2)

    def _qkv(self, layer_weights: tuple, x: torch.Tensor, cos: torch.Tensor,
             signed_sin: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Rotated queries [..., heads, dim], rotated keys and values [..., kv_heads, dim]."""
        _, qkv_w, qkv_b, _, _, q_norm, k_norm = layer_weights
        heads, kv_heads, head_dim = self.num_heads, self.kv_heads, self.head_dim
        qkv = F.linear(x, qkv_w, qkv_b).unflatten(-1, (heads + 2 * kv_heads, head_dim))
        qk, v = qkv[..., : heads + kv_heads, :], qkv[..., heads + kv_heads :, :]
        if q_norm is not None:
            qk = torch.cat((q_norm(qk[..., :heads, :]), k_norm(qk[..., heads:, :])), dim=-2)
        half = head_dim // 2
        qk = qk * cos + torch.cat((qk[..., half:], qk[..., :half]), dim=-1) * signed_sin
        return qk[..., :heads, :], qk[..., heads:, :], v

    def _finish_layer(self, layer_weights: tuple, hidden: torch.Tensor, attended: torch.Tensor) -> torch.Tensor:
        layer, _, _, gate_up_w, gate_up_b, _, _ = layer_weights
        hidden = hidden + layer.self_attn.o_proj(attended)
        gate, up = F.linear(layer.post_attention_layernorm(hidden), gate_up_w, gate_up_b).chunk(2, dim=-1)
        return hidden + layer.mlp.down_proj(F.silu(gate) * up)

    def sequences(self, input_ids: torch.Tensor,
                  kv_sink: Callable[[int, torch.Tensor, torch.Tensor], None] | None = None,
                  last: torch.Tensor | None = None) -> torch.Tensor:
        """Final-norm hidden states of right-padded `input_ids` [rows, width] (positions 0, 1, ...;
        causal attention): [rows, width, hidden], or with `last` [rows] only those positions,
        [rows, hidden]. kv_sink(layer, keys, values) receives each layer's rotated keys and values,
        [rows, kv_heads, width, head_dim].

        With `last` (prefill), the final layer runs attention and MLP for the `last` positions only:
        the other positions' final-layer outputs feed nothing but logits nobody asked for, while
        their keys/values (all the cache needs) come before that. ~20% of a 4-layer prefill."""
        rows, width = input_ids.shape
        hidden = self.inner.embed_tokens(input_ids)
        positions = torch.arange(width, device=input_ids.device)[None].expand(rows, width)
        cos, signed_sin = self._rope_tables(hidden, positions)
        group = self.num_heads // self.kv_heads
        final = len(self.layers) - 1
        for l, weights in enumerate(self.layers):
            q, k, v = self._qkv(weights, weights[0].input_layernorm(hidden), cos, signed_sin)
            q, k, v = q.transpose(1, 2), k.transpose(1, 2), v.transpose(1, 2)
            if kv_sink is not None:
                kv_sink(l, k, v)
            if l == final and last is not None:
                picked = torch.arange(rows, device=input_ids.device)
                query = q[picked, :, last].reshape(rows, self.kv_heads, group, self.head_dim)
                scores = torch.matmul(query, k.transpose(-1, -2)) * self.scaling  # [rows, kv, group, width]
                beyond = positions > last[:, None]  # keys after each row's last token (padding)
                scores = scores.masked_fill(beyond[:, None, None, :], -math.inf)
                probs = scores.softmax(dim=-1, dtype=torch.float32).to(v.dtype)
                attended = torch.matmul(probs, v).reshape(rows, self.num_heads * self.head_dim)
                return self.inner.norm(self._finish_layer(weights, hidden[picked, last], attended))
            if group > 1:
                k, v = k.repeat_interleave(group, dim=1), v.repeat_interleave(group, dim=1)
            attended = F.scaled_dot_product_attention(q, k, v, is_causal=True, scale=self.scaling)
            hidden = self._finish_layer(weights, hidden, attended.transpose(1, 2).flatten(2))
        return self.inner.norm(hidden)

    def step(self, tokens: torch.Tensor, positions: torch.Tensor, additive_mask: torch.Tensor,
             cache: _SlotKVCache, slot: int, first_slot: int = 0) -> torch.Tensor:
        """fp32 logits [rows, vocab] for `tokens` [rows] at `positions` [rows], written to cache
        slot `slot` (a cache with transposed keys). Attention reads slots [first_slot, slot] (the
        slots before first_slot are padding in every row); additive_mask [rows, 1, 1,
        slot + 1 - first_slot] covers them (0 = attend, dtype min = masked)."""
        rows = tokens.shape[0]
        heads, kv_heads, head_dim = self.num_heads, self.kv_heads, self.head_dim
        hidden = self.inner.embed_tokens(tokens)  # [rows, hidden]
        cos, signed_sin = self._rope_tables(hidden, positions[:, None])  # [rows, 1, 1, head_dim]
        cos, signed_sin = cos[:, 0], signed_sin[:, 0]
        for l, weights in enumerate(self.layers):
            q, k, v = self._qkv(weights, weights[0].input_layernorm(hidden), cos, signed_sin)
            cache.keys[l][:, :, :, slot] = k
            cache.values[l][:, :, slot] = v
            scores = torch.matmul(q.reshape(rows, kv_heads, heads // kv_heads, head_dim),
                                  cache.keys[l][..., first_slot : slot + 1])
            # softmax in fp32, as transformers' eager attention does (a no-op for fp32 models)
            probs = (scores * self.scaling + additive_mask).softmax(dim=-1, dtype=torch.float32).to(v.dtype)
            attended = torch.matmul(probs, cache.values[l][:, :, first_slot : slot + 1])
            attended = attended.reshape(rows, heads * head_dim)
            hidden = self._finish_layer(weights, hidden, attended)
        return self.model.lm_head(self.inner.norm(hidden)).float()


class HFSampler(Sampler):
    """Sampler on a transformers causal LM.

    model_or_path: a directory with a Hugging Face checkpoint (config, weights, tokenizer), or an
        already-built `PreTrainedModel` (then `tokenizer` is required). A built model is used as
        is (not copied): sharing the trainer's model object makes weight sync free.
    dtype: weights dtype when loading from a directory (default float32: exact log-probs, and on
        CPU not slower than bfloat16 for this sampler); ignored for a built model.
    batch_size: sequences decoded together (prompts x samples); prompts are chunked to fit. The
        KV cache is preallocated for every row at longest prompt + max_new_tokens: 2 x layers x
        kv_heads x head_dim x that many slots x dtype size per row (no paging, unlike vLLM).
    prefill_tokens: padded tokens per prefill/score forward (see the module docstring).
    num_threads: torch intra-op threads while this sampler runs (restored afterwards); None leaves
        the process setting alone. Use 1 for tiny models on a small shared machine (see above).
    fast_path: use `_LlamaFastPath` when the architecture is supported (Qwen2/2.5, Qwen3, Llama);
        False always uses the model's forward.
    """

    def __init__(
        self,
        model_or_path: str | Path | torch.nn.Module,
        tokenizer: object | None = None,
        device: str | torch.device = "cpu",
        dtype: torch.dtype | str | None = None,
        batch_size: int = 64,
        prefill_tokens: int = 1024,
        num_threads: int | None = None,
        fast_path: bool = True,
    ) -> None:
        from transformers import AutoModelForCausalLM

        from azrlib.models import load_tokenizer

        if batch_size < 1 or prefill_tokens < 1:
            raise ValueError(f"batch_size and prefill_tokens must be positive, got {batch_size}, {prefill_tokens}")
        if num_threads is not None and num_threads < 1:
            raise ValueError(f"num_threads must be positive or None, got {num_threads}")
        self.device = torch.device(device)
        self.batch_size = batch_size
        self.prefill_tokens = prefill_tokens
        self.num_threads = num_threads
        if isinstance(dtype, str):
            dtype = getattr(torch, dtype)

        if isinstance(model_or_path, (str, Path)):
            path = Path(model_or_path)
            if not path.is_dir():
                raise FileNotFoundError(f"model directory {str(path)!r} does not exist")
            if not (path / "config.json").is_file():
                raise FileNotFoundError(f"model directory {str(path)!r} has no config.json")
            self.tokenizer = tokenizer if tokenizer is not None else load_tokenizer(path)
            model = AutoModelForCausalLM.from_pretrained(path, dtype=dtype or torch.float32,
                                                         attn_implementation="sdpa")
        elif isinstance(model_or_path, torch.nn.Module):
            if tokenizer is None:
                raise ValueError("HFSampler needs a tokenizer when given a built model")
            self.tokenizer = tokenizer
            model = model_or_path
        else:
            raise TypeError(f"model_or_path must be a directory or a model, got {type(model_or_path).__name__}")
        self.model = model.to(self.device).eval()

        config = self.model.config
        self._attn_implementation = getattr(config, "_attn_implementation", None) or "eager"
        if self._attn_implementation not in ("sdpa", "eager"):
            raise ValueError(f"HFSampler supports sdpa or eager attention, the model uses "
                             f"{self._attn_implementation!r}")
        layer_types = sorted(set(getattr(config, "layer_types", None) or ["full_attention"]))
        if layer_types != ["full_attention"] or getattr(config, "sliding_window", None):
            raise ValueError(f"HFSampler supports full attention only, the model has layers {layer_types} "
                             f"and sliding_window={getattr(config, 'sliding_window', None)}")
        self._num_layers = config.num_hidden_layers
        self._kv_heads = getattr(config, "num_key_value_heads", None) or config.num_attention_heads
        self._head_dim = getattr(config, "head_dim", None) or config.hidden_size // config.num_attention_heads
        self._max_positions = getattr(config, "max_position_embeddings", None)
        self._vocab_size = config.vocab_size
        forward_params = inspect.signature(self.model.forward).parameters
        # transformers 5 renamed `past_key_values` to `cache` (the old name still works, with a warning).
        self._cache_kwarg = "cache" if "cache" in forward_params else "past_key_values"
        self._eos_ids = self._collect_eos_ids()
        self._pad_id = self.tokenizer.pad_token_id if self.tokenizer.pad_token_id is not None else 0
        self._piece_texts: list[str] | None = None
        self.fast_path = fast_path and _LlamaFastPath.supports(self.model)

    # ---------------------------------------------------------------------------------------
    # Public API
    # ---------------------------------------------------------------------------------------

    def generate(
        self,
        prompts: list[str],
        n: int = 1,
        temperature: float = 1.0,
        top_p: float = 1.0,
        max_new_tokens: int = 256,
        stop: list[str] | None = None,
        seed: int | None = None,
    ) -> list[list[Completion]]:
        check_generate_args(prompts, n, temperature, top_p, max_new_tokens, stop, seed)
        prompt_ids = self._tokenize(prompts)
        longest = max((len(ids) for ids in prompt_ids), default=0)
        if self._max_positions is not None and longest + max_new_tokens > self._max_positions:
            raise ValueError(f"longest prompt ({longest} tokens) + max_new_tokens ({max_new_tokens}) exceeds "
                             f"the model's max_position_embeddings ({self._max_positions})")
        generator = torch.Generator(device=self.device)
        if seed is None:
            generator.seed()
        else:
            generator.manual_seed(seed)
        stops = list(stop or [])

        results: list[list[Completion | None]] = [[None] * n for _ in prompts]
        with self._threads(), torch.inference_mode():
            fast = _LlamaFastPath(self.model) if self.fast_path and prompts else None
            for rows in self._plan_chunks(prompt_ids, n):
                for completion in self._run_chunk(rows, prompt_ids, temperature, top_p, max_new_tokens,
                                                  stops, generator, fast):
                    results[completion.prompt_index][completion.sample_index] = completion
        return results  # type: ignore[return-value]

    def score(
        self,
        prompts: Sequence[str | Sequence[int]],
        completions_token_ids: Sequence[Sequence[int]],
        temperature: float = 1.0,
    ) -> list[list[float]]:
        check_score_args(prompts, completions_token_ids, temperature)
        prompt_ids = [self._tokenize([p])[0] if isinstance(p, str) else [int(t) for t in p] for p in prompts]
        for i, ids in enumerate(prompt_ids):
            if not ids:
                raise ValueError(f"prompt {i} has no tokens: there is nothing to condition on")
        completions = [[int(t) for t in c] for c in completions_token_ids]
        sequences = [p + c for p, c in zip(prompt_ids, completions)]
        self._check_token_ids(sequences)
        scores: list[list[float]] = [[] for _ in sequences]
        order = sorted((i for i in range(len(sequences)) if completions[i]), key=lambda i: -len(sequences[i]))
        with self._threads(), torch.inference_mode():
            fast = _LlamaFastPath(self.model) if self.fast_path and order else None
            for group in self._length_groups(order, [len(s) for s in sequences], self.prefill_tokens):
                group_scores = self._score_group([sequences[i] for i in group],
                                                 [len(completions[i]) for i in group], temperature, fast)
                for i, values in zip(group, group_scores):
                    scores[i] = values
        return scores

    def load_weights(self, state_dict: Mapping[str, torch.Tensor]) -> None:
        """Copy `state_dict` into the model (dtype/device converted); every model weight must be
        present except tied ones, and no unknown names are accepted."""
        own = self.model.state_dict()
        unknown = sorted(set(state_dict) - set(own))
        if unknown:
            raise KeyError(f"load_weights got names the model does not have: {unknown[:5]}")
        missing = sorted(set(own) - set(state_dict) - self._tied_parameter_names())
        if missing:
            raise KeyError(f"load_weights is missing model weights: {missing[:5]}")
        with torch.no_grad():
            for name, tensor in state_dict.items():
                target = own[name]
                if target.shape != tensor.shape:
                    raise ValueError(f"{name}: shape {tuple(tensor.shape)} != model's {tuple(target.shape)}")
                target.copy_(tensor.detach())

    # ---------------------------------------------------------------------------------------
    # Decoding
    # ---------------------------------------------------------------------------------------

    def _plan_chunks(self, prompt_ids: list[list[int]], n: int) -> Iterator[list[tuple[int, int]]]:
        """Yield lists of (prompt index, sample index), at most batch_size each; prompts sorted by
        length (longest first) so a chunk's prompts need little padding."""
        order = sorted(range(len(prompt_ids)), key=lambda i: -len(prompt_ids[i]))
        chunk: list[tuple[int, int]] = []
        for i in order:
            for j in range(n):
                chunk.append((i, j))
                if len(chunk) == self.batch_size:
                    yield chunk
                    chunk = []
        if chunk:
            yield chunk

    def _prefill(self, rows: list[tuple[int, int]], prompt_ids: list[list[int]], cache: _SlotKVCache,
                 prompt_width: int, fast: _LlamaFastPath | None) -> torch.Tensor:
        """Fill the cache with the chunk's prompts (each unique prompt computed once, copied to its
        sample rows); return fp32 logits [rows, vocab] for each row's first new token."""
        device = self.device
        unique_prompts = list(dict.fromkeys(i for i, _ in rows))  # longest first, as planned
        rows_of_prompt: dict[int, list[int]] = {i: [] for i in unique_prompts}
        for r, (i, _) in enumerate(rows):
            rows_of_prompt[i].append(r)
        first_logits = torch.empty(len(rows), self._vocab_size, dtype=torch.float32, device=device)
        lengths = [len(prompt_ids[i]) for i in unique_prompts]
        for group in self._length_groups(list(range(len(unique_prompts))), lengths, self.prefill_tokens):
            group_prompts = [prompt_ids[unique_prompts[g]] for g in group]
            group_rows = [torch.tensor(rows_of_prompt[unique_prompts[g]], device=device) for g in group]
            if fast is not None:
                input_ids = self._right_padded(group_prompts)

                def sink(layer: int, keys: torch.Tensor, values: torch.Tensor) -> None:
                    for k, (prompt, dest) in enumerate(zip(group_prompts, group_rows)):
                        length = len(prompt)
                        cache.write(layer, dest, prompt_width - length, keys[k, :, :length], values[k, :, :length])

                last = torch.tensor([len(p) - 1 for p in group_prompts], device=device)
                logits = self.model.lm_head(fast.sequences(input_ids, sink, last)).float()
            else:
                width = max(len(p) for p in group_prompts)
                dest = torch.cat(group_rows)
                src = torch.cat([torch.full((len(d),), k, device=device) for k, d in enumerate(group_rows)])
                cache.begin_prefill(dest, src, prompt_width - width)
                logits = self._forward_left_padded(group_prompts, cache, logits_to_keep=1)[:, -1].float()
            for k, dest in enumerate(group_rows):
                first_logits[dest] = logits[k]
        return first_logits

    def _run_chunk(
        self,
        rows: list[tuple[int, int]],
        prompt_ids: list[list[int]],
        temperature: float,
        top_p: float,
        max_new_tokens: int,
        stops: list[str],
        generator: torch.Generator,
        fast: _LlamaFastPath | None,
    ) -> list[Completion]:
        device = self.device
        num_rows = len(rows)
        prompt_lens = torch.tensor([len(prompt_ids[i]) for i, _ in rows], device=device)
        prompt_width = int(prompt_lens.max())
        capacity = prompt_width + max_new_tokens
        cache = _SlotKVCache.allocate(self._num_layers, num_rows, self._kv_heads, capacity, self._head_dim,
                                      self.model.dtype, device, transposed_keys=fast is not None)
        # key_valid[r, s]: slot s of cache row r holds a real token.
        slots = torch.arange(capacity, device=device)
        key_valid = (slots[None, :] >= prompt_width - prompt_lens[:, None]) & (slots[None, :] < prompt_width)
        logits = self._prefill(rows, prompt_ids, cache, prompt_width, fast)

        out_tokens = torch.zeros(num_rows, max_new_tokens, dtype=torch.long, device=device)
        out_logprobs = torch.zeros(num_rows, max_new_tokens, dtype=torch.float32, device=device)
        out_sampling = torch.zeros(num_rows, max_new_tokens, dtype=torch.float32, device=device)
        num_generated = [max_new_tokens] * num_rows
        finish = ["length"] * num_rows
        stop_reason: list[str | None] = [None] * num_rows
        texts: list[str | None] = [None] * num_rows
        is_eos = torch.zeros(self._vocab_size, dtype=torch.bool, device=device)
        is_eos[[t for t in self._eos_ids if 0 <= t < self._vocab_size]] = True
        may_stop = self._stop_candidates(stops)

        live = torch.arange(num_rows, device=device)  # original row of each cache row
        alive = torch.ones(num_rows, dtype=torch.bool, device=device)  # per cache row
        positions = prompt_lens.clone()  # position id of the next token, per cache row
        row_prompt_lens = prompt_lens  # per cache row
        first_slot = 0  # first cache slot that is not padding in every row
        additive_mask: torch.Tensor | None = None  # key_valid as 0 / dtype-min (fast path)
        for step in range(max_new_tokens):
            tokens, logprobs, sampling_logprobs = self._sample(logits, temperature, top_p, generator)
            out_tokens[live, step] = tokens
            out_logprobs[live, step] = logprobs
            out_sampling[live, step] = sampling_logprobs

            done = is_eos[tokens] & alive
            if may_stop is not None:
                # Only rows whose new token can complete a stop string are decoded.
                for c in (may_stop[tokens] & alive & ~done).nonzero().flatten().tolist():
                    row = int(live[c])
                    text = self._decode(out_tokens[row, : step + 1].tolist())
                    hit = find_stop(text, stops)
                    if hit is not None:
                        done[c] = True
                        texts[row], stop_reason[row] = text[: hit[0]], hit[1]
            if done.any():
                for c in done.nonzero().flatten().tolist():
                    row = int(live[c])
                    num_generated[row] = step + 1
                    finish[row] = "stop" if stop_reason[row] is not None else "eos"
                alive &= ~done
            if step + 1 == max_new_tokens or not alive.any():
                break

            dead = int((~alive).sum())
            if dead and dead >= _COMPACT_FRACTION * alive.numel():
                keep = alive.nonzero().flatten()
                cache.keep_rows(keep)
                live, positions, key_valid, tokens = live[keep], positions[keep], key_valid[keep], tokens[keep]
                alive, row_prompt_lens = alive[keep], row_prompt_lens[keep]
                # Slots before the longest remaining prompt are padding in every row: skip them.
                first_slot = prompt_width - int(row_prompt_lens.max())
                if additive_mask is not None:
                    additive_mask = additive_mask[keep]

            slot = prompt_width + step
            key_valid[:, slot] = True
            if fast is not None:
                if additive_mask is None:
                    additive_mask = torch.zeros(key_valid.shape, dtype=self.model.dtype, device=device)
                    additive_mask.masked_fill_(~key_valid, torch.finfo(self.model.dtype).min)
                additive_mask[:, slot] = 0
                logits = fast.step(tokens, positions, additive_mask[:, None, None, first_slot : slot + 1],
                                   cache, slot, first_slot)
            else:
                cache.begin_decode(slot)
                mask = key_valid[:, None, None, : slot + 1]
                logits = self._forward(tokens[:, None], positions[:, None], mask, cache)[:, -1].float()
            positions = positions + 1

        tokens_per_row = out_tokens.tolist()
        logprobs_per_row = out_logprobs.tolist()
        sampling_per_row = out_sampling.tolist()
        completions = []
        for r, (i, j) in enumerate(rows):
            length = num_generated[r]
            token_ids = tokens_per_row[r][:length]
            completions.append(Completion(
                prompt_index=i,
                sample_index=j,
                token_ids=token_ids,
                text=texts[r] if texts[r] is not None else self._decode(token_ids),
                logprobs=logprobs_per_row[r][:length],
                finish_reason=finish[r],  # type: ignore[arg-type]
                sampling_logprobs=sampling_per_row[r][:length],
                stop_reason=stop_reason[r],
                prompt_token_ids=prompt_ids[i],
            ))
        return completions

    def _sample(self, logits: torch.Tensor, temperature: float, top_p: float,
                generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Draw one token per row from fp32 `logits` [rows, vocab]: (tokens, raw log-probs,
        sampling log-probs)."""
        raw = torch.log_softmax(logits, dim=-1)
        if temperature < GREEDY_TEMPERATURE:
            tokens = logits.argmax(dim=-1)
            return tokens, raw.gather(-1, tokens[:, None]).squeeze(-1), torch.zeros_like(tokens, dtype=raw.dtype)
        scaled = raw if temperature == 1.0 else torch.log_softmax(logits / temperature, dim=-1)
        if top_p < 1.0:
            sorted_lp, sorted_ids = scaled.sort(dim=-1, descending=True)
            sorted_p = sorted_lp.exp()
            # Drop a token when the tokens ranked above it already reach top_p (the top token
            # always stays), then renormalise what is left.
            drop = (sorted_p.cumsum(dim=-1) - sorted_p) >= top_p
            nucleus = torch.log_softmax(sorted_lp.masked_fill(drop, -math.inf), dim=-1)
            pick = _inverse_cdf_sample(nucleus.exp(), generator)
            tokens = sorted_ids.gather(-1, pick[:, None]).squeeze(-1)
            sampling = nucleus.gather(-1, pick[:, None]).squeeze(-1)
        else:
            tokens = _inverse_cdf_sample(scaled.exp(), generator)
            sampling = scaled.gather(-1, tokens[:, None]).squeeze(-1)
        return tokens, raw.gather(-1, tokens[:, None]).squeeze(-1), sampling

    # ---------------------------------------------------------------------------------------
    # Forward passes through the model's own forward (any supported architecture)
    # ---------------------------------------------------------------------------------------

    def _forward(self, input_ids: torch.Tensor, position_ids: torch.Tensor, mask: torch.Tensor,
                 cache: _SlotKVCache | None, logits_to_keep: int = 0) -> torch.Tensor:
        """Model logits; `mask` is a boolean [rows, 1, queries, keys] (True = attend), which
        transformers takes as an already prepared mask."""
        if self._attn_implementation == "eager":  # eager attention adds the mask to the scores
            additive = torch.zeros(mask.shape, dtype=self.model.dtype, device=mask.device)
            mask = additive.masked_fill(~mask, torch.finfo(self.model.dtype).min)
        kwargs = {self._cache_kwarg: cache, "use_cache": cache is not None}
        output = self.model(input_ids=input_ids, position_ids=position_ids, attention_mask=mask,
                            logits_to_keep=logits_to_keep, **kwargs)
        return output.logits

    def _forward_left_padded(self, sequences: list[list[int]], cache: _SlotKVCache | None,
                             logits_to_keep: int = 0) -> torch.Tensor:
        """Model logits over left-padded `sequences` with a causal mask."""
        device = self.device
        width = max(len(s) for s in sequences)
        input_ids = torch.full((len(sequences), width), self._pad_id, dtype=torch.long)
        valid = torch.zeros((len(sequences), width), dtype=torch.bool)
        for k, seq in enumerate(sequences):
            input_ids[k, width - len(seq):] = torch.tensor(seq, dtype=torch.long)
            valid[k, width - len(seq):] = True
        input_ids, valid = input_ids.to(device), valid.to(device)
        position_ids = (valid.long().cumsum(dim=-1) - 1).clamp(min=0)
        causal = torch.ones(width, width, dtype=torch.bool, device=device).tril()
        # Padding queries attend to themselves only: a fully masked row makes SDPA return NaN, and
        # NaN values at padding slots would leak into real rows through 0 * NaN.
        mask = (causal[None] & valid[:, None, :]) | torch.eye(width, dtype=torch.bool, device=device)[None]
        return self._forward(input_ids, position_ids, mask[:, None], cache, logits_to_keep)

    def _right_padded(self, sequences: list[list[int]]) -> torch.Tensor:
        width = max(len(s) for s in sequences)
        input_ids = torch.full((len(sequences), width), self._pad_id, dtype=torch.long)
        for k, seq in enumerate(sequences):
            input_ids[k, : len(seq)] = torch.tensor(seq, dtype=torch.long)
        return input_ids.to(self.device)

    def _score_group(self, sequences: list[list[int]], completion_lens: list[int], temperature: float,
                     fast: _LlamaFastPath | None) -> list[list[float]]:
        """Teacher-forced log-probs of the last completion_lens[k] tokens of each sequence. Only
        the positions that predict them go through lm_head/log_softmax (a [rows, width, vocab]
        log_softmax would be the biggest tensor here for a 151k vocabulary)."""
        out = []
        if fast is not None:
            hidden = fast.sequences(self._right_padded(sequences))
            for k, (seq, c) in enumerate(zip(sequences, completion_lens)):
                # tokens at positions len - c .. len - 1 are predicted by positions one earlier
                logits = self.model.lm_head(hidden[k, len(seq) - c - 1 : len(seq) - 1]).float()
                out.append(self._gather_logprobs(logits, seq[-c:], temperature))
            return out
        keep = max(completion_lens) + 1
        logits_all = self._forward_left_padded(sequences, None, logits_to_keep=keep)
        for k, (seq, c) in enumerate(zip(sequences, completion_lens)):
            # right-aligned rows: among the kept last `keep` columns, completion token t is
            # predicted by column keep - 1 - c + t
            out.append(self._gather_logprobs(logits_all[k, keep - 1 - c : keep - 1].float(), seq[-c:], temperature))
        return out

    @staticmethod
    def _gather_logprobs(logits: torch.Tensor, targets: list[int], temperature: float) -> list[float]:
        logprobs = torch.log_softmax(logits / temperature, dim=-1)
        index = torch.tensor(targets, device=logits.device)[:, None]
        return logprobs.gather(-1, index).squeeze(-1).tolist()

    # ---------------------------------------------------------------------------------------
    # Helpers
    # ---------------------------------------------------------------------------------------

    @staticmethod
    def _length_groups(order: list[int], lengths: list[int], token_budget: int) -> Iterator[list[int]]:
        """Split `order` (sorted by decreasing length) into groups whose padded size
        (rows x longest) stays within token_budget (a group holds at least one item)."""
        group: list[int] = []
        for i in order:
            if group and (len(group) + 1) * lengths[group[0]] > token_budget:
                yield group
                group = []
            group.append(i)
        if group:
            yield group

    def _tokenize(self, prompts: Sequence[str]) -> list[list[int]]:
        if not prompts:
            return []
        ids = self.tokenizer(list(prompts))["input_ids"]
        for i, prompt_ids in enumerate(ids):
            if not prompt_ids:
                raise ValueError(f"prompt {i} tokenises to nothing: there is nothing to condition on")
        return [list(p) for p in ids]

    def _check_token_ids(self, sequences: list[list[int]]) -> None:
        for k, seq in enumerate(sequences):
            bad = [t for t in seq if not 0 <= t < self._vocab_size]
            if bad:
                raise ValueError(f"sequence {k} has token ids outside the vocabulary: {bad[:5]}")
            if self._max_positions is not None and len(seq) > self._max_positions:
                raise ValueError(f"sequence {k} has {len(seq)} tokens, more than max_position_embeddings "
                                 f"({self._max_positions})")

    def _decode(self, token_ids: list[int]) -> str:
        return self.tokenizer.decode(token_ids, skip_special_tokens=True)

    def _stop_candidates(self, stops: list[str]) -> torch.Tensor | None:
        """Boolean [vocab]: tokens that can complete a stop string (their text contains a stop's
        last character, or is an incomplete UTF-8 piece). Only steps drawing one are decoded."""
        if not stops:
            return None
        last_chars = {s[-1] for s in stops} | {_REPLACEMENT_CHAR}
        if any(ch.isspace() for ch in last_chars):
            # Some tokenizers drop a token's leading space when it is decoded alone: check every step.
            return torch.ones(self._vocab_size, dtype=torch.bool, device=self.device)
        if self._piece_texts is None:
            # The model's vocabulary can be larger than the tokenizer's (Qwen pads it to a multiple
            # of 128); ids past the tokenizer decode to nothing.
            known = min(self._vocab_size, len(self.tokenizer))
            self._piece_texts = self.tokenizer.batch_decode([[t] for t in range(known)])
            self._piece_texts += [""] * (self._vocab_size - known)
        flags = [any(ch in piece for ch in last_chars) for piece in self._piece_texts]
        return torch.tensor(flags, dtype=torch.bool, device=self.device)

    def _collect_eos_ids(self) -> set[int]:
        ids: set[int] = set()
        for source in (getattr(self.model, "generation_config", None), self.model.config, self.tokenizer):
            value = getattr(source, "eos_token_id", None) if source is not None else None
            if isinstance(value, int):
                ids.add(value)
            elif isinstance(value, (list, tuple)):
                ids.update(int(v) for v in value)
        return ids

    def _tied_parameter_names(self) -> set[str]:
        """Names in state_dict() that alias another entry's storage (e.g. a tied lm_head)."""
        seen: set[int] = set()
        tied = set()
        for name, tensor in self.model.state_dict().items():
            pointer = tensor.data_ptr()
            if pointer in seen:
                tied.add(name)
            seen.add(pointer)
        return tied

    @contextlib.contextmanager
    def _threads(self) -> Iterator[None]:
        if self.num_threads is None:
            yield
            return
        previous = torch.get_num_threads()
        torch.set_num_threads(self.num_threads)
        try:
            yield
        finally:
            torch.set_num_threads(previous)
