"""azr pretrain-tiny on a small budget: a loadable HF checkpoint, a whitespace-exact tokenizer,
a falling loss, determinism for a fixed number of steps, prompt tokens down-weighted, resume after
a stop or a kill equal to an uninterrupted run, a partial base refused, precision by capability."""

import functools
import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from azrlib.config import load_config
from azrlib.models import load_tokenizer
from azrlib.tinyworld import corpus as tw_corpus
from azrlib.tinyworld.pretrain import (
    CHECKPOINT_DIR, PretrainConfig, choose_precision, pack_documents, pretrain_tiny,
)
from azrlib.tinyworld.tokenizer import train_tokenizer

ROOT = Path(__file__).resolve().parents[2]


BENCH_PER_TYPE = 8  # the held-out benchmark at test size (the real 300 per type cost ~2/3 of this fixture)


@pytest.fixture(scope="module")
def small_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("pt")
    cfg = load_config(PretrainConfig, {
        "out": str(out / "a"), "n_programs": 300, "vocab_size": 400, "hidden_size": 32, "num_layers": 2,
        "num_heads": 4, "num_kv_heads": 2, "intermediate_size": 64, "seq_len": 128, "batch_size": 4,
        "max_steps": 60, "time_budget_s": 600, "threads": 1, "warmup_steps": 5, "lr": 1e-2,
        "compile": False, "precision": "fp32"})  # compiling costs more than these 60 steps
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(tw_corpus, "build_benchmark", functools.partial(tw_corpus.build_benchmark, per_type=BENCH_PER_TYPE))
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
    assert set(bench) == {"deduction", "abduction", "induction"}
    assert all(len(v) == BENCH_PER_TYPE for v in bench.values())


@pytest.mark.slow  # a second whole run; the stopped-and-resumed run below is also compared to small_run
def test_same_seed_same_weights_for_a_fixed_step_count(small_run, tmp_path):
    from safetensors.torch import load_file
    cfg, path, _ = small_run
    again = pretrain_tiny(load_config(PretrainConfig, {**cfg.__dict__, "out": str(tmp_path / "b")}))
    a, b = load_file(path / "model.safetensors"), load_file(again / "model.safetensors")
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_packing_is_one_stream_with_prompts_down_weighted():
    docs = [([1, 2, 3], [4, 5]), ([6], [7]), ([8, 9, 10], [11, 12])]
    stream, sw = pack_documents(docs, seq_len=4, eos_id=0, rng=random.Random(0), prompt_weight=0.1)
    assert stream.shape == (3, 4)  # 15 tokens in all, cut every 4, the tail dropped
    order = [0, 1, 2]
    random.Random(0).shuffle(order)  # the same shuffle pack_documents makes
    expected = [t for k in order for t in docs[k][0] + docs[k][1] + [0]][:12]
    assert stream.flatten().tolist() == expected
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
    path = small_run[1] if which == "small_run" else Path(__file__).resolve().parents[2] / "data" / "tiny_base"
    raw = Tokenizer.from_file(str(path / "tokenizer.json"))
    tok = load_tokenizer(path)
    assert tok(SAMPLE, add_special_tokens=False)["input_ids"] == raw.encode(SAMPLE).ids
    assert tok.eos_token == "<|endoftext|>" and tok.pad_token_id == tok.eos_token_id
    assert tok.decode(raw.encode(SAMPLE).ids) == SAMPLE


def test_hf_sampler_loads_the_saved_tokenization():
    from pathlib import Path

    from tokenizers import Tokenizer

    from azrlib.rollout.hf import HFSampler
    path = Path(__file__).resolve().parents[2] / "data" / "tiny_base"
    ids = Tokenizer.from_file(str(path / "tokenizer.json")).encode(SAMPLE).ids
    assert HFSampler(str(path)).tokenizer(SAMPLE, add_special_tokens=False)["input_ids"] == ids


def _weights(path):
    from safetensors.torch import load_file
    return load_file(Path(path) / "model.safetensors")


def _same_weights(a, b) -> bool:
    wa, wb = _weights(a), _weights(b)
    return wa.keys() == wb.keys() and all(torch.equal(wa[k], wb[k]) for k in wa)


