"""Confinement of a runner process: seccomp BPF filter, Landlock, rlimits, uid drop.

Stdlib only (imported by the sandbox worker as a top-level module). Landlock is applied once by the
fork server (`apply_landlock`), before it forks any runner, so that every runner inherits it;
`confine(config, ...)` is called by a freshly forked runner once it holds its job and before it
runs any program (rlimits, uid, seccomp: seccomp cannot go in the fork server, which must fork).
Every layer that fails to apply when asked for kills the process (exit status 71), never runs a
program unconfined. Not a layer, but here because it also needs libc: `inherit_code_mappings`, run
once by the fork server, so that runners inherit its mapped code instead of faulting it in.
"""

import ctypes
import errno
import os
import signal
import struct

_libc = ctypes.CDLL(None, use_errno=True)
_libc.syscall.restype = ctypes.c_long
_libc.prctl.argtypes = [ctypes.c_int, ctypes.c_ulong, ctypes.c_ulong, ctypes.c_ulong, ctypes.c_ulong]

PR_SET_PDEATHSIG = 1
PR_SET_NO_NEW_PRIVS = 38
PR_SET_SECCOMP = 22
SECCOMP_MODE_FILTER = 2

# name -> (audit arch, syscall numbers)
_ARCHES = {
    "x86_64": (0xC000003E, dict(
        clone=56, clone3=435, fork=57, vfork=58, execve=59, execveat=322, socket=41, ptrace=101,
        mount=165, umount2=166, unshare=272, setns=308, bpf=321, perf_event_open=298, keyctl=250,
        add_key=248, request_key=249, userfaultfd=323, io_uring_setup=425, io_uring_enter=426,
        io_uring_register=427, process_vm_readv=310, process_vm_writev=311, chroot=161,
        pivot_root=155, kexec_load=246, init_module=175, finit_module=313, reboot=169,
        landlock_create_ruleset=444, landlock_add_rule=445, landlock_restrict_self=446)),
    "aarch64": (0xC00000B7, dict(
        clone=220, clone3=435, execve=221, execveat=281, socket=198, ptrace=117, mount=40,
        umount2=39, unshare=97, setns=268, bpf=280, perf_event_open=241, keyctl=219, add_key=217,
        request_key=218, userfaultfd=282, io_uring_setup=425, io_uring_enter=426,
        io_uring_register=427, process_vm_readv=270, process_vm_writev=271, chroot=51,
        pivot_root=41, kexec_load=104, init_module=105, finit_module=273, reboot=142,
        landlock_create_ruleset=444, landlock_add_rule=445, landlock_restrict_self=446)),
}
_MACHINE = os.uname().machine
_ARCH = _ARCHES.get(_MACHINE)

CLONE_THREAD = 0x00010000
AF_UNIX = 1
SECCOMP_RET_KILL_PROCESS = 0x80000000
SECCOMP_RET_ERRNO = 0x00050000
SECCOMP_RET_ALLOW = 0x7FFF0000
# classic BPF opcodes
_LD_W_ABS = 0x20
_JEQ_K = 0x15
_JSET_K = 0x45
_JGE_K = 0x35
_RET_K = 0x06


