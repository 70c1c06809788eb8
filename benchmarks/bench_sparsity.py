"""Benchmark `azrlib.metrics.sparsity` against the raw read speed of the same files.

    .venv/bin/python benchmarks/bench_sparsity.py [--gb 2] [--changed 0.3] [--repeat 3]

What it does:

1. Writes a synthetic pair of sharded bf16 checkpoints (Qwen2-like tensor names; `--gb` is the
   size of the pair together) into a temporary directory. The tuned copy flips the lowest mantissa
   bit of a random subset of entries (about `--changed` of them), which always changes the value,
   so the exact number of unchanged entries is known from the masks.
2. Measures raw read speed of the same files, twice, in a subprocess each:
   * `plain read`: read() every file front to back into one reused 16 MB buffer. No decoding, no
     compute: the kernel's copy out of the page cache, single-threaded.
   * `safe_open + checksum`: every tensor through safetensors.safe_open, sliced in row chunks like
     the sparsity pass does, and summed as 8-byte words (a wrapping checksum): about the least work
     that touches every byte of every tensor through the same API, with torch's threads.
   The plain read is run before and after the sparsity pass. Nothing is evicted from the page
   cache (that needs root and affects everyone on the machine), and the files were just written,
   so every read here is a memory-speed read: the hardest baseline. On a cold disk the raw read is
   slower and the ratio better.
3. Runs the sparsity pass (dtype bf16, Mukherjee et al.'s convention; with bf16 storage the three
   comparison dtypes coincide and are computed once) in its own subprocess, so its peak RSS
   (VmHWM) is its own, and checks the count against the known answer.
   It uses torch.get_num_threads() worker threads (set with `--threads`); with more than one it
   is also run with a single worker, to show the scaling.
4. Prints a table: seconds, GB/s (bytes of both checkpoints / seconds; best of `--repeat` runs,
   because the machine may be shared), ratio to the plain read, GB per CPU-second (robust to other
   load on the machine), and peak RSS.

The temporary files are removed at the end unless `--keep` is given.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch

HIDDEN, FFN, VOCAB = 2048, 5632, 32000
SHARD_BYTES = 256 << 20


def cpu_seconds() -> float:
    """User + system CPU time of this process, all threads."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def vm_kib(field: str) -> int:
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    return -1


def layer_shapes(i: int) -> dict[str, tuple[int, ...]]:
    p = f"model.layers.{i}"
    shapes = {}
    for proj in ("q_proj", "k_proj", "v_proj", "o_proj"):
        shapes[f"{p}.self_attn.{proj}.weight"] = (HIDDEN, HIDDEN)
    for proj in ("q_proj", "k_proj", "v_proj"):
        shapes[f"{p}.self_attn.{proj}.bias"] = (HIDDEN,)
    shapes[f"{p}.mlp.gate_proj.weight"] = (FFN, HIDDEN)
    shapes[f"{p}.mlp.up_proj.weight"] = (FFN, HIDDEN)
    shapes[f"{p}.mlp.down_proj.weight"] = (HIDDEN, FFN)
    shapes[f"{p}.input_layernorm.weight"] = (HIDDEN,)
    shapes[f"{p}.post_attention_layernorm.weight"] = (HIDDEN,)
    return shapes


def architecture(pair_bytes: int) -> dict[str, tuple[int, ...]]:
    """Embedding, lm_head, final norm and as many layers as fit in half of pair_bytes (bf16)."""
    ends = {"model.embed_tokens.weight": (VOCAB, HIDDEN), "model.norm.weight": (HIDDEN,), "lm_head.weight": (VOCAB, HIDDEN)}
    fixed = sum(_numel(s) for s in ends.values()) * 2
    per_layer = sum(_numel(s) for s in layer_shapes(0).values()) * 2
    n_layers = max(1, round((pair_bytes / 2 - fixed) / per_layer))
    shapes = {"model.embed_tokens.weight": ends["model.embed_tokens.weight"]}
    for i in range(n_layers):
        shapes.update(layer_shapes(i))
    shapes["model.norm.weight"] = ends["model.norm.weight"]
    shapes["lm_head.weight"] = ends["lm_head.weight"]
    return shapes


def _numel(shape: tuple[int, ...]) -> int:
    n = 1
    for s in shape:
        n *= s
    return n


