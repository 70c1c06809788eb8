"""The `quick` preset end to end on the committed tiny base (CI's smoke run of the real path),
twice with the same seed: identical metrics.jsonl."""

import json
from pathlib import Path

import pytest

from azrlib.cli import main as azr_main

ROOT = Path(__file__).resolve().parents[2]
pytestmark = [pytest.mark.slow,  # trains the preset twice: ~2.5 min on 2 cores
              pytest.mark.skipif(not (ROOT / "data" / "tiny_base" / "config.json").is_file(),
                                 reason="data/tiny_base is not committed in this clone (azr pretrain-tiny builds it)")]


def _run(out: Path, capsys) -> Path:
    assert azr_main(["train", "--config", "quick", f"out_dir={out}"]) == 0
    return Path(json.loads(capsys.readouterr().out.strip().splitlines()[-1])["run_dir"])


def test_quick_preset_runs_and_is_reproducible(tmp_path, capsys):
    a = _run(tmp_path / "a", capsys)
    metrics = [json.loads(line) for line in (a / "metrics.jsonl").read_text().splitlines()]
    assert [m["step"] for m in metrics] == [0, 1, 2, 3]
    assert "val/deduction/accuracy" in metrics[0] and "val/deduction/accuracy" in metrics[-1]
    assert metrics[1]["n_sequences"] == 3 * 2 * 4
    assert (a / "checkpoints" / "step_000003" / "model.safetensors").is_file()
    b = _run(tmp_path / "b", capsys)
    assert (a / "metrics.jsonl").read_text() == (b / "metrics.jsonl").read_text()
