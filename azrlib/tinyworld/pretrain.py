"""`azr pretrain-tiny`: the tiny base model, pretrained here on CPU from the synthetic corpus.

Steps: build the corpus and the held-out benchmark (`corpus.py`), train the tokenizer on the
documents (`tokenizer.py`), build a small `Qwen2ForCausalLM`, train it with AdamW (warm-up +
cosine over `max_steps`) on one stream of shuffled documents cut every `seq_len` tokens, and save
it as a Hugging Face checkpoint (`save_pretrained` safetensors + tokenizer) with `pretrain.json`
(config, precision and CPU, losses, timings, `complete`). Loading goes through
`AutoModelForCausalLM` and `azrlib.models.load_tokenizer`, as for a Qwen checkpoint; after saving,
the reloaded tokenizer must split the documents as in training.

Precision (`precision=auto`): bf16 autocast only where the CPU has AMX (`amx_bf16`; measured
1.1-1.8x faster than fp32 for these sizes on an Intel Xeon), else fp32 (on an AMD EPYC with
AVX-512 BF16 but no AMX, bf16 autocast was ~10x slower). The choice, the CPU model and torch's
CPU capability are recorded in `pretrain.json`; a resumed run keeps its checkpoint's precision.

Reproducibility: for a seed, `threads`, precision, CPU instruction set and torch version a run
is bit-for-bit: the schedule runs over steps, batches come from a seeded generator, and a resumed
run (`--resume`) continues from its checkpoint exactly (tests: a stopped-and-resumed and a
killed-and-resumed run equal an uninterrupted one, fp32 and bf16). Different thread counts or
instruction sets (AVX2 / AVX-512 / AMX kernels) give different weights, as does fp32 vs bf16.

Checkpoints: every `checkpoint_every_s` seconds (and on SIGTERM/SIGINT or the time guard) the
model, optimizer, RNG states and data position go to `<out>/checkpoint/state.pt` (atomic replace).
The time guard `time_budget_s` never yields something that looks like the recipe's result: a cut
run saves its weights with `"complete": false` and keeps the checkpoint; `azr train` refuses such a
base (unless AZR_ALLOW_PARTIAL_BASE=1) and `azr pretrain-tiny ... --resume` continues it.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import os
import platform
import random
import signal
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import torch

from azrlib.config import option
from azrlib.tinyworld.tokenizer import check_reload, train_tokenizer

CHECKPOINT_DIR = "checkpoint"
PRECISIONS = ("auto", "fp32", "bf16")
# keys that may change between the pieces of one run (everything else is the recipe)
OPERATIONAL_KEYS = ("out", "time_budget_s", "checkpoint_every_s")


@dataclass(frozen=True)
class PretrainConfig:
    out: str = option("data/tiny_base", "output directory of the checkpoint")
    seed: int = option(0, "seed for corpus, tokenizer order, init and batches")
    n_programs: int = option(6000, "programs generated for the corpus")
    vocab_size: int = option(2048, "BPE vocabulary size")
    hidden_size: int = option(128, "model width (0.91 M parameters; 192 / 1.77 M before 2026-12-03: at a fixed "
                                   "step count the loss hardly depends on size, docs/experiments/tiny_base.md)")
    num_layers: int = option(4, "transformer layers")
    num_heads: int = option(4, "attention heads")
    num_kv_heads: int = option(2, "key/value heads (GQA, as Qwen2)")
    intermediate_size: int = option(384, "MLP width")
    seq_len: int = option(512, "training sequence length (packed documents)")
    max_position: int = option(1024, "context length of the model")
    batch_size: int = option(8, "sequences per optimizer step (8 beat 16 at a fixed time budget)")
    lr: float = option(3e-3, "peak learning rate")
    warmup_steps: int = option(50, "linear warm-up steps")
    max_steps: int = option(6000, "optimizer steps; the cosine schedule runs over them (more steps are the lever: "
                                       "2400 before 2026-12-03; 6000 took 5,670 s on 1 thread of an AMD EPYC)")
    time_budget_s: float = option(15300.0, "guard (4 h 15 min): stop training after this many seconds in this "
                                           "process; a cut run is saved with complete=false and a checkpoint for --resume")
    checkpoint_every_s: float = option(600.0, "seconds between resumable checkpoints (<out>/checkpoint)")
    threads: int = option(1, "torch intra-op threads (part of the recipe: other counts give other weights; 1 so the "
                               "run leaves a core free on a 2-core machine)")
    precision: str = option("auto", "auto: bf16 autocast where the CPU has AMX, else fp32 (bf16 was ~10x slower "
                                    "than fp32 on an AVX-512 EPYC) | fp32 | bf16")
    compile: bool = option(True, "torch.compile the training forward/backward (1.6x faster here for 2 M params; "
                                 "needs a C++ compiler)")
    proposer_ratio: float = option(0.25, "proposer documents per solver document of each type (0.5 before "
                                         "2026-11-26: proposer documents were then over half of the tokens)")
    induction_share: float = option(0.35, "corpus: share of programs that also become an induction task "
                                          "(14 inputs run, 10 pairs kept)")
    induction_proposer_ratio: float | None = option(1.0, "induction proposer documents per induction task "
                                                         "(null: proposer_ratio; a program drawn again gets its "
                                                         "inputs in another order). 1.0 raised valid induction "
                                                         "proposals from 0.13 to 0.20-0.24 (design C, docs/experiments/tiny_base.md)")
    numbered_inputs: bool = option(True, "induction proposals number their ten ```input blocks (#1 ... #10 "
                                         "before each block; text the parser ignores; a departure from AZR's format "
                                         "in the corpus only): a counting aid, as longer training made the model "
                                         "write 11-13 blocks (design E)")
    prompt_loss_weight: float = option(0.1, "loss weight of prompt tokens (completions weigh 1): the answers "
                                            "are what the model must learn; prompts are mostly repeated text")

    def __post_init__(self):
        if self.precision not in PRECISIONS:
            raise ValueError(f"precision must be one of {PRECISIONS}, got {self.precision!r}")
        if self.max_steps < 1:
            raise ValueError(f"max_steps must be >= 1, got {self.max_steps}")


def cpu_info() -> dict:
    """The CPU model, the bf16-relevant flags and torch's CPU capability (recorded per run)."""
    model, flags = platform.processor() or platform.machine(), set()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            key, _, value = line.partition(":")
            if key.strip() == "model name" and model in ("", platform.processor(), platform.machine()):
                model = value.strip()
            elif key.strip() == "flags" and not flags:
                flags = set(value.split())
    except OSError:
        pass
    wanted = ("avx2", "avx512f", "avx512_bf16", "amx_bf16", "amx_tile")
    return {"model": model, "flags": [f for f in wanted if f in flags],
            "torch_capability": torch.backends.cpu.get_cpu_capability()}


