"""Run model-written Python programs outside the trainer process, isolated, twice.

`Executor` keeps a pool of sandbox workers (`zygote.py`), in two "families" with different
string-hash seeds (and, being separate interpreters, different memory layouts and pids). Every
program runs once in each family; both canonical results must agree, else the program is
nondeterministic (`random`, `time`, `id()`, pids, set-of-strings order...) and is rejected. AZR
instead calls the function twice inside one process, which misses hash-order and `id()`
nondeterminism.

Trust (see THREAT_MODEL.md): inputs are literal argument text, parsed here and sent as values
(`canon.call_args_wire`: marshal bytes, or canonical literal text), never compiled; programs of
different authors never share a process (the worker runs each author in fresh runners from a fork
server that never held job data); every line a worker writes is attributed by job id and item
index and checked strictly by `_parse_result`, and nothing it can write raises here.

Isolation, strongest available first (see `detect_isolation`): bubblewrap namespaces (no network,
own pid namespace, read-only system, private tmpfs /tmp, scrubbed environment), a non-root uid per
worker, Landlock (file system, TCP, signals), a seccomp filter (no fork/exec/sockets), rlimits
(memory, CPU, file size, open files, processes). Timeouts SIGKILL the runner's process group; a
dead worker is replaced and the caller gets a status, never a hang.

Speed: one process per author, not per item: a program's several inputs (induction), or one
proposal's learnability answers (abduction), share it; jobs and arguments travel as `marshal`
from this trusted side, results as small binary frames and JSON arrays; two workers per core by
default. See benchmarks/bench_sandbox.py and docs/benchmarks.md ("Sandbox").
"""

from __future__ import annotations

import collections
import dataclasses
import json
import marshal
import os
import select
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass

from azrlib.sandbox.canon import NotALiteral, call_args_wire
from azrlib.sandbox.isolation import SandboxUnavailable, bwrap_command, cores, detect_isolation, world_readable
from azrlib.sandbox.results import STATUSES, ExecResult, _agree, _parse_result, _resolve  # noqa: F401

_ZYGOTE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "zygote.py")
_READY_TIMEOUT_S = 60.0
_WATCHDOG_GRACE_S = 5.0


@dataclass
class _Job:
    job_id: int
    family: int
    items: list  # [i, kind, program, args_text, timeout]
    retried: bool = False  # re-sent after its worker died: one item per job from then on
    pending: set = dataclasses.field(default_factory=set)
    max_timeout: float = 0.0

    def __post_init__(self):
        self.pending = {it[0] for it in self.items}
        self.max_timeout = max(it[4] for it in self.items)


@dataclass
class _Worker:
    index: int
    family: int
    proc: subprocess.Popen
    ready: dict
    tmp: str | None
    jobs: collections.deque = dataclasses.field(default_factory=collections.deque)  # sent, in order
    buf: bytes = b""
    outbox: bytes = b""  # job lines not yet written (the zygote reads stdin between jobs)
    last_progress: float = 0.0


