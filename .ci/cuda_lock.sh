#!/usr/bin/env bash
# The CUDA environment's lock, requirements-cuda.lock: vLLM, the torch it pins, a transformers it
# accepts and this project's other dependencies, resolved for Linux x86_64 with CUDA wheels from PyPI
# (Python 3.11, glibc >= 2.35: Ubuntu 22.04 and newer, the nvidia/cuda:*-ubuntu24.04 image of
# Dockerfile.cuda). No GPU is needed: `uv pip compile` resolves for that platform from the index.
#
#   .ci/cuda_lock.sh          re-resolve and rewrite requirements-cuda.lock (requirements.lock's
#                             versions and the current lock's are kept where they still fit)
#   .ci/cuda_lock.sh --check  CI: the committed lock, taken as constraints, must resolve to itself
#                             for that platform (every pin exists as a wheel and the set is consistent)
#
# Why glibc 2.35 and not manylinux_2_28: vLLM 0.33.0 needs llguidance 1.7.x, whose only Linux wheels
# are manylinux_2_31. Why vLLM 0.33.0: 0.34.0 pins flashinfer-python==0.7.3, which is not on PyPI.
# Needs network access to PyPI; uv is installed into a throwaway venv when it is not on PATH.
set -euo pipefail
cd "$(dirname "$0")/.."
VLLM_VERSION=0.33.0
PLATFORM=x86_64-manylinux_2_35
UV_VERSION=0.13.9
LOCK=requirements-cuda.lock
# Pure-Python packages published only as source (Snakemake's connection-pool): built, not required as wheels.
SDIST_ONLY="--no-binary connection-pool"
start=$(date +%s)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

if command -v uv >/dev/null 2>&1; then UV=uv; else
  python3 -m venv "$work/uv" && "$work/uv/bin/pip" install -q "uv==$UV_VERSION" && UV="$work/uv/bin/uv"
fi
# Inputs: vLLM, and every package of the CPU lock by name (torch and transformers are left to vLLM's pins).
{ echo "vllm==$VLLM_VERSION"; grep -E '^[A-Za-z0-9]' requirements.lock | sed 's/==.*//' | grep -v -x -E 'torch|transformers'; } > "$work/in.txt"
compile() {  # compile OUT [extra uv args...]
  local out=$1; shift
  # no pip.conf, no local wheel folders: uv's default package index only.
  env -u PIP_FIND_LINKS -u PIP_CONSTRAINT UV_NO_CONFIG=1 "$UV" pip compile "$work/in.txt" -o "$out" \
    --python-version 3.11 --python-platform "$PLATFORM" --only-binary :all: $SDIST_ONLY \
    --no-header --no-annotate --quiet "$@"
}
if [ "${1:-}" = "--check" ]; then
  grep -E '^[A-Za-z0-9]' "$LOCK" > "$work/constraints.txt"
  if ! compile "$work/out.txt" -c "$work/constraints.txt"; then
    echo "cuda_lock: $LOCK no longer resolves for $PLATFORM (see above); rerun .ci/cuda_lock.sh" >&2; exit 1
  fi
  if ! diff <(sort -f "$work/constraints.txt") <(grep -E '^[A-Za-z0-9]' "$work/out.txt" | sort -f) > "$work/diff"; then
    echo "cuda_lock: the resolution differs from $LOCK:" >&2; cat "$work/diff" >&2; exit 1
  fi
  echo "cuda_lock: $LOCK resolves for $PLATFORM, Python 3.11 ($(grep -c '==' "$work/constraints.txt") pins, $(( $(date +%s) - start )) s)"
  exit 0
fi
# Preferences: the current lock, else requirements.lock (uv keeps an output file's pins where they fit).
if [ -f "$LOCK" ]; then grep -E '^[A-Za-z0-9]' "$LOCK" > "$work/out.txt"; else grep -v -E '^(torch|transformers)==' requirements.lock > "$work/out.txt"; fi
compile "$work/out.txt"
{ cat <<HDR
# The CUDA environment (environment-cuda.yml, Dockerfile.cuda): vLLM $VLLM_VERSION with the torch and
# transformers it accepts and this project's dependencies, for Linux x86_64, Python 3.11, glibc >= 2.35,
# wheels from PyPI (torch's PyPI wheel is the CUDA build). Written by .ci/cuda_lock.sh (uv $UV_VERSION,
# platform $PLATFORM); CI reruns it with --check. Do not edit by hand.
HDR
  cat "$work/out.txt"; } > "$LOCK"
echo "cuda_lock: wrote $LOCK ($(grep -c '==' "$LOCK") pins, $(( $(date +%s) - start )) s)"
