"""TrainConfig and its presets: `base:` inheritance, the paper defaults, every option reaching the
component it configures, and the rule that no option exists without a preset or a test using it."""

from __future__ import annotations

import dataclasses
import json
import re
import types
from pathlib import Path

import pytest

from azrlib.config import ConfigError, config_to_dict, load_config
from tiny_model import build_tiny_checkpoint
from azrlib.tasks.types import Task
from azrlib.trainer.config import TrainConfig
from azrlib.trainer.context import model_context

ROOT = Path(__file__).resolve().parents[2]


def test_base_key_inherits_and_overrides(tmp_path):
    (tmp_path / "parent.yaml").write_text("steps: 7\nlr: 1e-4\nrun_name: parent\n")
    (tmp_path / "child.yaml").write_text("base: parent.yaml\nrun_name: child\n")
    cfg = load_config(TrainConfig, tmp_path / "child.yaml", ["lr=2e-4"])
    assert (cfg.steps, cfg.lr, cfg.run_name) == (7, 2e-4, "child")
    assert load_config(TrainConfig, {"base": "quick", "steps": 9}).batch_size == 4  # a preset name as base


def test_base_cycles_and_bad_bases_are_clear_errors(tmp_path):
    (tmp_path / "a.yaml").write_text("base: b.yaml\n")
    (tmp_path / "b.yaml").write_text("base: a.yaml\n")
    with pytest.raises(ConfigError, match="comes back to itself"):
        load_config(TrainConfig, tmp_path / "a.yaml")
    (tmp_path / "c.yaml").write_text("base: no-such-preset\n")
    with pytest.raises(ConfigError, match="no-such-preset"):
        load_config(TrainConfig, tmp_path / "c.yaml")


def test_coder7b_is_coder3b_with_the_7b_base():
    a = config_to_dict(load_config(TrainConfig, "coder3b"))
    b = config_to_dict(load_config(TrainConfig, "coder7b"))
    assert {k for k in a if a[k] != b[k]} == {"run_name", "model"}
    assert b["model"] == "Qwen/Qwen2.5-Coder-7B"


def test_defaults_are_the_paper_settings():
    """reference_facts.md, section 1 (AZR paper branch)."""
    d = TrainConfig()
    assert (d.batch_size, d.n_solver_samples, d.n_references, d.temperature, d.top_p) == (64, 8, 6, 1.0, 1.0)
    assert (d.max_new_tokens_propose, d.max_new_tokens_solve) == (8096, 8096)
    assert (d.lr, d.clip_ratio, d.entropy_coef, d.kl_coef, d.grad_clip, d.mini_batch_size) == (1e-6, 0.2, 0.001, 0.0, 1.0, 128)
    assert (d.advantage, d.proposer_reward, d.invalid_proposal_reward) == ("trr++", "azr", -0.5)
    assert (d.exec_timeout_s, d.max_output_chars, d.buffer_cap) == (10.0, 400, 16384)


def test_presets_restate_nothing():
    """Every key a preset sets changes its resolved config (against its base, or the defaults)."""
    import yaml

    for path in sorted((ROOT / "configs").glob("*.yaml")):
        own = yaml.safe_load(path.read_text())
        full = config_to_dict(load_config(TrainConfig, own))
        restated = [k for k in own if k != "base"
                    and config_to_dict(load_config(TrainConfig, {x: v for x, v in own.items() if x != k})) == full]
        assert not restated, f"{path.name} restates what it inherits: {restated}"


def test_every_option_is_used_by_a_preset_or_a_test():
    texts = [p.read_text() for p in (ROOT / "configs").glob("*.yaml")]
    texts += [p.read_text() for p in (ROOT / "tests").rglob("*.py")]
    unused = [f.name for f in dataclasses.fields(TrainConfig)
              if not any(re.search(rf"\b{f.name}\b", t) for t in texts)]
    assert not unused, f"options no preset or test uses (remove them, or test them): {unused}"


def test_model_context_takes_the_smallest_limit_set():
    model = types.SimpleNamespace(config=types.SimpleNamespace(max_position_embeddings=1024))
    cfg = lambda **k: types.SimpleNamespace(**{"rollout_engine": "hf", "vllm_max_model_len": 0, "context_limit": 0, **k})  # noqa: E731
    assert model_context(model, cfg()) == 1024
    assert model_context(model, cfg(context_limit=300)) == 300
    assert model_context(model, cfg(rollout_engine="vllm", vllm_max_model_len=512)) == 512
    assert model_context(model, cfg(vllm_max_model_len=512)) == 1024  # only the vLLM engine has that cap
    assert model_context(types.SimpleNamespace(), cfg()) is None


def test_options_reach_their_components(tmp_path, monkeypatch):
    """buffer_cap/buffer_policy -> the buffers, weight_decay -> AdamW, seed_tasks -> the buffers,
    context_limit -> the guard, logprob_check_* -> the engine's weight sync (forced on here),
    val_samples -> the validation sampler."""
    from azrlib.trainer import trainer as trainer_module

    model = build_tiny_checkpoint(tmp_path / "m")
    seeds = tmp_path / "seeds.jsonl"
    seeds.write_text("".join(json.dumps(Task("deduction", f"def f(a):\n    return a + {k}", (str(k),),
                                                  (str(2 * k),)).to_json()) + "\n" for k in range(1, 4)))
    monkeypatch.setattr(trainer_module, "shares_weights", lambda model, sampler: False)
    cfg = load_config(TrainConfig, {"base": "quick", "model": str(model), "out_dir": str(tmp_path / "o"),
                                    "buffer_cap": 3, "buffer_policy": "keep_oldest", "weight_decay": 0.1,
                                    "seed_tasks": str(seeds), "context_limit": 300, "logprob_check_every": 4,
                                    "logprob_check_seqs": 5, "validate_every": 1, "val_samples": 2,
                                    "val_tasks": str(seeds)})
    trainer = trainer_module.Trainer(cfg)
    try:
        b = trainer.buffers["deduction"]
        assert (b.cap, b.cap_policy, len(b)) == (3, "keep_oldest", 3)  # zero triplet + 2 seeds kept, 1 dropped
        assert trainer.optimizer.param_groups[0]["weight_decay"] == 0.1
        assert trainer.guard.limit == 300
        sync = trainer.runner.rollout_sync
        assert (sync.check_every, sync.check_seqs) == (4, 5)
        asked = []

        class Recorder:
            def generate(self, prompts, n=1, **kw):
                asked.append((len(prompts), n))
                return [[] for _ in prompts]

        trainer.sampler = Recorder()
        assert trainer.validate(1) == {} and asked == [(3, 2)]  # val_samples per validation task
    finally:
        trainer.close()


def test_describe_lists_every_key_with_its_help(capsys):
    from azrlib.cli import main as azr_main

    assert azr_main(["train", "--describe"]) == 0
    out = capsys.readouterr().out
    for f in dataclasses.fields(TrainConfig):
        assert f.metadata.get("help") and re.search(rf"^{f.name}\s", out, re.M), f.name
