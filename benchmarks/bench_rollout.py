"""Generated tokens/s of HFSampler vs transformers' `model.generate` (vs VLLMSampler when installed).

    .venv/bin/python benchmarks/bench_rollout.py [--model DIR] [--prompts 64] [--prompt-tokens 200]
        [--max-new-tokens 96] [--threads 1 2] [--dtype float32 bfloat16] [--repeats 3] [--device cpu] [--n 1]
    .venv/bin/python benchmarks/bench_rollout.py --step [--learnability 24] [--threads 1]   (one step's calls)
    add --json-out FILE to append the result's JSON line

Model: `--model DIR`, else `data/tiny_base` when it exists, else a random ~1M-parameter Qwen2 with
a byte-level BPE tokenizer built into a temporary directory (`tests/tiny_model.py`).
All engines get the same prompts (lengths spread over 0.75-1.25 x --prompt-tokens, so batches are
left padded; no shared prefix), the same batch (all prompts at once, --n samples each), the same
max_new_tokens, sampling at temperature 1, top-p 1, no stop strings. HFSampler-prev is the sampler
with its settings before prompt sharing (64-row chunks, `share_prefix=False`: each prompt copied to
its n rows); `model.generate` gets each prompt n times. Tokens/s counts generated tokens (EOS
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


def time_generate(model, tokenizer, prompts, max_new_tokens, seed, n=1):
    prompts = [p for p in prompts for _ in range(n)]  # generate has no prompt sharing: n copies
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


def time_sampler(sampler, prompts, max_new_tokens, seed, n=1):
    start, start_cpu = time.perf_counter(), time.process_time()
    out = sampler.generate(prompts, n=n, temperature=1.0, top_p=1.0, max_new_tokens=max_new_tokens, seed=seed)
    elapsed, cpu = time.perf_counter() - start, time.process_time() - start_cpu
    return sum(len(c.token_ids) for row in out for c in row), elapsed, cpu


def emit(result: dict, path: str | None) -> None:
    """Print the result as one JSON line (and append it to `path`)."""
    import json
    import subprocess

    try:
        result["commit"] = subprocess.run(["git", "-C", str(REPO_ROOT), "rev-parse", "--short", "HEAD"],
                                          capture_output=True, text=True).stdout.strip()
    except OSError:
        pass
    line = json.dumps(result)
    print(line)
    if path:
        with open(path, "a") as f:
            f.write(line + "\n")


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
    parser.add_argument("--n", type=int, default=1, help="samples per prompt (eval and learnability use n > 1)")
    parser.add_argument("--prompt-tokens", type=int, default=200)
    parser.add_argument("--max-new-tokens", type=int, default=96)
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--dtype", nargs="+", default=["float32"], choices=["float32", "bfloat16"])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--device", default="cpu", help="torch device for both engines (e.g. cuda)")
    parser.add_argument("--step", action="store_true", help="one tiny step's sampling calls, today's against "
                        "the previous (see step_table)")
    parser.add_argument("--learnability", type=int, default=24, help="--step: valid proposals (x n=8)")
    parser.add_argument("--json-out", default=None, help="append the result's JSON line to this file")
    parser.add_argument("--engines", action="store_true", help="the rollout-engine table instead: model.generate, "
                        "HFSampler and VLLMSampler on the tiny base and a random ~40M Qwen2 (see engines_table)")
    args = parser.parse_args()
    if args.engines:
        return engines_table(args)
    if args.step:
        return emit(step_table(args), args.json_out)

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
            sampler = HFSampler(model, tokenizer, device=args.device, num_threads=threads)
            # the settings before prompt sharing: 64-row chunks, each prompt copied to its n rows
            previous = HFSampler(model, tokenizer, device=args.device, num_threads=threads, batch_size=64,
                                 share_prefix=False)
            time_sampler(sampler, prompts[:4], 4, args.seed)  # warm-up (allocator, lazy init)
            # Alternate the engines so load from other processes hits both alike; keep the best run.
            hf_runs, old_runs, gen_runs = [], [], []
            for _ in range(args.repeats):
                hf_runs.append(time_sampler(sampler, prompts, args.max_new_tokens, args.seed, args.n))
                old_runs.append(time_sampler(previous, prompts, args.max_new_tokens, args.seed, args.n))
                gen_runs.append(time_generate(model, tokenizer, prompts, args.max_new_tokens, args.seed, args.n))
            rows.append((dtype_name, threads, "HFSampler", *best(hf_runs)))
            rows.append((dtype_name, threads, "HFSampler-prev", *best(old_runs)))
            rows.append((dtype_name, threads, "model.generate", *best(gen_runs)))
        del model

    print(f"model: {model_dir} ({params / 1e6:.2f}M parameters, vocab {len(tokenizer)})")
    print(f"batch: {len(prompts)} prompts x n={args.n}, prompt tokens {min(prompt_lens)}-{max(prompt_lens)} "
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
    summary: list[dict] = []
    for dtype_name in args.dtype:
        for threads in args.threads:
            hf = next(r for r in rows if r[:3] == (dtype_name, threads, "HFSampler"))
            gen = next(r for r in rows if r[:3] == (dtype_name, threads, "model.generate"))
            wall_ratio = (hf[3] / hf[4]) / (gen[3] / gen[4])
            cpu_ratio = (hf[5] / hf[6]) / (gen[5] / gen[6])
            prev = next(r for r in rows if r[:3] == (dtype_name, threads, "HFSampler-prev"))
            prev_wall = (hf[3] / hf[4]) / (prev[3] / prev[4])
            prev_cpu = (hf[5] / hf[6]) / (prev[5] / prev[6])
            print(f"HFSampler / model.generate ({dtype_name}, {threads} thread{'s' if threads > 1 else ''}): "
                  f"{wall_ratio:.2f}x wall, {cpu_ratio:.2f}x cpu (goal >= 2x)")
            print(f"HFSampler / HFSampler-prev ({dtype_name}, {threads} thread{'s' if threads > 1 else ''}): "
                  f"{prev_wall:.2f}x wall, {prev_cpu:.2f}x cpu")
            summary.append({"dtype": dtype_name, "threads": threads, "vs_generate_wall": round(wall_ratio, 3),
                            "vs_generate_cpu": round(cpu_ratio, 3), "vs_previous_wall": round(prev_wall, 3),
                            "vs_previous_cpu": round(prev_cpu, 3),
                            **{f"{e}_tokens_per_cpu_s": round(r[5] / r[6], 1) for e, r in
                               (("hf", hf), ("previous", prev), ("generate", gen))}})

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
    emit({"mode": "sampler", "cpu": _cpu_flags(), "model": str(model_dir), "prompts": len(prompts), "n": args.n,
          "max_new_tokens": args.max_new_tokens, "repeats": args.repeats, "load_before": round(load_before, 2),
          "rows": summary}, args.json_out)



# ---------------------------------------------------------------------------------------------
# One training step's sampling (--step): today's calls and engine settings against the previous ones

TYPES = ("deduction", "abduction", "induction")


def step_prompts(tokenizer, per_type: int, learnability: int, seed: int) -> dict[str, list[str]]:
    """Real prompts of one tiny-preset step from the held-out tiny-world tasks (compact style):
    `per_type` proposer prompts per type (two references each; induction shows a program),
    `per_type` solver prompts per type, and `learnability` solver prompts (valid proposals)."""
    from azrlib.tasks.templates import propose_prompt, solve_prompt
    from azrlib.trainer.loop import load_tasks_jsonl

    rng = random.Random(seed)
    tasks = load_tasks_jsonl(REPO_ROOT / "data" / "tinyworld" / "benchmark.jsonl")
    by_type = {t: [x for x in tasks if x.task_type == t] for t in TYPES}
    programs = by_type["deduction"] + by_type["abduction"]
    out = {"propose": [], **{f"solve/{t}": [] for t in TYPES}}
    for t in TYPES:
        for _ in range(per_type):
            out["propose"].append(propose_prompt(t, rng.sample(by_type[t], 2), style="compact",
                                                 program_for_induction=rng.choice(programs) if t == "induction" else None))
            out[f"solve/{t}"].append(solve_prompt(rng.choice(by_type[t]), style="compact"))
    out["learnability"] = [solve_prompt(rng.choice(by_type[rng.choice(TYPES)]), style="compact")
                           for _ in range(learnability)]
    return out


def step_calls(prompts: dict[str, list[str]], one_solve_call: bool, n: int, propose_tokens: int,
               solve_tokens: int) -> list[tuple[str, list[str], int, int, int]]:
    """(phase, prompts, n, max_new_tokens, seed) of each sampler call of a step, in the trainer's order."""
    calls = [("propose", prompts["propose"], 1, propose_tokens, 0)]
    if one_solve_call:
        calls.append(("solve", [p for t in TYPES for p in prompts[f"solve/{t}"]], 1, solve_tokens, 10))
    else:
        calls += [("solve", prompts[f"solve/{t}"], 1, solve_tokens, 10 + k) for k, t in enumerate(TYPES)]
    calls.append(("learnability", prompts["learnability"], n, solve_tokens, 1))
    return calls


