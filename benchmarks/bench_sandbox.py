"""Throughput of the isolated executor vs an unsafe in-process baseline, an AZR-style executor and
fork floors.

    .venv/bin/python benchmarks/bench_sandbox.py [--authors 300] [--inputs 10] [--singles 600] [--repeats 3]

Every arm runs the same (program, input) calls with a determinism double run:
- unsafe: `exec` in this process, `f(inputs)` called twice, reprs compared (no isolation at all);
- azr-style: AZR's executor design: one reused pebble worker (`ProcessPool(max_workers=1)`), one
  scheduled call per program with a timeout, the program under a header of stdlib imports with
  stdout captured, the double call inside the worker;
- fork floor: what the invariant "one fresh process per author in each of two runs" costs with no
  isolation and no checking at all: one bare `python -S` lane per core, preloaded like the sandbox's
  fork server; per author it forks twice, the child execs the program and makes the calls (the
  second in reverse order), sends the reprs back in one pipe write and exits. No design that keeps
  that invariant can beat it on the same machine, so `azrlib / fork floor` is the price of the
  isolation layers and the attribution, and `fork floor / unsafe` the price of the invariant;
- fork floor + confinement: the fork floor whose children first apply the runner's own layers
  (`confine.confine`: rlimits, a uid of their own when run as root, a Landlock scope, the seccomp
  filter), the per-process part of the isolation; what is left between it and azrlib is the price
  of the clean fork server, the hand-over of the job after the fork, the strict checks and the
  attribution of results;
- fork floor, one run: the same as the fork floor with one fresh process per author that makes each call twice
  inside it (AZR's determinism check, in a process of its own): the floor of a sandbox that gave up
  the second interpreter (and with it the hash-seed, `id()` and pid checks);
- azrlib: `Executor.run_many` (bubblewrap + seccomp + Landlock + uid, two interpreters, one fresh
  process per author in each).
Two workloads: "per author" is how the trainer batches (one program on several inputs: induction's
hidden inputs, one proposal's learnability answers), `--authors` programs x `--inputs` inputs;
"one call per program" (`--singles`) is the worst case, every call its own author. Rates are calls
per second, best of `--repeats` rounds in which the arms take turns. Goal: azrlib >= 0.3x unsafe per author, on 2 cores.

Besides the rates it prints the CPU time the executor spent per author-run (one author in one
family: a fresh runner), summed over this process and every sandbox process (the workers' live
processes with the CPU of the children they reaped: runners, /tmp cleaners), which a shared
machine inflates far less than wall-clock rates; and the load average before and after.
"""

from __future__ import annotations

import argparse
import os
import random
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

from azrlib.sandbox import Executor  # noqa: E402

TEMPLATES = [
    ("def f(x):\n    return [i * {k} for i in range(x)]", "{a}"),
    ("def f(s):\n    return s[::-1] + str(len(s) * {k})", "'{w}'"),
    ("def f(a, b):\n    total = 0\n    for i in range(a):\n        if i % {k1} == 0:\n            total += b\n    return total", "{a}, {k}"),
    ("def f(d):\n    return {{k: v * {k} for k, v in d.items() if v % 2}}", "{{'a': {a}, 'b': {k}, 'c': 3}}"),
    ("def f(xs):\n    xs = sorted(xs)\n    return (xs[0], xs[-1], sum(xs) // len(xs))", "[{a}, {k}, 7, 1]"),
    ("def f(s, n):\n    out = []\n    for ch in s:\n        out.append(chr((ord(ch) - 97 + n) % 26 + 97))\n    return ''.join(out)", "'{w}', {k}"),
    ("from collections import Counter\ndef f(s):\n    return Counter(s).most_common({k1})", "'{w}{w}'"),
    ("def f(n):\n    a, b = 0, 1\n    for _ in range(n):\n        a, b = b, a + b\n    return a", "{a}"),
]
WORDS = ["hello", "world", "absolute", "zero", "reasoner", "python", "sandbox", "abc"]


