"""Generated tokens/s of HFSampler vs transformers' `model.generate` (vs VLLMSampler when installed).

    .venv/bin/python benchmarks/bench_rollout.py [--model DIR] [--prompts 64] [--prompt-tokens 200]
        [--max-new-tokens 96] [--threads 1 2] [--dtype float32 bfloat16] [--repeats 3] [--device cpu]

Model: `--model DIR`, else `data/tiny_base` when it exists, else a random ~1M-parameter Qwen2 with
a byte-level BPE tokenizer built into a temporary directory (`tests/tiny_model.py`).
All engines get the same prompts (lengths spread over 0.75-1.25 x --prompt-tokens, so batches are
left padded; no shared prefix), the same batch (all prompts at once, n=1), the same max_new_tokens,
sampling at temperature 1, top-p 1, no stop strings. Tokens/s counts generated tokens (EOS
included), tokenisation and detokenisation included for HFSampler; `model.generate` gets
pre-tokenised tensors. Engines alternate over --repeats rounds so load from other processes hits
both alike; the best run of each is reported, by wall time and by this process's CPU time (on a
shared machine the 1-thread CPU time is the steadier figure). Goal (issue): HFSampler >= 2x
`model.generate` on CPU.
"""

from __future__ import annotations

import argparse
import os
import random
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests"))  # tiny_model

import torch  # noqa: E402

from azrlib.rollout.hf import HFSampler  # noqa: E402
from tiny_model import build_tiny_checkpoint, synthetic_corpus  # noqa: E402

REPO_ROOT = Path(__file__).resolve().parent.parent


def make_prompts(tokenizer, count: int, mean_tokens: int, seed: int = 0) -> list[str]:
    rng = random.Random(seed)
    lines = synthetic_corpus(4000, seed=seed + 1)
    prompts = []
    for _ in range(count):
        target = rng.randint(int(0.75 * mean_tokens), int(1.25 * mean_tokens))
        text = ""
        while len(tokenizer(text)["input_ids"]) < target:
            text += rng.choice(lines) + "\n"
        prompts.append(text)
    return prompts


def time_generate(model, tokenizer, prompts, max_new_tokens, seed):
    encoded = tokenizer(prompts, return_tensors="pt", padding=True, padding_side="left").to(model.device)
    torch.manual_seed(seed)
    start, start_cpu = time.perf_counter(), time.process_time()
    with torch.inference_mode():
        output = model.generate(**encoded, do_sample=True, temperature=1.0, top_p=1.0, top_k=0,
                                max_new_tokens=max_new_tokens, pad_token_id=tokenizer.pad_token_id)
    if output.is_cuda:
        torch.cuda.synchronize()
    elapsed, cpu = time.perf_counter() - start, time.process_time() - start_cpu
    new = output[:, encoded["input_ids"].shape[1]:]
    # Finished rows are padded with pad_token_id after their EOS; count up to and including EOS.
    eos = set(model.generation_config.eos_token_id if isinstance(model.generation_config.eos_token_id, list)
              else [model.generation_config.eos_token_id])
    tokens = 0
    for row in new.tolist():
        for t in row:
            tokens += 1
            if t in eos:
                break
    return tokens, elapsed, cpu


def time_sampler(sampler, prompts, max_new_tokens, seed):
    start, start_cpu = time.perf_counter(), time.process_time()
    out = sampler.generate(prompts, n=1, temperature=1.0, top_p=1.0, max_new_tokens=max_new_tokens, seed=seed)
    elapsed, cpu = time.perf_counter() - start, time.process_time() - start_cpu
    return sum(len(c.token_ids) for row in out for c in row), elapsed, cpu


