"""`LlamaFastPath`: prefill, scoring and decode steps of Llama-style decoder stacks (Qwen2/2.5,
Qwen3, Llama) as plain tensor code over the model's own weights, for the HF sampler.

Same arithmetic as the transformers modules with fewer ops (fused q/k/v and gate/up matmuls, RoPE on
queries and keys at once, right-padded causal prefill with no mask, keys cached transposed); the
tests compare its log-probs with the model's forward. Measurements: docs/benchmarks.md, "HF sampler".
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
import torch.nn.functional as F

from azrlib.rollout.hf.kv_cache import SharedPrefixKVCache, SlotKVCache

FAST_PATH_MODEL_TYPES = ("qwen2", "qwen3", "llama")


class LlamaFastPath:
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
        if getattr(config, "model_type", None) not in FAST_PATH_MODEL_TYPES or inner is None:
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
             cache: SlotKVCache, slot: int, first_slot: int = 0) -> torch.Tensor:
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


    def step_shared(self, tokens: torch.Tensor, positions: torch.Tensor, additive_mask: torch.Tensor,
                    cache: SharedPrefixKVCache, slot: int, first_slot: int = 0) -> torch.Tensor:
        """`step` on a `SharedPrefixKVCache`: the same slots, masks and result (slot numbers count
        the prompt width first, then the generated tokens). Scores against the prompt keys are
        computed per prompt for all its rows at once, scores against the row's own generated
        keys per row; one softmax over both (as `step`), then the two value products are added."""
        rows = tokens.shape[0]
        heads, kv_heads, head_dim = self.num_heads, self.kv_heads, self.head_dim
        group = heads // kv_heads
        width = cache.prompt_width
        gen_slot = slot - width
        hidden = self.inner.embed_tokens(tokens)
        cos, signed_sin = self._rope_tables(hidden, positions[:, None])
        cos, signed_sin = cos[:, 0], signed_sin[:, 0]
        for l, weights in enumerate(self.layers):
            q, k, v = self._qkv(weights, weights[0].input_layernorm(hidden), cos, signed_sin)
            cache.keys[l][:, :, :, gen_slot] = k
            cache.values[l][:, :, gen_slot] = v
            q = q.reshape(rows, kv_heads, group, head_dim)
            prompt_scores = cache.from_grid(
                torch.matmul(cache.to_grid(q), cache.prefix_keys[l][..., first_slot:]), group)
            own_scores = torch.matmul(q, cache.keys[l][..., : gen_slot + 1])
            scores = torch.cat((prompt_scores, own_scores), dim=-1)
            probs = (scores * self.scaling + additive_mask).softmax(dim=-1, dtype=torch.float32).to(v.dtype)
            prompt_part = width - first_slot
            attended = cache.from_grid(
                torch.matmul(cache.to_grid(probs[..., :prompt_part]), cache.prefix_values[l][:, :, first_slot:]),
                group)
            attended = attended + torch.matmul(probs[..., prompt_part:], cache.values[l][:, :, : gen_slot + 1])
            hidden = self._finish_layer(weights, hidden, attended.reshape(rows, heads * head_dim))
        return self.model.lm_head(self.inner.norm(hidden)).float()