def make_programs(n: int, seed: int = 0, inputs: int = 1) -> list[tuple[str, str]]:
    """n programs (distinct texts: the constant `k` and a serial comment), each on `inputs` inputs."""
    rng = random.Random(seed)
    out = []
    for serial in range(n):
        prog, inp = rng.choice(TEMPLATES)
        k = rng.randint(2, 9)
        k1 = rng.randint(1, 3)
        program = prog.format(k=k, k1=k1, a=0, w="") + f"\n# program {seed}-{serial}"
        for _ in range(inputs):
            fmt = dict(k=k, k1=k1, a=rng.randint(5, 30), w=rng.choice(WORDS))
            out.append((program, inp.format(**fmt)))
    return out


def _double_call(program: str, inputs: str):
    g: dict = {}
    exec(program, g)
    a = repr(eval(f"f({inputs})", g))
    b = repr(eval(f"f({inputs})", g))
    return a if a == b else None


def run_unsafe(programs) -> int:
    ok = 0
    for p, x in programs:
        try:
            ok += _double_call(p, x) is not None
        except Exception:  # noqa: BLE001
            pass
    return ok


# AZR's executor (from ToRA's python_executor) execs each program under a header of stdlib
# imports with stdout captured, inside one reused pebble worker, one scheduled call per program.
AZR_HEADER = ("import math\nimport re\nimport itertools\nimport collections\nimport heapq\nimport bisect\n"
              "import string\nimport functools\nimport operator\nfrom typing import *\n"
              "from collections import *\n")


def _azr_style_call(program: str, inputs: str):
    import contextlib
    import io
    with contextlib.redirect_stdout(io.StringIO()):
        return _double_call(AZR_HEADER + program, inputs)


def run_azr_style(programs, timeout_s: float = 10.0) -> int:
    from pebble import ProcessPool
    ok = 0
    with ProcessPool(max_workers=1) as pool:
        for p, x in programs:
            future = pool.schedule(_azr_style_call, args=(p, x), timeout=timeout_s)
            try:
                ok += future.result() is not None
            except Exception:  # noqa: BLE001 - errors and timeouts count as failures
                pass
    return ok


# A fork-floor lane: stdlib only, run as `python -S -s -B -c LANE RUNS CONFINE MODULES...` (RUNS:
# 2 = two processes per author, 1 = one process calling twice; CONFINE: "" or the JSON config for
# the sandbox's `confine.confine`, which the children then apply first). Reads its authors
# (marshal: [(program, [inputs, ...]), ...]) from stdin, writes b"r", waits for one byte, runs them
# and writes the number of calls whose two runs agreed (as text).
LANE = r"""
import gc, marshal, os, sys
runs = int(sys.argv[1])
config = None
if sys.argv[2]:
    import json
    config = json.loads(sys.argv[2])
    sys.path.insert(0, config["sandbox_dir"])
    import confine
for name in sys.argv[3:]:
    __import__(name)
authors = marshal.loads(sys.stdin.buffer.read(int(sys.stdin.buffer.readline())))
gc.collect()
gc.freeze()
def run(program, inputs):
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:
        out = []
        try:
            if config is not None:
                confine.confine(config, 10)
            g = {}
            exec(program, g)
            for x in inputs:
                try:
                    a = repr(eval("f(%s)" % x, g))
                    out.append(a if runs == 2 or a == repr(eval("f(%s)" % x, g)) else None)
                except Exception:
                    out.append(None)
        finally:
            os.write(w, marshal.dumps(out))
            os._exit(0)
    os.close(w)
    chunks = []
    while True:
        chunk = os.read(r, 1 << 16)
        if not chunk:
            break
        chunks.append(chunk)
    os.close(r)
    os.waitpid(pid, 0)
    return marshal.loads(b"".join(chunks))
sys.stdout.write("r")
sys.stdout.flush()
sys.stdin.buffer.read(1)
ok = 0
for program, inputs in authors:
    a = run(program, inputs)
    b = run(program, inputs[::-1])[::-1] if runs == 2 else a
    ok += sum(x is not None and x == y for x, y in zip(a, b))
sys.stdout.write(str(ok))
sys.stdout.flush()
"""


def _preload() -> list[str]:
    """The sandbox fork server's preloaded modules (`zygote.PRELOAD`; zygote.py runs as a script
    beside its modules, so it is read, not imported)."""
    import ast
    import azrlib.sandbox
    path = os.path.join(os.path.dirname(azrlib.sandbox.__file__), "zygote.py")
    for node in ast.parse(open(path).read()).body:
        if isinstance(node, ast.Assign) and getattr(node.targets[0], "id", "") == "PRELOAD":
            return list(ast.literal_eval(node.value))
    raise RuntimeError("zygote.PRELOAD not found")


