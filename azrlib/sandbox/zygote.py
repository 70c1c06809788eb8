"""The sandbox worker ("zygote"): a long-lived interpreter that forks the processes that run
model-written programs. It is started by `azrlib.sandbox.executor` (inside bubblewrap when
available) and imports nothing from azrlib: it runs with `python -S -s -B`, stdlib only.

Protocol (JSON lines). Parent -> zygote on stdin: one job per line,
  {"job": id, "mode": "batch"|"isolated", "items": [[i, kind, program, inputs, timeout_s], ...]}
Zygote -> parent on stdout: {"ready": {...}} once, then per item, in any order,
  {"i": i, "status": ..., "value": ..., "error": ..., "seconds": ..., ...}
and {"done": id} when a job is finished. Result lines written by a runner are forwarded as they
are (the parent validates them), so the zygote does little per item.

Inside a job the zygote forks one child for all items that the static screen (`screen.py`) lets
share a runner, and one child per item for the rest ("isolated" mode forces the latter).
The child drops to its own uid, sets rlimits, applies Landlock and a seccomp filter (no fork, no
exec, no sockets but AF_UNIX), then runs the items in order, writing one JSON line per item to a
private pipe. The zygote enforces each item's wall-clock timeout by SIGKILLing the child's process
group, reports a crash when the child dies mid-item, and forks a fresh child for the rest of the
batch after a timeout, a crash, or when the child reports that a program tainted shared state.
Values are canonicalised here, in the child, so the parent never touches a user object.
"""

import builtins
import ctypes
import errno
import json
import mmap
import os
import select
import signal
import struct
import sys
import time

from screen import batch_safe_code, compile_call  # stdlib-only module beside this file

# Modules loaded before any fork so that programs' imports are cheap. Programs that import anything
# else, or touch module state, are sent to isolated mode by the parent's static screen.
PRELOAD = (
    "collections", "itertools", "functools", "math", "re", "string", "heapq", "bisect", "operator",
    "typing", "copy", "fractions", "statistics", "cmath", "array", "textwrap", "json", "unicodedata",
    "dataclasses", "enum", "numbers", "decimal", "random", "time", "datetime", "hashlib", "os",
    "shutil", "sys",
)

MAX_MESSAGE_BYTES_EXTRA = 4096
FLUSH_ITEMS = 64  # a runner writes its results in bursts of this many...
FLUSH_SECONDS = 0.005  # ...or after this long, whichever comes first
POLL_SECONDS = 0.02  # how often the zygote looks at a silent runner's progress
PROGRESS = mmap.mmap(-1, 8)  # shared with the runners (MAP_SHARED): index of the item running


# ----------------------------------------------------------------------------- canonical repr

class Unsupported(Exception):
    """The value is not made of builtin literal types."""


class TooLarge(Exception):
    """The canonical repr would exceed the size cap."""


_NUMERIC = (bool, int, float)
# Stdlib mappings whose `==` is dict's: canonicalised as plain dicts (captured before any user code).
import collections as _collections  # noqa: E402

_DICT_LIKE = (_collections.Counter, _collections.defaultdict, _collections.OrderedDict)


def _sorted_reprs(items, budget, depth):
    reprs = [_canon(x, budget, depth + 1) for x in items]
    kinds = {type(x) for x in items}
    if kinds and (kinds <= set(_NUMERIC) or kinds == {str} or kinds == {bytes}):
        # One ordered family: sort by value (compares builtins only, no user code runs).
        order = sorted(range(len(items)), key=lambda k: items[k])
    else:
        order = sorted(range(len(items)), key=lambda k: (type(items[k]).__name__, reprs[k]))
    return [reprs[k] for k in order], order


def _float_repr(x):
    if x != x:
        return "float('nan')"
    if x in (float("inf"), float("-inf")):
        return "float('inf')" if x > 0 else "float('-inf')"
    return repr(x)


