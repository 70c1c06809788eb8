"""azr pretrain-tiny on a small budget: a loadable HF checkpoint, a whitespace-exact tokenizer,
a falling loss, determinism for a fixed number of steps, and prompt tokens down-weighted."""

import json
import random

import pytest
import torch

from azrlib.config import load_config
from azrlib.models import load_tokenizer
from azrlib.tinyworld.pretrain import PretrainConfig, pack_documents, pretrain_tiny, train_tokenizer


@pytest.fixture(scope="module")
def small_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("pt")
    cfg = load_config(PretrainConfig, {
        "out": str(out / "a"), "n_programs": 300, "vocab_size": 400, "hidden_size": 32, "num_layers": 2,
        "num_heads": 4, "num_kv_heads": 2, "intermediate_size": 64, "seq_len": 128, "batch_size": 4,
        "max_steps": 60, "time_budget_s": 600, "threads": 1, "warmup_steps": 5, "lr": 1e-2,
        "compile": False})  # compiling costs more than these 60 steps
    path = pretrain_tiny(cfg, benchmark_out=str(out / "bench.jsonl"))
    return cfg, path, out


def test_checkpoint_loads_like_a_qwen_directory(small_run):
    from transformers import AutoModelForCausalLM
    _, path, _ = small_run
    model = AutoModelForCausalLM.from_pretrained(path)
    tok = load_tokenizer(path)
    assert model.config.model_type == "qwen2"
    code = "def f(a):\n    return  a  *  2\n\n"
    assert tok.decode(tok(code, add_special_tokens=False)["input_ids"]) == code
    ids = tok(code, return_tensors="pt")["input_ids"]
    assert model(input_ids=ids).logits.shape[-1] == len(tok)


def test_loss_falls_and_is_recorded(small_run):
    _, path, _ = small_run
    record = json.loads((path / "pretrain.json").read_text())
    losses = [x["loss"] for x in record["losses"]]
    assert record["steps"] == 60 and losses[-1] < 0.7 * losses[0]
    assert record["config"]["n_programs"] == 300 and record["n_params"] > 0


def test_benchmark_is_written(small_run):
    from azrlib.tinyworld.corpus import load_benchmark
    _, _, out = small_run
    bench = load_benchmark(out / "bench.jsonl")
    assert set(bench) == {"deduction", "abduction", "induction"} and all(len(v) > 0 for v in bench.values())


def test_same_seed_same_weights_for_a_fixed_step_count(small_run, tmp_path):
    from safetensors.torch import load_file
    cfg, path, _ = small_run
    again = pretrain_tiny(load_config(PretrainConfig, {**cfg.__dict__, "out": str(tmp_path / "b")}))
    a, b = load_file(path / "model.safetensors"), load_file(again / "model.safetensors")
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_packing_keeps_documents_whole_and_weights_prompts():
    docs = [([1, 2, 3], [4, 5]), ([6], [7]), ([8, 9, 10], [11, 12])]
    ids, w = pack_documents(docs, seq_len=8, eos_id=0, rng=random.Random(0), prompt_weight=0.1)
    assert ids.shape[1] == 8
    rows = [r.tolist() for r in ids]
    for prompt, completion in docs:  # every document sits inside one row, in one piece
        doc = prompt + completion + [0]
        assert any(any(r[i:i + len(doc)] == doc for i in range(len(r))) for r in rows)
    weight_of = {t: float(wt) for r, wr in zip(ids, w) for t, wt in zip(r.tolist(), wr.tolist()) if t}
    assert weight_of[1] == weight_of[6] == weight_of[8] == pytest.approx(0.1)
    assert weight_of[4] == weight_of[7] == weight_of[12] == 1.0
    assert float(w[ids == 0].min()) == 0.0  # padding tails carry no loss
    stream, sw = pack_documents(docs, seq_len=4, eos_id=0, rng=random.Random(0), prompt_weight=0.1, whole=False)
    assert stream.shape == (3, 4)  # 15 tokens in all, cut every 4, the tail dropped
    for tok, wt in zip(stream.flatten().tolist(), sw.flatten().tolist()):
        assert wt == (pytest.approx(0.1) if tok in (1, 2, 3, 6, 8, 9, 10) else 1.0)


def test_tokenizer_keeps_special_token_whole():
    tok = train_tokenizer(["def f(a):\n    return a\n"] * 20, vocab_size=300)
    assert tok.convert_tokens_to_ids("<|endoftext|>") == tok.eos_token_id == tok.pad_token_id


