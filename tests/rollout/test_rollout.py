"""Rollout engines on a tiny random Qwen2 + byte-level BPE tokenizer saved to (and loaded from) disk.

HFSampler: sampled-token log-probs against a teacher-forced forward pass (with left padding and
chunking), `score`, seeds, stop strings, EOS, max_new_tokens, greedy / tiny top-p, weight sync,
bad input. VLLMSampler (marked `vllm`): the same log-probs and weight sync against HFSampler,
skipped when vllm is not installed.
"""

from __future__ import annotations

import math

import pytest
import torch

from azrlib.rollout import Completion, HFSampler
from tiny_model import SAMPLER_PROMPTS as PROMPTS, build_tiny_checkpoint, build_tiny_model

torch.set_num_threads(1)

ATOL = 1e-5  # fp32 sampler log-probs vs a teacher-forced forward pass


def teacher_forced(model, prompt_ids: list[int], token_ids: list[int], temperature: float = 1.0) -> torch.Tensor:
    """log_softmax(logits / T) rows predicting each of token_ids, from one unpadded forward pass."""
    with torch.no_grad():
        logits = model(torch.tensor([prompt_ids + token_ids])).logits[0].float()
    return torch.log_softmax(logits[len(prompt_ids) - 1 : -1] / temperature, dim=-1)


def assert_logprobs_match(model, completion: Completion) -> None:
    rows = teacher_forced(model, completion.prompt_token_ids, completion.token_ids)
    expected = rows.gather(-1, torch.tensor(completion.token_ids)[:, None]).squeeze(-1)
    assert torch.allclose(torch.tensor(completion.logprobs), expected, atol=ATOL, rtol=0)


# ---------------------------------------------------------------------------------------------
# Log-probs
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("fast_path", [True, False])
@pytest.mark.parametrize("batch_size", [64, 4])  # 4: prompts' samples are split across chunks
def test_sampled_logprobs_equal_teacher_forcing_with_left_padding(model_dir, batch_size, fast_path):
    sampler = HFSampler(model_dir, batch_size=batch_size, num_threads=1, fast_path=fast_path)
    rows = sampler.generate(PROMPTS, n=3, temperature=1.0, max_new_tokens=24, seed=0)
    assert len(rows) == len(PROMPTS) and all(len(row) == 3 for row in rows)
    lengths = {len(row[0].prompt_token_ids) for row in rows}
    assert len(lengths) == len(PROMPTS)  # different prompt lengths: the batch is left padded
    for i, row in enumerate(rows):
        for j, completion in enumerate(row):
            assert (completion.prompt_index, completion.sample_index) == (i, j)
            assert completion.prompt_token_ids == sampler.tokenizer(PROMPTS[i])["input_ids"]
            assert len(completion.logprobs) == len(completion.token_ids) > 0
            assert_logprobs_match(sampler.model, completion)
            # T=1, top_p=1: the sampling distribution is the model's
            assert completion.sampling_logprobs == completion.logprobs


def test_logprobs_with_temperature_and_top_p(sampler):
    temperature, top_p = 0.7, 0.8
    rows = sampler.generate(PROMPTS, n=2, temperature=temperature, top_p=top_p, max_new_tokens=16, seed=1)
    for completion in (c for row in rows for c in row):
        assert_logprobs_match(sampler.model, completion)  # `logprobs` stay the raw T=1 ones
        scaled = teacher_forced(sampler.model, completion.prompt_token_ids, completion.token_ids, temperature)
        for t, token in enumerate(completion.token_ids):
            probs = scaled[t].exp()
            order = probs.argsort(descending=True)
            before = probs[order].cumsum(0) - probs[order]
            nucleus = order[before < top_p]
            assert token in nucleus.tolist()  # never sampled outside the nucleus
            expected = scaled[t, token] - torch.logsumexp(scaled[t, nucleus], dim=0)
            assert abs(completion.sampling_logprobs[t] - expected.item()) < ATOL