def best(runs):
    """(tokens, best wall seconds, best CPU seconds) per token count: the fastest run by each clock."""
    wall = max(runs, key=lambda r: r[0] / r[1])
    cpu = max(runs, key=lambda r: r[0] / r[2])
    return wall[0], wall[1], cpu[0], cpu[2]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", type=Path, default=None, help="checkpoint directory (default: data/tiny_base "
                        "if present, else a random ~1M-parameter Qwen2)")
    parser.add_argument("--prompts", type=int, default=64)
    parser.add_argument("--prompt-tokens", type=int, default=200)
    parser.add_argument("--max-new-tokens", type=int, default=96)
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--dtype", nargs="+", default=["float32"], choices=["float32", "bfloat16"])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--device", default="cpu", help="torch device for both engines (e.g. cuda)")
    parser.add_argument("--engines", action="store_true", help="the rollout-engine table instead: model.generate, "
                        "HFSampler and VLLMSampler on the tiny base and a random ~40M Qwen2 (see engines_table)")
    args = parser.parse_args()
    if args.engines:
        return engines_table(args)

    from transformers import AutoModelForCausalLM

    from azrlib.models import load_tokenizer

    tmp = None
    if args.model is not None:
        model_dir = args.model
        if not model_dir.is_dir():
            sys.exit(f"model directory {str(model_dir)!r} does not exist")
    elif (REPO_ROOT / "data" / "tiny_base" / "config.json").is_file():
        model_dir = REPO_ROOT / "data" / "tiny_base"
    else:
        tmp = tempfile.TemporaryDirectory(prefix="bench_rollout_")
        model_dir = build_tiny_checkpoint(tmp.name, vocab_size=2048, hidden_size=128, num_layers=4,
                                          num_heads=4, num_kv_heads=2)
    tokenizer = load_tokenizer(model_dir)
    prompts = make_prompts(tokenizer, args.prompts, args.prompt_tokens, seed=args.seed)
    prompt_lens = [len(tokenizer(p)["input_ids"]) for p in prompts]

    load_before = os.getloadavg()[0]
    rows = []
    for dtype_name in args.dtype:
        dtype = getattr(torch, dtype_name)
        model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=dtype, attn_implementation="sdpa")
        model = model.to(args.device).eval()
        params = sum(p.numel() for p in model.parameters())
        for threads in args.threads:
            torch.set_num_threads(threads)
            sampler = HFSampler(model, tokenizer, device=args.device, batch_size=args.prompts, num_threads=threads)
            time_sampler(sampler, prompts[:4], 4, args.seed)  # warm-up (allocator, lazy init)
            # Alternate the engines so load from other processes hits both alike; keep the best run.
            hf_runs, gen_runs = [], []
            for _ in range(args.repeats):
                hf_runs.append(time_sampler(sampler, prompts, args.max_new_tokens, args.seed))
                gen_runs.append(time_generate(model, tokenizer, prompts, args.max_new_tokens, args.seed))
            rows.append((dtype_name, threads, "HFSampler", *best(hf_runs)))
            rows.append((dtype_name, threads, "model.generate", *best(gen_runs)))
        del model

    print(f"model: {model_dir} ({params / 1e6:.2f}M parameters, vocab {len(tokenizer)})")
    print(f"batch: {len(prompts)} prompts x n=1, prompt tokens {min(prompt_lens)}-{max(prompt_lens)} "
          f"(mean {sum(prompt_lens) / len(prompt_lens):.0f}), max_new_tokens {args.max_new_tokens}, T=1, top_p=1")
    print(f"device {args.device}, torch {torch.__version__}, {os.cpu_count()} CPUs visible, "
          f"load average before the runs {load_before:.2f}, after {os.getloadavg()[0]:.2f}; best of {args.repeats}")
    print("wall = elapsed time; cpu = this process's CPU time (summed over its threads): on a shared machine")
    print("the 1-thread cpu figures show the speed the engine would have on an idle core")
    print()
    print(f"{'dtype':<9} {'threads':>7}  {'engine':<15} {'tokens':>7} {'wall s':>7} {'tokens/s':>9} "
          f"{'cpu s':>7} {'tokens/cpu-s':>12}")
    for dtype_name, threads, engine, tokens, wall, cpu_tokens, cpu in rows:
        print(f"{dtype_name:<9} {threads:>7}  {engine:<15} {tokens:>7} {wall:>7.2f} {tokens / wall:>9.0f} "
              f"{cpu:>7.2f} {cpu_tokens / cpu:>12.0f}")
    print()
    for dtype_name in args.dtype:
        for threads in args.threads:
            hf = next(r for r in rows if r[:3] == (dtype_name, threads, "HFSampler"))
            gen = next(r for r in rows if r[:3] == (dtype_name, threads, "model.generate"))
            wall_ratio = (hf[3] / hf[4]) / (gen[3] / gen[4])
            cpu_ratio = (hf[5] / hf[6]) / (gen[5] / gen[6])
            print(f"HFSampler / model.generate ({dtype_name}, {threads} thread{'s' if threads > 1 else ''}): "
                  f"{wall_ratio:.2f}x wall, {cpu_ratio:.2f}x cpu (goal >= 2x)")

    try:
        import vllm  # noqa: F401
    except ImportError:
        print("VLLMSampler: vllm not installed")
    else:
        from azrlib.rollout.vllm_sampler import VLLMSampler

        sampler = VLLMSampler(model_dir, dtype="float32")
        time_sampler(sampler, prompts[:4], 4, args.seed)
        tokens, seconds, _, _ = best([time_sampler(sampler, prompts, args.max_new_tokens, args.seed)
                                      for _ in range(args.repeats)])
        print(f"VLLMSampler (float32, vLLM's own threads and engine process): {tokens} tokens in {seconds:.2f} s "
              f"wall = {tokens / seconds:.0f} tokens/s")
    if tmp is not None:
        tmp.cleanup()



# ---------------------------------------------------------------------------------------------
# Rollout engines: model.generate vs HFSampler vs VLLMSampler, two model sizes (--engines)

MID_QWEN2 = dict(vocab_size=8192, hidden_size=512, num_layers=10, num_heads=8, num_kv_heads=2)  # ~40M


def _cpu_flags() -> str:
    try:
        info = Path("/proc/cpuinfo").read_text()
    except OSError:
        return "unknown CPU"
    name = next((l.split(":", 1)[1].strip() for l in info.splitlines() if l.startswith("model name")), "?")
    flags = set(next((l.split(":", 1)[1].split() for l in info.splitlines() if l.startswith("flags")), []))
    wanted = [f for f in ("avx2", "avx512f", "avx512_bf16", "amx_bf16") if f in flags]
    return f"{name} ({', '.join(wanted) or 'no avx2'})"


