"""The sandbox worker ("zygote"): reads jobs from the executor, hands each author's items to a
fresh runner, checks and attributes what comes back. Started by `azrlib.sandbox.executor` (inside
bubblewrap when available) as `python -S -s -B zygote.py CONFIG`: stdlib only, imports nothing
from azrlib; `canon.py`, `confine.py` and `runner.py` beside it are imported as top-level modules.

Processes. At start, before it reads any job, the zygote forks a *fork server*; the fork server
never reads stdin, so it never holds job data. Every runner is forked by the fork server (which
also reaps it and reports how it ended) and waits, empty, until the zygote sends it its items over
a pipe. One runner runs one author's items (the items of a job that share a program text); programs
of different authors never share a process. The zygote keeps SPARE_RUNNERS empty runners forked ahead.

Protocol with the executor. Executor -> zygote on stdin, one length-prefixed `marshal` frame per
job (both ends are trusted; the zygote never unmarshals anything a runner wrote):
  {"job": J, "items": [[i, kind, program, args, timeout_s], ...]}
with `args` as `canon.call_args_wire` made it (marshal bytes, or canonical literal text).
Zygote -> executor on stdout, JSON lines: {"ready": {...}} once, then for every item exactly one
  [J, i, status, value, error, seconds]
and [J, "done"] when the job is finished (lines are written in bursts, as runners' frames come in).
Every line is written by the zygote itself: a runner never holds stdout. From a runner the zygote
takes one length-prefixed binary frame per item, in item order (`runner.check_frame`: a status
byte, the seconds, UTF-8 text; an ok value must be a canonical literal); the first frame that does
not fit marks that item `crashed` and ends the runner, and the items after it run again in a fresh
runner. A timeout or a death is charged to the item the runner was on; the clock of an item starts
at the previous frame. After each author the private /tmp is emptied (by a process with the
sandbox uid, which owns what is there).
"""

import json
import marshal
import os
import select
import signal
import socket
import struct
import sys
import time

import canon
import confine
import runner

# Modules loaded once, before the fork server starts, so that programs' imports are cheap: the ones
# model programs import (on the AZR seed files: typing, collections, math, functools, string, re,
# os, heapq, sys; >= 97% of the imports). Every module more makes every fork dearer (a fork copies
# the page tables of the fork server: with decimal, random, datetime, hashlib, statistics... also
# preloaded, fork + exit of an idle runner cost ~1.4 ms of CPU instead of ~0.8 ms); a program that
# imports one of those pays for the import itself.
PRELOAD = (
    "collections", "itertools", "functools", "math", "re", "string", "heapq", "bisect", "operator",
    "typing", "copy", "time", "os", "sys", "resource",
)
SPARE_RUNNERS = 2  # empty runners forked ahead, so that a new author rarely waits for a fork
CONFIG = {}  # from the command line: uid, gid, limits, Landlock paths, tmp, env


# ----------------------------------------------------------------------------- fork server

class ForkServer:
    """The zygote's handle on the fork server. `take()` returns (pid, request fd, result fd) of a
    fresh, empty runner and asks for the next one at once, so that forking overlaps work. Runners
    are the fork server's children: it reaps them when told (`reap`) and reports how one ended
    (`exit_status`). Messages are packets on a SOCK_SEQPACKET pair, answered in order."""

    def __init__(self, config):
        self.sock, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        pid = os.fork()
        if pid == 0:
            self.sock.close()
            try:
                _serve(theirs, config)
            finally:
                os._exit(0)
        theirs.close()
        self.pid = pid
        self.spare = 0
        self.ready = []
        for _ in range(SPARE_RUNNERS):
            self._ask()

    def _ask(self):
        self.sock.send(b"F")
        self.spare += 1

    def _receive(self):
        """One reply; runners are queued in `ready`, anything else is returned."""
        msg, fds, _flags, _addr = socket.recv_fds(self.sock, 64, 2)
        if msg[:1] == b"F" and len(msg) == 5 and len(fds) == 2:
            self.spare -= 1
            self.ready.append((struct.unpack("i", msg[1:])[0], fds[0], fds[1]))
            return None
        if msg[:1] in (b"W", b"S"):
            return msg
        raise RuntimeError("the fork server stopped")

    def take(self):
        while not self.ready:
            self._receive()
        runner_ = self.ready.pop(0)
        self._ask()
        return runner_

    def reap(self, pid):
        """The runner was sent SIGKILL: the fork server collects it."""
        self.sock.send(b"R" + struct.pack("i", pid))

    def exit_status(self, pid):
        """The wait status of a runner that closed its result pipe (killed if it lingers)."""
        self.sock.send(b"W" + struct.pack("i", pid))
        while True:
            msg = self._receive()
            if msg is not None and msg[:1] == b"W":
                return struct.unpack("i", msg[1:5])[0]

    def settle(self):
        """Wait until every request so far is done (runners forked, killed ones reaped), so that
        the worker is at rest, a fixed number of processes, whenever it reports a job done."""
        self.sock.send(b"S")
        while self._receive() != b"S":
            pass


