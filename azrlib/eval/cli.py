"""`azr eval`: sample a model on a benchmark and write one JSONL row per sample (for `azr passk`).

    azr eval MODEL_DIR --benchmark cruxeval-o --n 64 --temperature 0.6 --top-p 0.95 \\
        --max-new-tokens 512 --prompt-style azr --out results.jsonl [--limit N] [--data PATH] \\
        [--engine hf|vllm] [--seed 0] [--batch-size 16]

Problems are processed in batches of `--batch-size` prompts: each batch is sampled (n samples per
prompt), its answers extracted and checked in the sandbox (one batch of sandbox work), and its rows
appended to `--out` before the next batch starts. Re-running the same command resumes: problems
whose n samples are all in the file are skipped, a trailing partial line is dropped, and no row is
written twice (see `azrlib.eval.results`).

Defaults follow the pass@k convention of Yue et al. (T=0.6, top-p 0.95); AZR's own headline numbers
are greedy (`--temperature 0 --n 1`). Seeds: batch b starting at problem index i samples with seed
`seed * 1_000_003 + i`, so a run is reproducible, but a resumed run's batches start elsewhere and so
draw other (equally distributed) samples than an uninterrupted run would.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any, Sequence

from azrlib.eval.benchmarks import BENCHMARKS, DATA_ENV, DataUnavailable, Problem, canonical_name, load_benchmark
from azrlib.eval.checkers import (
    DEFAULT_HUMANEVAL_TIMEOUT_S,
    DEFAULT_MIN_TIMEOUT_S,
    DEFAULT_TIMEOUT_FACTOR,
    CheckerSuite,
    make_executor,
)
from azrlib.eval.prompts import PROMPT_STYLES, build_prompt, extract, stop_strings
from azrlib.eval.results import ResultsFile, ResumeMismatch
from azrlib.models import resolve_model_or_exit

ENGINES = ("hf", "vllm")
_SEED_STRIDE = 1_000_003
_DETAIL_CHARS = 200


def configure_parser(p: argparse.ArgumentParser) -> None:
    p.add_argument("model_dir", metavar="MODEL_DIR", help="local Hugging Face checkpoint directory")
    p.add_argument("--benchmark", required=True, help=f"one of: {', '.join(BENCHMARKS)}")
    p.add_argument("--out", required=True, help="JSONL output, one row per sample (resumed if it exists)")
    p.add_argument("--n", type=int, default=64, help="samples per problem (default 64)")
    p.add_argument("--temperature", type=float, default=0.6, help="0 means greedy (default 0.6)")
    p.add_argument("--top-p", type=float, default=0.95, help="nucleus mass (default 0.95)")
    p.add_argument("--max-new-tokens", type=int, default=512, help="generated tokens per sample (default 512)")
    p.add_argument("--prompt-style", choices=PROMPT_STYLES, default="azr",
                   help="azr: R1 wrapper as AZR prompts; qwen-boxed: plain text asking for \\boxed{} "
                        "(math) or a ```python block (code); plain: the problem text alone (default azr)")
    p.add_argument("--limit", type=int, default=None, help="only the first N problems")
    p.add_argument("--data", default=None,
                   help=f"benchmark file, or a directory holding it (default: ${DATA_ENV}, the cache, "
                        "then a download)")
    p.add_argument("--no-download", action="store_true", help="never download a missing benchmark file")
    p.add_argument("--engine", choices=ENGINES, default="hf", help="hf (transformers) or vllm (default hf)")
    p.add_argument("--seed", type=int, default=0, help="sampling seed (default 0)")
    p.add_argument("--batch-size", type=int, default=16,
                   help="prompts per generation call; rows are written after each (default 16)")
    p.add_argument("--device", default="cpu", help="hf engine: torch device (default cpu)")
    p.add_argument("--dtype", default=None,
                   help="weights dtype (hf default float32; vllm default auto)")
    p.add_argument("--decode-batch", type=int, default=None,
                   help="hf engine: sequences decoded together (default: as many as fit its memory budget)")
    p.add_argument("--num-threads", type=int, default=None, help="hf engine: torch CPU threads")
    p.add_argument("--workers", type=int, default=None, help="sandbox workers (default: CPU count)")
    p.add_argument("--timeout-min", type=float, default=DEFAULT_MIN_TIMEOUT_S,
                   help="evalplus: least time for all tests of a problem, seconds (default 10)")
    p.add_argument("--timeout-factor", type=float, default=DEFAULT_TIMEOUT_FACTOR,
                   help="evalplus: time limit as a multiple of the reference's time (default 8)")
    p.add_argument("--exec-timeout", type=float, default=DEFAULT_HUMANEVAL_TIMEOUT_S,
                   help="HumanEval check / CRUXEval / tiny-world execution limit, seconds (default 10)")
    p.add_argument("--save-text", action="store_true", help="also store each response and extracted answer")
    p.add_argument("--quiet", action="store_true", help="no progress bar")


def _validate(args: argparse.Namespace) -> None:
    if args.n < 1:
        raise SystemExit("azr eval: --n must be at least 1")
    if args.batch_size < 1:
        raise SystemExit("azr eval: --batch-size must be at least 1")
    if args.max_new_tokens < 1:
        raise SystemExit("azr eval: --max-new-tokens must be at least 1")
    if not 0 < args.top_p <= 1:
        raise SystemExit("azr eval: --top-p must be in (0, 1]")
    if args.temperature < 0:
        raise SystemExit("azr eval: --temperature must be >= 0")
    if args.limit is not None and args.limit < 1:
        raise SystemExit("azr eval: --limit must be at least 1")


def build_sampler(args: argparse.Namespace):
    """HFSampler, or VLLMSampler (imported only when asked for)."""
    args.model_dir = resolve_model_or_exit(args.model_dir, "azr eval")  # a local dir, or a hub id in the HF cache
    if args.engine == "vllm":
        try:
            from azrlib.rollout.vllm_sampler import VLLMSampler

            kwargs: dict[str, Any] = {"seed": args.seed}
            if args.dtype:
                kwargs["dtype"] = args.dtype
            else:
                kwargs["dtype"] = "auto"
            return VLLMSampler(args.model_dir, **kwargs)
        except ImportError as e:
            raise SystemExit(f"azr eval: --engine vllm needs the vllm package ({e}); install it with "
                             "`pip install -e .[vllm]` or use --engine hf") from None
    from azrlib.rollout import HFSampler

    return HFSampler(args.model_dir, device=args.device, dtype=args.dtype, batch_size=args.decode_batch,
                     num_threads=args.num_threads)


def run_settings(args: argparse.Namespace, benchmark: str) -> dict[str, Any]:
    return {
        "model": str(Path(args.model_dir).resolve()), "benchmark": benchmark,
        "prompt_style": args.prompt_style, "n": args.n, "temperature": args.temperature,
        "top_p": args.top_p, "max_new_tokens": args.max_new_tokens, "seed": args.seed,
        "engine": args.engine, "limit": args.limit, "data": args.data,
    }


def sample_rows(problem: Problem, style: str, completions: Sequence, verdicts: Sequence, extractions: Sequence,
                wanted: set[int], save_text: bool) -> list[dict[str, Any]]:
    rows = []
    for completion, verdict, extraction in zip(completions, verdicts, extractions):
        if completion.sample_index not in wanted:
            continue
        row: dict[str, Any] = {
            "problem_id": problem.id, "sample_idx": completion.sample_index, "correct": bool(verdict.correct),
            "response_length": len(completion.token_ids), "benchmark": problem.benchmark,
            "prompt_style": style, "finish_reason": completion.finish_reason,
            "answer_found": extraction.answer is not None,
            "detail": (verdict.detail or extraction.reason)[:_DETAIL_CHARS],
        }
        if save_text:
            row["response"] = completion.text
            row["answer"] = extraction.answer
        rows.append(row)
    return rows


def evaluate(args: argparse.Namespace, sampler=None, executor=None) -> dict[str, Any]:
    """The whole `azr eval` run; returns a summary. `sampler` / `executor` may be given (tests)."""
    _validate(args)
    try:
        benchmark = canonical_name(args.benchmark)
    except ValueError as e:
        raise SystemExit(f"azr eval: {e}") from None
    problems = load_benchmark(benchmark, args.data, limit=args.limit, allow_download=not args.no_download)
    try:
        build_prompt(problems[0], args.prompt_style)  # fails early for an undefined style/benchmark pair
    except ValueError as e:
        raise SystemExit(f"azr eval: {e}") from None
    needs_sandbox = problems[0].kind != "math"

    results = ResultsFile(args.out, run_settings(args, benchmark)).open()
    owned_executor = None
    try:
        todo = [(index, p) for index, p in enumerate(problems) if results.missing(p.id, args.n)]
        summary: dict[str, Any] = {"benchmark": benchmark, "problems": len(problems),
                                   "skipped_complete": len(problems) - len(todo), "rows_written": 0,
                                   "dropped_partial_line": results.dropped_partial_line}
        if not todo:
            return summary
        if sampler is None:
            sampler = build_sampler(args)
        if executor is None and needs_sandbox:
            owned_executor = executor = make_executor(timeout_s=args.exec_timeout, workers=args.workers)
        suite = CheckerSuite(executor, min_timeout_s=args.timeout_min, timeout_factor=args.timeout_factor,
                             humaneval_timeout_s=args.exec_timeout, answer_timeout_s=args.exec_timeout)
        stops = stop_strings(problems[0], args.prompt_style)
        progress = None
        if not args.quiet:
            from tqdm import tqdm

            progress = tqdm(total=len(todo), unit="problem", desc=f"azr eval {benchmark}", file=sys.stderr)
        for start in range(0, len(todo), args.batch_size):
            batch = todo[start:start + args.batch_size]
            prompts = [build_prompt(p, args.prompt_style) for _, p in batch]
            generated = sampler.generate(prompts, n=args.n, temperature=args.temperature, top_p=args.top_p,
                                         max_new_tokens=args.max_new_tokens, stop=stops or None,
                                         seed=args.seed * _SEED_STRIDE + batch[0][0])
            flat_problems, flat_extractions, owners = [], [], []
            for (_, problem), completions in zip(batch, generated):
                for completion in completions:
                    flat_problems.append(problem)
                    flat_extractions.append(extract(problem, args.prompt_style, completion.text))
                    owners.append(completion)
            verdicts = suite.check(flat_problems, [e.answer for e in flat_extractions])
            position = 0
            rows = []
            for (_, problem), completions in zip(batch, generated):
                count = len(completions)
                rows += sample_rows(problem, args.prompt_style, completions, verdicts[position:position + count],
                                    flat_extractions[position:position + count],
                                    set(results.missing(problem.id, args.n)), args.save_text)
                position += count
            summary["rows_written"] += results.write_rows(rows)
            if progress is not None:
                progress.update(len(batch))
        if progress is not None:
            progress.close()
        return summary
    finally:
        results.close()
        if owned_executor is not None:
            owned_executor.close()


def run_cli(args: argparse.Namespace) -> int:
    try:
        summary = evaluate(args)
    except (DataUnavailable, ResumeMismatch) as e:
        print(f"azr eval: {e}", file=sys.stderr)
        return 2
    from azrlib.eval.results import read_rows

    rows = [r for r in read_rows(args.out) if r.get("benchmark") == summary["benchmark"]]
    correct = sum(bool(r["correct"]) for r in rows)
    accuracy = correct / len(rows) if rows else float("nan")
    print(f"{summary['benchmark']}: {summary['problems']} problems, {summary['skipped_complete']} already complete, "
          f"{summary['rows_written']} rows written to {args.out}; mean correct over {len(rows)} rows: "
          f"{accuracy:.4f} (pass@k: azr passk {args.out})")
    return 0
