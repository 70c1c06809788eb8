"""What isolation this machine can give model-written programs, probed once per process.

The executor uses the strongest combination available and records what it used
(`Executor.isolation`) with every run, so a result can be traced to the containment it had.
"""

from __future__ import annotations

import ctypes
import functools
import os
import platform
import shutil
import subprocess

SECCOMP_ARCHES = ("x86_64", "aarch64")


class SandboxUnavailable(RuntimeError):
    """The sandbox cannot start with the isolation asked for."""


@functools.lru_cache(maxsize=1)
def detect_isolation() -> dict:
    """Probe bubblewrap, seccomp, Landlock and uid switching. Cheap after the first call."""
    bwrap = shutil.which("bwrap")
    bwrap_ok, bwrap_version, bwrap_error = False, None, None
    if bwrap:
        try:
            out = subprocess.run([bwrap, "--version"], capture_output=True, text=True, timeout=10)
            bwrap_version = out.stdout.strip().split()[-1] if out.stdout.strip() else None
            test = subprocess.run(
                [bwrap, "--ro-bind", "/", "/", "--unshare-pid", "--unshare-net", "--dev", "/dev",
                 "--proc", "/proc", "--die-with-parent", "true"],
                capture_output=True, text=True, timeout=20)
            bwrap_ok = test.returncode == 0
            bwrap_error = test.stderr.strip()[:300] or None
        except (OSError, subprocess.SubprocessError) as e:
            bwrap_error = str(e)
    machine = platform.machine()
    seccomp = machine in SECCOMP_ARCHES and _kernel_has_seccomp()
    return {
        "bubblewrap": bwrap_ok,
        "bwrap_path": bwrap,
        "bwrap_version": bwrap_version,
        "bwrap_error": None if bwrap_ok else (bwrap_error or "bwrap not found on PATH"),
        "seccomp": seccomp,
        "landlock_abi": _landlock_abi(machine),
        "can_switch_uid": os.geteuid() == 0,
        "kernel": platform.release(),
        "machine": machine,
    }


def _kernel_has_seccomp() -> bool:
    try:
        with open("/proc/self/status") as f:
            return any(line.startswith("Seccomp:") for line in f)
    except OSError:
        return False


def _landlock_abi(machine: str) -> int:
    if machine not in SECCOMP_ARCHES:
        return 0
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.syscall.restype = ctypes.c_long
        rc = libc.syscall(444, None, ctypes.c_size_t(0), ctypes.c_uint(1))  # same nr on both arches
        return int(rc) if rc > 0 else 0
    except OSError:
        return 0