def _serve(sock, config):
    """The fork server's loop. It holds no job data: it only reads the requests above."""
    confine.set_parent_death_signal()
    devnull = os.open(os.devnull, os.O_RDWR)
    for fd in (0, 1, 2):
        os.dup2(devnull, fd)
    os.close(devnull)
    keep = sock.fileno()
    os.closerange(3, keep)
    os.closerange(keep + 1, 4096)
    # Warm what runners use (compiler, parser, canonical repr, frames, the per-item reset) on constant
    # programs until it is quickened and specialised, so that runners run it without copying the pages
    # they inherit; then freeze the heap, so that a runner's garbage collector leaves them alone too.
    env, cwd = dict(config["env"]), os.getcwd()
    config["env_data"] = env_data = runner.set_environment(env)  # every runner starts with this
    for k in range(40):
        runner._reset_state(config, env, env_data)
        status, value, _ = runner.run_one("call", "def f(x):\n    return [x, (x, 'a')]", marshal.dumps(((k,), {})), 1000, {})
        runner.check_frame(runner.result_frame(status, value, 0.001)[4:], 1000)
        runner.run_one("call", "def f(x, y=()):\n    return [x, {x: y}]", "((1,), {'y': (2.5, 'a')})", 1000)
        req_r, req_w = os.pipe()
        runner.write_frame(req_w, marshal.dumps({"items": [("call", "", b"", 1.0)], "k": k}))
        os.close(req_w)
        marshal.loads(runner.read_frame(req_r, 1 << 20))
        os.close(req_r)
    os.chdir(cwd)
    confine.inherit_code_mappings()  # reads /proc/self/maps: before Landlock
    # Landlock once, here, for every runner to inherit (a ruleset is inherited across fork and
    # cannot be loosened); the fork server itself opens no file from now on.
    if config["landlock"] and not confine.apply_landlock(config["landlock"], config["read_paths"],
                                                         config["write_paths"]):
        os._exit(71)
    import gc
    gc.collect()
    gc.freeze()
    me = os.getpid()
    while True:
        try:
            msg = sock.recv(64)
        except OSError:
            return
        tag = msg[:1]
        if tag == b"F":
            req_r, req_w = os.pipe()
            res_r, res_w = os.pipe()
            pid = os.fork()
            if pid == 0:
                try:
                    os.setpgid(0, 0)
                    sock.close()
                    os.close(req_w)
                    os.close(res_r)
                    runner.runner_main(req_r, res_w, config, me)
                finally:
                    os._exit(70)
            os.close(req_r)
            os.close(res_w)
            try:
                socket.send_fds(sock, [b"F" + struct.pack("i", pid)], [req_w, res_r])
            except OSError:
                return
            finally:
                os.close(req_w)
                os.close(res_r)
        elif tag in (b"R", b"W") and len(msg) == 5:
            pid = struct.unpack("i", msg[1:])[0]
            status = _wait_runner(pid, linger=tag == b"W")
            if tag == b"W":
                sock.send(b"W" + struct.pack("i", status))
        elif tag == b"S":
            sock.send(b"S")
        else:
            return


def _wait_runner(pid, linger):
    """Reap a runner; with `linger`, give it up to a second to finish exiting on its own (its
    exit status is wanted), then kill it."""
    deadline = time.monotonic() + (1.0 if linger else 0.0)
    try:
        while time.monotonic() < deadline:
            done, status = os.waitpid(pid, os.WNOHANG)
            if done:
                return status
            time.sleep(0.001)
        for kill in (os.killpg, os.kill):
            try:
                kill(pid, signal.SIGKILL)
            except OSError:
                pass
        return os.waitpid(pid, 0)[1]
    except ChildProcessError:
        return -1