@pytest.mark.parametrize("fast_path", [True, False])
def test_score_equals_direct_computation(model_dir, fast_path):
    sampler = HFSampler(model_dir, num_threads=1, fast_path=fast_path, prefill_tokens=64)  # several groups
    rows = sampler.generate(PROMPTS, n=2, max_new_tokens=12, seed=2)
    completions = [c for row in rows for c in row]
    prompts = [PROMPTS[c.prompt_index] for c in completions]
    token_lists = [c.token_ids for c in completions]
    for temperature in (1.0, 0.5):
        scores = sampler.score(prompts, token_lists, temperature=temperature)
        for completion, values in zip(completions, scores):
            rows_lp = teacher_forced(sampler.model, completion.prompt_token_ids, completion.token_ids, temperature)
            expected = rows_lp.gather(-1, torch.tensor(completion.token_ids)[:, None]).squeeze(-1)
            assert torch.allclose(torch.tensor(values), expected, atol=ATOL, rtol=0)
    # token-id prompts, arbitrary continuations, an empty continuation
    ids = sampler.tokenizer(PROMPTS[0])["input_ids"]
    scores = sampler.score([ids, PROMPTS[1]], [[5, 6, 7, 8], []])
    expected = teacher_forced(sampler.model, ids, [5, 6, 7, 8]).gather(-1, torch.tensor([[5], [6], [7], [8]]))
    assert torch.allclose(torch.tensor(scores[0]), expected.squeeze(-1), atol=ATOL, rtol=0)
    assert scores[1] == []


def tiny_model_of(architecture: str, vocab_size: int, eos: int):
    """A tiny random model of another Llama-style family (the fast decode path must match them)."""
    from transformers import LlamaConfig, LlamaForCausalLM, Qwen3Config, Qwen3ForCausalLM

    common = dict(vocab_size=vocab_size, hidden_size=64, intermediate_size=128, num_hidden_layers=2,
                  num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=512,
                  eos_token_id=eos, pad_token_id=eos, initializer_range=0.2)
    with torch.random.fork_rng():
        torch.manual_seed(5)
        if architecture == "llama":
            return LlamaForCausalLM(LlamaConfig(**common)).eval()
        return Qwen3ForCausalLM(Qwen3Config(head_dim=16, **common)).eval()


@pytest.mark.parametrize("architecture", ["qwen2", "llama", "qwen3"])
def test_fast_and_generic_paths_agree(sampler, architecture):
    tokenizer = sampler.tokenizer
    model = sampler.model if architecture == "qwen2" else tiny_model_of(architecture, len(tokenizer),
                                                                         tokenizer.eos_token_id)
    fast = HFSampler(model, tokenizer, num_threads=1)
    generic = HFSampler(model, tokenizer, num_threads=1, fast_path=False)
    assert fast.fast_path and not generic.fast_path
    greedy_fast = fast.generate(PROMPTS, temperature=0.0, max_new_tokens=12)
    greedy_generic = generic.generate(PROMPTS, temperature=0.0, max_new_tokens=12)
    assert [r[0].token_ids for r in greedy_fast] == [r[0].token_ids for r in greedy_generic]
    for path in (fast, generic):
        completions = [c for row in path.generate(PROMPTS, n=2, max_new_tokens=12, seed=0) for c in row]
        for completion in completions:
            assert_logprobs_match(model, completion)
        prompts, tokens = [c.prompt_token_ids for c in completions], [c.token_ids for c in completions]
        for a, b in zip(fast.score(prompts, tokens), generic.score(prompts, tokens)):
            assert a == pytest.approx(b, abs=ATOL)


@pytest.mark.parametrize("fast_path", [True, False])
def test_bfloat16_model_runs_and_roughly_matches_its_forward(model_dir, fast_path):
    sampler = HFSampler(model_dir, dtype="bfloat16", num_threads=1, fast_path=fast_path)
    assert sampler.model.dtype == torch.bfloat16
    for completion in (c for row in sampler.generate(PROMPTS, n=2, max_new_tokens=12, seed=0) for c in row):
        rows = teacher_forced(sampler.model, completion.prompt_token_ids, completion.token_ids)
        expected = rows.gather(-1, torch.tensor(completion.token_ids)[:, None]).squeeze(-1)
        # bf16 rounding differs between the batched decode and one forward pass; a wrong position
        # or mask would be off by nats, not hundredths
        assert torch.allclose(torch.tensor(completion.logprobs), expected, atol=0.15, rtol=0)