def build_pair(root: Path, pair_bytes: int, changed: float, seed: int) -> tuple[Path, Path, int, int]:
    """Write base/ and tuned/ as sharded bf16 checkpoints; return their paths, n_params, n_unchanged."""
    from safetensors.torch import save_file

    gen = torch.Generator().manual_seed(seed)
    shapes = architecture(pair_bytes)
    base_dir, tuned_dir = root / "base", root / "tuned"
    base_dir.mkdir()
    tuned_dir.mkdir()
    threshold = int(round(changed * 256))
    shards: list[list[str]] = [[]]
    size = 0
    for name, shape in shapes.items():
        nbytes = _numel(shape) * 2
        if shards[-1] and size + nbytes > SHARD_BYTES:
            shards.append([])
            size = 0
        shards[-1].append(name)
        size += nbytes
    weight_map: dict[str, str] = {}
    n_params = n_unchanged = 0
    for index, names in enumerate(shards):
        file_name = f"model-{index + 1:05d}-of-{len(shards):05d}.safetensors"
        base_part, tuned_part = {}, {}
        for name in names:
            w = torch.empty(shapes[name], dtype=torch.bfloat16).normal_(0.0, 0.02, generator=gen)
            flip = torch.empty(shapes[name], dtype=torch.uint8).random_(0, 256, generator=gen) < threshold
            # Flipping the lowest mantissa bit always changes a finite value and keeps it finite.
            tuned = (w.view(torch.int16) ^ flip.to(torch.int16)).view(torch.bfloat16)
            base_part[name], tuned_part[name] = w, tuned
            n_params += w.numel()
            n_unchanged += w.numel() - int(flip.sum())
            weight_map[name] = file_name
        save_file(base_part, str(base_dir / file_name))
        save_file(tuned_part, str(tuned_dir / file_name))
        del base_part, tuned_part
    index_json = json.dumps({"metadata": {"total_size": n_params * 2}, "weight_map": weight_map})
    for d in (base_dir, tuned_dir):
        (d / "model.safetensors.index.json").write_text(index_json)
        (d / "config.json").write_text(json.dumps({"tie_word_embeddings": False}))
    return base_dir, tuned_dir, n_params, n_unchanged


def data_files(*dirs: Path) -> list[Path]:
    return [f for d in dirs for f in sorted(d.glob("*.safetensors"))]


# ----------------------------------------------------------------------------- child modes


def child_plain_read(dirs: list[Path], repeat: int) -> dict:
    buffer = bytearray(16 << 20)
    view = memoryview(buffer)
    times, cpu, total = [], [], 0
    for _ in range(repeat):
        start, start_cpu = time.perf_counter(), cpu_seconds()
        total = 0
        for path in data_files(*dirs):
            with open(path, "rb", buffering=0) as fh:
                while True:
                    n = fh.readinto(view)
                    if not n:
                        break
                    total += n
        times.append(time.perf_counter() - start)
        cpu.append(cpu_seconds() - start_cpu)
    return {"times": times, "cpu": cpu, "bytes": total}


