"""AZR's seed files as the GPU presets' RLVR/SFT task pool (azrlib.tasks.seed_pool), on the vendored
slice of the seed files: every kept task reproduces the recorded row, the types balance, and a
missing data directory is a clear error."""

from __future__ import annotations

import ast
import json
from pathlib import Path

import pytest

from azrlib.sandbox import Executor
from azrlib.tasks.seed_pool import INDUCTION_FILE, TRIPLET_FILE, seed_pool

VENDORED = Path(__file__).resolve().parents[1] / "data"


def _rows(name):
    return [json.loads(line) for line in (VENDORED / name).read_text().splitlines() if line.strip()]


def _value(text):
    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError):
        return None  # a recorded repr that is no literal (e.g. Counter(...)): not compared here


@pytest.fixture(scope="module")
def pool():
    with Executor() as ex:
        return seed_pool(ex, VENDORED), seed_pool(ex, VENDORED, n=9)


def test_every_kept_task_reproduces_its_recorded_row(pool):
    (tasks, report), _ = pool
    triplets = {(r["snippet"], r["input"]): r["output"] for r in _rows(TRIPLET_FILE)}
    induction = {r["snippet"]: dict(zip(r["inputs"], r["outputs"])) for r in _rows(INDUCTION_FILE)}
    by_type = {t: [x for x in tasks if x.task_type == t] for t in ("deduction", "abduction", "induction")}
    assert by_type["deduction"] and by_type["induction"]
    # one deduction and one abduction task per valid triplet: the same programs
    assert sorted(x.program for x in by_type["deduction"]) == sorted(x.program for x in by_type["abduction"])
    compared = 0
    for x in by_type["deduction"]:
        recorded = [out for (snippet, _), out in triplets.items() if x.program.endswith(snippet)]
        assert recorded, "a kept triplet that is not in the seed file"
        want = _value(recorded[0])
        if want is not None:
            assert _value(x.output) == want
            compared += 1
    assert compared >= len(by_type["deduction"]) // 2
    for x in by_type["induction"]:
        rec = [pairs for snippet, pairs in induction.items() if x.program.endswith(snippet)][0]
        assert len(x.inputs) >= 6 and x.message  # five shown + at least one hidden, AZR's message kept
        for i, o in zip(x.inputs, x.outputs):
            assert _value(i) == _value([k for k in rec if _value(k) == _value(i)][0])
            want = _value([v for k, v in rec.items() if _value(k) == _value(i)][0])
            if want is not None:
                assert _value(o) == want
    assert report["triplet_rows"] == 40 and report["induction_rows"] == 12
    assert sum(report["kept"].values()) == len(tasks)
    # every triplet row is either kept (as two tasks) or rejected with a reason
    assert len(by_type["deduction"]) + sum(v for k, v in report["rejected"].items() if k.startswith("triplet/")) == 40


def test_a_limit_keeps_the_types_balanced(pool):
    _, (tasks, report) = pool
    assert len(tasks) == 9 and report["kept"] == {"deduction": 3, "abduction": 3, "induction": 3}


def test_missing_seed_files_name_the_path(tmp_path, capsys):
    from azrlib.cli import main

    with pytest.raises(SystemExit) as e:
        main(["rlvr-tasks", "10", "--source", "azr_seeds", "--data", str(tmp_path), "--out", str(tmp_path / "o.jsonl")])
    assert "3b_coder_seed_io.jsonl" in str(e.value) and not (tmp_path / "o.jsonl").exists()