def test_loss_record_says_complete_precision_and_cpu(small_run):
    _, path, _ = small_run
    record = json.loads((path / "pretrain.json").read_text())
    assert record["complete"] is True and record["stop_reason"] is None
    assert record["precision"] == "fp32" and record["cpu"]["model"] and "fp32" in record["reproducibility"]
    assert not (path / CHECKPOINT_DIR).exists()  # a finished run leaves no resumable state behind


def test_stopped_run_is_partial_refused_by_train_and_resumes_bit_for_bit(small_run, tmp_path, monkeypatch):
    from azrlib.models import PartialBaseError, refuse_partial_base
    from azrlib.trainer.trainer import resolve_model_path
    cfg, path, _ = small_run
    piece = load_config(PretrainConfig, {**cfg.__dict__, "out": str(tmp_path / "r")})
    out = pretrain_tiny(piece, stop_after=23)
    record = json.loads((out / "pretrain.json").read_text())
    assert record["complete"] is False and record["steps"] == 23 and "resume" in record["resume_command"]
    assert (out / CHECKPOINT_DIR / "state.pt").is_file()
    monkeypatch.delenv("AZR_ALLOW_PARTIAL_BASE", raising=False)
    with pytest.raises(PartialBaseError, match="complete=false"):
        resolve_model_path(str(out))  # what `azr train` resolves its model with
    monkeypatch.setenv("AZR_ALLOW_PARTIAL_BASE", "1")
    assert refuse_partial_base(out) == str(out)
    assert refuse_partial_base(ROOT / "data" / "tiny_base")  # "complete": true, a finished base
    with pytest.raises(FileExistsError, match="--resume"):
        pretrain_tiny(piece)  # starting over would silently drop the unfinished run
    with pytest.raises(ValueError, match="lr"):
        pretrain_tiny(load_config(PretrainConfig, {**piece.__dict__, "lr": 0.5}), resume=True)
    pretrain_tiny(piece, resume=True, stop_after=20)  # a second piece: 23 -> 43
    final = pretrain_tiny(piece, resume=True)
    record = json.loads((final / "pretrain.json").read_text())
    assert record["complete"] is True and record["steps"] == 60
    assert [(p["first_step"], p["last_step"]) for p in record["pieces"]] == [(0, 23), (23, 43), (43, 60)]
    assert _same_weights(final, path)
    uninterrupted = json.loads((path / "pretrain.json").read_text())["losses"]
    assert [x["loss"] for x in record["losses"]] == [x["loss"] for x in uninterrupted]
    assert not (final / CHECKPOINT_DIR).exists()


def test_resume_without_checkpoint_is_a_clear_error(small_run, tmp_path):
    cfg, _, _ = small_run
    with pytest.raises(FileNotFoundError, match="no checkpoint"):
        pretrain_tiny(load_config(PretrainConfig, {**cfg.__dict__, "out": str(tmp_path / "none")}), resume=True)