# ----------------------------------------------------------------------------- one author

def run_author(fs, items, max_chars, out):
    """Run one author's items ([i, kind, program, args, timeout]) in fresh runners until each
    has a result; `out(i, status, value, error, seconds)` once per item, in order.

    A runner first writes its frames in bursts. If it then hangs, dies or writes a frame that does
    not fit, the zygote cannot tell which of the unreported items did it (the culprit may be one
    whose predecessors' frames were still buffered): it re-runs the unreported items in a fresh
    runner that writes every frame at once ("careful"), where the first unreported item is the
    culprit and gets `timeout` or `crashed`."""
    pending = list(items)
    careful = False
    while pending:
        done, failure = _run_runner(fs, pending, max_chars, out, careful)
        if failure is None:
            pending = pending[done:]
        elif careful:
            status, error, seconds = failure
            out(pending[done][0], status, None, error, seconds)
            pending = pending[done + 1:]
        else:
            pending = pending[done:]
            careful = True
    clean_tmp()


def _run_runner(fs, pending, max_chars, out, careful):
    """One runner on `pending`; returns (items reported, None) or (items reported, failure) with
    failure = (status, error, seconds) for the first unreported item."""
    pid, req_w, res_r = fs.take()
    job = {"items": [it[1:5] for it in pending], "cpu_seconds": sum(it[4] for it in pending),
           "flush_items": 1 if careful else 64}
    frame_cap = 4 * max_chars + 4096  # UTF-8: up to 4 bytes a character
    done = 0
    try:
        try:
            runner.write_frame(req_w, marshal.dumps(job))
        except OSError:
            pass  # it died before starting: seen below as a crash
        os.close(req_w)
        buf = b""
        since = time.monotonic()
        slack = 0.0 if careful else runner.FLUSH_SECONDS + 0.05
        while done < len(pending):
            now = time.monotonic()
            left = since + pending[done][4] + slack - now
            if left <= 0:
                _kill(pid)
                pid = None
                return done, ("timeout", "timed out after %.3g s" % pending[done][4], now - since)
            if not select.select([res_r], [], [], left)[0]:
                continue
            chunk = os.read(res_r, 1 << 16)
            if not chunk:
                why = _exit_description(pid)
                pid = None
                return done, ("crashed", why, time.monotonic() - since)
            buf += chunk
            now = time.monotonic()
            before = done
            while done < len(pending) and len(buf) >= 4:
                (n,) = runner.FRAME_HEADER.unpack(buf[:4])
                if n > frame_cap:
                    return done, ("crashed", "the runner wrote an oversized result", now - since)
                if len(buf) < 4 + n:
                    break
                result = runner.check_frame(buf[4:4 + n], max_chars, pending[done][1])
                buf = buf[4 + n:]
                if result is None:
                    return done, ("crashed", "the runner wrote a malformed result", now - since)
                status, value, error, seconds = result
                # the runner's own clock, but never more than the zygote saw pass
                out(pending[done][0], status, value, error, min(seconds, now - since))
                done += 1
            if done > before:  # the next item's clock starts at the last frame received
                since = now
                _flush()
        return done, None
    finally:
        os.close(res_r)
        if pid is not None:
            _kill(pid)


FS = None  # the fork server's handle, set by main()


def _kill(pid):
    """SIGKILL the runner's process group; the fork server reaps it."""
    for kill in (os.killpg, os.kill):
        try:
            kill(pid, signal.SIGKILL)
        except OSError:
            pass
    FS.reap(pid)


def _exit_description(pid):
    status = FS.exit_status(pid)
    try:
        os.killpg(pid, signal.SIGKILL)  # anything it left in its group
    except OSError:
        pass
    if status < 0:
        return "the runner process vanished"
    if os.WIFSIGNALED(status):
        sig = os.WTERMSIG(status)
        try:
            name = signal.Signals(sig).name
        except ValueError:
            name = str(sig)
        return "killed by signal %s" % name
    return "exited with status %d" % os.WEXITSTATUS(status)