# ---------------------------------------------------------------------------------------------
# Seeds, greedy, top-p
# ---------------------------------------------------------------------------------------------


def test_same_seed_same_samples_different_seed_different(sampler):
    def tokens(seed):
        return [c.token_ids for row in sampler.generate(PROMPTS, n=2, max_new_tokens=16, seed=seed) for c in row]

    first = tokens(7)
    assert tokens(7) == first
    assert tokens(8) != first
    assert len({tuple(t) for t in first}) > 1  # samples within a call differ too


def greedy_reference(model, prompt_ids: list[int], steps: int) -> list[int]:
    ids = list(prompt_ids)
    with torch.no_grad():
        for _ in range(steps):
            ids.append(int(model(torch.tensor([ids])).logits[0, -1].argmax()))
    return ids[len(prompt_ids):]


@pytest.mark.parametrize("temperature", [0.0, 1e-6])
def test_temperature_zero_is_greedy(sampler, temperature):
    rows = sampler.generate(PROMPTS, n=2, temperature=temperature, max_new_tokens=10, seed=3)
    for row in rows:
        reference = greedy_reference(sampler.model, row[0].prompt_token_ids, len(row[0].token_ids))
        for completion in row:
            assert completion.token_ids == reference
            assert completion.sampling_logprobs == [0.0] * len(reference)
            assert_logprobs_match(sampler.model, completion)


def test_tiny_top_p_is_greedy(sampler):
    greedy = sampler.generate(PROMPTS, n=1, temperature=0.0, max_new_tokens=10)
    nucleus = sampler.generate(PROMPTS, n=2, temperature=1.0, top_p=1e-6, max_new_tokens=10, seed=4)
    for greedy_row, row in zip(greedy, nucleus):
        for completion in row:
            assert completion.token_ids == greedy_row[0].token_ids
            assert completion.sampling_logprobs == [0.0] * len(completion.token_ids)
            assert completion.logprobs == pytest.approx(greedy_row[0].logprobs, abs=ATOL)


# ---------------------------------------------------------------------------------------------
# Stopping
# ---------------------------------------------------------------------------------------------


def test_stop_string_spanning_tokens_truncates_text(sampler):
    greedy = sampler.generate([PROMPTS[0]], temperature=0.0, max_new_tokens=30)[0][0]
    ids, text = greedy.token_ids, greedy.text
    # cuts[k]: length of the text of the first k tokens
    cuts = [len(sampler.tokenizer.decode(ids[:k], skip_special_tokens=True)) for k in range(len(ids) + 1)]
    # A stop string from inside token 3 to inside token 5 (token boundaries where pieces are 1 char)
    start = cuts[3] + (1 if cuts[4] - cuts[3] > 1 else 0)
    end = cuts[6] - (1 if cuts[6] - cuts[5] > 1 else 0)
    stop = text[start:end]
    assert end > cuts[5] and text.find(stop) == start, "fixture: the greedy text must suit this test"
    out = sampler.generate([PROMPTS[0]], n=2, temperature=0.0, max_new_tokens=30, stop=["@@never@@", stop])[0]
    for completion in out:
        assert completion.finish_reason == "stop" and completion.stop_reason == stop
        assert completion.token_ids == ids[:6]  # stops after the token completing the stop string
        assert len(completion.logprobs) == 6
        # the text is cut right after the stop string, even inside the last token's text
        assert completion.text == sampler.tokenizer.decode(ids[:6], skip_special_tokens=True)[:end]
        assert completion.text.endswith(stop)


@pytest.mark.parametrize("stop", ["e", " "])  # frequent, so many samples hit it; " " checks every step
def test_sampled_stop_strings_and_length(sampler, stop):
    rows = sampler.generate(PROMPTS, n=8, temperature=1.0, max_new_tokens=12, stop=[stop], seed=5)
    reasons = set()
    for completion in (c for row in rows for c in row):
        reasons.add(completion.finish_reason)
        assert_logprobs_match(sampler.model, completion)  # also after rows were compacted away
        if completion.finish_reason == "stop":
            assert completion.text.endswith(stop) and completion.text.count(stop) == 1
        elif completion.finish_reason == "length":
            assert len(completion.token_ids) == 12 and stop not in completion.text
        assert len(completion.token_ids) <= 12
    assert {"stop", "length"} <= reasons


def test_max_new_tokens_is_respected(sampler):
    rows = sampler.generate(PROMPTS, n=4, max_new_tokens=5, seed=6)
    for completion in (c for row in rows for c in row):
        assert len(completion.token_ids) <= 5
        if completion.finish_reason == "length":
            assert len(completion.token_ids) == 5
        else:
            assert completion.finish_reason == "eos" and completion.token_ids[-1] == sampler.tokenizer.eos_token_id
    assert any(c.finish_reason == "length" for row in rows for c in row)


def test_eos_ends_sample_and_is_kept_with_its_logprob(model_dir):
    sampler = HFSampler(model_dir, num_threads=1)
    eos = sampler.tokenizer.eos_token_id
    longest = max(range(len(PROMPTS)), key=lambda i: len(PROMPTS[i]))
    first = sampler.generate([PROMPTS[longest]], temperature=0.0, max_new_tokens=1)[0][0].token_ids[0]
    # Make EOS the greedy choice wherever `first` would win with a positive logit: (tied) output
    # row of EOS = 1.5 x the row of that token.
    state = {k: v.clone() for k, v in sampler.model.state_dict().items()}
    state["model.embed_tokens.weight"][eos] = 1.5 * state["model.embed_tokens.weight"][first]
    state["lm_head.weight"] = state["model.embed_tokens.weight"]
    sampler.load_weights(state)
    greedy = sampler.generate(PROMPTS, n=2, temperature=0.0, max_new_tokens=10)
    for completion in greedy[longest]:
        assert completion.token_ids == [eos] and completion.finish_reason == "eos"
        assert completion.text == "" and len(completion.logprobs) == 1
    # The longest prompt's rows finished at once, so the batch was compacted and later steps
    # skipped the slots only that prompt used; the other rows must be unaffected.
    others = [c for i, row in enumerate(greedy) if i != longest for c in row]
    assert any(len(c.token_ids) > 2 for c in others)
    for completion in (c for row in greedy for c in row):
        assert_logprobs_match(sampler.model, completion)
    sampled = sampler.generate(PROMPTS, n=8, temperature=1.0, max_new_tokens=20, seed=9)
    ended = [c for row in sampled for c in row if c.finish_reason == "eos"]
    assert ended and any(c.finish_reason == "length" for row in sampled for c in row)
    for completion in (c for row in sampled for c in row):
        assert_logprobs_match(sampler.model, completion)
        assert (completion.token_ids[-1] == eos) == (completion.finish_reason == "eos")
        assert eos not in completion.token_ids[:-1]


# ---------------------------------------------------------------------------------------------
# Weights, construction, input checks
# ---------------------------------------------------------------------------------------------


def test_load_weights_switches_to_the_other_model(model_dir):
    sampler = HFSampler(model_dir, num_threads=1)
    other = build_tiny_model(len(sampler.tokenizer), eos_token_id=sampler.tokenizer.eos_token_id, seed=123)
    before = sampler.generate(PROMPTS, n=2, max_new_tokens=12, seed=10)
    sampler.load_weights(other.state_dict())
    after = sampler.generate(PROMPTS, n=2, max_new_tokens=12, seed=10)
    assert [c.token_ids for r in before for c in r] != [c.token_ids for r in after for c in r]
    for completion in (c for row in after for c in row):
        assert_logprobs_match(other, completion)
    with pytest.raises(KeyError, match="missing"):
        sampler.load_weights({"model.norm.weight": other.model.norm.weight})
    with pytest.raises(KeyError, match="does not have"):
        sampler.load_weights({**other.state_dict(), "extra.weight": torch.zeros(1)})