@pytest.mark.slow  # two CLI runs in subprocesses, a checkpoint after every step
def test_killed_run_resumes_bit_for_bit(small_run, tmp_path):
    """SIGKILL mid-run (no chance to save anything more), then --resume from the last periodic
    checkpoint: the weights equal those of the uninterrupted run of the same length."""
    cfg, path, _ = small_run
    out = tmp_path / "k"
    keys = {**cfg.__dict__, "checkpoint_every_s": 0}  # a checkpoint after every step
    args = [f"{k}={'null' if v is None else str(v).lower() if isinstance(v, bool) else v}"
            for k, v in keys.items() if k != "out"]
    cmd = [sys.executable, "-m", "azrlib.cli", "pretrain-tiny", "--out", str(out), "--benchmark-out", ""]
    env = {**os.environ, "TQDM_DISABLE": "1"}
    proc = subprocess.Popen(cmd + args, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    progress = out / CHECKPOINT_DIR / "progress.json"
    deadline = time.time() + 300
    while proc.poll() is None and time.time() < deadline:
        if progress.is_file():
            try:
                if json.loads(progress.read_text())["step"] >= 3:
                    break
            except (ValueError, KeyError):
                pass  # caught mid-write
        time.sleep(0.01)
    assert proc.poll() is None, f"the run ended before it could be killed: {proc.stderr.read().decode()[-2000:]}"
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    killed_at = torch.load(out / CHECKPOINT_DIR / "state.pt", weights_only=True)["step"]  # what resume starts from
    assert 3 <= killed_at < cfg.max_steps and not (out / "pretrain.json").exists()
    resumed = subprocess.run(cmd + args + ["--resume"], cwd=ROOT, env=env, capture_output=True, text=True)
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    record = json.loads((out / "pretrain.json").read_text())
    assert record["complete"] is True and [p["first_step"] for p in record["pieces"]] == [0, killed_at]
    assert _same_weights(out, path)


@pytest.mark.slow  # three bf16 runs: bf16 autocast is ~10x slower than fp32 on a CPU without AMX
def test_bf16_run_resumes_bit_for_bit(small_run, tmp_path):
    cfg, _, _ = small_run
    keys = {**cfg.__dict__, "precision": "bf16", "max_steps": 8, "n_programs": 120}
    whole = pretrain_tiny(load_config(PretrainConfig, {**keys, "out": str(tmp_path / "w")}))
    piece = load_config(PretrainConfig, {**keys, "out": str(tmp_path / "p")})
    pretrain_tiny(piece, stop_after=3)
    resumed = pretrain_tiny(piece, resume=True)
    assert json.loads((resumed / "pretrain.json").read_text())["precision"] == "bf16"
    assert _same_weights(whole, resumed)


def test_precision_auto_is_bf16_only_with_amx():
    amx = {"flags": ["avx2", "avx512f", "avx512_bf16", "amx_bf16", "amx_tile"]}
    epyc = {"flags": ["avx2", "avx512f", "avx512_bf16"]}
    assert choose_precision("auto", amx)[0] == "bf16"
    assert choose_precision("auto", epyc)[0] == "fp32" and choose_precision("auto", {"flags": []})[0] == "fp32"
    assert choose_precision("bf16", epyc) == ("bf16", "set in the config")
    with pytest.raises(ValueError, match="precision"):
        PretrainConfig(precision="fp16")


def test_committed_base_is_the_default_recipe_and_says_how_to_rebuild_it():
    """`azr pretrain-tiny`'s defaults are the committed base's recipe, so its recorded rebuild
    command (no overrides) reproduces it; the record says precision, CPU, time and completeness."""
    from azrlib.tinyworld.pretrain import _recipe, rebuild_command
    record = json.loads((ROOT / "data" / "tiny_base" / "pretrain.json").read_text())
    recorded = {k: v for k, v in record["config"].items() if k in _recipe(PretrainConfig())}
    assert recorded == _recipe(PretrainConfig())
    assert record["complete"] is True and record["steps"] == PretrainConfig().max_steps
    assert record["precision"] in ("fp32", "bf16") and record["cpu"]["model"] and record["seconds"] > 0
    assert record["rebuild_command"] == rebuild_command(PretrainConfig()) == \
        "azr pretrain-tiny --out data/tiny_base --benchmark-out ''"
    config = json.loads((ROOT / "data" / "tiny_base" / "config.json").read_text())
    assert (config["hidden_size"], config["intermediate_size"]) == (PretrainConfig().hidden_size,
                                                                    PretrainConfig().intermediate_size)
    assert record["n_params"] == sum(v.numel() for v in _weights(ROOT / "data" / "tiny_base").values())


def test_rebuild_command_lists_the_recipe_keys_that_differ_from_the_defaults(tmp_path):
    from azrlib.tinyworld.pretrain import rebuild_command
    cfg = load_config(PretrainConfig, {"out": str(tmp_path), "hidden_size": 64, "numbered_inputs": False,
                                       "induction_proposer_ratio": None, "time_budget_s": 5})  # the guard is no recipe
    assert rebuild_command(cfg) == (f"azr pretrain-tiny --out {tmp_path} --benchmark-out '' hidden_size=64 "
                                    "induction_proposer_ratio=null numbered_inputs=false")