class Executor:
    """A pool of sandbox interpreters. Use as a context manager:

        with Executor(timeout_s=5.0) as ex:
            ex.run("def f(a, b):\\n    return a * b", "'ab', 3").value  # "'ababab'"
    """

    def __init__(
        self,
        workers: int | None = None,
        timeout_s: float = 5.0,
        *,
        memory_mb: int = 1024,
        file_mb: int = 16,
        nproc: int = 64,
        max_output_chars: int = 100_000,
        batch_size: int = 256,
        allow_weak_isolation: bool = False,
        use_bwrap: bool | None = None,
        seed: int = 0,
        uid_base: int = 61000,
    ):
        self.timeout_s = float(timeout_s)
        self.max_output_chars = int(max_output_chars)
        self.batch_size = int(batch_size)
        # `workers` in all, half per family. Default: one per core in each family (two per core):
        # a worker is a pipeline whose zygote and runner take turns, so one per core leaves cores
        # idle while runners fork, start and exit.
        self._per_family = max(1, workers // 2) if workers else max(1, cores())
        self._limits = {"memory_bytes": int(memory_mb) << 20, "file_bytes": int(file_mb) << 20,
                        "nproc": int(nproc)}
        self._seed = int(seed)
        self._uid_base = int(uid_base)
        self._lock = threading.Lock()
        self._job_counter = 0
        self._workers: list[_Worker] = []
        self._closed = False
        caps = detect_isolation()
        self._use_bwrap = caps["bubblewrap"] if use_bwrap is None else bool(use_bwrap and caps["bubblewrap"])
        self._caps = caps
        strong = self._use_bwrap or (caps["seccomp"] and (caps["landlock_abi"] > 0 or caps["can_switch_uid"]))
        if not strong and not allow_weak_isolation:
            raise SandboxUnavailable(
                "no isolation beyond rlimits is available here: install bubblewrap "
                "(Debian/Ubuntu: apt-get install bubblewrap) or run on a Linux kernel with Landlock "
                "and seccomp; pass allow_weak_isolation=True to run model-written code anyway."
            )
        self.isolation: dict = {}
        try:
            for family in (0, 1):
                for k in range(self._per_family):
                    self._workers.append(self._spawn(len(self._workers), family))
        except BaseException:
            self.close()
            raise
        self.isolation = self._describe_isolation()

    # ------------------------------------------------------------------ public API

    def run(self, program: str, inputs: str, timeout_s: float | None = None) -> ExecResult:
        """Run `f(<inputs>)` where `program` defines `f` and `inputs` is argument text."""
        return self.run_many([(program, inputs)], timeout_s=timeout_s)[0]

    def run_many(self, pairs, timeout_s: float | None = None) -> list[ExecResult]:
        """Run many (program, inputs) pairs; results in input order. `inputs` is argument text
        made of literals only (`'ab', 3, k=[1]`): it is parsed here and sent as canonical values,
        never compiled; anything else comes back `rejected` without running. Pairs that share a
        program run in one process (per author); different programs never share one."""
        timeout = self.timeout_s if timeout_s is None else float(timeout_s)
        items, early = [], {}
        for i, (p, x) in enumerate(pairs):
            try:
                items.append([i, "call", str(p), call_args_wire(str(x)), timeout])
            except NotALiteral as e:
                early[i] = ExecResult("rejected", None, f"the input is not a literal: {e}", 0.0)
        done = dict(zip((it[0] for it in items), self._execute(items, double=True)))
        done.update(early)
        return [done[i] for i in range(len(pairs))]

    def run_script(self, code: str, timeout_s: float | None = None) -> ExecResult:
        """Run a whole script once; ok when it finishes without an exception."""
        return self.run_scripts([code], timeout_s=timeout_s)[0]

    def run_scripts(self, codes, timeout_s: float | None = None, double: bool = False) -> list[ExecResult]:
        """Run whole scripts (test harnesses), once each unless `double`."""
        timeout = self.timeout_s if timeout_s is None else float(timeout_s)
        items = [[i, "script", str(c), "", timeout] for i, c in enumerate(codes)]
        return self._execute(items, double=double)

    def close(self) -> None:
        self._closed = True
        for w in self._workers:
            self._kill_worker(w)
        self._workers = []

    def __enter__(self) -> "Executor":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def __del__(self):  # best effort; workers also die with this process (PDEATHSIG)
        try:
            self.close()
        except Exception:  # noqa: BLE001
            pass

    # ------------------------------------------------------------------ execution

    def _execute(self, items: list, double: bool) -> list[ExecResult]:
        if not items:
            return []
        if self._closed:
            raise RuntimeError("the Executor is closed")
        with self._lock:
            families = (0, 1) if double else (0,)
            runs = self._run_round(items, families)
            if not double:
                return [runs[0][it[0]] for it in items]
            out = []
            for it in items:
                a, b = runs[0][it[0]], runs[1][it[0]]
                if _agree(a, b):
                    out.append(a if a.seconds >= b.seconds else dataclasses.replace(a, seconds=b.seconds))
                else:  # each author runs alone, so this is the program itself: nondeterministic
                    out.append(_resolve(a, b))
            return out

    def _run_round(self, items: list, families) -> dict[int, dict[int, ExecResult]]:
        """Run every item once in each family; returns {family: {i: result}}."""
        results: dict[int, dict[int, ExecResult]] = {f: {} for f in families}
        queue: collections.deque[_Job] = collections.deque()
        size = max(1, min(self.batch_size, -(-len(items) // self._per_family)))
        authors: dict[tuple, list] = {}
        for it in items:
            authors.setdefault((it[1], it[2]), []).append(it)
        for family in families:
            # Jobs hold whole authors where they fit. The second family runs each author's items
            # in reverse order, so a program whose result depends on an earlier call of itself
            # (state kept in a module) disagrees with itself and is rejected.
            job: list = []
            for group in authors.values():
                group = group[::-1] if family == 1 else group
                if job and len(job) + len(group) > size:
                    queue.append(self._new_job(family, job))
                    job = []
                for start in range(0, len(group), self.batch_size):
                    job.extend(group[start:start + self.batch_size])
                    if len(job) >= size:
                        queue.append(self._new_job(family, job))
                        job = []
            if job:
                queue.append(self._new_job(family, job))
        expected = len(items) * len(families)
        got = 0
        while got < expected:
            for w in self._workers:
                # two jobs in flight per worker, so a zygote never waits for its next job
                while len(w.jobs) < 2:
                    job = _pop_for_family(queue, w.family)
                    if job is None:
                        break
                    self._send(w, job)
            busy = [w for w in self._workers if w.jobs]
            if not busy:
                raise RuntimeError("sandbox scheduler stalled with work left")  # pragma: no cover
            now = time.monotonic()
            wait = min(self._deadline(w) for w in busy) - now
            writers = [w.proc.stdin for w in busy if w.outbox]
            readable, writable, _ = select.select([w.proc.stdout for w in busy], writers, [],
                                                  max(0.0, min(wait, 1.0)))
            for w in busy:
                if w.proc.stdin in writable:
                    self._flush_outbox(w)
                if w.proc.stdout in readable:
                    got += self._read(w, results, queue)
            now = time.monotonic()
            for w in list(self._workers):
                if w.jobs and now > self._deadline(w):
                    got += self._fail_current(w, results, queue, "timeout",
                                              "timed out (the worker stopped answering)")
        return results

    def _new_job(self, family: int, items: list, retried: bool = False) -> _Job:
        self._job_counter += 1
        return _Job(self._job_counter, family, [list(it) for it in items], retried)

    def _deadline(self, w: _Worker) -> float:
        # twice the item timeout: a hang is timed once in a runner that writes in bursts and once
        # in a careful one that pins it on its item (zygote.run_author)
        return w.last_progress + 2 * w.jobs[0].max_timeout + _WATCHDOG_GRACE_S

    def _send(self, w: _Worker, job: _Job) -> None:
        if not w.jobs:
            w.last_progress = time.monotonic()
        w.jobs.append(job)
        frame = marshal.dumps({"job": job.job_id, "items": job.items})
        w.outbox += len(frame).to_bytes(4, "big") + frame
        self._flush_outbox(w)

    def _flush_outbox(self, w: _Worker) -> None:
        """Write what the pipe takes without blocking: a blocked write while the zygote waits for
        us to read its results would deadlock both."""
        try:
            n = os.write(w.proc.stdin.fileno(), w.outbox)
        except BlockingIOError:
            return
        except OSError:
            w.outbox = b""  # the read side sees EOF and fails the job
            return
        w.outbox = w.outbox[n:]

    def _read(self, w: _Worker, results: dict, queue) -> int:
        try:
            chunk = os.read(w.proc.stdout.fileno(), 1 << 20)
        except OSError:
            chunk = b""
        if not chunk:
            why = _exit_text(w.proc)
            return self._fail_current(w, results, queue, "crashed", f"sandbox worker died ({why})")
        w.buf += chunk
        got = 0
        lines = w.buf.split(b"\n")
        w.buf = lines.pop()
        now = time.monotonic()
        for line in lines:
            if not w.jobs:  # a line when nothing is in flight: the worker is broken
                return got + self._fail_current(w, results, queue, "crashed", "the sandbox worker wrote out of turn")
            job = w.jobs[0]
            kind, i, result = _parse_result(line, job.job_id, job.pending)
            if kind == "done":
                for k in sorted(job.pending):  # the zygote skipped nothing, unless broken
                    results[job.family][k] = ExecResult("crashed", None, "no result reported", 0.0)
                    got += 1
                w.jobs.popleft()
                w.last_progress = now
            elif kind == "result":
                job.pending.discard(i)
                results[job.family][i] = result
                w.last_progress = now
                got += 1
            else:  # a line that cannot be attributed: nothing more from this worker is believed
                return got + self._fail_current(w, results, queue, "crashed", "the sandbox worker wrote a malformed line")
        return got

    def _fail_current(self, w: _Worker, results: dict, queue, status: str, error: str) -> int:
        """The worker died, hung or wrote junk: it is replaced. The unreported items of the job it
        was on are re-sent one per job; when such a single-item job fails too, its item is the
        culprit and gets `status`."""
        jobs = list(w.jobs)
        w.jobs.clear()
        w.buf = b""
        self._kill_worker(w)
        self._workers[self._workers.index(w)] = self._spawn(w.index, w.family)
        got = 0
        for n, job in enumerate(jobs):
            rest = [it for it in job.items if it[0] in job.pending]
            if n == 0 and rest and job.retried and len(rest) == 1:
                results[job.family][rest[0][0]] = ExecResult(status, None, error,
                                                             round(time.monotonic() - w.last_progress, 6))
                got = 1
            elif n == 0:
                for it in reversed(rest):
                    queue.appendleft(self._new_job(job.family, [it], retried=True))
            elif rest:
                queue.append(self._new_job(job.family, rest, job.retried))
        return got

    # ------------------------------------------------------------------ workers

    def _spawn(self, index: int, family: int) -> _Worker:
        caps = self._caps
        uid = None
        if caps["can_switch_uid"] and (self._use_bwrap or world_readable(sys.base_prefix)):
            uid = self._uid_base + (os.getpid() % 4000) * 8 + index % 8
        tmp = None
        python = os.path.realpath(sys.executable)
        base_prefix = os.path.realpath(sys.base_prefix)
        hash_seed = str(1 + 2 * self._seed + family)
        env = {"PYTHONHASHSEED": hash_seed, "PYTHONDONTWRITEBYTECODE": "1", "LANG": "C.UTF-8",
               "PATH": "/usr/bin:/bin"}
        worker_dir = os.path.dirname(_ZYGOTE)
        config = dict(self._limits, uid=uid, gid=uid, max_output_chars=self.max_output_chars,
                      seccomp=bool(caps["seccomp"]), landlock=int(caps["landlock_abi"]),
                      in_namespace=self._use_bwrap, pid_offset=family if self._use_bwrap else 0)
        if self._use_bwrap:
            zygote = "/azr_worker/zygote.py"
            env["TMPDIR"] = "/tmp"
            config.update(tmp="/tmp", read_paths=["/usr", base_prefix, "/azr_worker"], write_paths=["/tmp"])
            cmd = bwrap_command(caps["bwrap_path"], uid is not None, base_prefix, worker_dir, env)
            cmd += [python, "-S", "-s", "-B", zygote, json.dumps(config)]
            run_env = env
        else:
            tmp = tempfile.mkdtemp(prefix="azr-sandbox-")
            os.chmod(tmp, 0o1777)
            read_paths = sorted({"/usr", base_prefix, worker_dir, "/lib", "/lib64", "/bin"})
            env["TMPDIR"] = tmp
            config.update(tmp=tmp, read_paths=read_paths, write_paths=[tmp])
            cmd = [python, "-S", "-s", "-B", _ZYGOTE, json.dumps(config)]
            run_env = env
        proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                stderr=subprocess.DEVNULL, env=run_env, cwd=tmp or "/",
                                start_new_session=True, close_fds=True)
        ready = self._await_ready(proc)
        os.set_blocking(proc.stdin.fileno(), False)
        return _Worker(index, family, proc, ready, tmp, last_progress=time.monotonic())

    def _await_ready(self, proc: subprocess.Popen) -> dict:
        deadline = time.monotonic() + _READY_TIMEOUT_S
        buf = b""
        fd = proc.stdout.fileno()
        while b"\n" not in buf:
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([fd], [], [], left)[0]:
                proc.kill()
                raise SandboxUnavailable("a sandbox worker did not start within %.0f s" % _READY_TIMEOUT_S)
            chunk = os.read(fd, 65536)
            if not chunk:
                raise SandboxUnavailable(f"a sandbox worker exited at start ({_exit_text(proc)}); "
                                         "run `azr sandbox-info` to see which isolation layer fails")
            buf += chunk
        line, rest = buf.split(b"\n", 1)
        ready = json.loads(line)["ready"]
        probe = ready.get("probe", {})
        if "error" in probe:
            proc.kill()
            raise SandboxUnavailable(f"sandbox self-test failed: {probe['error']}")
        if ready.get("seccomp") and not probe.get("fork_blocked"):
            proc.kill()
            raise SandboxUnavailable("the seccomp filter did not block fork in the self-test")
        return ready

    def _kill_worker(self, w: _Worker) -> None:
        try:
            os.killpg(w.proc.pid, signal.SIGKILL)
        except OSError:
            pass
        try:
            w.proc.kill()
        except OSError:
            pass
        for f in (w.proc.stdin, w.proc.stdout):
            try:
                f.close()
            except OSError:
                pass
        try:
            w.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:  # pragma: no cover
            pass
        if w.tmp:
            _kill_uid_leftovers(w)
            shutil.rmtree(w.tmp, ignore_errors=True)

    def _describe_isolation(self) -> dict:
        caps = self._caps
        ready = self._workers[0].ready if self._workers else {}
        probe = ready.get("probe", {})
        sandbox_uid = probe.get("uid")
        return {
            "bubblewrap": self._use_bwrap,
            "bubblewrap_version": caps.get("bwrap_version"),
            "namespaces": ["pid", "net", "ipc", "uts", "mount"] if self._use_bwrap else [],
            "readonly_system": self._use_bwrap or bool(ready.get("landlock_abi")),
            "private_tmp": True,
            "network": "none" if (self._use_bwrap or probe.get("inet_blocked")) else "host",
            "seccomp": bool(ready.get("seccomp")) and bool(probe.get("fork_blocked")),
            "landlock_abi": int(ready.get("landlock_abi") or 0),
            "non_root_uid": sandbox_uid is not None and sandbox_uid != 0 and sandbox_uid != os.getuid(),
            "sandbox_uid": sandbox_uid,
            "rlimits": {"memory_mb": self._limits["memory_bytes"] >> 20,
                        "file_mb": self._limits["file_bytes"] >> 20,
                        "nproc": self._limits["nproc"], "nofile": 64, "cpu_s": "per batch"},
            "double_run": "two interpreters, hash seeds %s, pid offset in the second"
                          % sorted({w.ready.get("hash_seed") for w in self._workers}),
            "runners": "one fresh process per author, forked by a server that never held job data",
            "workers": len(self._workers),
            "weak": not (self._use_bwrap or (bool(ready.get("seccomp")) and (
                bool(ready.get("landlock_abi")) or (sandbox_uid not in (None, 0, os.getuid()))))),
        }


def _pop_for_family(queue, family: int):
    for k, job in enumerate(queue):
        if job.family == family:
            del queue[k]
            return job
    return None


def _exit_text(proc: subprocess.Popen) -> str:
    try:
        rc = proc.wait(timeout=2)
    except subprocess.TimeoutExpired:
        return "still running"
    return f"signal {-rc}" if rc < 0 else f"exit status {rc}"


def _kill_uid_leftovers(w: _Worker) -> None:
    """Without bubblewrap there is no pid namespace to tear down; seccomp already forbids forks,
    and this sweeps the worker's sandbox uid for stragglers as a last resort."""
    uid = (w.ready.get("probe") or {}).get("uid")
    if uid in (None, 0, os.getuid()):
        return
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            if os.stat(f"/proc/{pid}").st_uid == uid:
                os.kill(int(pid), signal.SIGKILL)
        except OSError:
            pass
