#!/usr/bin/env bash
# GPU check (one command, <= 8 minutes on one H100; prints a table at the end):
#   1. the tiny preset for a few steps on CUDA (ddp path: the HFSampler shares the trainer's model);
#   2. the tiny preset with parallel=fsdp (fully_shard, world size 1): the HFSampler holds its own
#      copy, weights are synced after every update and rollout/logprob_mismatch checked every step;
#   3. one coder3b-shaped update step (random weights, the preset's real shapes) on the presets'
#      FSDP2 path, then a weight sync into a bf16 engine copy and the log-prob check;
#   4. the same step on the ddp path (fp32 + bf16 autocast) for comparison, if time remains;
#   5. when vLLM is importable: one colocated engine (benchmarks/gpu_vllm.py): sampling tokens/s,
#      sleep/wake (memory released), weight sync time, log-prob mismatch synced vs not.
#   bash benchmarks/gpu_check.sh [extra gpu_step.py args, e.g. --seqs-per-group 32]
# Needs torch with CUDA and transformers (vLLM optional: section 5), no internet; uses the repo in place.
set -uo pipefail
cd "$(dirname "$0")/.."
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}" TQDM_DISABLE=1 PYTHONUNBUFFERED=1
PY=${PYTHON:-python3}
OUT=$(mktemp -d)
START=$(date +%s)
BUDGET=${GPU_CHECK_BUDGET_S:-470}
left() { echo $(( BUDGET - ($(date +%s) - START) )); }
limit() { local n=$(( $(left) - $1 )); (( n < 30 )) && n=30; echo $n; }  # seconds for the next command
declare -A STATUS

nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader || true
$PY -c "import torch, transformers; print('torch', torch.__version__, 'cuda', torch.version.cuda, 'transformers', transformers.__version__)"
$PY -m azrlib.cli sandbox-info >/dev/null 2>&1 && echo "sandbox: ok" || echo "sandbox: see azr sandbox-info"

echo "== 1. tiny preset, 3 steps on CUDA (ddp) =="
timeout 120 $PY benchmarks/bench_step.py --config tiny --steps 3 device=cuda torch_threads=0 validate_every=0 \
    && STATUS[tiny]=ok || STATUS[tiny]="failed ($?)"

echo "== 2. tiny preset, 2 steps on CUDA with parallel=fsdp: synced HFSampler copy, log-prob check =="
timeout 150 $PY -m azrlib.cli train --config tiny steps=2 device=cuda torch_threads=0 validate_every=0 \
    checkpoint_every=2 parallel=fsdp fsdp_param_dtype=float32 logprob_check_every=1 out_dir="$OUT" run_name=tiny_fsdp \
    && STATUS[tiny_fsdp]=ok || STATUS[tiny_fsdp]="failed ($?)"

echo "== 3. coder3b-shaped update step: FSDP2 (world 1), then weight sync + log-prob check =="
timeout "$(limit 20)" $PY benchmarks/gpu_step.py --preset coder3b --parallel fsdp --logprob-check \
    --json "$OUT/fsdp.json" "$@" && STATUS[fsdp]=ok || STATUS[fsdp]="failed or out of time ($?)"

echo "== 4. the same step on the ddp path (fp32 weights, bf16 autocast) =="
if (( $(left) > 150 )); then
    timeout "$(limit 5)" $PY benchmarks/gpu_step.py --preset coder3b --parallel ddp --json "$OUT/ddp.json" "$@" \
        && STATUS[ddp]=ok || STATUS[ddp]="failed or out of time ($?)"
else
    STATUS[ddp]="skipped (time budget)"
fi

echo "== 5. vLLM: sampling, sleep/wake, weight sync, log-prob mismatch =="
if $PY -c "import vllm" >/dev/null 2>&1; then
    if (( $(left) > 90 )); then
        timeout "$(limit 0)" $PY benchmarks/gpu_vllm.py --json "$OUT/vllm.json" \
            && STATUS[vllm]=ok || STATUS[vllm]="failed or out of time ($?)"
    else
        STATUS[vllm]="skipped (time budget)"
    fi
else
    STATUS[vllm]="skipped (vllm not importable)"
fi

echo
echo "== summary ($(( $(date +%s) - START )) s) =="
STATUS_TINY="${STATUS[tiny]}" STATUS_TINY_FSDP="${STATUS[tiny_fsdp]}" STATUS_FSDP="${STATUS[fsdp]}" \
STATUS_DDP="${STATUS[ddp]}" STATUS_VLLM="${STATUS[vllm]}" $PY - "$OUT" <<'EOF'
import json, os, sys
from pathlib import Path
out = Path(sys.argv[1])
print("| check | status | result |\n|---|---|---|")
print(f"| tiny preset, 3 steps, CUDA | {os.environ['STATUS_TINY']} | phase table above |")
metrics = out / "tiny_fsdp" / "metrics.jsonl"
steps = [json.loads(l) for l in metrics.read_text().splitlines()][1:] if metrics.exists() else []
mm = ", ".join(f"{m.get('rollout/logprob_mismatch', float('nan')):.2g}" for m in steps)
print(f"| tiny, parallel=fsdp, synced HF copy | {os.environ['STATUS_TINY_FSDP']} | logprob_mismatch per step: {mm or '-'} (fp32: expect < 1e-4) |")
for key, label in (("fsdp", "coder3b shape, FSDP2 world 1"), ("ddp", "coder3b shape, ddp (fp32 + autocast)")):
    f = out / f"{key}.json"
    if f.exists():
        r = json.loads(f.read_text())
        text = (f"{r['sequences']} seqs, {r['tokens']} tokens, step {r['step_s']:.1f} s, {r['tokens_per_s']:.0f} tok/s, "
                f"peak {r['peak_gib']:.1f} GiB, {r['device']}")
        c = r.get("logprob_check")
        if c:
            text += (f"; sync {c['sync_s']:.2f} s, logprob_mismatch {c['mismatch']:.3g} "
                     f"(max {c['mismatch_max']:.3g}, bf16: expect ~1e-2)")
    else:
        text = "-"
    print(f"| {label} | {os.environ['STATUS_' + key.upper()]} | {text} |")
f = out / "vllm.json"
r = json.loads(f.read_text()) if f.exists() else None
text = (f"{r['tokens_per_s']:.0f} tok/s sampling, start {r['start_s']:.0f} s, sleep released {r['released_gib']:.2f} GiB, "
        f"sync {r['sync_s']:.3f} s ({r['weight_path']}), logprob_mismatch {r['mismatch']:.2g} synced / "
        f"{r['mismatch_unsynced']:.2g} unsynced (fp32: expect < 1e-4 / far above)") if r else "-"
print(f"| vLLM engine (fp32, random ~40M Qwen2) | {os.environ['STATUS_VLLM']} | {text} |")
EOF
