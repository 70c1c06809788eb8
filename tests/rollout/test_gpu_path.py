"""The paper-scale path without a GPU: GPU presets validate; model ids resolve (local dirs, the
Hugging Face cache, AZR_MODELS_DIR) or fail naming the id; the log-prob agreement check is ~0 after
a real weight sync and large without one (HFSampler with its own weights); VLLMSampler's weight
sync (in-process / collective_rpc / apply_model, detected at run time), sleep/wake and feature
checks against stand-in `vllm` modules; and real-vLLM tests that skip without vllm or a GPU."""

from __future__ import annotations

import json
import pickle
import sys
import types
import warnings
from pathlib import Path

import pytest
import torch

from azrlib.config import ConfigError, load_config
from azrlib.models import PUBLIC_CHECKPOINTS, ModelNotFoundError, resolve_model
from tiny_model import build_tiny_checkpoint
from azrlib.trainer.weight_sync import MISMATCH_KEY, RolloutSync, logprob_mismatch, shares_weights, sync_weights
from azrlib.trainer.config import TrainConfig

PROMPTS = ["def f(a):\n    return a + 1\n<answer>", "assert f(3) ==", "def f(x):\n    for i in range(3):"]


@pytest.fixture(scope="module")
def tiny_dir(tmp_path_factory):
    return build_tiny_checkpoint(tmp_path_factory.mktemp("gpu_path_tiny"))


def _load(path, dtype=torch.float32):
    from transformers import AutoModelForCausalLM

    return AutoModelForCausalLM.from_pretrained(path, dtype=dtype)


# ---------------------------------------------------------------------------------------- presets

@pytest.mark.parametrize("preset,base", [("coder3b", "Qwen/Qwen2.5-Coder-3B"), ("coder7b", "Qwen/Qwen2.5-Coder-7B")])
def test_gpu_presets_load_through_the_strict_loader(preset, base):
    cfg = load_config(TrainConfig, preset)
    assert cfg.model == base and cfg.device == "cuda"
    # AZR's paper settings
    assert (cfg.batch_size, cfg.n_solver_samples, cfg.n_references) == (64, 8, 6)
    assert (cfg.max_new_tokens_propose, cfg.max_new_tokens_solve, cfg.lr) == (8096, 8096, 1e-6)
    assert (cfg.clip_ratio, cfg.entropy_coef, cfg.temperature, cfg.top_p) == (0.2, 0.001, 1.0, 1.0)
    # the memory plan: fp32 masters sharded by FSDP2, bf16 compute, checkpointing, colocated vLLM
    assert (cfg.parallel, cfg.dtype, cfg.fsdp_param_dtype) == ("fsdp", "float32", "bfloat16")
    assert cfg.gradient_checkpointing and not cfg.amp_bf16
    assert (cfg.rollout_engine, cfg.vllm_gpu_memory_utilization, cfg.vllm_sleep) == ("vllm", 0.4, True)
    assert cfg.logprob_check_every > 0
    with pytest.raises(ConfigError, match="vllm_gpu_memory_utilisation"):
        load_config(TrainConfig, preset, ["vllm_gpu_memory_utilisation=0.5"])


@pytest.mark.parametrize("override,needle", [("parallel=zero", "parallel"), ("rollout_engine=sglang", "rollout_engine"),
                                             ("vllm_gpu_memory_utilization=1.5", "vllm_gpu_memory_utilization"),
                                             ("kl_coef=0.1", "kl_coef")])
def test_bad_scale_options_are_rejected_by_name(override, needle):
    with pytest.raises((ConfigError, ValueError), match=needle):
        load_config(TrainConfig, "coder3b", [override])


# ---------------------------------------------------------------------------------------- models

def _fake_hf_cache(cache: Path, hub_id: str, files: dict[str, str]) -> Path:
    """The on-disk layout huggingface_hub's cache uses: models--owner--name/{refs,snapshots}."""
    repo = cache / ("models--" + hub_id.replace("/", "--"))
    commit = "0123456789abcdef0123456789abcdef01234567"
    (repo / "refs").mkdir(parents=True)
    (repo / "refs" / "main").write_text(commit)
    snapshot = repo / "snapshots" / commit
    snapshot.mkdir(parents=True)
    for name, text in files.items():
        (snapshot / name).write_text(text)
    return snapshot


