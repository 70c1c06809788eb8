"""`HFSampler`: batched sampling on a transformers causal LM with its own decoding loop.

AZR/veRL roll out with vLLM; this engine exists for CPU runs (tests, the tiny presets) and as the
reference the vLLM engine is checked against. It does not call `model.generate`, which on CPU
spends most of its time outside the model arithmetic: a preallocated KV cache (`kv_cache`), a
Llama/Qwen fast path (`fast_path`), each prompt prefilled once and copied to its n sample rows,
the n samples of a prompt reading its keys/values from one copy (`SharedPrefixKVCache`), finished
rows dropped from the batch, inverse-CDF sampling (`sampling`). Design notes and
measurements: docs/benchmarks.md, "HF sampler".

Sampling: temperature (0 or < 1e-5 = greedy), top-p (smallest set of most likely tokens whose
probability reaches top_p, renormalised), stop strings and EOS as documented in `base`. A call with
a seed uses its own `torch.Generator`: same seed and arguments -> identical samples on CPU.

Exactness: `logprobs` are the log-softmax of the fp32-upcast logits of the decoding pass; with an
fp32 model they equal a teacher-forced forward pass over prompt + completion to ~4e-6 (the tests
require 1e-5), with left padding, chunking and either path. `score` is that teacher-forced pass.

Supported models: decoder-only transformers 5.x models with full (not sliding-window) `sdpa` or
`eager` attention whose layers call `cache.update(key, value, layer_idx)` and take a 4-D mask.
"""

from __future__ import annotations

import contextlib
import inspect
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path

import torch

from azrlib.rollout.base import (
    Completion,
    Sampler,
    check_generate_args,
    check_score_args,
    find_stop,
)
from azrlib.rollout.hf.fast_path import LlamaFastPath
from azrlib.rollout.hf.kv_cache import SharedPrefixKVCache, SlotKVCache
from azrlib.rollout.hf.sampling import (
    check_token_ids,
    collect_eos_ids,
    gather_logprobs,
    load_state_into,
    length_groups,
    sample_next,
    stop_candidates,
    tied_parameter_names,
    token_texts,
)