def _canon(x, budget, depth):
    """budget is a one-element list holding the characters still allowed."""
    if depth > 100:
        raise TooLarge("nesting deeper than 100")
    t = type(x)
    if x is None or t is bool:
        s = repr(x)
    elif t is int:
        if x.bit_length() > 4 * max(budget[0], 1) + 8:
            raise TooLarge("integer too large")
        try:
            s = repr(x)
        except ValueError:  # beyond sys.int_info.str_digits_check_threshold
            raise TooLarge("integer too large")
    elif t is float:
        s = _float_repr(x)
    elif t is complex:
        s = "complex(%s, %s)" % (_float_repr(x.real), _float_repr(x.imag))
    elif t is str or t is bytes:
        if len(x) > budget[0]:
            raise TooLarge("string longer than the output cap")
        s = repr(x)
    elif t is list or t is tuple:
        if len(x) > budget[0]:
            raise TooLarge("sequence longer than the output cap")
        parts = [_canon(v, budget, depth + 1) for v in x]
        if t is list:
            s = "[" + ", ".join(parts) + "]"
        elif len(parts) == 1:
            s = "(" + parts[0] + ",)"
        else:
            s = "(" + ", ".join(parts) + ")"
    elif t is dict or t in _DICT_LIKE:
        if len(x) > budget[0]:
            raise TooLarge("dict longer than the output cap")
        keys = list(x.keys())
        key_reprs, order = _sorted_reprs(keys, budget, depth)
        parts = [kr + ": " + _canon(x[keys[k]], budget, depth + 1) for kr, k in zip(key_reprs, order)]
        s = "{" + ", ".join(parts) + "}"
    elif t is set or t is frozenset:
        if len(x) > budget[0]:
            raise TooLarge("set longer than the output cap")
        reprs, _ = _sorted_reprs(list(x), budget, depth)
        if t is set:
            s = "{" + ", ".join(reprs) + "}" if reprs else "set()"
        else:
            s = "frozenset({" + ", ".join(reprs) + "})" if reprs else "frozenset()"
    else:
        raise Unsupported("unsupported output type %s" % t.__name__)
    budget[0] -= len(s)
    if budget[0] < 0:
        raise TooLarge("output larger than the cap")
    return s


def canonical_repr(x, max_chars):
    return _canon(x, [max_chars], 0)


# ----------------------------------------------------------------------------- isolation layers

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


# ----------------------------------------------------------------------------- the child

CONFIG = {}  # filled from the command line: uid, gid, limits, landlock paths


def _set_rlimits(n_items, total_timeout):
    import resource
    mem = CONFIG["memory_bytes"]
    limits = [
        (resource.RLIMIT_AS, mem),
        (resource.RLIMIT_CPU, int(total_timeout) + 2),
        (resource.RLIMIT_FSIZE, CONFIG["file_bytes"]),
        (resource.RLIMIT_NOFILE, 64),
        (resource.RLIMIT_CORE, 0),
        (resource.RLIMIT_NPROC, CONFIG["nproc"]),
    ]
    for which, value in limits:
        try:
            resource.setrlimit(which, (value, value))
        except (ValueError, OSError):
            pass


def _drop_privileges():
    if os.getuid() == 0 and CONFIG.get("uid") is not None:
        os.setgroups([])
        os.setgid(CONFIG["gid"])
        os.setuid(CONFIG["uid"])


def _enter_child(write_fd, n_items, total_timeout):
    """Make this freshly forked process a contained runner. Any failure kills it."""
    os.setpgid(0, 0)
    _libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    devnull = os.open(os.devnull, os.O_RDWR)
    for fd in (0, 1, 2):
        os.dup2(devnull, fd)
    os.closerange(3, write_fd)
    os.closerange(write_fd + 1, 4096)
    os.dup2(write_fd, 3) if write_fd != 3 else None
    if write_fd != 3:
        os.close(write_fd)
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a too-large write raises instead of killing
    for s in (signal.SIGINT, signal.SIGTERM, signal.SIGPIPE):
        signal.signal(s, signal.SIG_DFL)
    _set_rlimits(n_items, total_timeout)
    _drop_privileges()
    if CONFIG["landlock"]:
        apply_landlock(CONFIG["landlock"], CONFIG["read_paths"], CONFIG["write_paths"])
    if CONFIG["seccomp"]:
        if not apply_seccomp():
            os._exit(71)
    return 3