def choose_precision(requested: str, cpu: dict) -> tuple[str, str]:
    """(precision, why): an explicit choice as given; `auto` is bf16 only with AMX."""
    if requested != "auto":
        return requested, "set in the config"
    if "amx_bf16" in cpu["flags"]:
        return "bf16", "auto: the CPU has AMX (bf16 autocast measured 1.1-1.8x faster than fp32 with it)"
    return "fp32", "auto: no AMX (bf16 autocast measured ~10x slower than fp32 on an AVX-512 CPU without it)"


def reproducibility_note(precision: str) -> str:
    return (f"{precision}: bit-for-bit for a seed, thread count, CPU instruction set and torch version, across "
            "--resume too (tested); other thread counts, instruction sets or precisions give other weights")


def build_model(cfg: PretrainConfig, vocab_size: int, eos_id: int):
    from transformers import Qwen2Config, Qwen2ForCausalLM

    config = Qwen2Config(
        vocab_size=vocab_size, hidden_size=cfg.hidden_size, intermediate_size=cfg.intermediate_size,
        num_hidden_layers=cfg.num_layers, num_attention_heads=cfg.num_heads, num_key_value_heads=cfg.num_kv_heads,
        max_position_embeddings=cfg.max_position, tie_word_embeddings=True, rope_theta=10000.0,
        bos_token_id=eos_id, eos_token_id=eos_id, pad_token_id=eos_id, use_sliding_window=False,
    )
    torch.manual_seed(cfg.seed)
    return Qwen2ForCausalLM(config)


