"""One update step of a Qwen2.5-Coder-3B-shaped model (random weights) at the coder3b preset's
shapes: memory and speed on one GPU, through the trainer's own update code; optionally the
preset's FSDP2 wrapping and the rollout weight sync + log-prob agreement check.

    python benchmarks/gpu_step.py [--preset coder3b] [--parallel fsdp|ddp] [--logprob-check]
                                  [--seqs-per-group 64] [--prompt-len 1024] [--response-len 1024]
                                  [--micro-batch-tokens N] [--json OUT]

Builds the architecture from its config in code (no download): hidden 2048, 36 layers, 16 heads,
2 KV heads, intermediate 11008, vocab 151936, tied embeddings (7B: 3584/28/28/4/18944/152064,
untied). The 6 (task, role) groups get `--seqs-per-group` sequences each with lengths drawn
uniformly in [0.5, 1.5] x the given means (AZR allows up to 6144 prompt + 8096 response tokens;
these are typical lengths, not the caps), random tokens and rewards, TRR++ advantages, then
`StepRunner._update` (PPO-clip, mini-batches of 128, token-budget micro-batches, chunked
vocabulary projection, activation checkpointing, fp32 AdamW).

--parallel ddp: an fp32 model with bf16 autocast (the trainer's `parallel: ddp` + `amp_bf16`).
--parallel fsdp: the coder presets' path: `fully_shard` with world size 1 (fp32 masters, bf16
    compute via MixedPrecisionPolicy, fp32 gradient reduction), built on the meta device. With one
    GPU nothing is actually sharded: this checks the wrapping, its memory and its speed.
--logprob-check (after the update, optimizer state freed): an HFSampler on a separate bf16 copy
    (vLLM's role), weights synced from the trainer with `weight_sync.sync_weights`, a few prompts
    sampled, and `rollout/logprob_mismatch` against the trainer's forward (bf16 both sides:
    expect ~1e-2; a sync that failed would show ~1 or more). Prints peak memory, step time,
    tokens/s and the check.
"""

from __future__ import annotations

import argparse
import json
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


def build_model(args, device: torch.device):
    """(model, note): the ddp path's fp32 model, or the fsdp path's sharded one (world size 1)."""
    from transformers import Qwen2ForCausalLM

    from azrlib.trainer import fsdp

    torch.manual_seed(0)
    config = qwen_config(args.preset)
    if args.parallel == "fsdp":
        model = fsdp.build_sharded(config, device=device, dtype=torch.float32, param_dtype=torch.bfloat16,
                                   gradient_checkpointing=True, init_std=0.02)
        return model, "fully_shard (world 1), fp32 masters, bf16 compute"
    with torch.device(device):
        model = Qwen2ForCausalLM(config).float()
    model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
    model.config.use_cache = False
    return model, "fp32 weights, bf16 autocast"


class EngineCopy:
    """The rollout engine's role at 3B scale without vLLM: its own bf16 copy of the weights,
    filled by `load_weights` (what `weight_sync.sync_weights` calls), sampled token by token."""

    def __init__(self, model):
        self.model = model

    def load_weights(self, state: dict) -> None:
        missing, unexpected = self.model.load_state_dict(state, strict=False)
        if unexpected or set(missing) - {"lm_head.weight"}:
            raise RuntimeError(f"weight sync mismatch: missing {missing[:3]}, unexpected {unexpected[:3]}")

    @torch.no_grad()
    def sample(self, prompts: list[list[int]], new_tokens: int, seed: int = 0):
        """Temperature-1 samples and their log-probs (raw logits, as the engines report them)."""
        device = next(self.model.parameters()).device
        ids = torch.tensor(prompts, device=device)
        generator = torch.Generator(device=device).manual_seed(seed)
        responses, logprobs = [[] for _ in prompts], [[] for _ in prompts]
        for _ in range(new_tokens):
            logp = torch.log_softmax(self.model(input_ids=ids).logits[:, -1].float(), dim=-1)
            nxt = torch.multinomial(logp.exp(), 1, generator=generator)
            picked = logp.gather(-1, nxt).squeeze(-1).tolist()
            for row, (token, value) in enumerate(zip(nxt.squeeze(-1).tolist(), picked)):
                responses[row].append(token)
                logprobs[row].append(value)
            ids = torch.cat([ids, nxt], dim=1)
        return responses, logprobs