def clean_tmp():
    """Empty the private /tmp. Its files belong to the sandbox uid, and the zygote has no right to
    remove another uid's files from a sticky directory: a short-lived process with that uid does."""
    tmp = CONFIG.get("tmp")
    try:
        if not tmp or not os.listdir(tmp):
            return
    except OSError:
        return
    uid = CONFIG.get("uid")
    if uid is None or os.getuid() != 0:
        _remove_all(tmp)
        return
    pid = os.fork()
    if pid == 0:
        try:
            confine.drop_privileges(CONFIG)
            _remove_all(tmp)
        finally:
            os._exit(0)
    os.waitpid(pid, 0)


def _remove_all(tmp):
    """Make every directory under `tmp` writable (top-down, iteratively: a program may lock or
    nest them deeply), then remove everything."""
    import shutil
    stack = [tmp]
    while stack:
        d = stack.pop()
        try:
            if d != tmp:
                os.chmod(d, 0o700)
            with os.scandir(d) as it:
                for e in it:
                    if e.is_dir(follow_symlinks=False):
                        stack.append(e.path)
        except OSError:
            pass
    for name in os.listdir(tmp):
        p = os.path.join(tmp, name)
        try:
            if os.path.isdir(p) and not os.path.islink(p):
                shutil.rmtree(p, ignore_errors=True)
            else:
                os.unlink(p)
        except OSError:
            pass


# ----------------------------------------------------------------------------- the loop

_LINES = []  # lines for the executor not yet written


def _emit(obj, flush=True):
    _LINES.append(json.dumps(obj))
    if flush:
        _flush()


def _flush():
    if _LINES:
        data = ("\n".join(_LINES) + "\n").encode()
        del _LINES[:]
        view = memoryview(data)
        while view:
            view = view[os.write(1, view):]


def run_job(fs, job, max_chars):
    """Group a job's items by author (kind + program text) and run each group in fresh runners."""
    authors = {}
    for it in job["items"]:
        authors.setdefault((it[1], it[2]), []).append(it)
    job_id = job["job"]

    def out(i, status, value, error, seconds):
        _emit([job_id, i, status, value, error, round(max(seconds, 0.0), 6)], flush=False)

    for group in authors.values():
        run_author(fs, group, max_chars, out)
        _flush()


def _self_test(fs, max_chars):
    """Run a probe through a real runner, with every layer on, to check that the layers bite."""
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
    got = []
    run_author(fs, [[0, "call", probe, "((), {})", 10.0]], max_chars, lambda *r: got.append(r))
    try:
        _, status, value, error, _ = got[0]
        return canon.parse_literal(value) if status == "ok" else {"error": "%s: %s" % (status, error)}
    except Exception as e:  # noqa: BLE001
        return {"error": "self test failed: %r" % (e,)}


def main():
    CONFIG.update(json.loads(sys.argv[1]))
    confine.set_parent_death_signal()
    if os.getppid() == 1 and not CONFIG.get("in_namespace"):
        os._exit(0)  # the executor is already gone
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGPIPE, signal.SIG_IGN)  # a dead runner's pipe is an error, not a death
    for name in PRELOAD:
        try:
            __import__(name)
        except ImportError:
            pass
    if CONFIG["landlock"]:
        CONFIG["landlock"] = min(confine.landlock_abi(), CONFIG["landlock"])
    if CONFIG["seccomp"] and confine._SECCOMP is None:
        CONFIG["seccomp"] = False
    max_chars = CONFIG["max_output_chars"]
    # Programs must not see which family they run in: the two runs get identical environments.
    hash_seed = os.environ.pop("PYTHONHASHSEED", None)
    CONFIG["env"] = dict(os.environ)
    for _ in range(int(CONFIG.get("pid_offset", 0))):
        # In a fresh pid namespace both families would hand out the same pids: shift one of them,
        # so that a result that depends on the pid differs between the two runs.
        pid = os.fork()
        if pid == 0:
            os._exit(0)
        os.waitpid(pid, 0)
    global FS
    fs = FS = ForkServer(CONFIG)
    probe = _self_test(fs, max_chars)
    fs.settle()
    _emit({"ready": {"pid": os.getpid(), "hash_seed": hash_seed,
                     "landlock_abi": CONFIG["landlock"], "seccomp": CONFIG["seccomp"], "probe": probe}})
    while True:
        raw = runner.read_frame(0, 1 << 31)
        if raw is None:
            return  # the executor closed our stdin
        job = marshal.loads(raw)  # written by the executor (trusted)
        del raw
        run_job(fs, job, max_chars)
        fs.settle()
        _emit([job["job"], "done"])


if __name__ == "__main__":
    main()
