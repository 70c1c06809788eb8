"""The runner: the process that runs one author's programs. Stdlib only (imported by the worker).

A runner is forked by the fork server (`zygote.py`) before any job exists, so its memory holds no
other program, input or gold. It then blocks on its request pipe until the zygote hands it one
author's items (one program text with several inputs, or one script) as one length-prefixed
`marshal` frame written by the trusted zygote, confines itself (`confine.py`: rlimits, uid,
Landlock, seccomp) and runs the items in order. For each item it writes one binary frame to its
result pipe: a status byte (ok, error, rejected), the seconds as a float64, then UTF-8 text (the
canonical repr of an ok call's value, an error message, or nothing for an ok script). Frames go
out in bursts of up to `flush_items` or every FLUSH_SECONDS (the zygote asks for 1 when it must
know exactly which item hung). The frames carry no item number: the zygote attributes the k-th
frame to the k-th item it sent, checks it strictly (`check_frame`) and ends the runner at the
first frame that does not fit. Nothing a runner writes is ever unmarshalled.

Inputs arrive as values the trusted side parsed from literal text (`canon.call_args_wire`):
`marshal` bytes, or canonical literal text when they hold a set (so that a set is built in the
order it was written), turned into values by `canon.call_args`, which parses and never compiles;
the call is `f(*args, **kwargs)`. Before each item the process state a program can change for the
next one is reset: trace and profile hooks, recursion limit, umask, working directory and, when
the program changed `os.environ`, the environment.
"""

import builtins
import marshal
import os
import struct
import sys
import time

import canon
import confine

FRAME_HEADER = struct.Struct(">I")
RESULT_HEAD = struct.Struct(">Bd")  # status code, seconds; the text follows
FLUSH_SECONDS = 0.005
RUNNER_STATUSES = ("ok", "error", "rejected")  # timeout and crashed are the zygote's to say
_CODE = {s: k for k, s in enumerate(RUNNER_STATUSES)}
MAX_ERROR_CHARS = 300
DEFAULT_RECURSION_LIMIT = sys.getrecursionlimit()


def read_frame(fd, max_bytes):
    """One length-prefixed frame from a pipe (blocking); None on EOF or an oversized length."""
    head = _read_exact(fd, FRAME_HEADER.size)
    if head is None:
        return None
    (n,) = FRAME_HEADER.unpack(head)
    if n > max_bytes:
        return None
    return _read_exact(fd, n)


def _read_exact(fd, n):
    parts, left = [], n
    while left:
        chunk = os.read(fd, min(left, 1 << 20))
        if not chunk:
            return None
        parts.append(chunk)
        left -= len(chunk)
    return b"".join(parts)


def write_frame(fd, payload):
    _write_all(fd, FRAME_HEADER.pack(len(payload)) + payload)


def _write_all(fd, data):
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view):]


# ----------------------------------------------------------------------------- the frame check

def check_frame(payload, max_chars, kind="call"):
    """Run by the zygote on every frame a runner writes for an item of `kind`: (status, value,
    error, seconds), or None if the frame breaks the format in any way (an unknown status byte,
    seconds not in [0, 1e9), text that is not UTF-8, an ok script with text, an ok call whose
    value is not a canonical literal). Never raises."""
    try:
        if type(payload) is not bytes or len(payload) < RESULT_HEAD.size:
            return None
        code, seconds = RESULT_HEAD.unpack_from(payload)
        if code >= len(RUNNER_STATUSES) or not 0.0 <= seconds < 1e9:  # NaN fails too
            return None
        status = RUNNER_STATUSES[code]
        text = payload[RESULT_HEAD.size:].decode("utf-8")
        if status != "ok":
            return status, None, text[:MAX_ERROR_CHARS], seconds
        if kind == "script":
            return (status, None, None, seconds) if not text else None
        if len(text) > max_chars or not canon.is_canonical(text, max_chars):
            return None
        return status, text, None, seconds
    except Exception:  # noqa: BLE001 - anything a runner writes must end here, as a None
        return None


def result_frame(status, text, seconds):
    """The frame a runner writes for one item (the inverse of `check_frame`)."""
    payload = RESULT_HEAD.pack(_CODE[status], seconds) + (text or "").encode("utf-8", "backslashreplace")
    return FRAME_HEADER.pack(len(payload)) + payload


