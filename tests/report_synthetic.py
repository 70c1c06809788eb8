"""A small synthetic results directory laid out as docs/results_layout.md says, for testing
azrlib.report and the notebooks without training anything. Values are random but seeded, and
shaped like the real ones (keys as azrlib.trainer.loop writes them)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import yaml

TYPES = ("deduction", "abduction", "induction")
ROLES = ("propose", "solve")
ISOLATION = {"bubblewrap": True, "namespaces": ["pid", "net"], "seccomp": True, "landlock_abi": 7, "weak": False}
VERSIONS = {"torch": "2.13.0+cpu", "numpy": "2.4.6", "azrlib": "0.1.0"}


def _metrics(rng, steps: int, drift: float, frozen: bool = False, validate_every: int = 2) -> list[dict]:
    rows = [{"step": 0, **{f"val/{t}/accuracy": 0.1 for t in TYPES}}]
    for s in range(1, steps + 1):
        r = {"step": s}
        for t in TYPES:
            r[f"valid_rate/{t}"] = float(rng.uniform(0.2, 0.8))
            r[f"solve_rate/{t}"] = float(rng.uniform(0, 0.5))
            for role in ROLES:
                base = 1.0 - drift * s / steps + 0.05 * rng.standard_normal()
                r[f"entropy/{role}/{t}"] = float(max(0.05, base))
                r[f"entropy_full/{role}/{t}"] = float(max(0.05, base * 1.1))
                r[f"response_length/{t}/{role}"] = float(40 + 5 * s + rng.uniform(0, 5))
        r["entropy_full/all"] = float(np.mean([r[f"entropy_full/{ro}/{t}"] for ro in ROLES for t in TYPES]))
        if s % validate_every == 0 or s == steps:
            r.update({f"val/{t}/accuracy": float(rng.uniform(0, 0.6)) for t in TYPES})
        rows.append(r)
    return rows


def _sparsity(rng, exact: float) -> dict:
    out = {}
    for dtype, shift in (("stored", 0.0), ("bf16", 0.05), ("fp32", 0.0)):
        s = min(1.0, exact + shift)
        n = 1000
        mods = {"q_proj": s, "embed_tokens": min(1.0, s + 0.1), "norm": s / 2}
        out[dtype] = {"sparsity": s, "n_params": n, "n_unchanged": int(round(s * n)), "dtype": dtype, "atol": 1e-5,
                      "sparsity_atol": min(1.0, s + 0.1), "n_unchanged_atol": int(round(min(1.0, s + 0.1) * n)),
                      "per_module": mods, "per_layer": {"0": s},
                      "per_module_atol": {k: min(1.0, v + 0.1) for k, v in mods.items()},
                      "per_layer_atol": {"0": s},
                      "per_module_n_params": {"q_proj": 600, "embed_tokens": 300, "norm": 100},
                      "stored_dtypes": {"base": ["F32"], "tuned": ["F32"]}, "lm_head_skipped_as_tied": False}
    return out


def make_results(root: Path, seeds=(1, 2, 3), steps: int = 6, n_problems: int = 10, n_samples: int = 8,
                 drop: tuple[str, ...] = ()) -> Path:
    """Write a synthetic results directory at root; runs named in `drop` are left out."""
    rng = np.random.default_rng(0)
    root = Path(root)
    first = seeds[0]
    runs = {f"selfplay_s{k}": {"seed": k} for k in seeds}
    runs.update({f"band_s{k}": {"seed": k, "proposer_reward": "band"} for k in seeds})
    runs.update({f"frozen_s{k}": {"seed": k, "freeze_proposer": True} for k in seeds})
    runs.update({f"rlvr_s{k}": {"seed": k, "mode": "rlvr"} for k in seeds})
    runs.update({f"azr_code_s{first}": {"seed": first, "proposer_reward": "azr_code"},
                 f"sft_s{first}": {"seed": first, "mode": "sft"}})
    planned = dict(runs)  # the manifest lists the plan; dropped runs are missing from train/
    runs = {k: v for k, v in runs.items() if k not in drop}
    manifest = {"preset": "synthetic", "seeds": list(seeds), "base_model": "data/tiny_base",
                "settings": {"leash_k": n_samples, "leash_n": 256, "leash_min_n": 256, "eval_n": n_samples, "rq2_bins": 3},
                "runs": [{"name": n, "overrides": [f"{k}={v}" for k, v in ov.items()]} for n, ov in planned.items()],
                "steps": {"train": {"seconds": 12.5, "skipped": False}, "eval": {"seconds": 3.0, "skipped": True}},
                "versions": VERSIONS, "total_seconds": 15.5, "sandbox_isolation": ISOLATION}
    root.mkdir(parents=True, exist_ok=True)
    (root / "manifest.json").write_text(json.dumps(manifest, indent=1))
    for name, ov in runs.items():
        d = root / "train" / name
        d.mkdir(parents=True)
        cfg = {"run_name": name, "steps": steps, "mode": "selfplay", "proposer_reward": "azr", "freeze_proposer": False,
               "batch_size": 4, "lr": 1e-4, **ov}
        (d / "config.yaml").write_text(yaml.safe_dump(cfg))
        (d / "environment.json").write_text(json.dumps({"versions": VERSIONS, "sandbox_isolation": ISOLATION, "seed": ov["seed"]}))
        drift = 0.5 if name.startswith("selfplay") else 0.2
        rows = _metrics(rng, steps, drift)
        (d / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
        (d / "timings.jsonl").write_text("".join(json.dumps({"step": s, "time/step": 1.0}) + "\n" for s in range(1, steps + 1)))
        (d / "tasks.jsonl").write_text("")
    # eval: base better at large k (more diverse), self-play better at k=1
    for model, p_hi, p_lo in (("base", 0.25, 0.25), ("selfplay_s1", 0.6, 0.0)):
        rows = []
        for t in TYPES:
            for i in range(n_problems):
                p = p_hi if i % 2 == 0 else p_lo
                for j in range(n_samples):
                    rows.append({"problem_id": f"{t}/{i}", "sample_idx": j, "correct": bool(rng.uniform() < p),
                                 "response_length": 10, "benchmark": "tinyworld"})
        (root / "eval" / model).mkdir(parents=True)
        (root / "eval" / model / "tinyworld.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    # rq2: later questions harder
    q_rows = []
    for q in range(60):
        step = 1 + q % steps
        for model in ("base", "selfplay_s1"):
            p = max(0.0, 0.9 - 0.12 * step + rng.uniform(-0.05, 0.05))
            correct = [bool(rng.uniform() < p) for _ in range(8)]
            q_rows.append({"qid": f"q{q:03d}", "step": step, "bin": (step - 1) // 2, "model": model,
                           "solve_rate": sum(correct) / 8, "correct": correct,
                           "lengths": [int(20 + 4 * step + rng.integers(0, 5)) for _ in range(8)], "settings": "{}"})
    (root / "rq2").mkdir()
    (root / "rq2" / "questions.jsonl").write_text("".join(json.dumps(r) + "\n" for r in q_rows))
    (root / "sparsity").mkdir()
    for name, exact in ((f"selfplay_s{first}", 0.4), (f"rlvr_s{first}", 0.8), (f"sft_s{first}", 0.1)):
        (root / "sparsity" / f"{name}.json").write_text(json.dumps(_sparsity(rng, exact)))
    _protocol_files(root, rng, [k for k in seeds if f"selfplay_s{k}" in runs], steps, n_problems, n_samples, runs)
    return root


def _write(path: Path, rows: list[dict]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))


def _protocol_files(root: Path, rng, seeds, steps: int, n_problems: int, n_samples: int, runs: dict) -> None:
    """What the protocol adds (docs/experiments/protocol.md): every evaluated seed on both splits, the
    leash resampling, RQ2 per self-play seed, RQ3 fixed-prompt entropy, RQ4 sparsity per checkpoint."""
    p_of = {"base": (0.25, 0.25), "selfplay": (0.6, 0.0), "rlvr": (0.7, 0.0), "band": (0.55, 0.0)}
    for bench in ("tinyworld", "tinyworld_ood"):
        for name in ["base"] + [r for r in runs if r.rsplit("_s", 1)[0] in ("selfplay", "rlvr", "band")]:
            p_hi, p_lo = p_of[name.rsplit("_s", 1)[0]]
            rows = [{"problem_id": f"{t}/{i}", "sample_idx": j, "correct": bool(rng.uniform() < (p_hi if i % 2 == 0 else p_lo)),
                     "response_length": 10, "benchmark": "tinyworld"}
                    for t in TYPES for i in range(n_problems) for j in range(n_samples)]
            if name == "base" and bench == "tinyworld":
                rows = [dict(r, correct=False) if r["problem_id"] == "deduction/0" else r for r in rows]
            _write(root / "eval" / name / f"{bench}.jsonl", rows)
    _write(root / "leash" / "tasks.jsonl", [{"task_type": "deduction", "program": "def f(x):\n    return x",
                                            "inputs": ["1"], "outputs": ["1"], "meta": {"id": "0"}}])
    _write(root / "leash" / "base.jsonl", [{"problem_id": "deduction/0", "sample_idx": j, "correct": j == 7,
                                            "benchmark": "tinyworld"} for j in range(256)])
    for k in seeds:
        q_rows = []
        for q in range(30):
            step = 1 + q % steps
            p = max(0.0, 0.9 - 0.12 * step + rng.uniform(-0.05, 0.05))
            for model in ("base", f"selfplay_s{k}"):
                correct = [bool(rng.uniform() < p) for _ in range(8)]
                q_rows.append({"qid": f"s{k}q{q:03d}", "step": step, "bin": (step - 1) // 2, "model": model,
                               "solve_rate": sum(correct) / 8, "correct": correct,
                               "lengths": [int(20 + 4 * step * (model != "base") + rng.integers(0, 5)) for _ in range(8)],
                               "settings": "{}"})
        _write(root / "rq2" / f"selfplay_s{k}.jsonl", q_rows)
    ckpts = list(range(0, steps + 1, 2))
    for name in [r for r in runs if r.rsplit("_s", 1)[0] in ("selfplay", "frozen", "rlvr", "band")]:
        kind, k = name.rsplit("_s", 1)
        rows = []
        for st in ckpts:
            for role in ROLES:
                for t in TYPES:
                    for i in range(4):
                        h = 1.0 + 0.3 * (role == "propose") - {"selfplay": 0.5, "band": 0.45}.get(kind, 0.1) * st / steps
                        h += 0.05 * rng.standard_normal()
                        rows.append({"run": name, "kind": kind, "seed": int(k), "step": st, "role": role, "task_type": t,
                                     "prompt_index": i, "n": 4, "entropy_full": h, "entropy_sampled": h * 1.05,
                                     "length": 30.0})
        _write(root / "rq3" / f"{name}.jsonl", rows)
    for name in [r for r in runs if r.rsplit("_s", 1)[0] in ("selfplay", "rlvr", "sft")]:
        kind = name.rsplit("_s", 1)[0]
        level = {"selfplay": 0.4, "rlvr": 0.7, "sft": 0.1}[kind]
        rows = [{"step": st, "dtype": dtype, "sparsity": min(1.0, level + 0.3 * (1 - st / steps) + (dtype == "bf16") * 0.05
                                                             + 0.01 * rng.uniform()),
                 "sparsity_atol": min(1.0, level + 0.4), "atol": 1e-5, "n_params": 1000}
                for st in ckpts[1:] for dtype in ("bf16", "fp32")]
        budget = {"mode": {"sft": "sft", "rlvr": "rlvr"}.get(kind, "selfplay"), "training_steps": steps,
                  "optimizer_steps": steps, "trained_sequences": 12 * steps,
                  "response_tokens": 400 * steps, "tokens_exact": True}
        (root / "sparsity_curve").mkdir(exist_ok=True)
        (root / "sparsity_curve" / f"{name}.json").write_text(json.dumps({"run": name, "rows": rows, "budget": budget}))