def test_built_model_and_tokenizer_are_accepted(model_dir, sampler):
    built = HFSampler(sampler.model, sampler.tokenizer, num_threads=1)
    a = built.generate(PROMPTS[:2], n=2, max_new_tokens=6, seed=11)
    b = sampler.generate(PROMPTS[:2], n=2, max_new_tokens=6, seed=11)
    assert [c.token_ids for r in a for c in r] == [c.token_ids for r in b for c in r]
    with pytest.raises(ValueError, match="tokenizer"):
        HFSampler(sampler.model)


def test_bad_input_is_rejected_clearly(tmp_path, sampler):
    missing = tmp_path / "no_such_model"
    with pytest.raises(FileNotFoundError, match="no_such_model"):
        HFSampler(missing)
    with pytest.raises(TypeError, match="list of strings"):
        sampler.generate("a single string")
    with pytest.raises(ValueError, match="top_p"):
        sampler.generate(PROMPTS, top_p=0.0)
    with pytest.raises(ValueError, match="n must be"):
        sampler.generate(PROMPTS, n=0)
    with pytest.raises(ValueError, match="temperature"):
        sampler.generate(PROMPTS, temperature=-1.0)
    with pytest.raises(ValueError, match="max_new_tokens"):
        sampler.generate(PROMPTS, max_new_tokens=0)
    with pytest.raises(ValueError, match="stop"):
        sampler.generate(PROMPTS, stop=[""])
    too_long = sampler.generate(PROMPTS, n=2, max_new_tokens=10**6)  # every prompt fails alone
    assert all(c.finish_reason == "error" and not c.token_ids for row in too_long for c in row)
    with pytest.raises(ValueError, match="prompts but"):
        sampler.score(PROMPTS, [[1]])
    with pytest.raises(ValueError, match="outside the vocabulary"):
        sampler.score(PROMPTS[:1], [[10**7]])
    assert sampler.generate([], n=2) == []


def test_threads_are_restored(model_dir):
    previous = torch.get_num_threads()
    sampler = HFSampler(model_dir, num_threads=2)
    sampler.generate(PROMPTS[:1], max_new_tokens=2, seed=0)
    assert torch.get_num_threads() == previous


# ---------------------------------------------------------------------------------------------
# vLLM (optional)
# ---------------------------------------------------------------------------------------------

VLLM_ATOL = 1e-4  # fp32 vLLM vs HFSampler: different attention/matmul kernels


@pytest.fixture(scope="module")
def vllm_installed():
    pytest.importorskip("vllm", reason="vllm is not installed (optional: pip install -e .[vllm])")


VLLM_MODEL = dict(hidden_size=128, num_heads=4, num_kv_heads=2)


@pytest.fixture(scope="module")
def vllm_model_dir(vllm_installed, tmp_path_factory):
    # head_dim 32: vLLM's attention backends (the CPU one included) take head sizes from 32 up,
    # not the 16 of the other tests' model.
    return build_tiny_checkpoint(tmp_path_factory.mktemp("tiny_qwen2_vllm"), **VLLM_MODEL)


@pytest.fixture(scope="module")
def hf_reference(vllm_model_dir):
    return HFSampler(vllm_model_dir, num_threads=1)


@pytest.fixture(scope="module")
def vllm_sampler(vllm_installed, vllm_model_dir):
    from azrlib.rollout import VLLMSampler

    return VLLMSampler(vllm_model_dir, dtype="float32", max_model_len=512)