def pack_documents(docs: list[tuple[list[int], list[int]]], seq_len: int, eos_id: int, rng: random.Random,
                   prompt_weight: float) -> tuple[torch.Tensor, torch.Tensor]:
    """Shuffled documents (prompt, completion, EOS) as one stream cut every seq_len tokens (the
    tail dropped), with a per-token loss weight: `prompt_weight` on prompt tokens, 1 on
    completions and their EOS."""
    order = list(range(len(docs)))
    rng.shuffle(order)
    stream: list[int] = []
    flat: list[float] = []
    for k in order:
        prompt, completion = docs[k]
        stream += prompt + completion + [eos_id]
        flat += [prompt_weight] * len(prompt) + [1.0] * (len(completion) + 1)
    n = len(stream) // seq_len
    return (torch.tensor(stream[: n * seq_len], dtype=torch.long).view(n, seq_len),
            torch.tensor(flat[: n * seq_len], dtype=torch.float32).view(n, seq_len))


class _StopSignal:
    """SIGTERM/SIGINT during training: finish the step, checkpoint, stop (main thread only)."""

    def __init__(self):
        self.received: int | None = None
        self._old: dict = {}

    def __enter__(self):
        if hasattr(signal, "SIGTERM") and threading_is_main():
            for sig in (signal.SIGTERM, signal.SIGINT):
                self._old[sig] = signal.signal(sig, self._handle)
        return self

    def _handle(self, signum, frame):
        self.received = signum

    def __exit__(self, *exc):
        for sig, old in self._old.items():
            signal.signal(sig, old)


def threading_is_main() -> bool:
    import threading
    return threading.current_thread() is threading.main_thread()