def _seccomp_program():
    """A BPF filter: fork-like clones (without CLONE_THREAD) and exec fail with EPERM, clone3
    with ENOSYS (so glibc falls back to clone, which we can inspect), sockets other than AF_UNIX
    and a list of kernel-facing syscalls with EPERM. Returns the packed instructions or None."""
    if _ARCH is None:
        return None
    audit_arch, nr = _ARCH
    deny = ["fork", "vfork", "execve", "execveat", "ptrace", "mount", "umount2", "unshare", "setns",
            "bpf", "perf_event_open", "keyctl", "add_key", "request_key", "userfaultfd",
            "io_uring_setup", "io_uring_enter", "io_uring_register", "process_vm_readv",
            "process_vm_writev", "chroot", "pivot_root", "kexec_load", "init_module",
            "finit_module", "reboot"]
    deny = [nr[n] for n in deny if n in nr]
    eperm = SECCOMP_RET_ERRNO | errno.EPERM
    enosys = SECCOMP_RET_ERRNO | errno.ENOSYS
    # Assemble with symbolic jump targets; resolved below (jumps are relative, forward only).
    prog = [("ld", 4), ("jeq", audit_arch, 1, 0), ("ret", SECCOMP_RET_KILL_PROCESS), ("ld", 0)]
    if _MACHINE == "x86_64":
        prog += [("jge", 0x40000000, "L_eperm", 0)]  # x32 ABI numbers
    for n in deny:
        prog.append(("jeq", n, "L_eperm", 0))
    prog += [("jeq", nr["clone3"], "L_enosys", 0), ("jeq", nr["clone"], "L_clone", 0),
             ("jeq", nr["socket"], "L_socket", 0), ("ret", SECCOMP_RET_ALLOW)]
    labels = {}
    body = [
        ("L_eperm", [("ret", eperm)]),
        ("L_enosys", [("ret", enosys)]),
        ("L_clone", [("ld", 16), ("jset", CLONE_THREAD, 0, 1), ("ret", SECCOMP_RET_ALLOW), ("ret", eperm)]),
        ("L_socket", [("ld", 16), ("jeq", AF_UNIX, 0, 1), ("ret", SECCOMP_RET_ALLOW), ("ret", eperm)]),
    ]
    for name, ins in body:
        labels[name] = len(prog)
        prog += ins
    out = []
    for pc, ins in enumerate(prog):
        op = ins[0]
        if op == "ld":
            out.append(struct.pack("HBBI", _LD_W_ABS, 0, 0, ins[1]))
        elif op == "ret":
            out.append(struct.pack("HBBI", _RET_K, 0, 0, ins[1]))
        else:
            code = {"jeq": _JEQ_K, "jset": _JSET_K, "jge": _JGE_K}[op]
            jt, jf = ins[2], ins[3]
            jt = labels[jt] - pc - 1 if isinstance(jt, str) else jt
            jf = labels[jf] - pc - 1 if isinstance(jf, str) else jf
            out.append(struct.pack("HBBI", code, 0, 0, ins[1])[:2] + bytes([jt, jf]) + struct.pack("I", ins[1]))
    return b"".join(out), len(out)


class _SockFprog(ctypes.Structure):
    _fields_ = [("len", ctypes.c_ushort), ("filter", ctypes.c_void_p)]


_SECCOMP = _seccomp_program()
_SECCOMP_BUF = ctypes.create_string_buffer(_SECCOMP[0]) if _SECCOMP else None
_SECCOMP_FPROG = _SockFprog(_SECCOMP[1], ctypes.cast(_SECCOMP_BUF, ctypes.c_void_p)) if _SECCOMP else None


def apply_seccomp():
    if _SECCOMP_FPROG is None:
        return False
    if _libc.prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0:
        return False
    rc = _libc.prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, ctypes.addressof(_SECCOMP_FPROG), 0, 0)
    return rc == 0


def landlock_abi():
    if _ARCH is None:
        return 0
    rc = _libc.syscall(_ARCH[1]["landlock_create_ruleset"], None, ctypes.c_size_t(0), ctypes.c_uint(1))
    return int(rc) if rc > 0 else 0


_LL_FS_EXECUTE, _LL_FS_READ_FILE, _LL_FS_READ_DIR = 1 << 0, 1 << 2, 1 << 3
O_PATH = 0o10000000


def apply_landlock(abi, read_paths, write_paths):
    """Restrict the file system to reading `read_paths` and reading/writing `write_paths`; with
    ABI >= 4 deny all TCP bind/connect, with ABI >= 6 deny signals to processes outside."""
    if abi <= 0:
        return False
    nfs = {1: 13, 2: 14, 3: 15, 4: 15}.get(abi, 16)
    handled_fs = (1 << nfs) - 1
    fields = [handled_fs]
    if abi >= 4:
        fields.append(0b11)  # LANDLOCK_ACCESS_NET_BIND_TCP | CONNECT_TCP
    if abi >= 6:
        fields.append(0b11)  # LANDLOCK_SCOPE_ABSTRACT_UNIX_SOCKET | SIGNAL
    attr = struct.pack("Q" * len(fields), *fields)
    nr = _ARCH[1]
    ruleset = _libc.syscall(nr["landlock_create_ruleset"], attr, ctypes.c_size_t(len(attr)), ctypes.c_uint(0))
    if ruleset < 0:
        return False
    try:
        read_access = _LL_FS_EXECUTE | _LL_FS_READ_FILE | _LL_FS_READ_DIR
        for paths, access in ((read_paths, read_access), (write_paths, handled_fs)):
            for p in paths:
                if not os.path.isdir(p):
                    continue  # directory rules only: file rules take a narrower access mask
                fd = os.open(p, O_PATH | os.O_CLOEXEC)
                try:
                    rule = struct.pack("=Qi", access, fd)
                    _libc.syscall(nr["landlock_add_rule"], ctypes.c_int(ruleset), ctypes.c_int(1), rule, ctypes.c_uint(0))
                finally:
                    os.close(fd)
        if _libc.prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0:
            return False
        return _libc.syscall(nr["landlock_restrict_self"], ctypes.c_int(ruleset), ctypes.c_uint(0)) == 0
    finally:
        os.close(ruleset)


