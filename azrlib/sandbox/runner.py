"""The runner: the process that runs one author's programs. Stdlib only (imported by the worker).

A runner is forked by the fork server (`zygote.py`) before any job exists, so its memory holds no
other program, input or gold. It then blocks on its request pipe until the zygote hands it one
author's items (one program text with several inputs, or one script) as a length-prefixed JSON
frame, confines itself (`confine.py`: rlimits, uid, Landlock, seccomp) and runs the items in order.
For each item it writes one frame `{"status", "value", "error", "seconds"}` to its result pipe,
in bursts of up to `flush_items` frames or every FLUSH_SECONDS (the zygote asks for 1 when it
must know exactly which item hung). The frames carry no item number: the zygote attributes the k-th
frame to the k-th item it sent, checks the schema strictly and ends the runner at the first frame
that does not fit.

Inputs arrive as canonical literal text (`canon.call_args_text`, checked by the trusted side) and
are turned into values by `canon.call_args`, which parses and never compiles; the call is
`f(*args, **kwargs)`. Before each item the process state a program can change for the next one is
reset: trace and profile hooks, recursion limit, umask, working directory, environment.
"""

import builtins
import json
import os
import struct
import sys
import time

import canon
import confine

FRAME_HEADER = struct.Struct(">I")
FLUSH_SECONDS = 0.005
RUNNER_STATUSES = ("ok", "error", "rejected")  # timeout and crashed are the zygote's to say
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

def _no_duplicates(pairs):
    out = {}
    for k, v in pairs:
        if k in out:
            raise ValueError("duplicate key %r" % (k,))
        out[k] = v
    return out


def check_frame(payload, max_chars, kind="call"):
    """Run by the zygote on every frame a runner writes for an item of `kind`: (status, value,
    error, seconds), or None if the frame breaks the schema in any way (an ok script has no value;
    an ok call's value is a canonical literal). Never raises."""
    try:
        msg = json.loads(payload, object_pairs_hook=_no_duplicates)
        if type(msg) is not dict or set(msg) != {"status", "value", "error", "seconds"}:
            return None
        status, value, error, seconds = msg["status"], msg["value"], msg["error"], msg["seconds"]
        if type(seconds) is not float or not 0.0 <= seconds < 1e9:
            return None
        if status not in RUNNER_STATUSES:
            return None
        if status == "ok" and kind == "script":
            if value is not None or error is not None:
                return None
        elif status == "ok":
            if type(value) is not str or error is not None or len(value) > max_chars:
                return None
            if canon.canonical_repr(canon.parse_literal(value, max_chars=max_chars), max_chars) != value:
                return None
        elif value is not None or type(error) is not str:
            return None
        else:
            error = error[:MAX_ERROR_CHARS]
        return status, value, error, seconds
    except Exception:  # noqa: BLE001 - anything a runner writes must end here, as a None
        return None



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
        job = json.loads(raw)
        del raw
        confine.confine(config, job["cpu_seconds"])
        max_chars = config["max_output_chars"]
        flush_items = max(1, int(job["flush_items"]))
        out, last, compiled = [], time.monotonic(), {}
        for kind, program, args_text, _timeout in job["items"]:
            _reset_state(config)
            t0 = time.perf_counter()
            status, value, error = run_one(kind, program, args_text, max_chars, compiled)
            seconds = time.perf_counter() - t0
            payload = json.dumps({"status": status, "value": value, "error": error, "seconds": seconds}).encode()
            out.append(FRAME_HEADER.pack(len(payload)) + payload)
            now = time.monotonic()
            if len(out) >= flush_items or now - last >= FLUSH_SECONDS:
                _write_all(res_fd, b"".join(out))
                out, last = [], now
        _write_all(res_fd, b"".join(out))
    finally:
        os._exit(0)


def _reset_state(config):
    try:
        sys.settrace(None)
        sys.setprofile(None)
        sys.setrecursionlimit(DEFAULT_RECURSION_LIMIT)
        os.umask(0o022)
        os.chdir(config["tmp"])
        os.environ.clear()
        os.environ.update(config["env"])
    except BaseException:  # noqa: B902 - a program of this same author broke the tools; carry on
        pass


def run_one(kind, program, args_text, max_chars, compiled=None):
    """Returns (status, value, error). `compiled` caches code objects by program text (one author's
    items share it: compiled once, executed afresh for every item)."""
    g = {"__name__": "__main__", "__builtins__": builtins}
    try:
        code = compiled.get(program) if compiled is not None else None
        if code is None:
            code = compile(program, "<program>", "exec")
            if compiled is not None:
                compiled[program] = code
        if kind == "call":
            args, kwargs = canon.call_args(args_text)
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
