"""The trainer on the real vLLM engine (marked `vllm`; skipped where vllm is not installed, e.g. the
main .venv: `make venv-vllm` builds the environment that has it, .ci/vllm.sh runs these).

On the tiny base with vLLM's CPU backend, fp32 on both sides: rollouts come from vLLM, the trainer's
weights are synced into the engine after every update, and the log-prob agreement check runs every
step. Its mean |trainer - engine| log-prob difference must stay below 1e-4 (a synced fp32 engine is
~1e-6 off: two sets of kernels), and a sync that is skipped must push it far above: the check is
what would catch a broken sync in a real run. The vLLM glue against stand-in `vllm` modules is in
tests/rollout/test_gpu_path.py; sampling and score agreement with HFSampler in tests/rollout/test_rollout.py.
"""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import pytest

from azrlib.config import load_config
from azrlib.trainer.config import TrainConfig

try:  # the weight-sync module's home moves from rollout/ to trainer/
    from azrlib.trainer import weight_sync
except ImportError:  # pragma: no cover - older layout
    from azrlib.rollout import weight_sync

pytestmark = pytest.mark.vllm

ROOT = Path(__file__).resolve().parents[2]
TINY_BASE = ROOT / "data" / "tiny_base"
AGREE = 1e-4  # fp32 engine vs fp32 trainer, mean |diff| per sampled token


@pytest.fixture(scope="module", autouse=True)
def vllm_installed():
    pytest.importorskip("vllm", reason="vllm is not installed (make venv-vllm; see docs/gpu.md)")


def _records(path: Path) -> list[dict]:
    return [r for r in (json.loads(line) for line in path.read_text().splitlines()) if r.get("step", 0) >= 1]


def _run(out_dir: Path, **overrides) -> tuple[list[dict], list[dict], object]:
    """A 2-step self-play run on vLLM; returns its per-step metric and timing records and the sampler."""
    from azrlib.trainer.trainer import Trainer

    cfg = load_config(TrainConfig, {
        "model": str(TINY_BASE), "out_dir": str(out_dir), "run_name": "v", "steps": 2, "batch_size": 2,
        "n_solver_samples": 2, "n_references": 2, "prompt_style": "compact", "max_new_tokens_propose": 48,
        "max_new_tokens_solve": 24, "lr": 1e-3, "mini_batch_size": 64, "checkpoint_every": 2, "exec_timeout_s": 2.0,
        "torch_threads": 1, "validate_every": 0, "task_types": ["deduction", "abduction"],
        "rollout_engine": "vllm", "vllm_max_model_len": 512, "logprob_check_every": 1,
        "logprob_mismatch_warn": AGREE, **overrides})
    trainer = Trainer(cfg)
    try:
        path = trainer.train()
    finally:
        trainer.close()
    return _records(path / "metrics.jsonl"), _records(path / "timings.jsonl"), trainer.sampler


def test_trainer_on_vllm_syncs_after_every_update_and_agrees_every_step(tmp_path):
    from azrlib.rollout.vllm_sampler import VLLMSampler

    with warnings.catch_warnings():
        warnings.filterwarnings("error", message=".*disagree", category=RuntimeWarning)  # the check, failing
        metrics, timings, sampler = _run(tmp_path)
    assert isinstance(sampler, VLLMSampler) and sampler.weight_path == "in_process"  # one process: tensors
    assert [m["step"] for m in metrics] == [1, 2]
    for m, t in zip(metrics, timings):
        assert m[weight_sync.MISMATCH_KEY] < AGREE, m
        assert m["rollout/logprob_check_tokens"] > 0 and t["time/weight_sync"] > 0
    assert metrics[0]["grad_norm"] > 0  # the update moved the weights: step 2 compared synced weights


def test_a_skipped_sync_is_caught_by_the_check(tmp_path, monkeypatch):
    sent = []
    monkeypatch.setattr(weight_sync.RolloutSync, "after_update", lambda self: sent.append(0) or 0)
    with pytest.warns(RuntimeWarning, match="disagree"):
        metrics, _, _ = _run(tmp_path)
    assert sent, "the trainer never reached the sync"
    # step 1 samples with the base weights the engine was started with: agreement; step 2 samples with
    # them again although the trainer has moved on: the check flags it
    assert metrics[0][weight_sync.MISMATCH_KEY] < AGREE
    assert metrics[1][weight_sync.MISMATCH_KEY] > 100 * AGREE, metrics[1][weight_sync.MISMATCH_KEY]