def apply_landlock_scope(abi):
    """A nested Landlock domain of the runner's own that only scopes signals and abstract UNIX
    sockets (ABI >= 6): the runner can no longer signal its fork server, its worker or another
    runner, whatever its uid. The file-system rules are the fork server's, inherited. Two
    syscalls, no rules to add."""
    if abi < 6:
        return True  # nothing to scope with; the uid switch and seccomp stay
    attr = struct.pack("QQQ", 0, 0, 0b11)  # no fs, no net rights handled; scope both
    nr = _ARCH[1]
    ruleset = _libc.syscall(nr["landlock_create_ruleset"], attr, ctypes.c_size_t(len(attr)), ctypes.c_uint(0))
    if ruleset < 0:
        return False
    try:
        if _libc.prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0:
            return False
        return _libc.syscall(nr["landlock_restrict_self"], ctypes.c_int(ruleset), ctypes.c_uint(0)) == 0
    finally:
        os.close(ruleset)


# ----------------------------------------------------------------------------- the child

def set_rlimits(config, cpu_seconds):
    import resource
    limits = [
        (resource.RLIMIT_AS, config["memory_bytes"]),
        (resource.RLIMIT_CPU, int(cpu_seconds) + 2),
        (resource.RLIMIT_FSIZE, config["file_bytes"]),
        (resource.RLIMIT_NOFILE, 64),
        (resource.RLIMIT_CORE, 0),
        (resource.RLIMIT_NPROC, config["nproc"]),
    ]
    for which, value in limits:
        try:
            resource.setrlimit(which, (value, value))
        except (ValueError, OSError):
            pass


def drop_privileges(config):
    if os.getuid() == 0 and config.get("uid") is not None:
        os.setgroups([])
        os.setgid(config["gid"])
        os.setuid(config["uid"])
        if os.getuid() == 0 or os.geteuid() == 0:
            os._exit(71)


def inherit_code_mappings():
    """Make fork hand this process's mapped code pages to its children. Linux copies the page
    table of a private file mapping at fork only when the mapping already holds an anonymous
    page, so a fresh child takes a page fault for every few pages of the interpreter's code it
    runs. Writing one byte of each read-only file mapping onto itself (under a brief mprotect of
    the whole mapping, so that it is not split) gives it such a page, with unchanged content.
    Best effort: a mapping that refuses is left as it was."""
    PROT_READ, PROT_WRITE, PROT_EXEC = 1, 2, 4
    _libc.mprotect.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int]
    done = 0
    try:
        with open("/proc/self/maps") as f:
            lines = f.read().splitlines()
    except OSError:
        return 0
    for line in lines:
        parts = line.split()
        if len(parts) < 6 or not parts[5].startswith("/") or parts[1] not in ("r-xp", "r--p"):
            continue
        start, end = (int(x, 16) for x in parts[0].split("-"))
        prot = PROT_READ | (PROT_EXEC if parts[1][2] == "x" else 0)
        if _libc.mprotect(start, end - start, prot | PROT_WRITE) != 0:
            continue
        byte = ctypes.c_char.from_address(start)
        byte.value = byte.value  # a private copy of this one page, same bytes
        if _libc.mprotect(start, end - start, prot) != 0:
            os._exit(71)  # never leave code writable
        done += 1
    return done


def set_parent_death_signal():
    _libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)


def confine(config, cpu_seconds):
    """The runner's layers, in order: rlimits, uid, its own Landlock scope, seccomp (last: it
    forbids what the others need). Landlock's file-system rules are already in force, inherited
    from the fork server."""
    set_rlimits(config, cpu_seconds)
    drop_privileges(config)
    if config["landlock"] and not apply_landlock_scope(config["landlock"]):
        os._exit(71)
    if config["seccomp"] and not apply_seccomp():
        os._exit(71)