def confine_config(limits: dict, lane: int) -> str:
    """The JSON config of the sandbox's runner layers for the fork floor + confinement arm: the
    executor's rlimits (`limits`: memory_bytes, file_bytes, nproc), every layer this machine has,
    and a uid of the lane's own below the Executor's range."""
    import json
    import azrlib.sandbox
    from azrlib.sandbox.isolation import detect_isolation
    caps = detect_isolation()
    uid = 60000 + lane if caps["can_switch_uid"] else None
    return json.dumps(dict(limits, sandbox_dir=os.path.dirname(azrlib.sandbox.__file__), uid=uid, gid=uid,
                           landlock=int(caps["landlock_abi"]), seccomp=bool(caps["seccomp"])))


def run_fork_floor(programs, runs: int = 2, confine_limits: dict | None = None,
                   lanes: int | None = None) -> tuple[int, float]:
    """(agreeing calls, seconds): the fork floor on `lanes` processes (default one per core), timed
    from the moment every lane holds its authors and is ready, to the last lane's answer. With
    `confine_limits` (the executor's rlimits) the children confine themselves first."""
    import marshal
    import subprocess
    by_author: dict = {}
    for p, x in programs:
        by_author.setdefault(p, []).append(x)
    authors = list(by_author.items())
    lanes = lanes or os.cpu_count() or 1
    preload = _preload()
    procs = []
    for k in range(lanes):
        confine = confine_config(confine_limits, k) if confine_limits is not None else ""
        proc = subprocess.Popen([sys.executable, "-S", "-s", "-B", "-c", LANE, str(runs), confine, *preload],
                                stdin=subprocess.PIPE, stdout=subprocess.PIPE)
        data = marshal.dumps(authors[k::lanes])
        proc.stdin.write(b"%d\n" % len(data) + data)
        proc.stdin.flush()
        procs.append(proc)
    for proc in procs:
        assert proc.stdout.read(1) == b"r"
    t0 = time.perf_counter()
    for proc in procs:
        proc.stdin.write(b"g")
        proc.stdin.close()
    ok = sum(int(proc.stdout.read() or 0) for proc in procs)
    seconds = time.perf_counter() - t0
    for proc in procs:
        proc.wait()
    return ok, seconds


def run_azrlib(ex: Executor, programs) -> int:
    return sum(r.status == "ok" for r in ex.run_many(programs))