def test_local_paths_resolve_as_given(tiny_dir, tmp_path):
    assert resolve_model(str(tiny_dir)) == str(tiny_dir)
    weights = tiny_dir / "model.safetensors"
    assert resolve_model(weights) == str(weights)  # sparsity takes single files too
    assert Path(resolve_model("configs")).is_dir()  # relative to the project root
    with pytest.raises(ModelNotFoundError, match="data/no_such_model"):
        resolve_model("data/no_such_model")


def test_hub_ids_resolve_from_the_cache_in_their_canonical_casing(tmp_path, monkeypatch):
    monkeypatch.delenv("AZR_MODELS_DIR", raising=False)
    snapshot = _fake_hf_cache(tmp_path, "andrewzh/Absolute_Zero_Reasoner-Coder-3b",
                              {"config.json": "{}", "model.safetensors": "x"})
    assert resolve_model("andrewzh/Absolute_Zero_Reasoner-Coder-3b", cache_dir=tmp_path) == str(snapshot)
    assert resolve_model("ANDREWZH/absolute_zero_reasoner-coder-3B", cache_dir=tmp_path) == str(snapshot)
    assert PUBLIC_CHECKPOINTS["andrewzh/Absolute_Zero_Reasoner-Coder-3b"].stored_dtype == "float32"
    assert PUBLIC_CHECKPOINTS["Qwen/Qwen2.5-Coder-7B"].stored_dtype == "bfloat16"


def test_a_partial_download_is_not_a_model(tmp_path):
    _fake_hf_cache(tmp_path, "Qwen/Qwen2.5-Coder-7B", {"config.json": "{}", "model.safetensors.index.json":
                   json.dumps({"weight_map": {"a": "model-00001-of-00002.safetensors",
                                              "b": "model-00002-of-00002.safetensors"}}),
                                                      "model-00001-of-00002.safetensors": "x"})
    with pytest.raises(ModelNotFoundError) as error:
        resolve_model("Qwen/Qwen2.5-Coder-7B", cache_dir=tmp_path)
    message = str(error.value)
    assert "Qwen/Qwen2.5-Coder-7B" in message and "hf download Qwen/Qwen2.5-Coder-7B" in message
    assert "bfloat16" in message  # what the user is about to fetch


def test_unknown_hub_id_error_says_how_to_get_it(tmp_path, monkeypatch):
    monkeypatch.delenv("AZR_MODELS_DIR", raising=False)
    with pytest.raises(FileNotFoundError, match="someone/some-model.*hf download someone/some-model"):
        resolve_model("someone/some-model", cache_dir=tmp_path)


def test_models_dir_env_holds_pre_downloaded_models(tmp_path, monkeypatch):
    target = tmp_path / "Qwen2.5-Coder-3B"
    target.mkdir()
    (target / "config.json").write_text("{}")
    monkeypatch.setenv("AZR_MODELS_DIR", str(tmp_path))
    assert resolve_model("Qwen/Qwen2.5-Coder-3B", cache_dir=tmp_path / "empty") == str(target)