def _builtins_snapshot():
    return dict(vars(builtins))


def _tainted(snapshot, modules_before):
    b = vars(builtins)
    if len(b) != len(snapshot):
        return True
    for k, v in snapshot.items():
        if b.get(k, snapshot) is not v:
            return True
    for name, mod in modules_before.items():
        if sys.modules.get(name) is not mod:
            return True
    return False


def _run_one(kind, program, inputs, max_chars, compiled=None):
    """Returns (status, value, error). Runs in the child only."""
    g = {"__name__": "__main__", "__builtins__": builtins}
    try:
        if compiled is not None:
            code, call = compiled
        else:
            code = compile(program, "<program>", "exec")
            if kind == "call":
                call = compile("f(" + inputs + "\n)", "<input>", "eval")
        exec(code, g)
        if kind == "script":
            return "ok", None, None
        if not callable(g.get("f")):
            return "error", None, "NameError: the program defines no function f"
        result = eval(call, g)
    except BaseException as e:  # noqa: B902 - SystemExit, KeyboardInterrupt are program errors too
        return "error", None, _describe(e)
    try:
        return "ok", canonical_repr(result, max_chars), None
    except TooLarge as e:
        return "rejected", None, "output too large: %s" % (e,)
    except Unsupported as e:
        return "rejected", None, str(e)
    except RecursionError:
        return "rejected", None, "output nested too deeply"
    except BaseException as e:  # e.g. MemoryError while building the repr
        return "error", None, _describe(e)


def _describe(e):
    try:
        msg = str(e)
    except BaseException:
        msg = "<unprintable>"
    name = type(e).__name__
    if not isinstance(name, str):
        name = "Exception"
    return (name + ": " + msg)[:300]


def child_main(items, write_fd, max_chars):
    out = _enter_child(write_fd, len(items), sum(it[4] for it in items))
    snapshot = _builtins_snapshot()
    modules_before = {n: sys.modules[n] for n in PRELOAD if n in sys.modules}
    pending, last_flush = [], time.monotonic()
    for pos, item in enumerate(items):
        PROGRESS[0:4] = pos.to_bytes(4, "little")  # the zygote's clock for this item starts now
        i, kind, program, inputs = item[:4]
        t0 = time.perf_counter()
        status, value, error = _run_one(kind, program, inputs, max_chars, item[5] if len(item) > 5 else None)
        restart = _tainted(snapshot, modules_before) or error is not None and error.startswith("MemoryError")
        # Key order matters: the zygote checks the '{"i": N, ' prefix and the restart suffix.
        msg = {"i": i, "status": status, "value": value, "error": error,
               "seconds": round(time.perf_counter() - t0, 6), "restart": restart}
        pending.append(json.dumps(msg) + "\n")
        now = time.monotonic()
        if restart or len(pending) >= FLUSH_ITEMS or now - last_flush > FLUSH_SECONDS:
            _write_fd(out, "".join(pending).encode())
            pending.clear()
            last_flush = now
        if restart:
            os._exit(0)
    _write_fd(out, "".join(pending).encode())
    os._exit(0)


def _write_fd(fd, data):
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view):]


# ----------------------------------------------------------------------------- the zygote

def _emit(obj):
    _write_all((json.dumps(obj) + "\n").encode())


def _kill_group(pid):
    try:
        os.killpg(pid, signal.SIGKILL)
    except OSError:
        pass
    try:
        os.kill(pid, signal.SIGKILL)
    except OSError:
        pass
    try:
        os.waitpid(pid, 0)
    except ChildProcessError:
        pass


