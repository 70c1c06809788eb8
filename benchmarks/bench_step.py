"""Time per phase of a training step (propose, validate, learnability, solve, verify, update).

    .venv/bin/python benchmarks/bench_step.py [--config tiny] [--steps 3] [key=value ...]

Runs a few steps of the preset in a temporary run directory and prints the mean seconds of each
phase with its share of the step, so the slowest phase is visible. Uses the committed tiny base
(`data/tiny_base`) when present, else a random tiny Qwen2 (then proposals are invalid and the
learnability phase is empty: say so when quoting numbers).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from azrlib.config import load_config  # noqa: E402
from azrlib.trainer.config import TrainConfig  # noqa: E402
from azrlib.trainer.trainer import Trainer  # noqa: E402


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--config", default="tiny")
    ap.add_argument("--steps", type=int, default=3)
    ap.add_argument("overrides", nargs="*")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        overrides = [f"steps={args.steps}", f"out_dir={tmp}", "run_name=bench", "validate_every=0",
                     f"checkpoint_every={args.steps}"] + args.overrides
        cfg = load_config(TrainConfig, args.config, overrides)
        note = ""
        if not (ROOT / cfg.model).is_dir() and not Path(cfg.model).is_dir():
            from azrlib.rollout.tiny_model import build_tiny_checkpoint
            model = build_tiny_checkpoint(Path(tmp) / "random_tiny")
            cfg = load_config(TrainConfig, args.config, overrides + [f"model={model}"])
            note = " (random tiny model: no valid proposals, learnability phase empty)"
        os.environ.setdefault("TQDM_DISABLE", "1")
        trainer = Trainer(cfg)
        try:
            run_dir = trainer.train()
        finally:
            trainer.close()
        rows = [json.loads(line) for line in (run_dir / "timings.jsonl").read_text().splitlines()]
        metrics = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()][1:]
    phases = sorted({k for r in rows for k in r if k.startswith("time/") and k != "time/step"})
    step_mean = sum(r["time/step"] for r in rows) / len(rows)
    print(f"{args.config}: {len(rows)} steps, model {cfg.model}{note}, torch threads {cfg.torch_threads or 'default'}")
    print(f"{'phase':24s} {'seconds':>8s} {'share':>6s}")
    for p in sorted(phases, key=lambda p: -sum(r.get(p, 0) for r in rows)):
        mean = sum(r.get(p, 0.0) for r in rows) / len(rows)
        print(f"{p[5:]:24s} {mean:8.2f} {100 * mean / step_mean:5.0f}%")
    print(f"{'step (wall)':24s} {step_mean:8.2f}")
    seqs = sum(m.get("n_sequences", 0) for m in metrics) / max(len(metrics), 1)
    print(f"trained sequences per step: {seqs:.0f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
