"""`azr pretrain-tiny`: the tiny base model, pretrained here on CPU from the synthetic corpus.

Steps: build the corpus and the held-out benchmark (`corpus.py`), train a byte-level BPE tokenizer
on the documents (code whitespace preserved), build a small `Qwen2ForCausalLM`, train it with
AdamW (warm-up + cosine) on packed documents, and save it the way a Hugging Face checkpoint is
saved (`save_pretrained` safetensors + tokenizer), with `pretrain.json` (config, losses, timings).
Loading the result goes through `AutoModelForCausalLM` and `azrlib.models.load_tokenizer` (i.e.
`AutoTokenizer`), exactly as a Qwen checkpoint does, so every later stage uses one code path.
Bare `AutoTokenizer` would not do: transformers maps qwen2 checkpoints to `Qwen2Tokenizer`, which
replaces this tokenizer's pre-tokenizer with Qwen2's regex; `load_tokenizer` keeps the saved one,
and `pretrain_tiny` checks that the reloaded tokenizer splits its documents as in training.

Tokenizer: byte-level BPE whose pre-tokenizer keeps the letters of string values and the digits
as single tokens (`split_pattern`), so a value tokenizes the same wherever it stands; with GPT-2's
splitting the model could not learn to copy an argument into its trace (`'da'` was `'d`,`a`,`'` in
the input and `='`,`da`,`'` in the trace), and solve rates were lower (README, tiny base).

Threads: a run is one process with 2 torch threads and `torch.compile`. `ranks=2` trains with 2
gloo data-parallel processes instead (the mechanism multi-GPU training uses); on the real corpus it
was no faster here (2.7 vs 2.9 steps/s), although `benchmarks/bench_parallel.py pretrain`'s
synthetic step favoured it 1.3x.
The schedule runs over `max_steps`, so a seed fixes the weights; the wall time depends on the load.
"""

from __future__ import annotations

import argparse
import json
import math
import random
import re
import time
from collections import Counter
from dataclasses import asdict, dataclass
from pathlib import Path

import torch

from azrlib.config import option

EOS = "<|endoftext|>"
DEFAULT_MAX_STEPS = 100000


@dataclass(frozen=True)
class PretrainConfig:
    out: str = option("data/tiny_base", "output directory of the checkpoint")
    seed: int = option(0, "seed for corpus, tokenizer order, init and batches")
    n_programs: int = option(6000, "programs generated for the corpus")
    vocab_size: int = option(2048, "BPE vocabulary size")
    hidden_size: int = option(192, "model width")
    num_layers: int = option(4, "transformer layers")
    num_heads: int = option(6, "attention heads")
    num_kv_heads: int = option(2, "key/value heads (GQA, as Qwen2)")
    intermediate_size: int = option(512, "MLP width")
    seq_len: int = option(512, "training sequence length (packed documents)")
    max_position: int = option(1024, "context length of the model")
    batch_size: int = option(8, "sequences per optimizer step (8 beat 16 at a fixed time budget)")
    lr: float = option(3e-3, "peak learning rate")
    warmup_steps: int = option(50, "linear warm-up steps")
    time_budget_s: float = option(3600.0, "stop training after this many seconds (a guard; with max_steps below "
                                          f"{DEFAULT_MAX_STEPS} the cosine schedule runs over steps and the run is "
                                          "deterministic for a seed, else over this budget)")
    max_steps: int = option(2400, "optimizer steps (2400: ~14 min on 2 quiet cores with compile; the committed base)")
    threads: int = option(2, "torch intra-op threads per rank")
    ranks: int = option(1, "data-parallel processes (torch.distributed gloo, `threads` each; each takes "
                           "batch_size/ranks rows of every step, gradients are summed). On 2 cores, 2 ranks x 1 "
                           "thread ran the real corpus at 2.7 steps/s vs 2.9 for 1 x 2 threads (the synthetic "
                           "benchmarks/bench_parallel.py step favoured ranks 1.3x), so the base uses 1 rank")
    bf16: bool = option(True, "bf16 autocast (AMX here: ~1.1-1.8x faster than fp32 for these sizes)")
    pack_whole_documents: bool = option(False, "rows hold whole documents (tried once: no better than the "
                                               "stream packing the committed base was trained with)")
    more_simple_tasks: bool = option(False, "corpus: CORPUS_TASKS_PER_PROGRAM tasks per "
                                           "program and type from CORPUS_TRIPLET_INPUTS inputs (12 at level 1) "
                                           "instead of TASKS_PER_PROGRAM (4 at level 1). Tried twice, no better: "
                                           "deduction 0.03 (before the tokenizer fix, and again with "
                                           "induction_share=1: design A in the README)")
    tokenizer_split: str = option("values", "values: letters of string values and digits stay single tokens, so a "
                                          "value tokenizes alike in prompt and trace | bytelevel: GPT-2 splitting "
                                          "(bases before 2026-11-26)")
    compile: bool = option(True, "torch.compile the training forward/backward (1.6x faster here for 2 M params; "
                                 "needs a C++ compiler)")
    drills: bool = option(False, "add trace drills (corpus.drill_documents: a program and traces of it on "
                                "fresh inputs; ~0.6 M tokens) to the six prompt forms. Tried once: worse (the model "
                                "learned to write random arguments and copied its input less: 0.73 vs 0.95 exact)")
    proposer_ratio: float = option(0.25, "proposer documents per solver document of each type (0.5 before "
                                         "2026-11-26: proposer documents were then over half of the tokens)")
    induction_share: float = option(0.35, "corpus: share of programs that also become an induction task "
                                          "(14 inputs run, 10 pairs kept)")
    induction_proposer_ratio: float | None = option(None, "induction proposer documents per induction task "
                                                          "(null: proposer_ratio; a program drawn again gets its "
                                                          "inputs in another order). 1.0 raised valid induction "
                                                          "proposals from 0.13 to 0.20-0.24 (README, session 4)")
    trace_elements: bool = option(False, "deduction traces show each element of a top-level comprehension "
                                         "(`[v * 4 for v in xs]`: one line per element, like a for loop). "
                                         "Tried once (0.91 M model): deduction 0.068 vs 0.061 without")
    prompt_loss_weight: float = option(0.1, "loss weight of prompt tokens (completions weigh 1): the answers "
                                            "are what the model must learn; prompts are mostly repeated text")