def train_model(model, rows_fn, cfg: PretrainConfig, precision: str = "fp32", state: dict | None = None,
                save_state=None, stop_after: int | None = None, log_every: int = 10) -> dict:
    """AdamW with warm-up and a cosine decay over `max_steps`; returns the loss curve and where it
    stopped. `state`: a checkpoint to continue from; `save_state(snapshot)` is called every
    `checkpoint_every_s` seconds and when the run stops early (time guard, signal, `stop_after`
    steps: the last is for tests)."""
    from tqdm import tqdm

    torch.set_num_threads(cfg.threads)
    opt = torch.optim.AdamW(model.parameters(), lr=cfg.lr, betas=(0.9, 0.95), weight_decay=0.1)
    forward = torch.compile(model) if cfg.compile else model  # same parameters; `model` is what gets saved
    gen = torch.Generator().manual_seed(cfg.seed)
    if state is None:
        step, epoch, cursor, losses, prior_s = 0, 0, 0, [], 0.0
        rows, row_weights = rows_fn(0)
        perm = torch.randperm(rows.shape[0], generator=gen)
    else:
        model.load_state_dict(state["model"])
        opt.load_state_dict(state["optimizer"])
        gen.set_state(state["generator"])
        torch.set_rng_state(state["torch_rng"])
        step, epoch, cursor, perm = state["step"], state["epoch"], state["cursor"], state["perm"]
        losses, prior_s = list(state["losses"]), float(state["seconds"])
        rows, row_weights = rows_fn(epoch)  # the packing is a function of the epoch

    def snapshot() -> dict:
        return {"model": model.state_dict(), "optimizer": opt.state_dict(), "generator": gen.get_state(),
                "torch_rng": torch.get_rng_state(), "step": step, "epoch": epoch, "cursor": cursor, "perm": perm,
                "losses": losses, "seconds": round(prior_s + time.perf_counter() - start, 1)}

    start = last_save = time.perf_counter()
    first_step, stop_reason = step, None
    model.train()
    bar = tqdm(total=cfg.max_steps, initial=step, desc="pretrain (steps)", unit="step")
    with _StopSignal() as stop:
        while step < cfg.max_steps:
            if stop.received is not None:
                stop_reason = f"signal {stop.received}"
            elif time.perf_counter() - start >= cfg.time_budget_s:
                stop_reason = f"time_budget_s={cfg.time_budget_s:g} reached"
            elif stop_after is not None and step - first_step >= stop_after:
                stop_reason = f"stopped after {stop_after} steps"
            if stop_reason:
                break
            lr = cfg.lr * min(1.0, (step + 1) / cfg.warmup_steps) * (
                0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * step / cfg.max_steps)))
            for g in opt.param_groups:
                g["lr"] = lr
            if cursor + cfg.batch_size > rows.shape[0]:
                epoch += 1
                rows, row_weights = rows_fn(epoch)  # a new packing order each epoch
                perm = torch.randperm(rows.shape[0], generator=gen)
                cursor = 0
            idx = perm[cursor:cursor + cfg.batch_size]
            batch, weight = rows[idx], row_weights[idx][:, 1:]
            total_weight = weight.sum()
            cursor += cfg.batch_size
            with torch.autocast("cpu", dtype=torch.bfloat16, enabled=precision == "bf16"):
                logits = forward(input_ids=batch).logits[:, :-1]
            ce = torch.nn.functional.cross_entropy(logits.float().reshape(-1, logits.shape[-1]),
                                                   batch[:, 1:].reshape(-1), reduction="none").view_as(weight)
            loss = (ce * weight).sum() / total_weight
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            opt.step()
            opt.zero_grad(set_to_none=True)
            step += 1
            bar.update(1)
            if step % log_every == 0 or step == 1:
                done = weight == 1.0
                losses.append({"step": step, "seconds": round(prior_s + time.perf_counter() - start, 1),
                               "loss": round(float(loss.detach()), 4),
                               "completion_loss": round(float((ce.detach() * done).sum() / done.sum().clamp(min=1)), 4),
                               "lr": lr, "epoch": epoch})
                bar.set_postfix(loss=losses[-1]["loss"])
            if save_state is not None and step < cfg.max_steps and time.perf_counter() - last_save >= cfg.checkpoint_every_s:
                save_state(snapshot())
                last_save = time.perf_counter()
        if stop_reason and save_state is not None:
            save_state(snapshot())
    bar.close()
    model.eval()
    return {"steps": step, "epochs": epoch, "seconds": round(prior_s + time.perf_counter() - start, 1),
            "losses": losses, "tokens_seen": step * cfg.batch_size * cfg.seq_len,
            "complete": step >= cfg.max_steps, "stop_reason": stop_reason,
            "piece": {"first_step": first_step, "last_step": step,
                      "seconds": round(time.perf_counter() - start, 1)}}


def _rows_fn(cfg: PretrainConfig, pairs, eos_id: int):
    return lambda epoch: pack_documents(pairs, cfg.seq_len, eos_id, random.Random(cfg.seed * 1000 + epoch),
                                        cfg.prompt_loss_weight)


def _fingerprint(documents: list[str], tokenizer) -> str:
    """What a resumed run must rebuild identically: the documents and the trained tokenizer."""
    h = hashlib.sha256()
    for doc in documents:
        h.update(doc.encode())
        h.update(b"\x00")
    h.update(tokenizer.backend_tokenizer.to_str().encode())
    return h.hexdigest()


def _recipe(cfg: PretrainConfig) -> dict:
    return {k: v for k, v in asdict(cfg).items() if k not in OPERATIONAL_KEYS}


