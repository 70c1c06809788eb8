"""The vLLM section of benchmarks/gpu_check.sh: one colocated engine on one GPU, as a trainer rank uses it.

    python benchmarks/gpu_vllm.py [--model DIR] [--prompts 256] [--max-new-tokens 128] [--json OUT]

Model: `--model DIR`, else a random Qwen2 of ~40M parameters built here (no hub). Measures, on the
engine the trainer builds (VLLMSampler, fp32 so the log-prob check has a sharp expectation):
  * sampling tokens/s (all prompts at once, n=1, T=1, the same prompts as bench_rollout.py);
  * sleep / wake: GPU memory released by `sleep()` (torch.cuda.mem_get_info, all processes) and the
    time of sleep and of the wake that `load_weights` does;
  * weight sync: the trainer's weights (an HF copy on the GPU, moved by a few AdamW steps) into the
    engine through `weight_sync.sync_weights`, seconds and tensors;
  * log-prob mismatch: `weight_sync.logprob_mismatch` of freshly sampled tokens, trainer vs engine
    after that sync (fp32: expect < 1e-4), and the same without the sync (expect far above).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests"))  # the tiny test model

import torch  # noqa: E402

from tiny_model import build_tiny_checkpoint  # noqa: E402

try:
    from azrlib.trainer import weight_sync
except ImportError:  # older layout
    from azrlib.rollout import weight_sync

MID_QWEN2 = dict(vocab_size=8192, hidden_size=512, num_layers=10, num_heads=8, num_kv_heads=2)


def _gib_free() -> float:
    return torch.cuda.mem_get_info()[0] / 2**30


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", type=Path, default=None)
    parser.add_argument("--prompts", type=int, default=256)
    parser.add_argument("--max-new-tokens", type=int, default=128)
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()

    from transformers import AutoModelForCausalLM

    from azrlib.models import load_tokenizer
    from azrlib.rollout.vllm_sampler import VLLMSampler
    from benchmarks.bench_rollout import make_prompts

    tmp = tempfile.TemporaryDirectory(prefix="gpu_vllm_")
    model_dir = args.model or build_tiny_checkpoint(Path(tmp.name) / "mid", **MID_QWEN2)
    tokenizer = load_tokenizer(model_dir)
    prompts = make_prompts(tokenizer, args.prompts, 200)
    result: dict = {"model": str(model_dir)}

    t0 = time.perf_counter()
    engine = VLLMSampler(model_dir, dtype="float32", gpu_memory_utilization=0.3, enable_sleep_mode=True,
                         enforce_eager=False, max_model_len=1024)
    result["start_s"] = time.perf_counter() - t0
    engine.generate(prompts[:8], max_new_tokens=8, seed=0)  # warm-up
    t0 = time.perf_counter()
    rows = engine.generate(prompts, n=1, max_new_tokens=args.max_new_tokens, seed=0)
    seconds = time.perf_counter() - t0
    tokens = sum(len(c.token_ids) for row in rows for c in row)
    result.update(sample_tokens=tokens, sample_s=seconds, tokens_per_s=tokens / seconds)

    trainer = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32).cuda()
    optimizer = torch.optim.AdamW(trainer.parameters(), lr=1e-3)
    ids = torch.tensor([tokenizer(prompts[0])["input_ids"][:128]], device="cuda")
    free_awake = _gib_free()
    t0 = time.perf_counter()
    slept = engine.sleep()
    torch.cuda.synchronize()
    result.update(sleep_mode=engine.sleep_mode, slept=slept, sleep_s=time.perf_counter() - t0,
                  released_gib=_gib_free() - free_awake)
    for _ in range(3):  # the update, while the engine sleeps
        trainer(input_ids=ids, labels=ids).loss.backward()
        optimizer.step()
        optimizer.zero_grad()
    t0 = time.perf_counter()
    result["sync_tensors"] = weight_sync.sync_weights(trainer, engine)  # wakes it: weights, load, KV cache
    torch.cuda.synchronize()
    result.update(sync_s=time.perf_counter() - t0, weight_path=engine.weight_path)

    def mismatch() -> dict:
        sampled = [c for row in engine.generate(prompts[:32], n=2, max_new_tokens=64, seed=1) for c in row]
        return weight_sync.logprob_mismatch(trainer.eval(), [c.prompt_token_ids for c in sampled],
                                            [c.token_ids for c in sampled], [c.logprobs for c in sampled],
                                            pad_id=tokenizer.pad_token_id or 0, device="cuda")

    synced = mismatch()
    result.update(mismatch=synced[weight_sync.MISMATCH_KEY], mismatch_max=synced[weight_sync.MISMATCH_KEY + "_max"])
    with torch.no_grad():  # a skipped sync: the trainer moves, the engine does not
        for p in trainer.parameters():
            p.add_(torch.randn_like(p) * 1e-3)
    result["mismatch_unsynced"] = mismatch()[weight_sync.MISMATCH_KEY]
    ok = result["mismatch"] < 1e-4 < result["mismatch_unsynced"]
    print(json.dumps(result, indent=1))
    print(f"vLLM: {result['tokens_per_s']:.0f} tokens/s sampling, start {result['start_s']:.0f} s, sleep released "
          f"{result['released_gib']:.2f} GiB, sync {result['sync_s']:.3f} s ({result['sync_tensors']} tensors, "
          f"{result['weight_path']}), logprob_mismatch {result['mismatch']:.2g} synced vs "
          f"{result['mismatch_unsynced']:.2g} unsynced -> {'ok' if ok else 'FAIL'}")
    if args.json:
        args.json.write_text(json.dumps(result))
    tmp.cleanup()
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