def code_words(documents: list[str], min_count: int = 20) -> list[str]:
    """Words (letter runs of 2+) that occur at least `min_count` times outside string literals:
    keywords, identifiers, method names and the words of the messages. Only these may become
    multi-letter tokens; the letters of string values stay one token each."""
    counts: Counter = Counter()
    for doc in documents:
        counts.update(re.findall(r"[A-Za-z_]{2,}", _LITERAL.sub(" ", doc)))
    return sorted((w for w, c in counts.items() if c >= min_count), key=lambda w: (-len(w), w))


_LITERAL = re.compile(r"'[^'\n]*'|\"[^\"\n]*\"")


def split_pattern(words: list[str]) -> str:
    """The pre-tokenizer's regex. Every piece is decided by its own characters, never by what
    precedes it, so a value tokenizes the same in a prompt, a trace and an answer: `'da'` is
    `'`, `d`, `a`, `'` everywhere. (A plain byte-level BPE merged `'d` in the input and `='`, `da`
    in the trace; a tiny model then cannot learn to copy its argument.) Digits are single tokens
    too; a piece may carry one leading space; fences stay one piece."""
    alternation = "|".join(re.escape(w) for w in words)
    keyword = rf" ?\b(?:{alternation})\b|" if words else ""
    return keyword + r"```| ?[A-Za-z_]| ?[0-9]| ?[^A-Za-z0-9_\s]|\s+"


def train_tokenizer(documents: list[str], vocab_size: int, seed: int = 0, split: str = "values"):
    """Byte-level BPE on the documents; whitespace kept byte for byte (no normalizer).
    split `values` (default): merges only inside the whitespace runs and `code_words`
    (see `split_pattern`); `bytelevel`: GPT-2's pre-tokenization, which the first tiny bases used."""
    from tokenizers import Regex, Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE())
    if split == "values":
        tok.pre_tokenizer = pre_tokenizers.Sequence([
            pre_tokenizers.Split(Regex(split_pattern(code_words(documents))), behavior="isolated"),
            pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False)])
    elif split == "bytelevel":
        tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    else:
        raise ValueError(f"tokenizer_split must be values or bytelevel, got {split!r}")
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, special_tokens=[EOS],
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False)
    docs = list(documents)
    random.Random(seed).shuffle(docs)
    tok.train_from_iterator(docs, trainer=trainer)
    return PreTrainedTokenizerFast(tokenizer_object=tok, eos_token=EOS, pad_token=EOS, bos_token=None,
                                   unk_token=None, clean_up_tokenization_spaces=False)


