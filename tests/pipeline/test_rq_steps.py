"""The protocol's pipeline steps (azrlib.pipeline.rq_steps) and the run settings that size them."""

import json

import pytest
import yaml

from azrlib.pipeline import rq_steps
from azrlib.pipeline.settings import (ONE_UPDATE_MINI_BATCH, RunSpec, checkpoint_every, checkpoint_steps,
                                      load_settings, run_overrides, run_plan)
from azrlib.tasks.templates import propose_prompt, solve_prompt
from azrlib.tasks.types import Task


def _rows(pid, correct_idx, n):
    return [{"problem_id": pid, "sample_idx": j, "correct": j in correct_idx} for j in range(n)]


def _task(t, i):
    return {"task_type": t, "program": f"def f(x):\n    return x + {i}", "inputs": [str(i)], "outputs": [str(2 * i)],
            "meta": {"id": f"{t}/{i}"}}


def test_leash_tasks_are_solved_within_k_by_a_tuned_model_and_never_by_the_base():
    tasks = [_task("deduction", i) for i in range(4)]
    ids = [f"deduction/deduction/{i}" for i in range(4)]
    base = _rows(ids[0], [], 8) + _rows(ids[1], [], 8) + _rows(ids[2], [3], 8) + _rows(ids[3], [], 8)
    tuned_a = _rows(ids[0], [2], 8) + _rows(ids[1], [6], 8) + _rows(ids[2], [0], 8) + _rows(ids[3], [], 8)
    tuned_b = _rows(ids[0], [], 8) + _rows(ids[1], [], 8) + _rows(ids[2], [], 8) + _rows(ids[3], [1], 8)
    # k = 4: problem 0 (tuned_a at sample 2) and 3 (tuned_b at sample 1); problem 1 only at sample 6 > k;
    # problem 2 the base solves once
    chosen = rq_steps.leash_tasks(tasks, base, [tuned_a, tuned_b], k=4)
    assert [t["meta"]["id"] for t in chosen] == ["deduction/0", "deduction/3"]
    assert [t["meta"]["id"] for t in rq_steps.leash_tasks(tasks, base, [tuned_a], k=8)] == ["deduction/0", "deduction/1"]
    with pytest.raises(ValueError, match="n >= k"):
        rq_steps.leash_tasks(tasks, base, [tuned_a], k=16)


def test_leash_eval_refuses_n_below_the_minimum_and_writes_an_empty_file_for_an_empty_subset(tmp_path, capsys):
    from azrlib.cli import main

    (tmp_path / "tasks.jsonl").write_text("")
    out = tmp_path / "base.jsonl"
    assert main(["leash-eval", "x", "--tasks", str(tmp_path / "tasks.jsonl"), "--n", "8", "--out", str(out)]) == 2
    assert "below --min-n 256" in capsys.readouterr().out and not out.exists()
    assert main(["leash-eval", "x", "--tasks", str(tmp_path / "tasks.jsonl"), "--n", "256", "--out", str(out)]) == 0
    assert out.read_text() == ""


def test_fixed_prompts_are_the_same_text_for_every_call_and_match_the_templates():
    rows = [_task(t, i) for t in ("deduction", "abduction") for i in range(5)]
    rows += [dict(_task("induction", i), inputs=["1", "2"], outputs=["3", "4"], message="m") for i in range(5)]
    a = rq_steps.fixed_prompts(rows, per_type=3, style="compact")
    assert a == rq_steps.fixed_prompts(rows, per_type=3, style="compact")
    assert len(a) == 3 * 2 * 3
    ded = [Task.from_json(r) for r in rows if r["task_type"] == "deduction"]
    solver = [p for p in a if p["role"] == "solve" and p["task_type"] == "deduction"]
    assert [p["prompt"] for p in solver] == [solve_prompt(t, style="compact") for t in ded[:3]]
    proposer = [p for p in a if p["role"] == "propose" and p["task_type"] == "deduction"]
    assert proposer[0]["prompt"] == propose_prompt("deduction", [ded[1], ded[2]], style="compact")


def test_checkpoint_interval_follows_the_fraction_of_training():
    s = load_settings("quick")
    assert checkpoint_every(load_settings("tiny", ["checkpoint_fraction=0.1"]), 40) == 4
    assert checkpoint_steps(load_settings("tiny", ["checkpoint_fraction=0.1"]), 40) == list(range(0, 41, 4))
    assert checkpoint_steps(s, 3) == [0, 1, 2, 3]
    assert checkpoint_steps(load_settings("tiny", ["checkpoint_fraction=0.3"]), 10) == [0, 3, 6, 9, 10]


def test_every_arm_gets_one_update_per_step_and_the_kept_checkpoints(tmp_path):
    s = load_settings("tiny")
    names = [r.name for r in run_plan(s)]
    for kind in ("selfplay", "band", "frozen", "rlvr"):
        assert [n for n in names if n.startswith(kind + "_s")] == [f"{kind}_s{k}" for k in s.seeds]
    over = run_overrides(RunSpec("rlvr_s0", "train-rlvr", 0, ()), s, tmp_path, "m", "t.jsonl", steps=40)
    assert f"mini_batch_size={ONE_UPDATE_MINI_BATCH}" in over and "checkpoint_every=4" in over


def test_run_budget_counts_optimizer_steps_as_the_update_splits_them(tmp_path):
    run = tmp_path / "selfplay_s0"
    run.mkdir()
    (run / "config.yaml").write_text(yaml.safe_dump({"mode": "selfplay", "mini_batch_size": 64}))
    rows = [{"step": 0}] + [{"step": s, "n_sequences": 96, "n_trained_sequences": 90,
                             "response_length/deduction/solve": 10.0, "response_length/deduction/propose": 30.0}
                            for s in (1, 2, 3)]
    (run / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    b = rq_steps.run_budget(run, 3)
    assert b == {"mode": "selfplay", "training_steps": 3, "optimizer_steps": 6, "trained_sequences": 270,
                 "response_tokens": 3 * 90 * 20, "tokens_exact": False, "trained_tokens": None}
    # a run that logs its trained tokens (every step) is counted exactly
    rows = [dict(r, n_trained_response_tokens=1000 + r["step"], n_trained_tokens=5000) if r["step"] else r for r in rows]
    (run / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    b = rq_steps.run_budget(run, 3)
    assert (b["response_tokens"], b["tokens_exact"], b["trained_tokens"]) == (3006, True, 15000)
    (run / "config.yaml").write_text(yaml.safe_dump({"mode": "sft", "mini_batch_size": 64}))
    assert rq_steps.run_budget(run, 2)["optimizer_steps"] == 2