def test_trainer_and_sparsity_cli_take_hub_ids(tiny_dir, tmp_path, monkeypatch, capsys):
    """`azr sparsity` (and the trainer's model loading) resolve hub ids through azrlib.models."""
    import shutil

    from azrlib.cli import main as azr_main
    from azrlib.trainer.trainer import resolve_model_path

    cache = tmp_path / "hub"
    snapshot = _fake_hf_cache(cache, "someone/tiny-base", {})
    for f in tiny_dir.iterdir():
        shutil.copy(f, snapshot / f.name)
    monkeypatch.setenv("HF_HUB_CACHE", str(cache))
    monkeypatch.setattr("huggingface_hub.constants.HF_HUB_CACHE", str(cache))
    assert resolve_model_path("someone/tiny-base") == str(snapshot)
    assert azr_main(["sparsity", "someone/tiny-base", str(tiny_dir), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["sparsity"] == 1.0  # same weights: nothing changed
    assert azr_main(["sparsity", "someone/not-there", str(tiny_dir)]) == 2
    assert "hf download someone/not-there" in capsys.readouterr().err


# ---------------------------------------------------------------------------------------- log-prob check

def _as_rollouts(rows):
    return [types.SimpleNamespace(prompt_ids=c.prompt_token_ids, response_ids=c.token_ids, logprobs=c.logprobs)
            for row in rows for c in row]


def test_mismatch_is_the_mean_absolute_log_prob_difference(tiny_dir):
    from azrlib.rollout.hf import HFSampler

    model = _load(tiny_dir)
    sampler = HFSampler(model, _tokenizer(tiny_dir), num_threads=1)
    rows = sampler.generate(PROMPTS, n=2, max_new_tokens=12, seed=0)
    items = _as_rollouts(rows) + [types.SimpleNamespace(prompt_ids=[5, 6], response_ids=[], logprobs=[])]
    offset = [[lp + 0.25 for lp in r.logprobs] for r in items]
    # small token budget: several micro-batches; the empty response is skipped
    stats = logprob_mismatch(model, [r.prompt_ids for r in items], [r.response_ids for r in items], offset,
                             pad_id=0, token_budget=40)
    n_tokens = sum(len(r.response_ids) for r in items)
    assert stats["rollout/logprob_check_tokens"] == n_tokens > 0
    assert stats[MISMATCH_KEY] == pytest.approx(0.25, abs=1e-5)
    assert stats[MISMATCH_KEY + "_max"] == pytest.approx(0.25, abs=1e-4)


def _tokenizer(path):
    from azrlib.models import load_tokenizer

    return load_tokenizer(path)


def _train_a_little(model, steps: int = 4, lr: float = 2e-2) -> None:
    """A few AdamW steps of next-token loss on fixed text: enough to move the policy visibly."""
    optimizer = torch.optim.AdamW(model.parameters(), lr=lr)
    ids = torch.arange(3, 40).unsqueeze(0)
    for _ in range(steps):
        loss = model(input_ids=ids, labels=ids).loss
        loss.backward()
        optimizer.step()
        optimizer.zero_grad()


def test_logprob_check_is_zero_after_sync_and_large_without(tiny_dir):
    """The trainer and an engine holding its own copy (HFSampler on a second model): after an
    update, the engine's samples disagree with the trainer until the weights are synced."""
    from azrlib.rollout.hf import HFSampler

    trainer_model = _load(tiny_dir)
    engine = HFSampler(_load(tiny_dir), _tokenizer(tiny_dir), num_threads=1)
    assert not shares_weights(trainer_model, engine)
    sync = RolloutSync(trainer_model, engine, pad_id=0, device="cpu", check_every=2, check_seqs=6, warn_above=0.05)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # same weights: no warning
        before = sync.check(2, _as_rollouts(engine.generate(PROMPTS, n=2, max_new_tokens=12, seed=0)))
    assert before[MISMATCH_KEY] < 1e-5

    _train_a_little(trainer_model)
    stale_rows = engine.generate(PROMPTS, n=2, max_new_tokens=12, seed=1)  # old weights
    with pytest.warns(RuntimeWarning, match="disagree"):
        stale = sync.check(4, _as_rollouts(stale_rows))
    assert stale[MISMATCH_KEY] > 0.05
    assert sync.check(5, _as_rollouts(stale_rows)) == {}  # not a check step
    strict = RolloutSync(trainer_model, engine, pad_id=0, device="cpu", check_every=1, check_seqs=6,
                         warn_above=1.0, fail_above=1e-4)  # as TrainConfig.logprob_mismatch_fail
    with pytest.raises(RuntimeError, match="logprob_mismatch_fail"):
        strict.check(4, _as_rollouts(stale_rows))

    assert sync.after_update() == len(trainer_model.state_dict())
    fresh_rows = engine.generate(PROMPTS, n=2, max_new_tokens=12, seed=1)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        fresh = sync.check(6, _as_rollouts(fresh_rows))
    assert fresh[MISMATCH_KEY] < 1e-5 and fresh["rollout/logprob_check_tokens"] > 0
    for a, b in zip(trainer_model.state_dict().values(), engine.model.state_dict().values()):
        assert torch.equal(a, b)


def test_engine_on_the_trainers_model_needs_no_sync(tiny_dir):
    from azrlib.rollout.hf import HFSampler

    model = _load(tiny_dir)
    assert shares_weights(model, HFSampler(model, _tokenizer(tiny_dir)))


# ---------------------------------------------------------------------------------------- vLLM glue (stand-ins)

class _EngineModel:
    """vLLM's model as far as weight loading goes: load_weights consumes (HF name, tensor) pairs
    into the engine's own copy of the weights (an HF model here)."""

    def __init__(self, hf_model, events: list):
        self.hf = hf_model
        self.events = events
        self.calls = 0
        self.got_stream = None

    def load_weights(self, weights):
        self.calls += 1
        self.events.append(("load",))
        self.got_stream = not isinstance(weights, (dict, list, tuple))
        own = self.hf.state_dict()
        loaded = set()
        with torch.no_grad():
            for name, tensor in weights:
                own[name].copy_(tensor)
                loaded.add(name)
        return loaded


def _fake_vllm(monkeypatch, engine_hf, *, path: str = "in_process", sleep: str | None = "tags",
               refuse_sleep: bool = False, tokenizer=None):
    """Install a stand-in `vllm` module whose LLM exposes one weight path and one sleep API."""
    events: list = []
    engine = _EngineModel(engine_hf, events)

    class LLM:
        def __init__(self, **kwargs):
            if refuse_sleep and kwargs.get("enable_sleep_mode"):
                raise ValueError("Sleep mode is not supported on current platform.")
            events.append(("init", dict(kwargs)))
            self.kwargs = kwargs
            runner = types.SimpleNamespace(model=engine)
            if path == "in_process":
                self.llm_engine = types.SimpleNamespace(
                    model_executor=types.SimpleNamespace(driver_worker=types.SimpleNamespace(model_runner=runner)))
            elif path == "in_process_v1":
                core = types.SimpleNamespace(model_executor=types.SimpleNamespace(
                    driver_worker=types.SimpleNamespace(worker=types.SimpleNamespace(model_runner=runner))))
                self.llm_engine = types.SimpleNamespace(engine_core=types.SimpleNamespace(engine_core=core))
            else:
                self.llm_engine = types.SimpleNamespace()  # engine in another process
            self._runner = runner

        def get_tokenizer(self):
            return tokenizer

        def reset_prefix_cache(self):
            events.append("reset_prefix_cache")

    if path == "collective_rpc":
        from azrlib.rollout.vllm_sampler import WeightSyncWorkerExtension

        def collective_rpc(self, method, timeout=None, args=(), kwargs=None):
            payload = pickle.loads(pickle.dumps(args))  # what crosses the process boundary
            worker = type("Worker", (WeightSyncWorkerExtension,), {})()
            worker.model_runner = self._runner
            events.append(("rpc", method))
            return [getattr(worker, method)(*payload)]
        LLM.collective_rpc = collective_rpc
    if path == "apply_model":
        def apply_model(self, func):
            func = pickle.loads(pickle.dumps(func))  # vLLM ships it to the workers
            events.append("apply_model")
            return [func(engine)]
        LLM.apply_model = apply_model
    if sleep == "tags":
        def sleep_(self, level=1):
            events.append(("sleep", level))
            if level == 2:  # weights discarded
                with torch.no_grad():
                    for p in engine.hf.parameters():
                        p.zero_()

        def wake_up(self, tags=None):
            events.append(("wake_up", tuple(tags) if tags else None))
        LLM.sleep, LLM.wake_up = sleep_, wake_up
    elif sleep == "plain":  # vLLM before wake_up(tags=...)
        LLM.sleep = lambda self, level=1: events.append(("sleep", level))
        LLM.wake_up = lambda self: events.append(("wake_up", None))
    module = types.ModuleType("vllm")
    module.LLM = LLM
    module.SamplingParams = lambda **kwargs: kwargs
    monkeypatch.setitem(sys.modules, "vllm", module)
    return events, engine


@pytest.mark.parametrize("path", ["in_process", "in_process_v1", "collective_rpc", "apply_model"])
def test_vllm_weight_sync_reaches_the_engine_by_every_path(tiny_dir, monkeypatch, path):
    from azrlib.rollout.vllm_sampler import VLLMSampler

    trainer_model = _load(tiny_dir)
    _train_a_little(trainer_model, steps=1)
    events, engine = _fake_vllm(monkeypatch, _load(tiny_dir), path=path)
    sampler = VLLMSampler(tiny_dir, dtype="bfloat16", gpu_memory_utilization=0.4, weight_bucket_bytes=4096)
    assert events[0][1]["gpu_memory_utilization"] == 0.4 and "enable_sleep_mode" not in events[0][1]
    sent = sync_weights(trainer_model, sampler)
    assert sent == len(trainer_model.state_dict())
    assert sampler.weight_path == path.replace("_v1", "")
    for name, tensor in trainer_model.state_dict().items():
        assert torch.equal(engine.hf.state_dict()[name], tensor), name
    if path.startswith("in_process"):
        assert engine.calls == 1 and engine.got_stream  # streamed, one tensor at a time
    else:  # serialised in buckets of ~4 KiB: many calls
        assert engine.calls > 3
    assert events[-1] == "reset_prefix_cache"


def test_vllm_sleep_releases_memory_for_the_update_and_sync_wakes_it(tiny_dir, monkeypatch):
    """Level 2 (weights discarded) where wake_up takes tags: wake the weights, load, then the KV
    cache; the engine's weights end equal to the trainer's although sleep zeroed them."""
    from azrlib.rollout.vllm_sampler import VLLMSampler

    trainer_model = _load(tiny_dir)
    events, engine = _fake_vllm(monkeypatch, _load(tiny_dir), sleep="tags")
    sampler = VLLMSampler(tiny_dir, enable_sleep_mode=True)
    assert events[0][1]["enable_sleep_mode"] is True and sampler.sleep_mode
    sync = RolloutSync(trainer_model, sampler, pad_id=0, device="cpu")
    sync.before_update()
    assert sampler.asleep and events[-1] == ("sleep", 2)
    assert all(float(p.detach().abs().sum()) == 0 for p in engine.hf.parameters())
    with pytest.raises(RuntimeError, match="load_weights"):
        sampler.generate(PROMPTS[:1])  # discarded weights: sampling before a sync is an error
    _train_a_little(trainer_model, steps=1)
    sync.after_update()
    assert events[-5:] == [("sleep", 2), ("wake_up", ("weights",)), ("load",), ("wake_up", ("kv_cache",)),
                           "reset_prefix_cache"]
    assert not sampler.asleep
    for name, tensor in trainer_model.state_dict().items():
        assert torch.equal(engine.hf.state_dict()[name], tensor), name
    assert sampler.sleep() and sampler.asleep  # and again next step


def test_vllm_without_tags_sleeps_at_level_1_and_wakes_once(tiny_dir, monkeypatch):
    from azrlib.rollout.vllm_sampler import VLLMSampler

    events, _ = _fake_vllm(monkeypatch, _load(tiny_dir), sleep="plain")
    sampler = VLLMSampler(tiny_dir, enable_sleep_mode=True)
    assert sampler.sleep() and events[-1] == ("sleep", 1)
    sampler.wake_up()  # level 1 kept the weights (offloaded): waking is enough to sample
    assert events[-1] == ("wake_up", None) and not sampler.asleep
    sampler.sleep()
    sampler.load_weights(_load(tiny_dir).state_dict())
    assert events[-4:] == [("sleep", 1), ("wake_up", None), ("load",), "reset_prefix_cache"]


def test_vllm_without_sleep_mode_keeps_its_memory_and_says_so(tiny_dir, monkeypatch):
    from azrlib.rollout.vllm_sampler import VLLMSampler

    events, _ = _fake_vllm(monkeypatch, _load(tiny_dir), sleep=None)
    with pytest.warns(RuntimeWarning, match="no sleep mode"):
        sampler = VLLMSampler(tiny_dir, enable_sleep_mode=True)
    assert "enable_sleep_mode" not in events[0][1] and not sampler.sleep()
    events, _ = _fake_vllm(monkeypatch, _load(tiny_dir), sleep="tags", refuse_sleep=True)
    with pytest.warns(RuntimeWarning, match="refused sleep mode"):
        sampler = VLLMSampler(tiny_dir, enable_sleep_mode=True)
    assert not sampler.sleep_mode and not sampler.sleep()
    with pytest.raises(ValueError, match="gpu_memory_utilization"):
        VLLMSampler(tiny_dir, gpu_memory_utilization=1.5)


# ---------------------------------------------------------------------------------------- real vLLM

@pytest.mark.vllm
@pytest.mark.gpu
def test_real_vllm_sleep_sync_and_logprob_check(tiny_dir):
    """On a GPU with vLLM: sleep, sync changed weights, wake, sample; the check agrees with the
    trainer's fp32 forward to engine precision."""
    pytest.importorskip("vllm", reason="vllm is not installed (optional: pip install -e .[vllm]; see docs/gpu.md)")
    if not torch.cuda.is_available():
        pytest.skip("vLLM sleep mode needs a CUDA GPU")
    from azrlib.rollout.vllm_sampler import VLLMSampler

    trainer_model = _load(tiny_dir).cuda()
    sampler = VLLMSampler(tiny_dir, dtype="float32", gpu_memory_utilization=0.2, enable_sleep_mode=True,
                          max_model_len=256)
    sync = RolloutSync(trainer_model, sampler, pad_id=0, device="cuda", check_every=1, warn_above=1e-2)
    sync.before_update()
    _train_a_little(trainer_model, steps=1)
    sync.after_update()
    rows = sampler.generate(PROMPTS, n=2, max_new_tokens=12, seed=0)
    assert sync.check(1, _as_rollouts(rows))[MISMATCH_KEY] < 1e-3


# ---------------------------------------------------------------------------------------- trainer + vLLM (stand-in)

class _SamplingLLM:
    """A `vllm.LLM` stand-in that really samples: its own fp32 copy of the checkpoint, temperature
    sampling token by token, raw log-probs in vLLM's output structures. Weights arrive only through
    `load_weights` on the in-process model (`llm_engine.model_executor.driver_worker...`), and sleep
    level 2 zeroes them, as vLLM discards them."""

    events: list = []
    ignore_loads = False

    def __init__(self, **kwargs):
        from transformers import AutoModelForCausalLM, AutoTokenizer

        type(self).events.append(("init", dict(kwargs)))
        self.hf = AutoModelForCausalLM.from_pretrained(kwargs["model"], dtype=getattr(torch, kwargs["dtype"])).eval()
        self.tokenizer = AutoTokenizer.from_pretrained(kwargs["model"])
        engine = _EngineModel(self.hf, type(self).events)
        if type(self).ignore_loads:
            engine.load_weights = lambda weights: [None for _ in weights]  # a sync that silently does nothing
        self.llm_engine = types.SimpleNamespace(model_executor=types.SimpleNamespace(
            driver_worker=types.SimpleNamespace(model_runner=types.SimpleNamespace(model=engine))))

    def get_tokenizer(self):
        return self.tokenizer

    def sleep(self, level=1):
        type(self).events.append(("sleep", level))
        with torch.no_grad():
            for p in self.hf.parameters():
                p.zero_()

    def wake_up(self, tags=None):
        type(self).events.append(("wake_up", tuple(tags) if tags else None))

    def reset_prefix_cache(self):
        pass

    @torch.no_grad()
    def generate(self, prompts, params, use_tqdm=False):
        out = []
        for prompt, p in zip(prompts, params):
            g = torch.Generator().manual_seed(p["seed"] or 0)
            samples = []
            for j in range(p["n"]):
                ids = list(prompt["prompt_token_ids"])
                tokens, logprobs = [], []
                for _ in range(p["max_tokens"]):
                    logp = torch.log_softmax(self.hf(input_ids=torch.tensor([ids])).logits[0, -1].float(), -1)
                    probs = torch.softmax(logp / max(p["temperature"], 1e-5), -1)
                    token = int(torch.multinomial(probs, 1, generator=g))
                    tokens.append(token)
                    logprobs.append({token: types.SimpleNamespace(logprob=float(logp[token]))})
                    ids.append(token)
                samples.append(types.SimpleNamespace(index=j, token_ids=tokens, logprobs=logprobs,
                                                     text=self.tokenizer.decode(tokens, skip_special_tokens=True),
                                                     finish_reason="length", stop_reason=None))
            out.append(types.SimpleNamespace(outputs=samples))
        return out


def _install_sampling_vllm(monkeypatch, ignore_loads: bool = False):
    _SamplingLLM.events = []
    _SamplingLLM.ignore_loads = ignore_loads
    module = types.ModuleType("vllm")
    module.LLM = _SamplingLLM
    module.SamplingParams = lambda **kwargs: kwargs
    inputs = types.ModuleType("vllm.inputs")
    inputs.TokensPrompt = lambda prompt_token_ids: {"prompt_token_ids": prompt_token_ids}
    module.inputs = inputs
    monkeypatch.setitem(sys.modules, "vllm", module)
    monkeypatch.setitem(sys.modules, "vllm.inputs", inputs)
    monkeypatch.setenv("VLLM_ENABLE_V1_MULTIPROCESSING", "0")
    return _SamplingLLM.events


def _vllm_run(tiny_dir, out_dir):
    from azrlib.trainer.trainer import Trainer

    cfg = load_config(TrainConfig, {
        "model": str(tiny_dir), "out_dir": str(out_dir), "run_name": "v", "steps": 2, "batch_size": 2,
        "n_solver_samples": 2, "n_references": 2, "prompt_style": "compact", "max_new_tokens_propose": 6,
        "max_new_tokens_solve": 6, "lr": 1e-2, "mini_batch_size": 64, "checkpoint_every": 2, "exec_timeout_s": 2.0,
        "torch_threads": 1, "entropy_coef": 0.05, "validate_every": 0, "task_types": ["deduction"],
        "rollout_engine": "vllm", "logprob_check_every": 1, "logprob_mismatch_warn": 0.05})
    trainer = Trainer(cfg)
    try:
        path = trainer.train()
    finally:
        trainer.close()
    return [json.loads(line) for line in (path / "metrics.jsonl").read_text().splitlines()][1:]


def test_trainer_with_a_vllm_engine_sleeps_syncs_and_checks_every_step(tiny_dir, tmp_path, monkeypatch):
    events = _install_sampling_vllm(monkeypatch)
    metrics = _vllm_run(tiny_dir, tmp_path)
    init = events[0][1]
    assert init["gpu_memory_utilization"] == 0.4 and init["enable_sleep_mode"] is True and init["dtype"] == "float32"
    assert "distributed_executor_backend" not in init  # one process: the engine stays in it
    cycle = [("sleep", 2), ("wake_up", ("weights",)), ("load",), ("wake_up", ("kv_cache",))]
    assert [e for e in events[1:] if e[0] != "init"] == cycle * 2  # every step: release, update, sync
    for m in metrics:
        assert m["rollout/logprob_mismatch"] < 1e-5 and m["rollout/logprob_check_tokens"] > 0
    assert metrics[0]["grad_norm"] > 0  # the weights did move: the check compared synced weights


def test_trainer_with_a_vllm_engine_that_ignores_syncs_is_caught(tiny_dir, tmp_path, monkeypatch):
    _install_sampling_vllm(monkeypatch, ignore_loads=True)
    with pytest.warns(RuntimeWarning, match="disagree"):
        metrics = _vllm_run(tiny_dir, tmp_path)
    # step 1 samples with the engine's initial weights (equal to the base): agreement; step 2 samples
    # with the weights sleep zeroed and no sync restored: the check flags it
    assert metrics[0]["rollout/logprob_mismatch"] < 1e-5
    assert metrics[1]["rollout/logprob_mismatch"] > 0.05