def rebuild_command(cfg: PretrainConfig) -> str:
    """The command that rebuilds `cfg`'s base: its recipe keys that differ from the defaults."""
    default = _recipe(PretrainConfig())
    text = lambda v: "null" if v is None else str(v).lower() if isinstance(v, bool) else str(v)
    overrides = [f"{k}={text(v)}" for k, v in _recipe(cfg).items() if v != default[k]]
    return " ".join(["azr pretrain-tiny --out", cfg.out, "--benchmark-out ''", *overrides])


def load_checkpoint(out: Path, cfg: PretrainConfig) -> dict:
    """The checkpoint of an unfinished run in `out`, checked against `cfg`'s recipe."""
    path = out / CHECKPOINT_DIR / "state.pt"
    if not path.is_file():
        raise FileNotFoundError(f"--resume: no checkpoint to continue from ({path} does not exist)")
    state = torch.load(path, weights_only=True)
    saved, given = state["recipe"], _recipe(cfg)
    changed = {k: (saved.get(k), v) for k, v in given.items() if saved.get(k) != v}
    if changed.get("precision", (None, "auto"))[1] == "auto":
        changed.pop("precision", None)  # auto keeps the precision the run started with
    if changed:
        detail = ", ".join(f"{k}: checkpoint {a!r} vs now {b!r}" for k, (a, b) in sorted(changed.items()))
        raise ValueError(f"--resume: the config differs from the checkpoint's recipe in {out} ({detail}); "
                         f"resume with the same settings (only {', '.join(OPERATIONAL_KEYS)} may change)")
    return state


def _save_checkpoint(out: Path, snapshot: dict, extra: dict) -> None:
    directory = out / CHECKPOINT_DIR
    directory.mkdir(parents=True, exist_ok=True)
    tmp = directory / "state.pt.tmp"
    torch.save({**snapshot, **extra}, tmp)
    os.replace(tmp, directory / "state.pt")  # a kill mid-write leaves the previous checkpoint intact
    last = snapshot["losses"][-1] if snapshot["losses"] else {}
    progress = {"step": snapshot["step"], "seconds": snapshot["seconds"], "loss": last.get("loss"),
                "completion_loss": last.get("completion_loss")}
    (directory / "progress.json").write_text(json.dumps(progress))
    print(f"checkpoint: {json.dumps(progress)}", flush=True)


