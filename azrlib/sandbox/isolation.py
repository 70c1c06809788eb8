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
import sysconfig

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


def bwrap_command(bwrap: str, switch_uid: bool, base_prefix: str, worker_dir: str, env: dict) -> list[str]:
    """The bubblewrap command line of a sandbox worker (the interpreter and its arguments follow):
    new pid/net/ipc/uts namespaces, read-only system and interpreter, the worker's directory at
    /azr_worker, a private 64 MiB tmpfs /tmp, an empty environment but `env`, no capabilities but
    those a worker needs to drop to its uid and kill its runners."""
    cmd = [bwrap, "--unshare-pid", "--unshare-net", "--unshare-ipc", "--unshare-uts",
           "--unshare-cgroup-try", "--die-with-parent", "--new-session", "--cap-drop", "ALL"]
    if switch_uid:
        cmd += ["--cap-add", "CAP_SETUID", "--cap-add", "CAP_SETGID", "--cap-add", "CAP_KILL"]
    cmd += ["--ro-bind", "/usr", "/usr"]
    for link in ("lib", "lib64", "bin", "sbin"):
        target = os.path.join("/", link)
        if os.path.islink(target):
            cmd += ["--symlink", os.readlink(target), target]
        elif os.path.isdir(target):
            cmd += ["--ro-bind", target, target]
    if not base_prefix.startswith("/usr/"):
        # bwrap copies the modes of the parents it creates (e.g. /root 0700), which would lock
        # the sandbox uid out of the interpreter: create them world-traversable.
        for parent in _ancestors(base_prefix):
            cmd += ["--perms", "0755", "--dir", parent]
        cmd += ["--ro-bind", base_prefix, base_prefix]
    libdir = sysconfig.get_config_var("LIBDIR") or ""
    if libdir and os.path.isdir(libdir) and not libdir.startswith(("/usr/", base_prefix)):
        cmd += ["--ro-bind", libdir, libdir]
    cmd += ["--ro-bind", worker_dir, "/azr_worker", "--proc", "/proc", "--dev", "/dev",
            "--perms", "1777", "--size", str(64 << 20), "--tmpfs", "/tmp", "--chdir", "/tmp",
            "--clearenv"]
    for k, v in env.items():
        cmd += ["--setenv", k, v]
    return cmd


def cores() -> int:
    """The cores this process may run on."""
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):  # pragma: no cover - not Linux
        return os.cpu_count() or 2


def world_readable(path: str) -> bool:
    """Can another uid reach the interpreter's files (every parent directory traversable)?"""
    path = os.path.realpath(path)
    for p in _ancestors(path) + [path]:
        try:
            if not os.stat(p).st_mode & 0o005:
                return False
        except OSError:
            return False
    return True


def _ancestors(path: str) -> list[str]:
    parts = path.strip("/").split("/")[:-1]
    return ["/" + "/".join(parts[:k]) for k in range(1, len(parts) + 1)]
