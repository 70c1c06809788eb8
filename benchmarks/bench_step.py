"""A training step, phase by phase, against this machine's own limit.

    .venv/bin/python benchmarks/bench_step.py [--config tiny] [--steps 3] [--json-out FILE] [key=value ...]
    .venv/bin/python benchmarks/bench_step.py --update-only [--repeats 3] [--profile]

Step mode runs a few steps of the preset in a temporary run directory and prints, per phase, mean
seconds, share of the step, tokens and tokens/s (sampling phases: generated tokens; update: prompt
+ response tokens trained), then measures, in the same process right after the steps, a plain
dense fp32 forward+backward+AdamW of the same model on the update's token count (rows of
--dense-len tokens, `model(input_ids, labels=...)`, one optimizer step) and prints the update's
tokens/s as a ratio of it. Uses the committed tiny base (`data/tiny_base`) when present, else a
random tiny Qwen2 (then proposals are invalid and the learnability phase is empty: say so).

Update-only mode times `StepRunner._update` (whatever the checked-out trainer does) on synthetic
rollouts shaped like a tiny-preset step (96 sequences, prompts 120-250 tokens, responses 8-320,
~27k tokens) against the dense step, alternating the two over --repeats rounds (best of each).

Both modes print the CPU model and flags, torch version and threads, and end with one JSON line
(`--json-out` appends it to a file). Ratios, not seconds, are what compare across runs and
machines. To measure "before", run this file from a checkout of the older code (copy it there):
the script imports azrlib from the directory above its own.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))  # tiny_model (test fixture), for the random-model fallback

import torch  # noqa: E402

from azrlib.config import load_config  # noqa: E402
from azrlib.trainer.config import TrainConfig  # noqa: E402

FLAGS = ("avx2", "avx512f", "avx512_bf16", "avx512_vnni", "amx_bf16", "amx_tile", "fma")


def cpu_info() -> dict:
    name, flags = platform.processor() or "?", set()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                name = line.split(":", 1)[1].strip()
            elif line.startswith("flags"):
                flags = set(line.split(":", 1)[1].split())
    except OSError:
        pass
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else None
    return {"cpu": name, "cores": os.cpu_count(), "flags": [f for f in FLAGS if f in flags], "load1": load,
            "torch": torch.__version__, "threads": torch.get_num_threads()}


def dense_step_seconds(model, tokens: int, length: int, repeats: int = 2, seed: int = 0) -> float:
    """Best wall time of a plain fp32 forward+backward+AdamW over ~`tokens` tokens in rows of `length`
    (random ids, one optimizer step; a fresh AdamW on a copy so the benchmarked model is untouched)."""
    import copy

    model = copy.deepcopy(model).float().train()
    opt = torch.optim.AdamW(model.parameters(), lr=1e-5)
    rows = max(1, round(tokens / length))
    g = torch.Generator().manual_seed(seed)
    ids = torch.randint(0, model.config.vocab_size, (rows, length), generator=g)
    best = float("inf")
    for _ in range(repeats):
        t0 = time.perf_counter()
        opt.zero_grad(set_to_none=True)
        model(input_ids=ids, labels=ids).loss.backward()
        opt.step()
        best = min(best, time.perf_counter() - t0)
    return best * tokens / (rows * length)  # per the update's exact token count


# ---------------------------------------------------------------------------------------- step mode

def _phase_of_seeds(runner, steps: int) -> dict[int, str]:
    names = {0: "propose", 1: "learnability_sample", 10: "solve"}
    # step 0 is the buffer seeding (proposals only), not part of a training step
    return {runner._seed(s, p): (n if s else "seed_buffers") for s in range(steps + 1) for p, n in names.items()}


def run_steps(args) -> dict:
    from azrlib.trainer.trainer import Trainer

    with tempfile.TemporaryDirectory() as tmp:
        out_dir = args.out_dir or tmp
        overrides = [f"steps={args.steps}", f"out_dir={out_dir}", "run_name=bench", "validate_every=0",
                     f"checkpoint_every={args.steps}"] + args.overrides
        cfg = load_config(TrainConfig, args.config, overrides)
        note = ""
        if not (ROOT / cfg.model).is_dir() and not Path(cfg.model).is_dir():
            from tiny_model import build_tiny_checkpoint
            model = build_tiny_checkpoint(Path(tmp) / "random_tiny")
            cfg = load_config(TrainConfig, args.config, overrides + [f"model={model}"])
            note = "random tiny model: no valid proposals, learnability phase empty"
        os.environ.setdefault("TQDM_DISABLE", "1")
        trainer = Trainer(cfg)
        runner = trainer.runner
        phase_of = _phase_of_seeds(runner, args.steps)
        tokens: dict[str, float] = defaultdict(float)
        update_s: list[float] = []
        generate, update = runner.sampler.generate, runner._update

        def counting_generate(prompts, *a, seed=None, **kw):
            out = generate(prompts, *a, seed=seed, **kw)
            tokens[phase_of.get(seed, "other_sampling")] += sum(len(c.token_ids) for row in out for c in row)
            return out

        def counting_update(rollouts, advantages, step):
            tokens["update"] += sum(len(r.prompt_ids) + len(r.response_ids) for r in rollouts if r.response_ids)
            tokens["update_response"] += sum(len(r.response_ids) for r in rollouts)
            t0 = time.perf_counter()
            out = update(rollouts, advantages, step)
            update_s.append(time.perf_counter() - t0)
            return out

        runner.sampler.generate, runner._update = counting_generate, counting_update
        try:
            run_dir = trainer.train()
            rows = [json.loads(line) for line in (run_dir / "timings.jsonl").read_text().splitlines()]
            n_steps = len(rows)
            step_tokens = tokens["update"] / max(n_steps, 1)
            dense_s = dense_step_seconds(trainer.model, int(step_tokens), args.dense_len) if step_tokens else None
        finally:
            trainer.close()
    info = cpu_info()
    phases = sorted({k for r in rows for k in r if k.startswith("time/") and k != "time/step"})
    step_mean = sum(r["time/step"] for r in rows) / n_steps
    print(f"{info['cpu']} ({info['cores']} cores; {' '.join(info['flags'])}); torch {info['torch']}, "
          f"{info['threads']} threads, load {info['load1']:.2f}")
    print(f"{args.config}: {n_steps} steps, model {cfg.model}{' (' + note + ')' if note else ''}")
    print(f"{'phase':24s} {'seconds':>8s} {'share':>6s} {'tokens':>8s} {'tokens/s':>9s}")
    result = {"mode": "step", "config": args.config, "steps": n_steps, "overrides": args.overrides, "note": note,
              **info, "phases": {}}
    for p in sorted(phases, key=lambda p: -sum(r.get(p, 0) for r in rows)):
        mean = sum(r.get(p, 0.0) for r in rows) / n_steps
        tok = tokens.get(p[5:], 0.0) / n_steps
        rate = tok / mean if tok and mean else None
        print(f"{p[5:]:24s} {mean:8.2f} {100 * mean / step_mean:5.0f}% {tok:8.0f} "
              f"{rate if rate is not None else float('nan'):9.0f}")
        result["phases"][p[5:]] = {"seconds": round(mean, 3), "tokens": round(tok), "tokens_per_s": rate}
    print(f"{'step (wall)':24s} {step_mean:8.2f}")
    result["step_seconds"] = round(step_mean, 3)
    if dense_s:
        upd = sum(update_s) / len(update_s)
        ratio = dense_s / upd
        print(f"update: {step_tokens:.0f} tokens ({tokens['update_response'] / n_steps:.0f} response) in {upd:.2f} s "
              f"= {step_tokens / upd:.0f} tokens/s; dense fp32 fwd+bwd+AdamW, same tokens, rows of "
              f"{args.dense_len}: {dense_s:.2f} s = {step_tokens / dense_s:.0f} tokens/s; ratio {ratio:.2f}x")
        result.update(update_seconds=round(upd, 3), update_tokens=round(step_tokens), dense_seconds=round(dense_s, 3),
                      dense_len=args.dense_len, update_vs_dense=round(ratio, 3))
    return result


# ---------------------------------------------------------------------------------------- update mode

def synthetic_rollouts(vocab: int, n: int = 96, seed: int = 0):
    """Rollouts shaped like a tiny-preset step: 16 x 3 proposer and 16 x 3 solver responses."""
    import types

    rng = random.Random(seed)
    groups = [f"{t}/{r}" for t in ("deduction", "abduction", "induction") for r in ("propose", "solve")]
    out, adv = [], []
    for k in range(n):
        p = rng.randint(120, 250)
        r = min(320, max(8, int(rng.expovariate(1 / 100))))
        out.append(types.SimpleNamespace(prompt_ids=[rng.randrange(1, vocab) for _ in range(p)],
                                         response_ids=[rng.randrange(1, vocab) for _ in range(r)],
                                         logprobs=[-rng.uniform(0.1, 4.0) for _ in range(r)], trainable=True,
                                         group=groups[k % len(groups)], reward=0.0))
        adv.append(rng.gauss(0, 1))
    return out, adv


def run_update(args) -> dict:
    import types

    from transformers import AutoModelForCausalLM

    from azrlib.trainer.loop import StepRunner

    cfg = load_config(TrainConfig, args.config, args.overrides)
    if cfg.torch_threads:
        torch.set_num_threads(cfg.torch_threads)
    path = ROOT / cfg.model if (ROOT / cfg.model).is_dir() else Path(cfg.model)
    if path.is_dir():
        model = AutoModelForCausalLM.from_pretrained(path, dtype=torch.float32)
    else:
        from tiny_model import build_tiny_model
        model = build_tiny_model(986, hidden_size=192, num_layers=4, num_heads=6, num_kv_heads=2,
                                 intermediate_size=512)
    rollouts, advantages = synthetic_rollouts(model.config.vocab_size)
    n_tokens = sum(len(r.prompt_ids) + len(r.response_ids) for r in rollouts)
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-6)
    runner = StepRunner(cfg, model, types.SimpleNamespace(pad_token_id=0), None, None, {}, optimizer)
    upd, dense = float("inf"), float("inf")
    for _ in range(args.repeats):  # alternate so load from other processes hits both alike
        t0 = time.perf_counter()
        runner._update(rollouts, advantages, step=1)
        upd = min(upd, time.perf_counter() - t0)
        dense = min(dense, dense_step_seconds(model, n_tokens, args.dense_len, repeats=1))
    profiles = {}
    if args.profile:  # where the time goes: torch.profiler self CPU time per op, update vs dense
        profiles = {"update": profile_ops(lambda: runner._update(rollouts, advantages, step=1)),
                    "dense": profile_ops(lambda: dense_step_seconds(model, n_tokens, args.dense_len, repeats=1))}
    info = cpu_info()
    print(f"{info['cpu']} ({info['cores']} cores; {' '.join(info['flags'])}); torch {info['torch']}, "
          f"{info['threads']} threads, load {info['load1']:.2f}")
    for name, ops in profiles.items():
        total = sum(ops.values())
        print(f"profile of one {name} step: {total:.2f} s of self CPU time; top ops:")
        for op, sec in sorted(ops.items(), key=lambda kv: -kv[1])[:12]:
            print(f"  {op:40s} {sec:7.3f} s {100 * sec / total:5.1f}%")
    print(f"update ({args.config}: mini_batch_size {cfg.mini_batch_size}, micro_batch_tokens {cfg.micro_batch_tokens}): "
          f"{len(rollouts)} sequences, {n_tokens} tokens in {upd:.2f} s = {n_tokens / upd:.0f} tokens/s")
    print(f"dense fp32 fwd+bwd+AdamW, rows of {args.dense_len}: {dense:.2f} s = {n_tokens / dense:.0f} tokens/s")
    print(f"update / dense: {dense / upd:.2f}x")
    return {"mode": "update", "config": args.config, **info, "sequences": len(rollouts), "tokens": n_tokens,
            "update_seconds": round(upd, 3), "dense_seconds": round(dense, 3), "dense_len": args.dense_len,
            "update_vs_dense": round(dense / upd, 3), "repeats": args.repeats,
            "profile": {k: {op: round(v, 4) for op, v in sorted(ops.items(), key=lambda kv: -kv[1])[:20]}
                        for k, ops in profiles.items()}}


def profile_ops(fn) -> dict[str, float]:
    """Self CPU seconds per torch op of one call of `fn` (torch.profiler)."""
    from torch.profiler import ProfilerActivity, profile

    with profile(activities=[ProfilerActivity.CPU]) as prof:
        fn()
    return {e.key: e.self_cpu_time_total / 1e6 for e in prof.key_averages()}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--config", default="tiny")
    ap.add_argument("--steps", type=int, default=3)
    ap.add_argument("--update-only", action="store_true", help="time the update on synthetic rollouts only")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--profile", action="store_true", help="update mode: also print torch.profiler's top ops "
                    "(self CPU time) of one update and one dense step")
    ap.add_argument("--dense-len", type=int, default=256, help="row length of the dense baseline")
    ap.add_argument("--json-out", default=None, help="append the JSON line to this file")
    ap.add_argument("--out-dir", default=None, help="keep the run (metrics.jsonl) under OUT_DIR/bench")
    ap.add_argument("overrides", nargs="*")
    args = ap.parse_args()
    result = run_update(args) if args.update_only else run_steps(args)
    result["commit"] = os.popen(f"git -C {ROOT} rev-parse --short HEAD 2>/dev/null").read().strip()
    line = json.dumps(result)
    print(line)
    if args.json_out:
        with open(args.json_out, "a") as f:
            f.write(line + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
