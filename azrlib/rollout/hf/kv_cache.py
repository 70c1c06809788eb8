"""`SlotKVCache`: the HF sampler's preallocated per-layer key/value buffers, written in place.

transformers' `DynamicCache` concatenates the whole cache on every decode step (`torch.cat` was
~58% of a `generate` decode step on CPU); this one is allocated once per chunk at
longest prompt + max_new_tokens slots and also serves as a duck-typed transformers cache for
models that go through their own forward (docs/benchmarks.md, "HF sampler").
"""

from __future__ import annotations

import torch


class SlotKVCache:
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
                 dtype: torch.dtype, device: torch.device, transposed_keys: bool = False) -> "SlotKVCache":
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