# Compact the decode batch once this fraction of its rows has finished (a copy costs ~one step's reads).
_COMPACT_FRACTION = 0.25


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
        None (default): as many rows as fit `memory_bytes` (KV cache plus ~4 fp32 vocabulary rows
        for sampling). Every chunk decodes until its longest row ends, and the steps of that tail
        run few rows at a fixed per-step cost, so one chunk per call is fastest here
        (docs/benchmarks.md, "HF sampler").
    prefill_tokens: padded tokens per prefill/score forward (docs/benchmarks.md, "HF sampler").
    num_threads: torch intra-op threads while this sampler runs (restored afterwards); None leaves
        the process setting alone. Use 1 for tiny models on a small shared machine (docs/benchmarks.md).
    fast_path: use `LlamaFastPath` when the architecture is supported (Qwen2/2.5, Qwen3, Llama);
        False always uses the model's forward.
    share_prefix: on the fast path, the samples of a prompt read one copy of its keys/values
        (same results to float rounding); False copies the prompt to every sample row.
    """

    def __init__(
        self,
        model_or_path: str | Path | torch.nn.Module,
        tokenizer: object | None = None,
        device: str | torch.device = "cpu",
        dtype: torch.dtype | str | None = None,
        batch_size: int | None = None,
        prefill_tokens: int = 1024,
        num_threads: int | None = None,
        fast_path: bool = True,
        share_prefix: bool = True,
        memory_bytes: int = 2 << 30,
    ) -> None:
        from transformers import AutoModelForCausalLM

        from azrlib.models import load_tokenizer

        if (batch_size is not None and batch_size < 1) or prefill_tokens < 1:
            raise ValueError(f"batch_size and prefill_tokens must be positive, got {batch_size}, {prefill_tokens}")
        if num_threads is not None and num_threads < 1:
            raise ValueError(f"num_threads must be positive or None, got {num_threads}")
        self.device = torch.device(device)
        self.batch_size = batch_size
        self.memory_bytes = memory_bytes
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
        self._eos_ids = collect_eos_ids(self.model, self.tokenizer)
        self._pad_id = self.tokenizer.pad_token_id if self.tokenizer.pad_token_id is not None else 0
        self._piece_texts: list[str] | None = None
        self.fast_path = fast_path and LlamaFastPath.supports(self.model)
        self.share_prefix = share_prefix

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
        results: list[list[Completion | None]] = [[None] * n for _ in prompts]
        # A prompt that does not fit the model's positions fails alone: empty samples with a reason.
        runnable = []
        for i, ids in enumerate(prompt_ids):
            if self._max_positions is not None and len(ids) + max_new_tokens > self._max_positions:
                reason = (f"prompt ({len(ids)} tokens) + max_new_tokens ({max_new_tokens}) exceeds the model's "
                          f"max_position_embeddings ({self._max_positions})")
                results[i] = [Completion(prompt_index=i, sample_index=j, token_ids=[], text="", logprobs=[],
                                         finish_reason="error", sampling_logprobs=[], error=reason,
                                         prompt_token_ids=ids) for j in range(n)]
            else:
                runnable.append(i)
        generator = torch.Generator(device=self.device)
        if seed is None:
            generator.seed()
        else:
            generator.manual_seed(seed)
        stops = list(stop or [])

        with self._threads(), torch.inference_mode():
            fast = LlamaFastPath(self.model) if self.fast_path and runnable else None
            width = max((len(prompt_ids[i]) for i in runnable), default=0) + max_new_tokens
            for rows in self._plan_chunks(runnable, prompt_ids, n, self._rows_per_chunk(width)):
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
            fast = LlamaFastPath(self.model) if self.fast_path and order else None
            for group in length_groups(order, [len(s) for s in sequences], self.prefill_tokens):
                group_scores = self._score_group([sequences[i] for i in group],
                                                 [len(completions[i]) for i in group], temperature, fast)
                for i, values in zip(group, group_scores):
                    scores[i] = values
        return scores

    def load_weights(self, state_dict: Mapping[str, torch.Tensor]) -> None:
        """Copy `state_dict` into the model (dtype/device converted); every model weight must be
        present except tied ones, and no unknown names are accepted."""
        load_state_into(self.model, state_dict)

    # ---------------------------------------------------------------------------------------
    # Decoding
    # ---------------------------------------------------------------------------------------

    def _rows_per_chunk(self, width: int) -> int:
        if self.batch_size is not None:
            return self.batch_size
        itemsize = torch.finfo(self.model.dtype).bits // 8
        per_row = 2 * self._num_layers * self._kv_heads * self._head_dim * width * itemsize + 16 * self._vocab_size
        return max(1, self.memory_bytes // per_row)

    def _plan_chunks(self, indices: list[int], prompt_ids: list[list[int]], n: int,
                     rows_per_chunk: int) -> Iterator[list[tuple[int, int]]]:
        """Yield lists of (prompt index, sample index), at most rows_per_chunk each; prompts sorted by
        length (longest first) so a chunk's prompts need little padding."""
        order = sorted(indices, key=lambda i: -len(prompt_ids[i]))
        chunk: list[tuple[int, int]] = []
        for i in order:
            for j in range(n):
                chunk.append((i, j))
                if len(chunk) == rows_per_chunk:
                    yield chunk
                    chunk = []
        if chunk:
            yield chunk

    def _prefill(self, rows: list[tuple[int, int]], prompt_ids: list[list[int]], cache,
                 prompt_width: int, fast: LlamaFastPath | None) -> torch.Tensor:
        """Fill the cache with the chunk's prompts (each unique prompt computed once, copied to its
        sample rows, or stored once in a `SharedPrefixKVCache`); return fp32 logits [rows, vocab]
        for each row's first new token."""
        device = self.device
        unique_prompts = list(dict.fromkeys(i for i, _ in rows))  # longest first, as planned
        rows_of_prompt: dict[int, list[int]] = {i: [] for i in unique_prompts}
        for r, (i, _) in enumerate(rows):
            rows_of_prompt[i].append(r)
        first_logits = torch.empty(len(rows), self._vocab_size, dtype=torch.float32, device=device)
        shared = isinstance(cache, SharedPrefixKVCache)
        lengths = [len(prompt_ids[i]) for i in unique_prompts]
        for group in length_groups(list(range(len(unique_prompts))), lengths, self.prefill_tokens):
            group_prompts = [prompt_ids[unique_prompts[g]] for g in group]
            group_rows = [torch.tensor(rows_of_prompt[unique_prompts[g]], device=device) for g in group]
            if fast is not None:
                input_ids = self._right_padded(group_prompts)

                def sink(layer: int, keys: torch.Tensor, values: torch.Tensor) -> None:
                    for k, (prompt, dest) in enumerate(zip(group_prompts, group_rows)):
                        length = len(prompt)
                        if shared:  # stored once, at the prompt's index in the chunk
                            cache.write_prefix(layer, group[k], prompt_width - length, keys[k, :, :length],
                                               values[k, :, :length])
                        else:
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
        fast: LlamaFastPath | None,
    ) -> list[Completion]:
        device = self.device
        num_rows = len(rows)
        prompt_lens = torch.tensor([len(prompt_ids[i]) for i, _ in rows], device=device)
        prompt_width = int(prompt_lens.max())
        capacity = prompt_width + max_new_tokens
        unique = {i: u for u, i in enumerate(dict.fromkeys(i for i, _ in rows))}  # prompts, in _prefill's order
        shared = fast is not None and self.share_prefix and len(unique) < num_rows
        if shared:
            cache = SharedPrefixKVCache(self._num_layers, [unique[i] for i, _ in rows], len(unique), self._kv_heads,
                                        prompt_width, max_new_tokens, self._head_dim, self.model.dtype, device)
        else:
            cache = SlotKVCache.allocate(self._num_layers, num_rows, self._kv_heads, capacity, self._head_dim,
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
            tokens, logprobs, sampling_logprobs = sample_next(logits, temperature, top_p, generator)
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
                logits = (fast.step_shared if shared else fast.step)(
                    tokens, positions, additive_mask[:, None, None, first_slot : slot + 1], cache, slot, first_slot)
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

    # ---------------------------------------------------------------------------------------
    # Forward passes through the model's own forward (any supported architecture)
    # ---------------------------------------------------------------------------------------

    def _forward(self, input_ids: torch.Tensor, position_ids: torch.Tensor, mask: torch.Tensor,
                 cache: SlotKVCache | None, logits_to_keep: int = 0) -> torch.Tensor:
        """Model logits; `mask` is a boolean [rows, 1, queries, keys] (True = attend), which
        transformers takes as an already prepared mask."""
        if self._attn_implementation == "eager":  # eager attention adds the mask to the scores
            additive = torch.zeros(mask.shape, dtype=self.model.dtype, device=mask.device)
            mask = additive.masked_fill(~mask, torch.finfo(self.model.dtype).min)
        kwargs = {self._cache_kwarg: cache, "use_cache": cache is not None}
        output = self.model(input_ids=input_ids, position_ids=position_ids, attention_mask=mask,
                            logits_to_keep=logits_to_keep, **kwargs)
        return output.logits

    def _forward_left_padded(self, sequences: list[list[int]], cache: SlotKVCache | None,
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
                     fast: LlamaFastPath | None) -> list[list[float]]:
        """Teacher-forced log-probs of the last completion_lens[k] tokens of each sequence. Only
        the positions that predict them go through lm_head/log_softmax (a [rows, width, vocab]
        log_softmax would be the biggest tensor here for a 151k vocabulary)."""
        out = []
        if fast is not None:
            hidden = fast.sequences(self._right_padded(sequences))
            for k, (seq, c) in enumerate(zip(sequences, completion_lens)):
                # tokens at positions len - c .. len - 1 are predicted by positions one earlier
                logits = self.model.lm_head(hidden[k, len(seq) - c - 1 : len(seq) - 1]).float()
                out.append(gather_logprobs(logits, seq[-c:], temperature))
            return out
        keep = max(completion_lens) + 1
        logits_all = self._forward_left_padded(sequences, None, logits_to_keep=keep)
        for k, (seq, c) in enumerate(zip(sequences, completion_lens)):
            # right-aligned rows: among the kept last `keep` columns, completion token t is
            # predicted by column keep - 1 - c + t
            out.append(gather_logprobs(logits_all[k, keep - 1 - c : keep - 1].float(), seq[-c:], temperature))
        return out

    def _tokenize(self, prompts: Sequence[str]) -> list[list[int]]:
        if not prompts:
            return []
        ids = self.tokenizer(list(prompts))["input_ids"]
        for i, prompt_ids in enumerate(ids):
            if not prompt_ids:
                raise ValueError(f"prompt {i} tokenises to nothing: there is nothing to condition on")
        return [list(p) for p in ids]

    def _check_token_ids(self, sequences: list[list[int]]) -> None:
        check_token_ids(sequences, self._vocab_size, self._max_positions)

    def _decode(self, token_ids: list[int]) -> str:
        return self.tokenizer.decode(token_ids, skip_special_tokens=True)

    def _stop_candidates(self, stops: list[str]) -> torch.Tensor | None:
        if stops and self._piece_texts is None and not any(ch.isspace() for ch in {x[-1] for x in stops}):
            self._piece_texts = token_texts(self.tokenizer, self._vocab_size)
        return stop_candidates(stops, self._piece_texts, self._vocab_size, self.device)

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