def pretrain_tiny(cfg: PretrainConfig, benchmark_out: str | None = None, resume: bool = False,
                  stop_after: int | None = None) -> Path:
    from azrlib.sandbox import Executor
    from azrlib.tinyworld import corpus as tw

    out = Path(cfg.out)
    state = load_checkpoint(out, cfg) if resume else None
    if not resume and (out / CHECKPOINT_DIR / "state.pt").exists():
        raise FileExistsError(f"{out / CHECKPOINT_DIR} holds the checkpoint of an unfinished run: continue it "
                              f"with --resume, or delete that directory to start over")
    cpu = cpu_info()
    precision, why = (state["precision"], "kept from the checkpoint") if state else choose_precision(cfg.precision, cpu)
    t0 = time.perf_counter()
    with Executor() as ex:
        built = tw.build_corpus(ex, cfg.n_programs, cfg.seed, induction_share=cfg.induction_share)
        docs = tw.build_documents(built, cfg.seed, proposer_ratio=cfg.proposer_ratio,
                                  induction_proposer_ratio=cfg.induction_proposer_ratio,
                                  numbered_inputs=cfg.numbered_inputs)
        documents = [d.text for d in docs]
        bench = tw.build_benchmark(ex, exclude=built) if benchmark_out else None  # TASK_SOURCE's fixed seed
    corpus_s = time.perf_counter() - t0
    tokenizer = train_tokenizer(documents, cfg.vocab_size, cfg.seed)
    fingerprint = _fingerprint(documents, tokenizer)
    if state is not None and state["fingerprint"] != fingerprint:
        raise RuntimeError(f"--resume: the corpus or tokenizer rebuilt now differs from the checkpoint's in {out} "
                           f"(another code version?); cannot continue bit for bit")
    pairs = [(tokenizer(d.prompt, add_special_tokens=False)["input_ids"],
              tokenizer(d.completion, add_special_tokens=False)["input_ids"]) for d in docs]
    n_tokens = sum(len(p) + len(c) for p, c in pairs)
    model = build_model(cfg, len(tokenizer), tokenizer.eos_token_id)
    n_params = sum(p.numel() for p in model.parameters())
    print(f"corpus: {len(documents)} documents, {n_tokens} tokens ({corpus_s:.0f} s); model: {n_params / 1e6:.2f} M "
          f"parameters; precision {precision} ({why}); CPU {cpu['model']} ({cpu['torch_capability']})"
          + (f"; resuming at step {state['step']}" if state else ""))
    extra = {"recipe": _recipe(cfg), "precision": precision, "fingerprint": fingerprint,
             "pieces": (state or {}).get("pieces", [])}
    first = state["step"] if state else 0

    def save(snap: dict) -> None:
        piece = {"first_step": first, "last_step": snap["step"], "cpu": cpu["model"]}
        _save_checkpoint(out, snap, {**extra, "pieces": extra["pieces"] + [piece]})

    stats = train_model(model, _rows_fn(cfg, pairs, tokenizer.eos_token_id), cfg, precision, state, save, stop_after)
    pieces = extra["pieces"] + [{**stats.pop("piece"), "cpu": cpu["model"]}]
    out.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(out, safe_serialization=True)
    tokenizer.save_pretrained(out)
    check_reload(out, documents[:200], tokenizer)
    record = {"config": asdict(cfg), "complete": stats.pop("complete"), "stop_reason": stats.pop("stop_reason"),
              "precision": precision, "precision_reason": why, "cpu": cpu,
              "reproducibility": reproducibility_note(precision), "pieces": pieces,
              "rebuild_command": rebuild_command(cfg), "n_params": n_params, "n_documents": len(documents),
              "n_tokens": n_tokens,
              "corpus_seconds": round(corpus_s, 1), **stats, "torch": torch.__version__}
    if not record["complete"]:
        record["resume_command"] = f"azr pretrain-tiny --out {out} ... --resume (same settings)"
    (out / "pretrain.json").write_text(json.dumps(record, indent=1))
    if record["complete"] and (out / CHECKPOINT_DIR).exists():
        for f in (out / CHECKPOINT_DIR).iterdir():
            f.unlink()
        (out / CHECKPOINT_DIR).rmdir()
    if bench is not None:
        tw.save_benchmark(benchmark_out, bench)
    if not record["complete"]:
        print(f"pretrain-tiny: stopped at step {record['steps']} of {cfg.max_steps} ({record['stop_reason']}); "
              f"saved marked partial (complete: false); continue with --resume")
    return out


def configure_parser(p: argparse.ArgumentParser) -> None:
    p.add_argument("--out", default="data/tiny_base", help="checkpoint directory")
    p.add_argument("--benchmark-out", default="data/tinyworld/benchmark.jsonl",
                   help="where the held-out tiny-world benchmark is written ('' to skip)")
    p.add_argument("--resume", action="store_true",
                   help="continue the unfinished run in --out from its checkpoint (same settings)")
    p.add_argument("overrides", nargs="*", help="PretrainConfig key=value overrides (see --describe)")
    p.add_argument("--describe", action="store_true", help="list the config keys and exit")


def run_cli(args: argparse.Namespace) -> int:
    from azrlib.config import describe, load_config
    if args.describe:
        print(describe(PretrainConfig))
        return 0
    cfg = load_config(PretrainConfig, {"out": args.out}, args.overrides)
    try:
        path = pretrain_tiny(cfg, args.benchmark_out or None, resume=args.resume)
    except (FileNotFoundError, FileExistsError, ValueError, RuntimeError) as error:
        raise SystemExit(f"azr pretrain-tiny: {error}") from None
    complete = json.loads((path / "pretrain.json").read_text())["complete"]
    print(json.dumps({"checkpoint": str(path), "complete": complete}))
    return 0 if complete else 3
