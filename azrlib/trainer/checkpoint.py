"""Run directories: resolved config, environment record, JSONL logs, atomic checkpoints, resume.

Layout of `runs/<name>/`:
    config.yaml         the resolved TrainConfig
    environment.json    package versions, sandbox isolation, seed, command line, host
    metrics.jsonl       one record per step (exactly one, also after a kill and --resume);
                        deterministic for a seed on one machine
    timings.jsonl       seconds per phase per step (kept apart: they differ run to run)
    tasks.jsonl         every proposed task with its step, validity and solve rate
    checkpoints/step_000010/   HF save_pretrained (safetensors, the base's stored dtype),
                               tokenizer, trainer_state.pt (optimizer, RNG, buffers, step)
    checkpoints/latest  name of the newest complete checkpoint
A checkpoint is written to a temporary directory and renamed into place, so a kill never leaves a
half checkpoint; JSONL files are cut back to the checkpoint's step on resume.
"""

from __future__ import annotations

import importlib.metadata
import json
import os
import platform
import shutil
import sys
import time
from pathlib import Path

import torch
import yaml

from azrlib.config import config_to_dict


class RunDir:
    def __init__(self, path: str | Path):
        self.path = Path(path)
        self.checkpoints = self.path / "checkpoints"
        self.metrics = self.path / "metrics.jsonl"
        self.tasks = self.path / "tasks.jsonl"
        self.timings = self.path / "timings.jsonl"

    def create(self, cfg, isolation: dict, resume: bool) -> None:
        if self.path.exists() and not resume and any(self.path.iterdir()):
            raise FileExistsError(f"run directory {self.path} exists; pass --resume to continue it "
                                  "or choose another run_name")
        self.checkpoints.mkdir(parents=True, exist_ok=True)
        _atomic_write(self.path / "config.yaml", yaml.safe_dump(config_to_dict(cfg), sort_keys=False))
        _atomic_write(self.path / "environment.json", json.dumps(environment_record(cfg, isolation), indent=1))

    def append(self, path: Path, records: list[dict]) -> None:
        if not records:
            return
        with open(path, "a") as f:
            for r in records:
                f.write(json.dumps(r, sort_keys=False) + "\n")
            f.flush()
            os.fsync(f.fileno())

    def latest_checkpoint(self) -> Path | None:
        pointer = self.checkpoints / "latest"
        if not pointer.is_file():
            return None
        candidate = self.checkpoints / pointer.read_text().strip()
        if not (candidate / "trainer_state.pt").is_file():
            raise FileNotFoundError(f"checkpoint {candidate} named by {pointer} is incomplete")
        return candidate

    def truncate_logs(self, max_step: int) -> None:
        """Keep only complete records with step <= max_step (a kill may leave later or partial ones)."""
        for path in (self.metrics, self.tasks, self.timings):
            if not path.exists():
                continue
            kept = []
            for line in path.read_text().split("\n"):
                try:
                    rec = json.loads(line)
                except json.JSONDecodeError:
                    continue
                if isinstance(rec, dict) and rec.get("step", 0) <= max_step:
                    kept.append(line)
            _atomic_write(path, "".join(k + "\n" for k in kept))

    def save_checkpoint(self, step: int, model, tokenizer, trainer_state: dict, stored_dtype: torch.dtype,
                        save_fp32: bool = False) -> Path:
        name = f"step_{step:06d}"
        final = self.checkpoints / name
        tmp = self.checkpoints / f".tmp-{name}-{os.getpid()}"
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir(parents=True)
        state = {k: v.detach().to("cpu", stored_dtype) if v.is_floating_point() else v.detach().cpu()
                 for k, v in model.state_dict().items()}
        model.save_pretrained(tmp, state_dict=state, safe_serialization=True)
        if save_fp32 and stored_dtype != torch.float32:
            fp32 = {k: v.detach().to("cpu", torch.float32) for k, v in model.state_dict().items()}
            model.save_pretrained(tmp / "fp32", state_dict=fp32, safe_serialization=True)
        tokenizer.save_pretrained(tmp)
        torch.save(trainer_state, tmp / "trainer_state.pt")
        if final.exists():
            shutil.rmtree(final)
        os.replace(tmp, final)
        _atomic_write(self.checkpoints / "latest", name + "\n")
        return final


def _atomic_write(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    tmp.write_text(text)
    os.replace(tmp, path)


def environment_record(cfg, isolation: dict) -> dict:
    versions = {}
    for pkg in ("torch", "transformers", "tokenizers", "safetensors", "numpy", "vllm", "azrlib"):
        try:
            versions[pkg] = importlib.metadata.version(pkg)
        except importlib.metadata.PackageNotFoundError:
            versions[pkg] = None
    return {
        "versions": versions,
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "cpu_count": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "cuda": torch.cuda.is_available(),
        "sandbox_isolation": isolation,
        "seed": cfg.seed,
        "argv": sys.argv,
        "started": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }
