"""benchmarks/tiny_acceptance.py --base-only: per-type solve rates from an eval file."""

import importlib.util
import json
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def _module():
    spec = importlib.util.spec_from_file_location("tiny_acceptance", ROOT / "benchmarks" / "tiny_acceptance.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_solve_rates_match_a_hand_count(tmp_path):
    # deduction: task 0 solved 2/4, task 1 0/4, task 2 4/4; abduction 1/4 and 1/4; induction 0/4
    pattern = {"deduction/0": [1, 0, 1, 0], "deduction/1": [0, 0, 0, 0], "deduction/2": [1, 1, 1, 1],
               "abduction/0": [0, 0, 1, 0], "abduction/1": [1, 0, 0, 0], "induction/0": [0, 0, 0, 0]}
    path = tmp_path / "eval.jsonl"
    path.write_text("".join(json.dumps({"problem_id": pid, "sample_idx": i, "correct": bool(c)}) + "\n"
                            for pid, cs in pattern.items() for i, c in enumerate(cs)))
    rates = _module().solve_rates(path, bootstrap=2000)
    assert abs(rates["deduction"]["solve_rate"] - (0.5 + 0 + 1) / 3) < 1e-12
    assert rates["deduction"]["mixed"] == 1 / 3 and rates["deduction"]["n_tasks"] == 3
    assert rates["abduction"]["solve_rate"] == 0.25 and rates["abduction"]["mixed"] == 1.0
    assert rates["abduction"]["ci_low"] == rates["abduction"]["ci_high"] == 0.25  # both tasks alike
    assert rates["induction"]["solve_rate"] == 0.0
    d = rates["deduction"]
    assert 0.0 <= d["ci_low"] < d["solve_rate"] < d["ci_high"] <= 1.0
