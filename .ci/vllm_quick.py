"""CI's quick-preset training run on the real vLLM engine (called by .ci/vllm.sh in .venv-vllm).

`azr train --config quick rollout_engine=vllm` with the log-prob agreement check at every step, killed
(SIGKILL) after the step-2 checkpoint and resumed with --resume. Fails when the run or the resume
fails, when the steps are not recorded once each, or when any step's mean |trainer - engine| log-prob
difference (fp32 on both sides) is not below 1e-4; prints one line per step.
Usage: python .ci/vllm_quick.py [OUT_DIR]
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
AGREE = 1e-4
KEY = "rollout/logprob_mismatch"


def records(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()] if path.exists() else []


def main() -> int:
    out = Path(sys.argv[1]) if len(sys.argv) > 1 else Path(tempfile.mkdtemp(prefix="vllm_quick_"))
    run = out / "quick_vllm"
    cmd = [sys.executable, "-m", "azrlib.cli", "train", "--config", "quick", f"out_dir={out}", "run_name=quick_vllm",
           "rollout_engine=vllm", "vllm_max_model_len=1024", "logprob_check_every=1", f"logprob_mismatch_warn={AGREE}", f"logprob_mismatch_fail={AGREE}"]
    env = dict(os.environ, TQDM_DISABLE="1", PYTHONUNBUFFERED="1")
    start = time.time()
    out.mkdir(parents=True, exist_ok=True)
    log = open(out / "first.log", "w")
    proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
    latest = run / "checkpoints" / "latest"
    while proc.poll() is None:  # kill once the step-2 checkpoint is in (during step 3)
        if latest.exists() and latest.read_text().strip() == "step_000002":
            proc.send_signal(signal.SIGKILL)
            break
        time.sleep(0.2)
    rc = proc.wait()
    log.close()
    first = time.time() - start
    if rc != -signal.SIGKILL:
        print((out / "first.log").read_text()[-3000:])
        print(f"vllm_quick: the first run ended with {rc} before it could be killed after step 2")
        return 1
    print(f"vllm_quick: killed after the step-2 checkpoint ({first:.0f} s); resuming")
    done = subprocess.run(cmd + ["--resume"], cwd=ROOT, env=env, capture_output=True, text=True)
    if done.returncode:
        print(done.stdout[-2000:], done.stderr[-4000:])
        print(f"vllm_quick: the resumed run failed ({done.returncode})")
        return 1
    rows = records(run / "metrics.jsonl")
    timings = {r["step"]: r for r in records(run / "timings.jsonl")}
    steps = [r["step"] for r in rows]
    failed = []
    if sorted(set(steps)) != steps or steps[-1] != 3:
        failed.append(f"steps recorded {steps}, expected each of 1..3 once")
    for r in rows:
        if r["step"] < 1:
            continue
        value = r.get(KEY)
        print(f"  step {r['step']}: {KEY} {value!s:>12}  max {r.get(KEY + '_max')!s:>12}  "
              f"tokens {r.get('rollout/logprob_check_tokens')}  weight_sync "
              f"{timings.get(r['step'], {}).get('time/weight_sync')} s")
        if value is None or not value < AGREE:
            failed.append(f"step {r['step']}: {KEY} = {value} (must be < {AGREE})")
    print(f"vllm_quick: {time.time() - start:.0f} s in all")
    for line in failed:
        print("vllm_quick: FAIL", line)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