@pytest.mark.vllm
def test_vllm_logprobs_agree_with_hf(vllm_sampler, hf_reference):
    rows = vllm_sampler.generate(PROMPTS, n=2, temperature=1.0, max_new_tokens=16, seed=0)
    completions = [c for row in rows for c in row]
    hf_scores = hf_reference.score([c.prompt_token_ids for c in completions], [c.token_ids for c in completions])
    for completion, expected in zip(completions, hf_scores):
        assert completion.prompt_token_ids == hf_reference.tokenizer(PROMPTS[completion.prompt_index])["input_ids"]
        assert completion.logprobs == pytest.approx(expected, abs=VLLM_ATOL)
        assert completion.sampling_logprobs == completion.logprobs
    vllm_scores = vllm_sampler.score([c.prompt_token_ids for c in completions], [c.token_ids for c in completions])
    for values, expected in zip(vllm_scores, hf_scores):
        assert values == pytest.approx(expected, abs=VLLM_ATOL)
    again = vllm_sampler.generate(PROMPTS, n=2, temperature=1.0, max_new_tokens=16, seed=0)
    assert [c.token_ids for r in again for c in r] == [c.token_ids for c in completions]
    greedy_vllm = vllm_sampler.generate(PROMPTS, temperature=0.0, max_new_tokens=8)
    greedy_hf = hf_reference.generate(PROMPTS, temperature=0.0, max_new_tokens=8)
    assert [r[0].token_ids for r in greedy_vllm] == [r[0].token_ids for r in greedy_hf]


@pytest.mark.vllm
def test_vllm_stop_strings_match_hf(vllm_sampler, hf_reference):
    greedy = hf_reference.generate([PROMPTS[0]], temperature=0.0, max_new_tokens=30)[0][0]
    stop = greedy.text[4:9]
    if not stop.strip() or greedy.text.find(stop) != 4:
        pytest.skip("greedy text does not give a clean stop string")
    hf = hf_reference.generate([PROMPTS[0]], temperature=0.0, max_new_tokens=30, stop=[stop])[0][0]
    vl = vllm_sampler.generate([PROMPTS[0]], temperature=0.0, max_new_tokens=30, stop=[stop])[0][0]
    assert (vl.text, vl.token_ids, vl.finish_reason, vl.stop_reason) == (hf.text, hf.token_ids, "stop", stop)


@pytest.mark.vllm
def test_vllm_weight_sync(vllm_sampler, hf_reference):
    tokenizer = hf_reference.tokenizer
    other = build_tiny_model(len(tokenizer), eos_token_id=tokenizer.eos_token_id, seed=321, **VLLM_MODEL)
    reference = HFSampler(other, tokenizer, num_threads=1)
    vllm_sampler.load_weights(other.state_dict())
    try:
        rows = vllm_sampler.generate(PROMPTS, n=2, max_new_tokens=12, seed=1)
        completions = [c for row in rows for c in row]
        expected = reference.score([c.prompt_token_ids for c in completions], [c.token_ids for c in completions])
        for completion, values in zip(completions, expected):
            assert completion.logprobs == pytest.approx(values, abs=VLLM_ATOL)
            assert all(math.isfinite(v) for v in completion.logprobs)
    finally:
        vllm_sampler.load_weights(hf_reference.model.state_dict())  # back to the fixture's weights


def test_a_prompt_too_long_for_the_model_fails_alone(sampler):
    """Prompt + max_new_tokens beyond max_position_embeddings: that prompt's samples come back empty
    with finish_reason "error" and a reason; the other prompts of the call are sampled as usual."""
    limit = sampler.model.config.max_position_embeddings
    long_prompt = "x = 1\n" * limit  # far more tokens than positions
    prompts = [PROMPTS[0], long_prompt, PROMPTS[2]]
    rows = sampler.generate(prompts, n=3, max_new_tokens=8, seed=5)
    assert [len(r) for r in rows] == [3, 3, 3]
    for c in rows[1]:
        assert c.finish_reason == "error" and c.token_ids == [] and c.text == "" and c.logprobs == []
        assert "max_position_embeddings" in c.error and c.prompt_index == 1
    for i in (0, 2):
        for j, c in enumerate(rows[i]):
            assert (c.prompt_index, c.sample_index) == (i, j) and c.error is None
            assert c.token_ids and c.finish_reason in ("length", "eos")
            assert_logprobs_match(sampler.model, c)