def _exit_description(pid):
    try:
        _, status = os.waitpid(pid, 0)
    except ChildProcessError:
        return "the runner process vanished"
    if os.WIFSIGNALED(status):
        sig = os.WTERMSIG(status)
        try:
            name = signal.Signals(sig).name
        except ValueError:
            name = str(sig)
        return "killed by signal %s" % name
    return "exited with status %d" % os.WEXITSTATUS(status)


def _fork_runner(items, max_chars):
    PROGRESS[0:4] = bytes(4)
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:
        try:
            os.close(r)
            child_main(items, w, max_chars)
        finally:
            os._exit(70)
    os.close(w)
    return pid, r


def run_items(items, mode, max_chars):
    """Run items in forked children and write one result line per item to stdout (any order).

    In "batch" mode items the static screen passes share one runner and the others get a runner
    each; "isolated" gives every item its own runner, "shared" puts all in one (for tests)."""
    if mode == "isolated":
        shared, alone = [], list(items)
    elif mode == "shared":
        shared, alone = list(items), []
    else:
        shared, alone = [], []
        for it in items:
            (shared if it[1] == "call" and _prepare(it) else alone).append(it)
    if shared:
        _run_in_runners(shared, False, max_chars)
    if alone:
        _run_in_runners(alone, True, max_chars)
    _clean_tmp()


def _prepare(item):
    """Compile once and screen the code objects; the runner inherits them through fork. Returns
    whether the item may share a runner. Compiling executes nothing; a program that does not
    compile is left for the runner to report."""
    try:
        codes = compile_call(item[2], item[3])
    except (SyntaxError, ValueError, RecursionError, MemoryError, TypeError, OverflowError):
        return True
    item.append(codes)
    return batch_safe_code(*codes)


def _progress(n):
    return min(int.from_bytes(PROGRESS[0:4], "little"), n - 1)


def _run_in_runners(items, isolated, max_chars):
    """Fork runners until every item has a result. The runner writes results in bursts and marks
    the item it is on in shared memory; a timeout or crash is charged to that item, and finished
    items whose results had not been written yet are run again in a fresh runner."""
    max_line = max_chars + MAX_MESSAGE_BYTES_EXTRA
    pending = list(items)
    while pending:
        batch = pending[:1] if isolated else pending
        pid, r = _fork_runner(batch, max_chars)
        buf = b""
        done = 0
        culprit = None
        seen, seen_since = 0, time.monotonic()
        try:
            while done < len(batch):
                now = time.monotonic()
                pos = max(_progress(len(batch)), done)
                if pos != seen:
                    seen, seen_since = pos, now
                left = seen_since + batch[pos][4] - now
                if left <= 0:
                    _kill_group(pid)
                    pid = None
                    culprit = pos
                    _emit_result(batch[pos][0], "timeout", "timed out after %.3g s" % batch[pos][4], now - seen_since)
                    break
                if not select.select([r], [], [], min(left, POLL_SECONDS))[0]:
                    continue
                chunk = os.read(r, 1 << 20)
                if not chunk:
                    why = _exit_description(pid)
                    pid = None
                    culprit = max(_progress(len(batch)), done)
                    _emit_result(batch[culprit][0], "crashed", why, time.monotonic() - seen_since)
                    break
                buf += chunk
                restart = False
                out = []
                while done < len(batch):
                    nl = buf.find(b"\n")
                    if nl < 0:
                        break
                    line, buf = buf[:nl + 1], buf[nl + 1:]
                    # The runner is untrusted: only the item number is checked here (the parent
                    # parses and type-checks every line); a line for another item ends the runner.
                    if not line.startswith(b'{"i": %d, ' % batch[done][0]):
                        restart = True
                        culprit = done
                        _emit_result(batch[done][0], "crashed", "the runner wrote a malformed result", 0.0)
                        break
                    out.append(line)
                    done += 1
                    if line.endswith(b'"restart": true}\n'):
                        restart = True
                        break
                if out:
                    _write_all(b"".join(out))
                if restart:
                    break
                if len(buf) > max_line:
                    culprit = done
                    _emit_result(batch[done][0], "crashed", "the runner wrote an oversized result", 0.0)
                    break
        finally:
            os.close(r)
            if pid is not None:
                _kill_group(pid)
        if culprit is None:
            pending = pending[done:]
        else:  # items after the last reported one, except the culprit, run again
            pending = batch[done:culprit] + pending[culprit + 1:]