def build_model(cfg: PretrainConfig, vocab_size: int, eos_id: int):
    from transformers import Qwen2Config, Qwen2ForCausalLM

    config = Qwen2Config(
        vocab_size=vocab_size, hidden_size=cfg.hidden_size, intermediate_size=cfg.intermediate_size,
        num_hidden_layers=cfg.num_layers, num_attention_heads=cfg.num_heads, num_key_value_heads=cfg.num_kv_heads,
        max_position_embeddings=cfg.max_position, tie_word_embeddings=True, rope_theta=10000.0,
        bos_token_id=eos_id, eos_token_id=eos_id, pad_token_id=eos_id, use_sliding_window=False,
    )
    torch.manual_seed(cfg.seed)
    model = Qwen2ForCausalLM(config)
    return model


def pack_documents(docs: list[tuple[list[int], list[int]]], seq_len: int, eos_id: int, rng: random.Random,
                   prompt_weight: float, whole: bool = True) -> tuple[torch.Tensor, torch.Tensor]:
    """Rows of seq_len tokens from shuffled documents (prompt, completion, EOS) with a per-token
    loss weight: `prompt_weight` on prompt tokens, 1 on completions and their EOS. `whole`: rows
    hold whole documents (no completion cut off from its prompt; a row's unused tail is EOS with
    weight 0); otherwise one stream cut every seq_len tokens."""
    order = list(range(len(docs)))
    rng.shuffle(order)
    if not whole:
        stream: list[int] = []
        flat: list[float] = []
        for k in order:
            prompt, completion = docs[k]
            stream += prompt + completion + [eos_id]
            flat += [prompt_weight] * len(prompt) + [1.0] * (len(completion) + 1)
        n = len(stream) // seq_len
        return (torch.tensor(stream[: n * seq_len], dtype=torch.long).view(n, seq_len),
                torch.tensor(flat[: n * seq_len], dtype=torch.float32).view(n, seq_len))
    rows: list[list[int]] = []
    weights: list[list[float]] = []
    row: list[int] = []
    w: list[float] = []
    for k in order:
        prompt, completion = docs[k]
        doc = (prompt + completion + [eos_id])[:seq_len]
        dw = ([prompt_weight] * len(prompt) + [1.0] * (len(completion) + 1))[:seq_len]
        if len(row) + len(doc) > seq_len:
            rows.append(row + [eos_id] * (seq_len - len(row)))
            weights.append(w + [0.0] * (seq_len - len(w)))
            row, w = [], []
        row += doc
        w += dw
    if row:
        rows.append(row + [eos_id] * (seq_len - len(row)))
        weights.append(w + [0.0] * (seq_len - len(w)))
    return torch.tensor(rows, dtype=torch.long), torch.tensor(weights, dtype=torch.float32)


