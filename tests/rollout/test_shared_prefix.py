"""The HF sampler's shared-prompt decoding (`SharedPrefixKVCache` + `LlamaFastPath.step_shared`)
against the plain path that copies each prompt to its n sample rows (`SlotKVCache` + `step`).

Step level: the same logits (atol 1e-5, fp32) at every decode step, including after rows of a
prompt, and whole prompts, were dropped. Call level: the same samples for a seed (the draws use
the same uniforms), log-probs within 1e-5, identical greedy outputs, with chunks that split a
prompt's samples and ones that hold several prompts.
"""

from __future__ import annotations

import pytest
import torch

from azrlib.rollout import HFSampler
from azrlib.rollout.hf.fast_path import LlamaFastPath
from azrlib.rollout.hf.kv_cache import SharedPrefixKVCache, SlotKVCache
from tiny_model import SAMPLER_PROMPTS as PROMPTS

torch.set_num_threads(1)
ATOL = 1e-5


def test_shared_step_gives_the_plain_step_logits(sampler):
    model, n, new_tokens = sampler.model, 3, 8
    fast = LlamaFastPath(model)
    prompts = [sampler.tokenizer(p)["input_ids"] for p in PROMPTS]
    width = max(len(p) for p in prompts)
    prompt_of_row = [u for u in range(len(prompts)) for _ in range(n)]
    rows = len(prompt_of_row)
    config = model.config
    kv_heads, head_dim = config.num_key_value_heads, config.hidden_size // config.num_attention_heads
    plain = SlotKVCache.allocate(config.num_hidden_layers, rows, kv_heads, width + new_tokens, head_dim,
                                 torch.float32, torch.device("cpu"), transposed_keys=True)
    shared = SharedPrefixKVCache(config.num_hidden_layers, prompt_of_row, len(prompts), kv_heads, width,
                                 new_tokens, head_dim, torch.float32, torch.device("cpu"))
    assert shared.dense and shared.per_prompt == n

    def sink(layer, keys, values):
        for u, p in enumerate(prompts):
            k, v = keys[u, :, : len(p)], values[u, :, : len(p)]
            plain.write(layer, torch.tensor([r for r in range(rows) if prompt_of_row[r] == u]), width - len(p), k, v)
            shared.write_prefix(layer, u, width - len(p), k, v)

    with torch.inference_mode():
        fast.sequences(sampler._right_padded(prompts), sink, torch.tensor([len(p) - 1 for p in prompts]))
        lengths = torch.tensor([len(prompts[u]) for u in prompt_of_row])
        slots = torch.arange(width + new_tokens)
        valid = (slots[None] >= width - lengths[:, None]) & (slots[None] < width)
        generator = torch.Generator().manual_seed(0)
        tokens = torch.randint(1, config.vocab_size, (rows,), generator=generator)
        positions = lengths.clone()
        first_slot = 0
        for step in range(new_tokens):
            if step == 3:  # drop rows: a hole in prompt 0's rows, all of prompt 1's
                keep = torch.tensor([0, 2, 6, 7, 8])
            elif step == 5:  # and now prompt 2 keeps one row: the grid has holes
                keep = torch.tensor([0, 1, 3])
            else:
                keep = None
            if keep is not None:
                plain.keep_rows(keep)
                shared.keep_rows(keep)
                tokens, positions, valid, lengths = tokens[keep], positions[keep], valid[keep], lengths[keep]
                first_slot = width - int(lengths.max())
            slot = width + step
            valid[:, slot] = True
            mask = torch.zeros(valid.shape).masked_fill(~valid, torch.finfo(torch.float32).min)
            mask = mask[:, None, None, first_slot: slot + 1]
            a = fast.step(tokens, positions, mask, plain, slot, first_slot)
            b = fast.step_shared(tokens, positions, mask, shared, slot, first_slot)
            assert torch.allclose(a, b, atol=ATOL, rtol=0), (step, (a - b).abs().max())
            tokens = a.argmax(dim=-1)
            positions = positions + 1
    assert not shared.dense and shared.num_prompts == 2


@pytest.mark.parametrize("batch_size", [None, 5])  # 5: chunks split a prompt's samples
def test_shared_prefix_sampling_matches_copied_prompts(model_dir, batch_size):
    sampler = HFSampler(model_dir, num_threads=1, batch_size=batch_size)
    plain = HFSampler(sampler.model, sampler.tokenizer, num_threads=1, batch_size=batch_size, share_prefix=False)
    # stop strings end rows at different steps (the random model rarely draws EOS)
    a = sampler.generate(PROMPTS, n=4, temperature=1.0, max_new_tokens=24, stop=["e", "("], seed=0)
    b = plain.generate(PROMPTS, n=4, temperature=1.0, max_new_tokens=24, stop=["e", "("], seed=0)
    lengths = set()
    for row_a, row_b in zip(a, b):
        for x, y in zip(row_a, row_b):
            assert x.token_ids == y.token_ids and x.text == y.text and x.finish_reason == y.finish_reason
            assert x.logprobs == pytest.approx(y.logprobs, abs=ATOL, rel=0)
            lengths.add(len(x.token_ids))
    assert len(lengths) > 1  # rows finished at different steps: the batch was compacted


def test_shared_prefix_greedy_outputs_are_identical(model_dir):
    sampler = HFSampler(model_dir, num_threads=1)
    plain = HFSampler(sampler.model, sampler.tokenizer, num_threads=1, share_prefix=False)
    a = sampler.generate(PROMPTS, n=3, temperature=0.0, max_new_tokens=20)
    b = plain.generate(PROMPTS, n=3, temperature=0.0, max_new_tokens=20)
    assert [[c.token_ids for c in row] for row in a] == [[c.token_ids for c in row] for row in b]
    assert [[c.text for c in row] for row in a] == [[c.text for c in row] for row in b]
