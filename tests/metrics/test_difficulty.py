"""RQ2 difficulty study: balanced sampling across bins, cached evaluation, per-bin summaries."""

import json
import math

import pytest

from azrlib.metrics.difficulty import (SamplingSettings, evaluate_questions, load_task_rows, sample_questions,
                                       summarize_by_bin)
from azrlib.rollout.hf import HFSampler
from tiny_model import build_tiny_checkpoint
from azrlib.sandbox import Executor


def _rows(n_steps=100, per_step=6):
    rows = []
    for step in range(1, n_steps + 1):
        for k in range(per_step):
            rows.append({"step": step, "task_type": "deduction", "valid": k % 3 != 0,
                         "program": f"def f(a):\n    return a + {step * 10 + k}", "inputs": ["1"],
                         "outputs": [str(1 + step * 10 + k)], "message": ""})
        rows.append({"step": step, "task_type": "abduction", "valid": True, "program": "def f(a):\n    return a",
                     "inputs": ["1"], "outputs": ["1"]})
    return rows


def test_sampling_is_balanced_across_bins_and_valid_only():
    qs = sample_questions(_rows(), n=40, bin_size=25, seed=0)
    assert len(qs) == 40
    assert sorted({q.bin for q in qs}) == [0, 1, 2, 3]
    assert all(sum(q.bin == b for q in qs) == 10 for b in range(4))
    assert all(q.task.task_type == "deduction" for q in qs)
    assert len({q.qid for q in qs}) == 40
    assert qs == sample_questions(_rows(), n=40, bin_size=25, seed=0)


def test_small_bins_give_what_they_have():
    qs = sample_questions(_rows(n_steps=30, per_step=3), n=100, bin_size=25)
    assert sum(q.bin == 1 for q in qs) == 10  # steps 26-30, 2 valid each


def test_partial_last_line_is_ignored(tmp_path):
    p = tmp_path / "tasks.jsonl"
    p.write_text(json.dumps(_rows(1)[0]) + "\n{\"step\": 2, \"task")
    assert len(load_task_rows(p)) == 1


def test_summary_matches_direct_computation():
    rows = [{"model": "a", "bin": 0, "step": 1, "solve_rate": r, "lengths": [l, l + 2]} for r, l in
            [(0.0, 10), (0.5, 20), (1.0, 30)]]
    s = summarize_by_bin(rows)[0]
    assert s["n"] == 3 and s["solve_rate"] == pytest.approx(0.5) and s["response_length"] == pytest.approx(21)
    sd = math.sqrt(((0 - 0.5) ** 2 + 0 + 0.5 ** 2) / 2)
    assert s["solve_rate_ci_high"] - s["solve_rate"] == pytest.approx(1.96 * sd / math.sqrt(3))


def test_evaluation_is_cached(tmp_path):
    model = build_tiny_checkpoint(tmp_path / "m")
    qs = sample_questions(_rows(n_steps=4, per_step=3), n=4, bin_size=2)
    cache = tmp_path / "cache.jsonl"
    settings = SamplingSettings(m=2, max_new_tokens=8, prompt_style="compact")
    built = []

    def make_sampler(path):
        built.append(path)
        return HFSampler(path)

    with Executor() as ex:
        with pytest.raises(ValueError, match="make_sampler"):  # the study builds no engine itself
            evaluate_questions(qs, {"base": str(model)}, ex, cache, settings)
        rows = evaluate_questions(qs, {"base": str(model)}, ex, cache, settings, make_sampler=make_sampler)
        assert len(rows) == len(qs) and all(len(r["lengths"]) == 2 for r in rows)
        before = cache.read_text()
        again = evaluate_questions(qs, {"base": str(model)}, ex, cache, settings, make_sampler=make_sampler)
        assert again == rows and cache.read_text() == before
        assert built == [str(model)]  # a fully cached model is not loaded
        other = evaluate_questions(qs, {"base": HFSampler(str(model))}, ex, cache,
                                   SamplingSettings(m=1, max_new_tokens=8, prompt_style="compact"))
        assert all(len(r["lengths"]) == 1 for r in other)
