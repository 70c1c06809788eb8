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



class SharedPrefixKVCache:
    """K/V buffers for a chunk whose prompts each have several sample rows (n > 1): each prompt's
    keys/values are stored once and read by all of its rows, each row keeps only what it generated.

    A decode step reads every cached key and value of every row; with the prompt copied to its n
    rows, the prompt part (most of the keys: prompts are longer than the answers so far) was read
    n times. Here the prompt part is one [prompts, kv_heads, ...] tensor that the rows of a prompt
    attend to together, as one batched matmul with their queries stacked (`LlamaFastPath.step_shared`).

    prefix_keys[l] [prompts, kv_heads, head_dim, prompt_width] (transposed), prefix_values[l]
    [prompts, kv_heads, prompt_width, head_dim]: prompts right-aligned at `prompt_width`, as
    `SlotKVCache`. keys[l] [rows, kv_heads, head_dim, max_new_tokens] (transposed) and values[l]
    [rows, kv_heads, max_new_tokens, head_dim]: generated token t of a row at slot t.

    Rows sit on a grid of `prompts x per_prompt` cells (`grid_pos[r]` = prompt * per_prompt + the
    row's rank among its prompt's rows), so the queries of a prompt's rows stack into one block;
    cells of finished (dropped) rows are zero and cost only arithmetic. `dense` says the grid is
    full in row order (no scatter needed).
    """

    def __init__(self, num_layers: int, prompt_of_row: list[int], num_prompts: int, kv_heads: int,
                 prompt_width: int, max_new_tokens: int, head_dim: int, dtype: torch.dtype,
                 device: torch.device) -> None:
        rank, counts = [], [0] * num_prompts
        for u in prompt_of_row:
            rank.append(counts[u])
            counts[u] += 1
        self.per_prompt = max(counts)
        self.prompt_width = prompt_width
        rows = len(prompt_of_row)
        zeros = lambda *shape: torch.zeros(shape, dtype=dtype, device=device)  # noqa: E731 - see SlotKVCache
        self.prefix_keys = [zeros(num_prompts, kv_heads, head_dim, prompt_width) for _ in range(num_layers)]
        self.prefix_values = [zeros(num_prompts, kv_heads, prompt_width, head_dim) for _ in range(num_layers)]
        self.keys = [zeros(rows, kv_heads, head_dim, max_new_tokens) for _ in range(num_layers)]
        self.values = [zeros(rows, kv_heads, max_new_tokens, head_dim) for _ in range(num_layers)]
        self.prompt_of_row = torch.tensor(prompt_of_row, dtype=torch.long, device=device)
        self.rank_of_row = torch.tensor(rank, dtype=torch.long, device=device)
        self._set_grid()

    @property
    def num_prompts(self) -> int:
        return self.prefix_keys[0].shape[0]

    def _set_grid(self) -> None:
        self.grid_pos = self.prompt_of_row * self.per_prompt + self.rank_of_row
        cells = self.num_prompts * self.per_prompt
        self.dense = len(self.grid_pos) == cells and bool(
            (self.grid_pos == torch.arange(cells, device=self.grid_pos.device)).all())

    def write_prefix(self, layer: int, prompts: torch.Tensor | slice, first_slot: int,
                     keys: torch.Tensor, values: torch.Tensor) -> None:
        """Store a prompt's keys/values [.., kv_heads, length, head_dim] at slots
        [first_slot, first_slot + length) of `prompts`."""
        end = first_slot + keys.shape[-2]
        self.prefix_keys[layer][prompts, :, :, first_slot:end] = keys.transpose(-1, -2)
        self.prefix_values[layer][prompts, :, first_slot:end] = values

    def to_grid(self, x: torch.Tensor) -> torch.Tensor:
        """Per-row [rows, kv_heads, group, m] -> per-prompt [prompts, kv_heads, per_prompt * group, m]."""
        rows, kv_heads, group, m = x.shape
        cells = self.num_prompts * self.per_prompt
        if not self.dense:
            x = x.new_zeros((cells, kv_heads, group, m)).index_copy_(0, self.grid_pos, x)
        return x.view(self.num_prompts, self.per_prompt, kv_heads, group, m).transpose(1, 2).reshape(
            self.num_prompts, kv_heads, self.per_prompt * group, m)

    def from_grid(self, x: torch.Tensor, group: int) -> torch.Tensor:
        """The inverse of `to_grid`: [prompts, kv_heads, per_prompt * group, m] -> [rows, kv_heads, group, m]."""
        prompts, kv_heads, _, m = x.shape
        x = x.view(prompts, kv_heads, self.per_prompt, group, m).transpose(1, 2).reshape(
            prompts * self.per_prompt, kv_heads, group, m)
        return x if self.dense else x.index_select(0, self.grid_pos)

    def keep_rows(self, rows: torch.Tensor) -> None:
        """Keep only `rows` (ascending); prompts none of them uses are dropped too."""
        self.keys = [k.index_select(0, rows) for k in self.keys]
        self.values = [v.index_select(0, rows) for v in self.values]
        prompt_of_row = self.prompt_of_row.index_select(0, rows)
        used = torch.unique(prompt_of_row)  # sorted
        if len(used) < self.num_prompts:
            self.prefix_keys = [k.index_select(0, used) for k in self.prefix_keys]
            self.prefix_values = [v.index_select(0, used) for v in self.prefix_values]
            prompt_of_row = torch.searchsorted(used, prompt_of_row)
        self.prompt_of_row = prompt_of_row
        self.rank_of_row = self.rank_of_row.index_select(0, rows)
        self._set_grid()