def train_model(model, rows_fn, cfg: PretrainConfig, log_every: int = 10, rank: int = 0, world: int = 1) -> dict:
    """AdamW with warm-up and a cosine decay over `max_steps` (or the time budget); returns the
    loss curve. With `world` > 1 (an initialized gloo process group), rank r takes rows r, r+world,
    ... of every batch and gradients are summed so that the step equals the one-process step on
    the whole batch (the loss is normalized by the batch's total weight, not each rank's)."""
    import torch.distributed as dist
    from tqdm import tqdm

    torch.set_num_threads(cfg.threads)
    if cfg.batch_size % world:
        raise ValueError(f"batch_size={cfg.batch_size} is not divisible by ranks={world}")
    opt = torch.optim.AdamW(model.parameters(), lr=cfg.lr, betas=(0.9, 0.95), weight_decay=0.1)
    forward = torch.compile(model) if cfg.compile else model  # same parameters; `model` is what gets saved
    gen = torch.Generator().manual_seed(cfg.seed)
    rows, row_weights = rows_fn(0)
    epoch, cursor = 0, 0
    perm = torch.randperm(rows.shape[0], generator=gen)
    losses, start = [], time.perf_counter()
    model.train()
    quiet = {} if rank == 0 else {"disable": True}  # rank 0 keeps tqdm's defaults (TQDM_DISABLE works)
    bar = tqdm(total=int(cfg.time_budget_s), desc="pretrain (s)", unit="s", **quiet)
    params = [p for p in model.parameters()]
    step = 0
    while step < cfg.max_steps:
        elapsed = time.perf_counter() - start
        if world > 1:  # every rank must agree on stopping: rank 0's clock decides
            clock = torch.tensor([elapsed])
            dist.broadcast(clock, 0)
            elapsed = float(clock)
        if elapsed >= cfg.time_budget_s:
            break
        # the schedule runs over steps when max_steps bounds the run (deterministic for a seed),
        # else over the time budget (a fixed wall-clock cost, but steps vary with machine load)
        progress = step / cfg.max_steps if cfg.max_steps < DEFAULT_MAX_STEPS else elapsed / cfg.time_budget_s
        lr = cfg.lr * min(1.0, (step + 1) / cfg.warmup_steps) * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * progress)))
        for g in opt.param_groups:
            g["lr"] = lr
        if cursor + cfg.batch_size > rows.shape[0]:
            epoch += 1
            rows, row_weights = rows_fn(epoch)  # a new packing order each epoch
            perm = torch.randperm(rows.shape[0], generator=gen)
            cursor = 0
        idx = perm[cursor:cursor + cfg.batch_size]
        total_weight = row_weights[idx][:, 1:].sum()  # the whole batch's, so ranks share one normalizer
        idx = idx[rank::world]
        batch, weight = rows[idx], row_weights[idx][:, 1:]
        cursor += cfg.batch_size
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=cfg.bf16):
            logits = forward(input_ids=batch).logits[:, :-1]
        ce = torch.nn.functional.cross_entropy(logits.float().reshape(-1, logits.shape[-1]), batch[:, 1:].reshape(-1),
                                               reduction="none").view_as(weight)
        loss = (ce * weight).sum() / total_weight
        loss.backward()
        if world > 1:
            grads = [p.grad for p in params]
            flat = torch.cat([g.reshape(-1) for g in grads])
            dist.all_reduce(flat)  # one bucket: 1.8 M floats take a few ms over gloo here
            offset = 0
            for g in grads:
                g.copy_(flat[offset:offset + g.numel()].view_as(g))
                offset += g.numel()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        opt.zero_grad(set_to_none=True)
        step += 1
        if step % log_every == 0 or step == 1:
            sums = torch.stack([loss.detach() * total_weight, (ce.detach() * (weight == 1.0)).sum(),
                                (weight == 1.0).sum().float()])
            if world > 1:
                dist.all_reduce(sums)
            losses.append({"step": step, "seconds": round(time.perf_counter() - start, 1),
                           "loss": round(float(sums[0] / total_weight), 4),
                           "completion_loss": round(float(sums[1] / sums[2].clamp(min=1)), 4),
                           "lr": lr, "epoch": epoch})
            bar.n = min(int(time.perf_counter() - start), int(cfg.time_budget_s))
            bar.set_postfix(loss=losses[-1]["loss"], step=step)
    bar.close()
    model.eval()
    return {"steps": step, "epochs": epoch, "seconds": round(time.perf_counter() - start, 1), "losses": losses,
            "tokens_seen": step * cfg.batch_size * cfg.seq_len}


def _rank_worker(rank: int, cfg: PretrainConfig, pairs, vocab_size: int, eos_id: int, port: int, out: str) -> None:
    """One data-parallel rank (spawned): same init as the others (seeded), its rows of each batch;
    rank 0 saves the weights and the training record into `out`."""
    import os

    import torch.distributed as dist
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    dist.init_process_group("gloo", rank=rank, world_size=cfg.ranks)
    try:
        model = build_model(cfg, vocab_size, eos_id)
        stats = train_model(model, _rows_fn(cfg, pairs, eos_id), cfg, rank=rank, world=cfg.ranks)
        if rank == 0:
            model.save_pretrained(out, safe_serialization=True)
            Path(out, "train_stats.json").write_text(json.dumps(stats))
    finally:
        dist.destroy_process_group()


def _rows_fn(cfg: PretrainConfig, pairs, eos_id: int):
    return lambda epoch: pack_documents(pairs, cfg.seq_len, eos_id, random.Random(cfg.seed * 1000 + epoch),
                                        cfg.prompt_loss_weight, cfg.pack_whole_documents)


