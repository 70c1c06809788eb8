"""Two cores: one process with 2 torch threads, or 2 data-parallel gloo ranks with 1 thread each?

    .venv/bin/python benchmarks/bench_parallel.py pretrain [--steps 20] [--no-compile]
    .venv/bin/python benchmarks/bench_parallel.py train [--steps 3] [--config tiny]

`pretrain`: the tiny base's training step (the committed base's shape: Qwen2, hidden 192, 4 layers,
batch 8 x 512 tokens per optimizer step in all) on random tokens; 1 process x 1 thread (baseline),
1 process x 2 threads, 2 ranks x 1 thread with DistributedDataParallel (each rank 4 rows, gradients
all-reduced). Prints tokens/s and the ratio to the baseline.
`train`: the self-play preset for a few steps as `azr train` runs it (1 x 1 thread, 1 x 2 threads,
and `torchrun --nproc-per-node 2` with 1 thread per rank); prints seconds per step.
Measure on a quiet machine: another heavy process changes these numbers several-fold.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def _model(vocab: int = 1024):
    import torch
    from transformers import Qwen2Config, Qwen2ForCausalLM
    torch.manual_seed(0)
    cfg = Qwen2Config(vocab_size=vocab, hidden_size=192, intermediate_size=512, num_hidden_layers=4,
                      num_attention_heads=6, num_key_value_heads=2, max_position_embeddings=1024,
                      tie_word_embeddings=True)
    return Qwen2ForCausalLM(cfg)


def _pretrain_worker(rank: int, world: int, threads: int, steps: int, compile_: bool, port: int, out: str) -> None:
    import torch
    import torch.distributed as dist
    torch.set_num_threads(threads)
    model = _model()
    if world > 1:
        os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
        dist.init_process_group("gloo", rank=rank, world_size=world)
        model = torch.nn.parallel.DistributedDataParallel(model)
    fwd = torch.compile(model) if compile_ else model
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3)
    rows = 8 // world
    x = torch.randint(0, 1024, (rows, 512), generator=torch.Generator().manual_seed(rank))

    def step():
        with torch.autocast("cpu", dtype=torch.bfloat16):
            logits = fwd(input_ids=x).logits[:, :-1]
        loss = torch.nn.functional.cross_entropy(logits.float().reshape(-1, logits.shape[-1]), x[:, 1:].reshape(-1))
        loss.backward()
        opt.step()
        opt.zero_grad(set_to_none=True)

    for _ in range(3):  # warm-up (and compilation)
        step()
    if world > 1:
        dist.barrier()
    t0 = time.perf_counter()
    for _ in range(steps):
        step()
    seconds = time.perf_counter() - t0
    if rank == 0:
        Path(out).write_text(json.dumps({"tokens_per_s": steps * 8 * 512 / seconds, "step_s": seconds / steps}))
    if world > 1:
        dist.destroy_process_group()


def bench_pretrain(steps: int, compile_: bool) -> None:
    import torch.multiprocessing as mp
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        for name, world, threads in (("1 process x 1 thread", 1, 1), ("1 process x 2 threads", 1, 2),
                                     ("2 ranks x 1 thread (DDP, gloo)", 2, 1)):
            out = str(Path(tmp) / "r.json")
            mp.spawn(_pretrain_worker, args=(world, threads, steps, compile_, 29513 + world, out), nprocs=world,
                     join=True) if world > 1 else _pretrain_worker(0, 1, threads, steps, compile_, 0, out)
            results[name] = json.loads(Path(out).read_text())
    base = results["1 process x 1 thread"]["tokens_per_s"]
    print(f"pretraining step, 8 x 512 tokens, bf16 autocast, compile={compile_}")
    print(f"{'layout':34s} {'tokens/s':>9s} {'step ms':>8s} {'vs 1x1':>7s}")
    for name, r in results.items():
        print(f"{name:34s} {r['tokens_per_s']:9.0f} {1000 * r['step_s']:8.0f} {r['tokens_per_s'] / base:7.2f}")


def bench_train(steps: int, config: str) -> None:
    azr = [str(ROOT / ".venv/bin/azr")] if (ROOT / ".venv/bin/azr").exists() else [sys.executable, "-m", "azrlib.cli"]
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        for name, launcher, threads in (
                ("1 process x 1 thread", azr, 1), ("1 process x 2 threads", azr, 2),
                ("2 ranks x 1 thread (torchrun, gloo)",
                 [sys.executable, "-m", "torch.distributed.run", "--nproc-per-node", "2", "--master-port", "29533",
                  "-m", "azrlib.cli"], 1)):
            run = f"r{len(results)}"
            cmd = launcher + ["train", "--config", config, f"steps={steps}", f"out_dir={tmp}", f"run_name={run}",
                              "validate_every=0", f"checkpoint_every={steps}", f"torch_threads={threads}"]
            env = {**os.environ, "TQDM_DISABLE": "1", "OMP_NUM_THREADS": str(threads)}
            subprocess.run(cmd, cwd=ROOT, env=env, check=True, stdout=subprocess.DEVNULL)
            rows = [json.loads(x) for x in (Path(tmp) / run / "timings.jsonl").read_text().splitlines()]
            results[name] = {"step_s": sum(r["time/step"] for r in rows) / len(rows),
                             "update_s": sum(r.get("time/update", 0.0) for r in rows) / len(rows)}
    base = results["1 process x 1 thread"]["step_s"]
    print(f"`azr train --config {config}`, {steps} steps")
    print(f"{'layout':38s} {'s/step':>7s} {'update s':>9s} {'speed-up':>9s}")
    for name, r in results.items():
        print(f"{name:38s} {r['step_s']:7.1f} {r['update_s']:9.1f} {base / r['step_s']:9.2f}")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("what", choices=["pretrain", "train"])
    ap.add_argument("--steps", type=int, default=None)
    ap.add_argument("--config", default="tiny")
    ap.add_argument("--no-compile", action="store_true")
    args = ap.parse_args()
    if args.what == "pretrain":
        bench_pretrain(args.steps or 20, not args.no_compile)
    else:
        bench_train(args.steps or 3, args.config)
    return 0


if __name__ == "__main__":
    sys.exit(main())
