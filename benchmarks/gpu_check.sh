#!/usr/bin/env bash
# GPU check (one command, < 8 minutes on one H100): the tiny preset for a few steps on CUDA, then
# one coder3b-shaped update step with random weights at the preset's real shapes.
#   bash benchmarks/gpu_check.sh
# Needs torch with CUDA and transformers (no vLLM, no internet); uses the repo in place.
set -euo pipefail
cd "$(dirname "$0")/.."
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}" TQDM_DISABLE=1 PYTHONUNBUFFERED=1
PY=${PYTHON:-python3}
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader || true
$PY -c "import torch, transformers; print('torch', torch.__version__, 'cuda', torch.version.cuda, 'transformers', transformers.__version__)"
$PY -m azrlib.cli sandbox-info || echo "(sandbox: see above)"
echo "== tiny preset, 3 steps on CUDA =="
$PY benchmarks/bench_step.py --config tiny --steps 3 device=cuda torch_threads=0 validate_every=0
echo "== coder3b-shaped update step (random weights) =="
$PY benchmarks/gpu_step.py --preset coder3b "$@"