def _check_reload(out: Path, documents: list[str], tokenizer) -> None:
    """The saved tokenizer, loaded the way every later stage loads it, must split text exactly as
    the one the model was trained with (AutoTokenizer alone does not: `models.load_tokenizer`)."""
    from azrlib.models import load_tokenizer

    loaded = load_tokenizer(out)
    for doc in documents:
        if loaded(doc, add_special_tokens=False)["input_ids"] != tokenizer(doc, add_special_tokens=False)["input_ids"]:
            raise RuntimeError(f"the tokenizer saved in {out} tokenizes differently after loading:\n{doc[:200]}")


def _free_port() -> int:
    import socket
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def pretrain_tiny(cfg: PretrainConfig, benchmark_out: str | None = None) -> Path:
    from azrlib.sandbox import Executor
    from azrlib.tinyworld import corpus as tw

    out = Path(cfg.out)
    t0 = time.perf_counter()
    with Executor() as ex:
        per_level = tw.CORPUS_TRIPLET_INPUTS if cfg.more_simple_tasks else None
        built = tw.build_corpus(ex, cfg.n_programs, cfg.seed, triplet_inputs=per_level,
                                tasks_per_program=tw.CORPUS_TASKS_PER_PROGRAM if per_level else None,
                                induction_share=cfg.induction_share, trace_elements=cfg.trace_elements)
        docs = tw.build_documents(built, cfg.seed, proposer_ratio=cfg.proposer_ratio,
                                  induction_proposer_ratio=cfg.induction_proposer_ratio)
        if cfg.drills:
            docs += tw.drill_documents(ex, built, cfg.seed)
            random.Random(f"tinyworld-mix:{cfg.seed}").shuffle(docs)
        documents = [d.text for d in docs]
        bench = tw.build_benchmark(ex, exclude=built) if benchmark_out else None  # TASK_SOURCE's fixed seed
    corpus_s = time.perf_counter() - t0
    tokenizer = train_tokenizer(documents, cfg.vocab_size, cfg.seed, cfg.tokenizer_split)
    pairs = [(tokenizer(d.prompt, add_special_tokens=False)["input_ids"],
              tokenizer(d.completion, add_special_tokens=False)["input_ids"]) for d in docs]
    token_lists = [p + c for p, c in pairs]
    model = build_model(cfg, len(tokenizer), tokenizer.eos_token_id)
    n_params = sum(p.numel() for p in model.parameters())
    print(f"corpus: {len(documents)} documents, {sum(map(len, token_lists))} tokens ({corpus_s:.0f} s); "
          f"model: {n_params / 1e6:.2f} M parameters")
    out.mkdir(parents=True, exist_ok=True)
    if cfg.ranks > 1:
        import torch.multiprocessing as mp
        del model
        mp.spawn(_rank_worker, args=(cfg, pairs, len(tokenizer), tokenizer.eos_token_id, _free_port(), str(out)),
                 nprocs=cfg.ranks, join=True)
        stats = json.loads((out / "train_stats.json").read_text())
        (out / "train_stats.json").unlink()
    else:
        stats = train_model(model, _rows_fn(cfg, pairs, tokenizer.eos_token_id), cfg)
        model.save_pretrained(out, safe_serialization=True)
    tokenizer.save_pretrained(out)
    _check_reload(out, documents[:200], tokenizer)
    record = {"config": asdict(cfg), "n_params": n_params, "n_documents": len(documents),
              "n_tokens": sum(map(len, token_lists)), "corpus_seconds": round(corpus_s, 1), **stats,
              "torch": torch.__version__}
    (out / "pretrain.json").write_text(json.dumps(record, indent=1))
    if bench is not None:
        tw.save_benchmark(benchmark_out, bench)
    return out


def configure_parser(p: argparse.ArgumentParser) -> None:
    p.add_argument("--out", default="data/tiny_base", help="checkpoint directory")
    p.add_argument("--benchmark-out", default="data/tinyworld/benchmark.jsonl",
                   help="where the held-out tiny-world benchmark is written ('' to skip)")
    p.add_argument("overrides", nargs="*", help="PretrainConfig key=value overrides (see --describe)")
    p.add_argument("--describe", action="store_true", help="list the config keys and exit")


def run_cli(args: argparse.Namespace) -> int:
    from azrlib.config import describe, load_config
    if args.describe:
        print(describe(PretrainConfig))
        return 0
    cfg = load_config(PretrainConfig, {"out": args.out}, args.overrides)
    path = pretrain_tiny(cfg, args.benchmark_out or None)
    print(json.dumps({"checkpoint": str(path)}))
    return 0