def _engine_rows(model_dir: Path, args, threads: int) -> tuple[dict, list[tuple]]:
    """Start each engine (timed), then alternate them over --repeats rounds on the same prompts;
    returns (model facts, [(engine, start s, tokens, best wall s)])."""
    from transformers import AutoModelForCausalLM

    from azrlib.models import load_tokenizer
    from azrlib.rollout.vllm_sampler import VLLMSampler

    tokenizer = load_tokenizer(model_dir)
    prompts = make_prompts(tokenizer, args.prompts, args.prompt_tokens, seed=args.seed)
    torch.set_num_threads(threads)
    t0 = time.perf_counter()
    model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32, attn_implementation="sdpa").eval()
    hf = HFSampler(model, tokenizer, batch_size=args.prompts, num_threads=threads)
    hf_start = time.perf_counter() - t0
    t0 = time.perf_counter()
    vllm = VLLMSampler(model_dir, dtype="float32", max_model_len=args.prompt_tokens * 2 + args.max_new_tokens)
    vllm_start = time.perf_counter() - t0
    for sampler in (hf, vllm):  # warm-up
        time_sampler(sampler, prompts[:4], 4, args.seed)
    runs: dict[str, list] = {"model.generate": [], "HFSampler": [], "VLLMSampler": []}
    for _ in range(args.repeats):
        runs["model.generate"].append(time_generate(model, tokenizer, prompts, args.max_new_tokens, args.seed))
        runs["HFSampler"].append(time_sampler(hf, prompts, args.max_new_tokens, args.seed))
        runs["VLLMSampler"].append(time_sampler(vllm, prompts, args.max_new_tokens, args.seed))
    facts = dict(params=sum(p.numel() for p in model.parameters()), vocab=len(tokenizer),
                 prompt_tokens=[len(tokenizer(p)["input_ids"]) for p in prompts])
    starts = {"model.generate": hf_start, "HFSampler": hf_start, "VLLMSampler": vllm_start}
    rows = []
    for engine, engine_runs in runs.items():
        tokens, wall = max(((r[0], r[1]) for r in engine_runs), key=lambda r: r[0] / r[1])
        rows.append((engine, starts[engine], tokens, wall))
    del vllm  # the engine core process goes with it
    return facts, rows


def engines_table(args) -> None:
    """The three rollout engines on the tiny base and a random ~40M-parameter Qwen2 (built here from
    a config, no hub), at the same thread count: `--threads` (first value) for torch in this process
    and for vLLM's CPU worker (VLLM_CPU_OMP_THREADS_BIND; its engine core is a separate process, so
    only wall time is comparable). Start time: loading the checkpoint and building the sampler
    (HF; model.generate shares it) or starting the vLLM engine (enforce_eager, fp32)."""
    try:
        import vllm  # noqa: F401
    except ImportError:
        sys.exit("--engines needs vllm: run it with .venv-vllm/bin/python (make venv-vllm)")
    threads = args.threads[0]
    os.environ.setdefault("VLLM_CPU_KVCACHE_SPACE", "1")
    os.environ.setdefault("VLLM_CPU_OMP_THREADS_BIND", "0" if threads == 1 else f"0-{threads - 1}")
    models = []
    if (REPO_ROOT / "data" / "tiny_base" / "config.json").is_file():
        models.append(("tiny base", REPO_ROOT / "data" / "tiny_base"))
    tmp = tempfile.TemporaryDirectory(prefix="bench_engines_")
    models.append(("random Qwen2", build_tiny_checkpoint(Path(tmp.name) / "mid", **MID_QWEN2)))
    load_before = os.getloadavg()[0]
    results = [(label, *_engine_rows(path, args, threads)) for label, path in models]
    import vllm

    print(f"CPU: {_cpu_flags()}; {os.cpu_count()} CPUs visible; torch {torch.__version__}, vllm {vllm.__version__}")
    print(f"load average before {load_before:.2f}, after {os.getloadavg()[0]:.2f} (other processes share the cores)")
    print(f"{threads} thread(s) per engine; {args.prompts} prompts x n=1, max_new_tokens {args.max_new_tokens}, T=1, "
          f"top_p=1, fp32; best of {args.repeats} alternating rounds")
    print()
    print(f"| model | params | engine | start s | tokens | wall s | tokens/s | vs generate |")
    print(f"|---|---:|---|---:|---:|---:|---:|---:|")
    for label, facts, rows in results:
        base = next(r for r in rows if r[0] == "model.generate")
        for engine, start, tokens, wall in rows:
            print(f"| {label} | {facts['params'] / 1e6:.1f}M | {engine} | {start:.1f} | {tokens} | {wall:.2f} | "
                  f"{tokens / wall:.0f} | {(tokens / wall) / (base[2] / base[3]):.2f}x |")
    tmp.cleanup()


if __name__ == "__main__":
    main()