def test_a_value_tokenizes_alike_in_prompt_trace_and_answer():
    # the copy a tiny solver must learn is token for token only if the pre-tokenizer ignores context
    docs = ["```input\n'da', [3, -12]\n```\n<think> word='da' n=[3, -12]\nreturn 'ad' </think>"] * 30
    tok = train_tokenizer(docs, vocab_size=400)
    pieces = lambda text: tok.convert_ids_to_tokens(tok(text, add_special_tokens=False)["input_ids"])
    for context in ("\n", "=", "(", "["):
        assert pieces(context + "'da'")[-4:] == pieces("'da'") == ["'", "d", "a", "'"]  # wherever it stands
        assert pieces(context + "[3, -12]")[-7:] == pieces("[3, -12]")
    assert pieces(", 'da'")[-3:] == ["d", "a", "'"]  # a leading space may join the quote, never the letters
    assert "word" in "".join(pieces(" word='da'")) and len(pieces(" word")) == 1  # code words still merge
    code = "def f(a):\n    return  a  *  2\n\n"
    assert tok.decode(tok(code, add_special_tokens=False)["input_ids"]) == code


def test_bytelevel_split_is_still_available_and_unknown_split_refused():
    tok = train_tokenizer(["x = 'da'\n"] * 20, vocab_size=300, split="bytelevel")
    assert tok.decode(tok("x = 'da'")["input_ids"]) == "x = 'da'"
    with pytest.raises(ValueError, match="tokenizer_split"):
        train_tokenizer(["x"], vocab_size=300, split="chars")


def test_two_gloo_ranks_take_the_same_first_step_and_are_deterministic(small_run, tmp_path):
    """ranks=2: each rank trains on half of every batch with the whole batch's normalizer, so
    step 1 (same init, same batch) has the one-process loss; two 2-rank runs give equal weights."""
    from safetensors.torch import load_file
    cfg, path, _ = small_run
    two = {**cfg.__dict__, "ranks": 2, "threads": 1, "max_steps": 20}
    a = pretrain_tiny(load_config(PretrainConfig, {**two, "out": str(tmp_path / "a")}))
    b = pretrain_tiny(load_config(PretrainConfig, {**two, "out": str(tmp_path / "b")}))
    one = json.loads((path / "pretrain.json").read_text())["losses"]
    rec = json.loads((a / "pretrain.json").read_text())
    assert rec["steps"] == 20 and rec["config"]["ranks"] == 2
    assert abs(rec["losses"][0]["loss"] - one[0]["loss"]) < 1e-3
    assert rec["losses"][-1]["loss"] < 0.8 * rec["losses"][0]["loss"]
    wa, wb = load_file(a / "model.safetensors"), load_file(b / "model.safetensors")
    assert all(torch.equal(wa[k], wb[k]) for k in wa)


def test_batch_not_divisible_by_ranks_is_refused(small_run, tmp_path):
    from azrlib.tinyworld.pretrain import train_model
    cfg, _, _ = small_run
    bad = load_config(PretrainConfig, {**cfg.__dict__, "batch_size": 3})
    with pytest.raises(ValueError, match="not divisible by ranks"):
        train_model(torch.nn.Linear(2, 2), lambda epoch: None, bad, world=2)


SAMPLE = ("Think in <think> </think>, then answer in <answer> </answer>.\nUser: Give what f returns for the input, "
          "in an ```output block.\n```python\ndef f(word, arr):\n    return word[::2] + str(arr[1:])\n```\n"
          "```input\n'da', [1, 5, 5, 0]\n```\nAssistant: <think>\n word='da', arr=[1, 5, 5, 0]\n"
          "return 'd[5, 5, 0]' </think>\n<answer>\n```output\n'd[5, 5, 0]'\n```\n</answer>")


@pytest.mark.parametrize("which", ["small_run", "committed"])
def test_loaded_tokenizer_splits_text_as_the_saved_one(small_run, which):
    """transformers maps qwen2 checkpoints to Qwen2Tokenizer, which re-splits text with Qwen2's
    regex; every stage must tokenize as pretraining did (the saved tokenizer.json)."""
    from pathlib import Path

    from tokenizers import Tokenizer
    path = small_run[1] if which == "small_run" else Path(__file__).resolve().parents[1] / "data" / "tiny_base"
    raw = Tokenizer.from_file(str(path / "tokenizer.json"))
    tok = load_tokenizer(path)
    assert tok(SAMPLE, add_special_tokens=False)["input_ids"] == raw.encode(SAMPLE).ids
    assert tok.eos_token == "<|endoftext|>" and tok.pad_token_id == tok.eos_token_id
    assert tok.decode(raw.encode(SAMPLE).ids) == SAMPLE


def test_hf_sampler_loads_the_saved_tokenization():
    from pathlib import Path

    from tokenizers import Tokenizer

    from azrlib.rollout.hf import HFSampler
    path = Path(__file__).resolve().parents[1] / "data" / "tiny_base"
    ids = Tokenizer.from_file(str(path / "tokenizer.json")).encode(SAMPLE).ids
    assert HFSampler(str(path)).tokenizer(SAMPLE, add_special_tokens=False)["input_ids"] == ids