def logprob_check(model, args, device: torch.device) -> dict:
    """Engine copy (bf16) <- trainer weights (streamed, FSDP-gathered); sample; compare log-probs."""
    from transformers import Qwen2ForCausalLM

    from azrlib.trainer.weight_sync import MISMATCH_KEY, logprob_mismatch, sync_weights
    from azrlib.trainer import fsdp

    with torch.device(device):
        engine = EngineCopy(Qwen2ForCausalLM(qwen_config(args.preset)).to(torch.bfloat16).eval())
    t0 = time.perf_counter()
    sent = sync_weights(model, engine, torch.bfloat16)
    if device.type == "cuda":
        torch.cuda.synchronize()
    sync_s = time.perf_counter() - t0
    rng = random.Random(1)
    prompts = [[rng.randrange(engine.model.config.vocab_size) for _ in range(64)] for _ in range(8)]
    responses, logprobs = engine.sample(prompts, 32)
    stats = logprob_mismatch(fsdp.forward_view(model), prompts, responses, logprobs, pad_id=0, device=device,
                             autocast_bf16=args.parallel == "ddp")
    return {"sync_s": sync_s, "tensors": sent, "mismatch": stats[MISMATCH_KEY],
            "mismatch_max": stats[MISMATCH_KEY + "_max"], "tokens": stats["rollout/logprob_check_tokens"]}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--preset", default="coder3b", choices=sorted(SHAPES), help="smoke: tiny dims, for CPU")
    ap.add_argument("--parallel", default="ddp", choices=("ddp", "fsdp"))
    ap.add_argument("--logprob-check", action="store_true")
    ap.add_argument("--seqs-per-group", type=int, default=64)
    ap.add_argument("--prompt-len", type=int, default=1024)
    ap.add_argument("--response-len", type=int, default=1024)
    ap.add_argument("--micro-batch-tokens", type=int, default=None, help="default: the preset's")
    ap.add_argument("--device", default="cuda")
    ap.add_argument("--json", default=None, help="also write the numbers as JSON here")
    args = ap.parse_args()

    device = torch.device(args.device)
    t0 = time.perf_counter()
    model, note = build_model(args, device)
    n_params = sum(p.numel() for p in model.parameters())
    build_s = time.perf_counter() - t0
    preset = "coder7b" if args.preset == "coder7b" else "coder3b"
    overrides = [f"device={args.device}", "gradient_checkpointing=true", f"parallel={args.parallel}",
                 f"amp_bf16={str(args.parallel == 'ddp').lower()}"]
    if args.micro_batch_tokens:
        overrides.append(f"micro_batch_tokens={args.micro_batch_tokens}")
    cfg = load_config(TrainConfig, preset, overrides)
    # fused AdamW for plain tensors; the default (foreach) for FSDP's DTensor parameters
    opt = torch.optim.AdamW(model.parameters(), lr=cfg.lr, fused=device.type == "cuda" and args.parallel == "ddp")
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
    result = {"preset": args.preset, "parallel": args.parallel, "device": name, "params_b": n_params / 1e9,
              "sequences": len(rollouts), "tokens": tokens, "micro_batch_tokens": cfg.micro_batch_tokens,
              "build_s": build_s, "step_s": step_s, "tokens_per_s": tokens / step_s, "peak_gib": peak,
              "grad_norm": stats["grad_norm"]}
    print(f"| {args.preset} shape, random weights, {args.parallel}: {note} | {name} |")
    print("| quantity | value |\n|---|---|")
    rows = [("parameters", f"{n_params / 1e9:.2f} B"), ("sequences (6 groups)", len(rollouts)),
            ("tokens (prompt + response)", tokens), ("optimizer steps (mini-batches of 128)", -(-len(rollouts) // 128)),
            ("micro-batch token budget", cfg.micro_batch_tokens), ("model build (s)", f"{build_s:.1f}"),
            ("update step (s)", f"{step_s:.1f}"), ("tokens/s (fwd+bwd+opt)", f"{tokens / step_s:.0f}"),
            ("peak GPU memory (GiB)", f"{peak:.1f}"), ("grad norm", f"{stats['grad_norm']:.3g}"),
            ("fp32 weights + fp32 AdamW + grads", f"{16 * n_params / 2**30:.1f} GiB")]
    if args.logprob_check:
        del opt, runner  # the optimizer state makes room for the engine's copy
        for p in model.parameters():
            p.grad = None
        if device.type == "cuda":
            torch.cuda.empty_cache()
        check = logprob_check(model, args, device)
        result["logprob_check"] = check
        rows += [("weight sync to a bf16 engine copy (s)", f"{check['sync_s']:.2f} ({check['tensors']} tensors)"),
                 ("rollout/logprob_mismatch (mean abs diff per token)", f"{check['mismatch']:.3g} over {check['tokens']} tokens"),
                 ("rollout/logprob_mismatch_max", f"{check['mismatch_max']:.3g}")]
    for k, v in rows:
        print(f"| {k} | {v} |")
    if args.json:
        Path(args.json).write_text(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