def _emit_result(i, status, error, seconds):
    _emit({"i": i, "status": status, "value": None, "error": error, "seconds": round(seconds, 6)})


def _write_all(data):
    view = memoryview(data)
    while view:
        view = view[os.write(1, view):]


def _clean_tmp():
    tmp = CONFIG.get("tmp")
    if not tmp:
        return
    try:
        names = os.listdir(tmp)
    except OSError:
        return
    if names:
        import shutil
        for n in names:
            p = os.path.join(tmp, n)
            try:
                if os.path.isdir(p) and not os.path.islink(p):
                    shutil.rmtree(p, ignore_errors=True)
                else:
                    os.unlink(p)
            except OSError:
                pass


def _self_test(max_chars):
    """Fork a runner with every layer on and check that the layers actually bite."""
    probe = (
        "def f():\n"
        "    import os, socket\n"
        "    out = {}\n"
        "    try:\n"
        "        pid = os.fork()\n"
        "        if pid == 0:\n"
        "            os._exit(0)\n"
        "        os.waitpid(pid, 0)\n"
        "        out['fork_blocked'] = False\n"
        "    except OSError:\n"
        "        out['fork_blocked'] = True\n"
        "    try:\n"
        "        socket.socket(socket.AF_INET, socket.SOCK_STREAM).close()\n"
        "        out['inet_blocked'] = False\n"
        "    except OSError:\n"
        "        out['inet_blocked'] = True\n"
        "    out['uid'] = os.getuid()\n"
        "    try:\n"
        "        open(%r + '/.azr_probe', 'w').close()\n"
        "        out['worker_dir_writable'] = True\n"
        "    except OSError:\n"
        "        out['worker_dir_writable'] = False\n"
        "    return out\n" % os.path.dirname(os.path.abspath(__file__))
    )
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:
        try:
            os.close(r)
            child_main([[0, "call", probe, "", 10.0]], w, max_chars)
        finally:
            os._exit(70)
    os.close(w)
    data = b""
    while True:
        ready = select.select([r], [], [], 10.0)[0]
        if not ready:
            break
        chunk = os.read(r, 65536)
        if not chunk:
            break
        data += chunk
    os.close(r)
    _kill_group(pid)
    try:
        msg = json.loads(data.split(b"\n")[0])
        if msg["status"] == "ok":
            import ast
            return ast.literal_eval(msg["value"])
        return {"error": msg.get("error")}
    except Exception as e:  # noqa: BLE001
        return {"error": "self test failed: %r" % (e,)}


def main():
    CONFIG.update(json.loads(sys.argv[1]))
    _libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    if os.getppid() == 1 and not CONFIG.get("in_namespace"):
        os._exit(0)  # the executor is already gone
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    for name in PRELOAD:
        try:
            __import__(name)
        except ImportError:
            pass
    if CONFIG["landlock"]:
        CONFIG["landlock"] = min(landlock_abi(), CONFIG["landlock"])
    if CONFIG["seccomp"] and _SECCOMP is None:
        CONFIG["seccomp"] = False
    max_chars = CONFIG["max_output_chars"]
    # Programs must not see which family they run in: the two runs get identical environments.
    hash_seed = os.environ.pop("PYTHONHASHSEED", None)
    probe = _self_test(max_chars)
    _emit({"ready": {"pid": os.getpid(), "hash_seed": hash_seed,
                     "landlock_abi": CONFIG["landlock"], "seccomp": CONFIG["seccomp"], "probe": probe}})
    stdin = sys.stdin.buffer
    for line in stdin:
        try:
            job = json.loads(line)
        except ValueError:
            continue
        run_items(job["items"], job.get("mode", "batch"), max_chars)
        _emit({"done": job["job"]})


if __name__ == "__main__":
    main()
