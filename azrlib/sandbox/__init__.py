"""Run model-written programs outside the trainer process. See `executor.py` for the design."""

from azrlib.sandbox.executor import STATUSES, ExecResult, Executor
from azrlib.sandbox.isolation import SandboxUnavailable, detect_isolation

__all__ = ["Executor", "ExecResult", "STATUSES", "SandboxUnavailable", "detect_isolation"]