def child_checksum_read(dirs: list[Path], repeat: int) -> dict:
    from safetensors import safe_open

    times, cpu, checksum = [], [], 0
    read_elements = 1 << 24  # the sparsity pass's default slice size
    for _ in range(repeat):
        start, start_cpu = time.perf_counter(), cpu_seconds()
        checksum = 0
        for path in data_files(*dirs):
            with safe_open(str(path), framework="pt") as handle:
                for name in handle.offset_keys():
                    view = handle.get_slice(name)
                    shape = view.get_shape()
                    row = _numel(shape[1:]) if len(shape) > 1 else 1
                    step = max(1, read_elements // row)
                    for s in range(0, shape[0], step):
                        raw = view[s : s + step].reshape(-1).view(torch.uint8)
                        # Sum 8-byte words (wrapping is fine for a checksum); uint8 -> int64 sums are slow.
                        words = raw.view(torch.int64) if raw.numel() % 8 == 0 else raw.to(torch.int64)
                        checksum += int(words.sum())
        times.append(time.perf_counter() - start)
        cpu.append(cpu_seconds() - start_cpu)
    total = sum(p.stat().st_size for p in data_files(*dirs))
    return {"times": times, "cpu": cpu, "bytes": total, "checksum": checksum}


def child_sparsity(dirs: list[Path], repeat: int) -> dict:
    from azrlib.metrics.sparsity import update_sparsity

    rss_before = vm_kib("VmRSS")
    times, cpu, result = [], [], None
    for _ in range(repeat):
        start, start_cpu = time.perf_counter(), cpu_seconds()
        result = update_sparsity(dirs[0], dirs[1], dtype="bf16")
        times.append(time.perf_counter() - start)
        cpu.append(cpu_seconds() - start_cpu)
    total = sum(p.stat().st_size for p in data_files(*dirs))
    return {
        "times": times,
        "cpu": cpu,
        "bytes": total,
        "rss_before_kib": rss_before,
        "n_params": result.n_params,
        "n_unchanged": result.n_unchanged,
        "n_unchanged_atol": result.n_unchanged_atol,
    }


def run_child(mode: str, dirs: list[Path], repeat: int, threads: int | None) -> dict:
    cmd = [sys.executable, __file__, "--_child", mode, "--repeat", str(repeat), *map(str, dirs)]
    if threads:
        cmd += ["--threads", str(threads)]
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise RuntimeError(f"{mode} child failed:\n{proc.stderr}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--gb", type=float, default=2.0, help="size of the checkpoint pair together, in GB (default 2)")
    parser.add_argument("--changed", type=float, default=0.3, help="fraction of entries changed in the tuned copy (default 0.3)")
    parser.add_argument("--repeat", type=int, default=3, help="timed runs per measurement; the table shows the best (default 3)")
    parser.add_argument("--threads", type=int, default=None, help="torch threads, hence sparsity workers, in the children (default: torch's)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--dir", default=None, help="where to create the temporary directory (default: system temp)")
    parser.add_argument("--keep", action="store_true", help="keep the generated checkpoints")
    parser.add_argument("--_child", default=None, help=argparse.SUPPRESS)
    parser.add_argument("paths", nargs="*", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)

    if args._child:
        if args.threads:
            torch.set_num_threads(args.threads)
        dirs = [Path(p) for p in args.paths]
        child = {"plain": child_plain_read, "checksum": child_checksum_read, "sparsity": child_sparsity}[args._child]
        out = child(dirs, args.repeat)
        out["peak_rss_kib"] = vm_kib("VmHWM")
        print(json.dumps(out))
        return 0

    if not 0.0 < args.changed < 1.0:
        parser.error("--changed must be between 0 and 1")
    root = Path(tempfile.mkdtemp(prefix="azr-bench-sparsity-", dir=args.dir))
    try:
        t0 = time.perf_counter()
        base, tuned, n_params, n_unchanged = build_pair(root, int(args.gb * 1e9), args.changed, args.seed)
        files = data_files(base, tuned)
        total_bytes = sum(p.stat().st_size for p in files)
        largest = max(_numel(s) for s in architecture(int(args.gb * 1e9)).values()) * 2
        print(f"wrote {len(files)} shards, {total_bytes / 1e9:.2f} GB in {time.perf_counter() - t0:.1f} s under {root}")
        print(f"{n_params:,} parameters per checkpoint, {n_params - n_unchanged:,} changed "
              f"({1 - n_unchanged / n_params:.4%}); largest tensor {largest / 2**20:.0f} MiB (bf16); "
              f"sparsity workers {args.threads or torch.get_num_threads()}; {os.cpu_count()} CPUs")

        dirs = [base, tuned]
        rows = [
            ("plain read (before)", run_child("plain", dirs, args.repeat, None)),
            ("safe_open + checksum", run_child("checksum", dirs, args.repeat, args.threads)),
            ("sparsity (bf16)", run_child("sparsity", dirs, args.repeat, args.threads)),
        ]
        if (args.threads or torch.get_num_threads()) > 1:
            # The pass uses torch.get_num_threads() worker threads; one worker shows the scaling.
            rows.append(("sparsity, 1 worker", run_child("sparsity", dirs, args.repeat, 1)))
        rows.append(("plain read (after)", run_child("plain", dirs, args.repeat, None)))
        sparsity = rows[2][1]
        ok = all(r["n_unchanged"] == n_unchanged and r["n_params"] == n_params for name, r in rows if name.startswith("sparsity"))
        plain_best = max(total_bytes / min(r["times"]) for name, r in rows if name.startswith("plain"))

        print()
        print(f"{'measurement':<22} {'best s':>8} {'median s':>9} {'GB/s':>7} {'vs plain read':>14} {'GB/CPU-s':>9} {'peak RSS MiB':>13}")
        for name, r in rows:
            best, median = min(r["times"]), statistics.median(r["times"])
            speed = r["bytes"] / best / 1e9
            per_cpu = r["bytes"] / max(min(r["cpu"]), 1e-9) / 1e9
            print(f"{name:<22} {best:>8.2f} {median:>9.2f} {speed:>7.2f} {speed * 1e9 / plain_best:>13.0%} "
                  f"{per_cpu:>9.2f} {r['peak_rss_kib'] / 1024:>13.0f}")
        print()
        print(f"sparsity: {sparsity['n_unchanged']:,} / {sparsity['n_params']:,} unchanged = "
              f"{sparsity['n_unchanged'] / sparsity['n_params']:.6f}; expected {n_unchanged / n_params:.6f} -> "
              f"{'OK (exact match)' if ok else 'MISMATCH'}")
        print(f"sparsity child RSS after imports {sparsity['rss_before_kib'] / 1024:.0f} MiB, peak "
              f"{sparsity['peak_rss_kib'] / 1024:.0f} MiB (+{(sparsity['peak_rss_kib'] - sparsity['rss_before_kib']) / 1024:.0f} MiB "
              f"for a {total_bytes / 2**30:.2f} GiB pair whose largest tensor pair is {2 * largest / 2**20:.0f} MiB)")
        print("'vs plain read' divides by the faster of the two plain reads; all reads come from the page cache.")
        print("GB/CPU-s: bytes per second of CPU time (all threads; least over the runs), which other processes")
        print(f"on the machine disturb far less than wall time. Load average now: {os.getloadavg()[0]:.2f}.")
        return 0 if ok else 1
    finally:
        if args.keep:
            print(f"kept {root}")
        else:
            shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