# ----------------------------------------------------------------------------- the runner

def runner_main(req_fd, res_fd, config, parent_pid):
    """Entry point in the freshly forked runner (child of the fork server `parent_pid`); never
    returns."""
    try:
        keep = sorted((req_fd, res_fd))
        os.closerange(3, keep[0])
        os.closerange(keep[0] + 1, keep[1])
        os.closerange(keep[1] + 1, 4096)
        raw = read_frame(req_fd, 1 << 30)
        if raw is None:
            os._exit(0)  # the zygote is gone or shut us down unused
        os.close(req_fd)
        confine.set_parent_death_signal()
        if os.getppid() != parent_pid:
            os._exit(73)  # the fork server died while we waited
        job = marshal.loads(raw)  # written by the trusted zygote
        del raw
        confine.confine(config, job["cpu_seconds"])
        max_chars = config["max_output_chars"]
        flush_items = max(1, int(job["flush_items"]))
        out, last, compiled = [], time.monotonic(), {}
        env, env_data = config["env"], config["env_data"]
        for kind, program, args, _timeout in job["items"]:
            _reset_state(config, env, env_data)
            t0 = time.perf_counter()
            status, value, error = run_one(kind, program, args, max_chars, compiled)
            seconds = time.perf_counter() - t0
            out.append(result_frame(status, value if status == "ok" else error, seconds))
            now = time.monotonic()
            if len(out) >= flush_items or now - last >= FLUSH_SECONDS:
                _write_all(res_fd, b"".join(out))
                out, last = [], now
        _write_all(res_fd, b"".join(out))
    finally:
        os._exit(0)


def set_environment(env):
    """Make `os.environ` exactly `env`; returns its encoded store, for `_reset_state`."""
    os.environ.clear()
    os.environ.update(env)
    return dict(os.environ._data)


def _reset_state(config, env, env_data=None):
    """`env` is the environment runners start with (str -> str), `env_data` the same as
    `os.environ` stores it (encoded), for a cheap exact check that nothing changed."""
    try:
        sys.settrace(None)
        sys.setprofile(None)
        sys.setrecursionlimit(DEFAULT_RECURSION_LIMIT)
        os.umask(0o022)
        os.chdir(config["tmp"])
        data = getattr(os.environ, "_data", None)
        if type(data) is not dict or data != env_data:  # changed, replaced, or no snapshot
            os.environ.clear()
            os.environ.update(env)
    except BaseException:  # noqa: B902 - a program of this same author broke the tools; carry on
        pass


def run_one(kind, program, args, max_chars, compiled=None):
    """Returns (status, value, error). `args` is `marshal` bytes of (args, kwargs) or canonical
    literal text (`canon.call_args_wire`). `compiled` caches code objects by program text (one
    author's items share it: compiled once, executed afresh for every item)."""
    g = {"__name__": "__main__", "__builtins__": builtins}
    try:
        code = compiled.get(program) if compiled is not None else None
        if code is None:
            code = compile(program, "<program>", "exec")
            if compiled is not None:
                compiled[program] = code
        if kind == "call":
            args, kwargs = marshal.loads(args) if type(args) is bytes else canon.call_args(args)
        exec(code, g)
        if kind == "script":
            return "ok", None, None
        f = g.get("f")
        if not callable(f):
            return "error", None, "NameError: the program defines no function f"
        result = f(*args, **kwargs)
    except BaseException as e:  # noqa: B902 - SystemExit, KeyboardInterrupt are program errors too
        return "error", None, describe(e)
    try:
        return "ok", canon.canonical_repr(result, max_chars), None
    except canon.TooLarge as e:
        return "rejected", None, "output too large: %s" % (e,)
    except canon.Unsupported as e:
        return "rejected", None, str(e)
    except RecursionError:
        return "rejected", None, "output nested too deeply"
    except BaseException as e:  # e.g. MemoryError while building the repr
        return "error", None, describe(e)


def describe(e):
    try:
        msg = str(e)
    except BaseException:  # noqa: B902
        msg = "<unprintable>"
    name = type(e).__name__
    if not isinstance(name, str):
        name = "Exception"
    return (name + ": " + msg)[:300]
