"""A step survives any model output: a prompt that cannot fit the context fails alone, a proposal
whose solve prompt cannot fit is rejected at validation (`solve_prompt_too_long`), and a valid
proposal left without learnability samples is logged and left out of the step.

Regression for `ValueError: a valid proposal needs its solve rate` (a 1,209-token solve prompt +
256 new tokens > the tiny base's 1,024 positions made the HF sampler reject the whole learnability
batch). The scripted sampler below raises for a whole batch exactly as HFSampler does."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from azrlib.cli import main as azr_main
from azrlib.config import load_config
from azrlib.rollout.base import Completion
from tiny_model import build_tiny_checkpoint
from azrlib.tasks.templates import render_proposal_answer, render_solver_answer, solve_prompt
from azrlib.tasks.types import Task
from azrlib.trainer.config import TrainConfig
from azrlib.trainer.context import ContextGuard
from azrlib.trainer.trainer import Trainer

ROOT = Path(__file__).resolve().parents[2]
POSITIONS = 512
SHORT = Task("deduction", "def f(a):\n    return a * 3", ("4",), ("12",))
# a valid program whose solve prompt alone is longer than the model's context
LONG = Task("deduction", "def f(a):\n    s = 0\n" + "".join(f"    s = s + a * {k}\n" for k in range(150)) + "    return s",
            ("1",), (str(sum(range(150))),))


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory):
    path = build_tiny_checkpoint(tmp_path_factory.mktemp("tiny_ctx"))
    config = json.loads((path / "config.json").read_text())
    (path / "config.json").write_text(json.dumps({**config, "max_position_embeddings": POSITIONS}))
    return str(path)


def _cfg(model: str, out: Path, **over) -> TrainConfig:
    base = {"model": model, "out_dir": str(out), "run_name": "r", "steps": 1, "batch_size": 2,
            "task_types": ["deduction"], "n_solver_samples": 4, "n_references": 1, "prompt_style": "compact",
            "max_new_tokens_propose": 64, "max_new_tokens_solve": 32, "lr": 1e-3, "mini_batch_size": 8,
            "checkpoint_every": 1, "exec_timeout_s": 2.0, "torch_threads": 1, "validate_every": 0}
    base.update(over)
    return load_config(TrainConfig, base)


class Script:
    """Proposes the tasks of `proposals` in turn; answers solve prompts right on even samples.
    Like HFSampler, a batch with a prompt that cannot fit raises for all of it; `fail_learnability`
    makes every multi-sample (learnability) call fail."""

    def __init__(self, inner, proposals, fail_learnability=False):
        self.inner, self.tokenizer, self.proposals = inner, inner.tokenizer, proposals
        self.fail_learnability = fail_learnability
        self.calls = 0

    def generate(self, prompts, n=1, max_new_tokens=16, **kw):
        longest = max(len(self.tokenizer(p)["input_ids"]) for p in prompts)
        if longest + max_new_tokens > POSITIONS:
            raise ValueError(f"longest prompt ({longest} tokens) + max_new_tokens exceeds {POSITIONS}")
        if self.fail_learnability and n > 1:
            raise RuntimeError("engine died")
        out = []
        for i, prompt in enumerate(prompts):
            row = []
            for j in range(n):
                if "Write a new Python function" in prompt:  # the compact deduction proposer
                    task = self.proposals[self.calls % len(self.proposals)]
                    self.calls += 1
                    text = render_proposal_answer(task, "x")
                else:
                    task = LONG if "s = s + a" in prompt else SHORT
                    wrong = Task("deduction", task.program, task.inputs, ("-1",))
                    text = render_solver_answer(task if j % 2 == 0 else wrong, "t")
                ids = self.tokenizer(text, add_special_tokens=False)["input_ids"]
                p_ids = self.tokenizer(prompt)["input_ids"]
                row.append(Completion(i, j, ids, text, [-0.5] * len(ids), "stop", prompt_token_ids=p_ids))
            out.append(row)
        return out


def _train(cfg, script_args) -> Path:
    trainer = Trainer(cfg)
    trainer.sampler = trainer.runner.sampler = Script(trainer.sampler, *script_args)
    try:
        return trainer.train()
    finally:
        trainer.close()


def _records(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def test_the_long_task_really_cannot_fit(tiny_model):
    from azrlib.models import load_tokenizer
    tok = load_tokenizer(tiny_model)
    guard = ContextGuard(tok, POSITIONS)
    assert guard.fits([solve_prompt(LONG, style="compact"), solve_prompt(SHORT, style="compact")], 32) == [False, True]


def test_a_proposal_whose_solve_prompt_cannot_fit_is_rejected_alone(tiny_model, tmp_path):
    path = _train(_cfg(tiny_model, tmp_path), ([LONG, SHORT],))
    m = _records(path / "metrics.jsonl")[1]
    rows = _records(path / "tasks.jsonl")
    assert [r["reason"] for r in rows] == ["solve_prompt_too_long", "ok"]
    assert not rows[0]["valid"] and rows[0]["reward"] == -0.5  # a well-formatted invalid proposal
    assert rows[1]["valid"] and rows[1]["solve_rate"] == 0.5
    assert m["valid_rate/deduction"] == 0.5 and m["learnability/deduction/solve_rate"] == 0.5
    assert m["errors/sampler"] == 0 and m["buffer/deduction"] == 2  # zero triplet + the short task


def test_a_valid_proposal_without_learnability_samples_is_logged_and_left_out(tiny_model, tmp_path):
    path = _train(_cfg(tiny_model, tmp_path), ([SHORT], True))
    m = _records(path / "metrics.jsonl")[1]
    rows = _records(path / "tasks.jsonl")
    assert [r["reason"] for r in rows] == ["no_learnability_samples"] * 2
    assert all(r["valid"] and r["solve_rate"] is None and r["reward"] is None for r in rows)
    assert m["skipped/unrated_proposals"] == 2 and m["errors/sampler"] >= 1
    assert m["buffer/deduction"] == 1  # not added
    assert m["n_sequences"] == 2  # the two solver responses; the unrated proposals are not trained on


def test_a_solver_prompt_that_cannot_fit_fails_alone(tiny_model, tmp_path):
    pool = tmp_path / "pool.jsonl"
    pool.write_text("".join(json.dumps(t.to_json()) + "\n" for t in [LONG, SHORT]))
    cfg = _cfg(tiny_model, tmp_path / "o", mode="rlvr", rlvr_tasks=str(pool), batch_size=8)
    path = _train(cfg, ([SHORT],))
    m = _records(path / "metrics.jsonl")[1]
    assert m["errors/sampler"] == 0 and m["skipped/context"] >= 1
    assert 1 <= m["n_sequences"] == 8 - m["skipped/context"]
    assert m["solve_rate/deduction"] == 1.0  # every short task answered by sample 0, right


@pytest.mark.slow
@pytest.mark.skipif(not (ROOT / "data" / "tiny_base" / "config.json").is_file(), reason="needs data/tiny_base")
def test_quick_preset_with_a_tiny_context_cap_finishes(tmp_path, capsys):
    """The real tiny base with a context cap that some proposer prompts (~230-320 tokens + 96)
    and some solve prompts (~70-110 tokens + 240) exceed: every step finishes."""
    assert azr_main(["train", "--config", "quick", f"out_dir={tmp_path}", "steps=6", "context_limit=340",
                     "max_new_tokens_solve=240"]) == 0
    run_dir = Path(json.loads(capsys.readouterr().out.strip().splitlines()[-1])["run_dir"])
    metrics = _records(run_dir / "metrics.jsonl")
    assert [m["step"] for m in metrics] == list(range(7))
    assert sum(m.get("skipped/context", 0) for m in metrics) > 0
    assert all(m["errors/sampler"] == 0 for m in metrics[1:])


def test_a_task_whose_gold_no_longer_reproduces_is_dropped_not_rewarded(tiny_model, tmp_path):
    """The gold is re-run when answers are graded; a task whose recorded output no longer comes out
    gives no rollout (nothing to learn from) and is counted."""
    stale = Task("deduction", SHORT.program, SHORT.inputs, ("13",))  # f(4) is 12, not 13
    pool = tmp_path / "pool.jsonl"
    pool.write_text("".join(json.dumps(t.to_json()) + "\n" for t in [stale, SHORT]))
    cfg = _cfg(tiny_model, tmp_path / "o", mode="rlvr", rlvr_tasks=str(pool), batch_size=8)
    path = _train(cfg, ([SHORT],))
    m = _records(path / "metrics.jsonl")[1]
    assert m["skipped/stale_gold/deduction"] == 1  # one distinct stale task, however often drawn
    assert 1 <= m["n_sequences"] < 8  # the stale task's responses were left out
    assert m["solve_rate/deduction"] == 1.0