def run_step_calls(sampler, calls) -> dict[str, list[float]]:
    """phase -> [tokens, wall s, cpu s], summed over the phase's calls."""
    out: dict[str, list[float]] = {}
    for phase, prompts, n, max_new, seed in calls:
        start, start_cpu = time.perf_counter(), time.process_time()
        rows = sampler.generate(prompts, n=n, temperature=1.0, top_p=1.0, max_new_tokens=max_new,
                                stop=["</answer>"], seed=seed)
        got = [sum(len(c.token_ids) for row in rows for c in row), time.perf_counter() - start,
               time.process_time() - start_cpu]
        out[phase] = [a + b for a, b in zip(out.get(phase, [0, 0, 0]), got)]
    return out


def step_table(args) -> dict:
    """`--step`: the sampling of one tiny-preset step (16 prompts per type, max_new_tokens 320/256,
    --learnability proposals x n=8), through today's HFSampler (one solve call, default chunking,
    shared prompt KV) and through the previous settings (a solve call per type, chunks of 64 rows,
    the prompt copied to its n rows: `share_prefix=False`, the code path main had), alternating
    over --repeats rounds on the same prompts; best round of each by CPU time and by wall time."""
    from transformers import AutoModelForCausalLM

    from azrlib.models import load_tokenizer

    model_dir = args.model or REPO_ROOT / "data" / "tiny_base"
    tokenizer = load_tokenizer(model_dir)
    torch.set_num_threads(args.threads[0])
    model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32, attn_implementation="sdpa").eval()
    prompts = step_prompts(tokenizer, 16, args.learnability, args.seed)
    engines = {
        "previous": (HFSampler(model, tokenizer, batch_size=64, share_prefix=False, num_threads=args.threads[0]),
                     step_calls(prompts, False, 8, 320, 256)),
        "today": (HFSampler(model, tokenizer, num_threads=args.threads[0]), step_calls(prompts, True, 8, 320, 256)),
    }
    for sampler, _ in engines.values():
        sampler.generate(prompts["propose"][:2], n=2, max_new_tokens=4, seed=0)  # warm-up
    runs: dict[str, list[dict]] = {name: [] for name in engines}
    load_before = os.getloadavg()[0]
    for _ in range(args.repeats):
        for name, (sampler, calls) in engines.items():
            runs[name].append(run_step_calls(sampler, calls))
    result: dict = {"mode": "step", "cpu": _cpu_flags(), "threads": args.threads[0], "model": str(model_dir),
                    "learnability_prompts": args.learnability, "repeats": args.repeats,
                    "load_before": round(load_before, 2), "load_after": round(os.getloadavg()[0], 2)}
    print(f"CPU: {_cpu_flags()}; torch {torch.__version__}, {args.threads[0]} thread(s); load average before "
          f"{load_before:.2f}, after {os.getloadavg()[0]:.2f}; best of {args.repeats} alternating rounds")
    print(f"model {model_dir}; one tiny step: 48 proposer prompts (320 tokens), 48 solver prompts (256), "
          f"{args.learnability} learnability prompts x 8 (256); T=1, stop </answer>")
    print(f"{'engine':<9} {'phase':<13} {'tokens':>7} {'cpu s':>7} {'tok/cpu-s':>9} {'wall s':>7} {'tok/s':>7}")
    for name, name_runs in runs.items():
        by_cpu = min(name_runs, key=lambda r: sum(v[2] for v in r.values()))
        by_wall = min(name_runs, key=lambda r: sum(v[1] for v in r.values()))
        for phase in ("propose", "solve", "learnability"):
            tok, _, cpu = by_cpu[phase]
            wall = by_wall[phase][1]
            print(f"{name:<9} {phase:<13} {tok:>7.0f} {cpu:>7.2f} {tok / cpu:>9.0f} {wall:>7.2f} {by_wall[phase][0] / wall:>7.0f}")
        tok, cpu = sum(v[0] for v in by_cpu.values()), sum(v[2] for v in by_cpu.values())
        wtok, wall = sum(v[0] for v in by_wall.values()), sum(v[1] for v in by_wall.values())
        print(f"{name:<9} {'step':<13} {tok:>7.0f} {cpu:>7.2f} {tok / cpu:>9.0f} {wall:>7.2f} {wtok / wall:>7.0f}")
        result[name] = {"phases": {p: {"tokens": v[0], "cpu_s": round(v[2], 3), "wall_s": round(by_wall[p][1], 3)}
                                   for p, v in by_cpu.items()},
                        "tokens_per_cpu_s": round(tok / cpu, 1), "tokens_per_s": round(wtok / wall, 1)}
    ratio_cpu = result["today"]["tokens_per_cpu_s"] / result["previous"]["tokens_per_cpu_s"]
    ratio_wall = result["today"]["tokens_per_s"] / result["previous"]["tokens_per_s"]
    print(f"today / previous, tokens per step-second: {ratio_cpu:.2f}x by CPU time, {ratio_wall:.2f}x by wall time "
          f"(goal >= 2x)")
    result.update(ratio_cpu=round(ratio_cpu, 3), ratio_wall=round(ratio_wall, 3))
    return result


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
