"""Run model-written programs outside the trainer process, as a trust boundary for the reward.

What is trusted, what is not, and which layer holds which invariant: `THREAT_MODEL.md` in this
directory. Files: `executor.py` (the trainer-side pool and the result parser), `zygote.py` (the
worker and its fork server), `runner.py` (the process that runs one author's programs),
`confine.py` (seccomp, Landlock, rlimits, uid), `canon.py` (canonical values and the literal
parser, shared by both sides), `isolation.py` / `info.py` (what this machine supports).
"""

from azrlib.sandbox.executor import STATUSES, ExecResult, Executor
from azrlib.sandbox.isolation import SandboxUnavailable, detect_isolation

__all__ = ["Executor", "ExecResult", "STATUSES", "SandboxUnavailable", "detect_isolation"]
