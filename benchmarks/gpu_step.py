"""One update step of a Qwen2.5-Coder-3B-shaped model (random weights) at the coder3b preset's
shapes: memory and speed on one GPU, through the trainer's own update code.

    python benchmarks/gpu_step.py [--preset coder3b] [--seqs-per-group 64] [--prompt-len 1024]
                                  [--response-len 1024] [--micro-batch-tokens 16384]

Builds the architecture from its config in code (no download): hidden 2048, 36 layers, 16 heads,
2 KV heads, intermediate 11008, vocab 151936, tied embeddings (7B: 3584/28/28/4/18944/152064,
untied). The 6 (task, role) groups get `--seqs-per-group` sequences each with lengths drawn
uniformly in [0.5, 1.5] x the given means (AZR allows up to 6144 prompt + 8096 response tokens;
these are typical lengths, not the caps), random tokens and rewards, TRR++ advantages, then
`StepRunner._update` (PPO-clip, mini-batches of 128, token-budget micro-batches, chunked
vocabulary projection, bf16 autocast, activation checkpointing, fp32 AdamW). Prints peak memory,
step time and tokens/s.
"""

from __future__ import annotations

import argparse
import random
import sys
import time
import types
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from azrlib.config import load_config  # noqa: E402
from azrlib.trainer.advantages import compute_advantages  # noqa: E402
from azrlib.trainer.config import TrainConfig  # noqa: E402
from azrlib.trainer.loop import Rollout, StepRunner  # noqa: E402

SHAPES = {
    "coder3b": dict(hidden_size=2048, num_hidden_layers=36, num_attention_heads=16, num_key_value_heads=2,
                    intermediate_size=11008, vocab_size=151936, tie_word_embeddings=True),
    "coder7b": dict(hidden_size=3584, num_hidden_layers=28, num_attention_heads=28, num_key_value_heads=4,
                    intermediate_size=18944, vocab_size=152064, tie_word_embeddings=False),
    # the same code path on a laptop (checks the script, not the GPU)
    "smoke": dict(hidden_size=64, num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2,
                  intermediate_size=128, vocab_size=151936, tie_word_embeddings=True),
}


def qwen_config(preset: str):
    from transformers import Qwen2Config
    return Qwen2Config(**SHAPES[preset], max_position_embeddings=32768, rope_theta=1000000.0, rms_norm_eps=1e-6,
                       use_sliding_window=False)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--preset", default="coder3b", choices=sorted(SHAPES), help="smoke: tiny dims, for CPU")
    ap.add_argument("--seqs-per-group", type=int, default=64)
    ap.add_argument("--prompt-len", type=int, default=1024)
    ap.add_argument("--response-len", type=int, default=1024)
    ap.add_argument("--micro-batch-tokens", type=int, default=16384)
    ap.add_argument("--device", default="cuda")
    args = ap.parse_args()
    from transformers import Qwen2ForCausalLM

    device = torch.device(args.device)
    torch.manual_seed(0)
    t0 = time.perf_counter()
    with torch.device(device):
        model = Qwen2ForCausalLM(qwen_config(args.preset)).float()
    model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
    model.config.use_cache = False
    n_params = sum(p.numel() for p in model.parameters())
    build_s = time.perf_counter() - t0
    cfg = load_config(TrainConfig, "coder7b" if args.preset == "coder7b" else "coder3b", [f"micro_batch_tokens={args.micro_batch_tokens}", "amp_bf16=true",
                                                 "gradient_checkpointing=true", f"device={args.device}"])
    opt = torch.optim.AdamW(model.parameters(), lr=cfg.lr, fused=device.type == "cuda")
    rng = random.Random(0)
    vocab = model.config.vocab_size
    rollouts = []
    for t in ("deduction", "abduction", "induction"):
        for role in ("propose", "solve"):
            for j in range(args.seqs_per_group):
                p = int(args.prompt_len * rng.uniform(0.5, 1.5))
                r = int(args.response_len * rng.uniform(0.5, 1.5))
                rollouts.append(Rollout(t, role, [rng.randrange(vocab) for _ in range(p)],
                                        [rng.randrange(vocab) for _ in range(r)], [-2.0] * r,
                                        rng.choice([-1.0, -0.5, 0.0, 0.5, 1.0]), f"{t}{role}{j}"))
    adv = compute_advantages([x.reward for x in rollouts], [len(x.response_ids) for x in rollouts],
                             [x.group for x in rollouts], [x.prompt_key for x in rollouts], "trr++")
    runner = StepRunner(cfg, model, types.SimpleNamespace(pad_token_id=0), None, None, {}, opt)
    tokens = sum(len(x.prompt_ids) + len(x.response_ids) for x in rollouts)
    if device.type == "cuda":
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
    t0 = time.perf_counter()
    stats = runner._update(rollouts, adv, step=1)
    if device.type == "cuda":
        torch.cuda.synchronize()
    step_s = time.perf_counter() - t0
    peak = torch.cuda.max_memory_allocated() / 2**30 if device.type == "cuda" else float("nan")
    name = torch.cuda.get_device_name() if device.type == "cuda" else "cpu"
    print(f"| {args.preset} shape, random weights | {name} |")
    print("| quantity | value |\n|---|---|")
    rows = [("parameters", f"{n_params / 1e9:.2f} B"), ("sequences (6 groups)", len(rollouts)),
            ("tokens (prompt + response)", tokens), ("optimizer steps (mini-batches of 128)", -(-len(rollouts) // 128)),
            ("micro-batch token budget", args.micro_batch_tokens), ("model build (s)", f"{build_s:.1f}"),
            ("update step (s)", f"{step_s:.1f}"), ("tokens/s (fwd+bwd+opt)", f"{tokens / step_s:.0f}"),
            ("peak GPU memory (GiB)", f"{peak:.1f}"), ("grad norm", f"{stats['grad_norm']:.3g}"),
            ("fp32 weights + fp32 AdamW + grads", f"{16 * n_params / 2**30:.1f} GiB")]
    for k, v in rows:
        print(f"| {k} | {v} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