def descendants_cpu(root: int) -> float:
    """CPU seconds of every live descendant of `root` plus what they reaped (utime, stime, cutime,
    cstime from /proc; a process's children are counted once: live, or in their reaper's c*time)."""
    parents, times = {}, {}
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            with open(f"/proc/{name}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        parents[int(name)] = int(fields[1])
        times[int(name)] = sum(int(x) for x in fields[11:15])
    total, tick = 0, os.sysconf("SC_CLK_TCK")
    for pid, t in times.items():
        p, seen = parents.get(pid), 0
        while p and p != root and seen < 64:
            p, seen = parents.get(p), seen + 1
        if p == root:
            total += t
    return total / tick


def azrlib_cpu(ex: Executor, programs, authors: int) -> tuple[float, float]:
    """One more run of the workload: CPU ms per author-run (authors x 2 families) and us per call."""
    me = os.getpid()
    t0 = os.times()
    c0 = descendants_cpu(me)
    ex.run_many(programs)
    c1 = descendants_cpu(me)
    t1 = os.times()
    total = (t1.user + t1.system - t0.user - t0.system) + (c1 - c0)
    return total / (2 * authors) * 1e3, total / len(programs) * 1e6


def timed(fn):
    """`fn(programs) -> ok` as `programs -> (ok, seconds)`."""
    def run(programs):
        t0 = time.perf_counter()
        ok = fn(programs)
        return ok, time.perf_counter() - t0
    return run


def best_rates(arms, programs, repeats: int) -> list[tuple[str, float, int]]:
    """(name, best calls/s, ok) per arm. The arms take turns within each repeat, so that a change
    in the machine's speed during the run (common on a shared VM) reaches all of them alike."""
    best = {name: (0.0, 0) for name, _ in arms}
    for _ in range(repeats):
        for name, run in arms:
            ok, seconds = run(programs)
            best[name] = (max(best[name][0], len(programs) / seconds), ok)
    return [(name, *best[name]) for name, _ in arms]


def cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            info = f.read()
    except OSError:
        return "unknown CPU"
    model = next((ln.split(":", 1)[1].strip() for ln in info.splitlines() if ln.startswith("model name")), "?")
    flags = next((ln.split(":", 1)[1].split() for ln in info.splitlines() if ln.startswith("flags")), [])
    shown = [f for f in ("avx2", "avx512f", "amx_tile") if f in flags]
    return f"{model} (flags: {' '.join(shown) or 'none of avx2/avx512f/amx'})"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--authors", type=int, default=300, help="programs in the per-author workload")
    ap.add_argument("--inputs", type=int, default=10, help="inputs per program in the per-author workload")
    ap.add_argument("--singles", type=int, default=600, help="programs in the one-call-per-program workload")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--workers", type=int, default=None, help="sandbox workers (default: the Executor's, two per core)")
    args = ap.parse_args()
    workloads = [(f"per author ({args.authors} programs x {args.inputs} inputs)",
                  make_programs(args.authors, seed=1, inputs=args.inputs)),
                 (f"one call per program ({args.singles} programs)", make_programs(args.singles, seed=2))]
    table, cpu = [], []
    load_before = os.getloadavg()
    with Executor(workers=args.workers) as ex:
        iso = ex.isolation
        ex.run_many(make_programs(20, seed=3, inputs=2))  # warm-up
        for name, programs in workloads:
            rows = best_rates([
                ("unsafe in-process exec", timed(run_unsafe)),
                ("azr-style single worker", timed(run_azr_style)),
                ("fork floor (no isolation)", run_fork_floor),
                ("fork floor + confinement", lambda p: run_fork_floor(p, confine_limits=ex._limits)),
                ("fork floor, one run (no isolation)", lambda p: run_fork_floor(p, runs=1)),
                ("azrlib Executor", timed(lambda p: run_azrlib(ex, p))),
            ], programs, args.repeats)
            table.append((name, len(programs), rows))
            authors = len({p for p, _ in programs})
            cpu.append((name, *azrlib_cpu(ex, programs, authors)))
            t0 = time.process_time()
            run_unsafe(programs)
            cpu[-1] += ((time.process_time() - t0) / len(programs) * 1e6,)
    load_after = os.getloadavg()
    print(f"CPU: {cpu_model()}, {os.cpu_count()} cores; python {sys.version.split()[0]}")
    print(f"isolation: bwrap={iso['bubblewrap']} seccomp={iso['seccomp']} landlock={iso['landlock_abi']} "
          f"uid={iso['sandbox_uid']} workers={iso['workers']}; determinism double run; best of {args.repeats}")
    print(f"load average (1 min) before {load_before[0]:.2f}, after {load_after[0]:.2f}")
    print()
    print("| workload | executor | calls/s | ok | vs unsafe | vs azr-style | vs fork floor |")
    print("|---|---|---:|---:|---:|---:|---:|")
    for name, n, rows in table:
        unsafe, azr, floor = rows[0][1], rows[1][1], rows[2][1]
        for executor, rate, ok in rows:
            print(f"| {name} | {executor} | {rate:.0f} | {ok}/{n} | {rate / unsafe:.2f} | {rate / azr:.2f} "
                  f"| {rate / floor:.2f} |")
        if len({r[2] for r in rows}) != 1:
            print(f"warning: executors disagree on the number of ok calls in '{name}'")
    print()
    print("| workload | azrlib CPU per author-run | azrlib CPU per call | unsafe CPU per call |")
    print("|---|---:|---:|---:|")
    for name, ms_author, us_call, us_unsafe in cpu:
        print(f"| {name} | {ms_author:.2f} ms | {us_call:.0f} us | {us_unsafe:.0f} us |")
    per_author = table[0][2]
    unsafe, floor, confined, floor1, azrlib = (per_author[k][1] for k in (0, 2, 3, 4, 5))
    print(f"\nper author: azrlib / unsafe = {azrlib / unsafe:.2f} (goal >= 0.3); "
          f"fork floor / unsafe = {floor / unsafe:.2f} (+ confinement: {confined / unsafe:.2f}; "
          f"one run: {floor1 / unsafe:.2f}); azrlib / fork floor = {azrlib / floor:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
