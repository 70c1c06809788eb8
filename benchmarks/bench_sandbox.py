"""Throughput of the isolated executor vs an unsafe in-process baseline and an AZR-style executor.

    .venv/bin/python benchmarks/bench_sandbox.py [--authors 300] [--inputs 10] [--singles 600] [--repeats 3]

All three run the same (program, input) calls with a determinism double run:
- unsafe: `exec` in this process, `f(inputs)` called twice, reprs compared (no isolation at all);
- azr-style: AZR's executor design: one reused pebble worker (`ProcessPool(max_workers=1)`), one
  scheduled call per program with a timeout, the program under a header of stdlib imports with
  stdout captured, the double call inside the worker;
- azrlib: `Executor.run_many` (bubblewrap + seccomp + Landlock + uid, two interpreters, one fresh
  process per author in each).
Two workloads: "per author" is how the trainer batches (one program on several inputs: induction's
hidden inputs, one proposal's learnability answers), `--authors` programs x `--inputs` inputs;
"one call per program" (`--singles`) is the worst case, every call its own author. Rates are calls
per second, best of `--repeats`. Goal: azrlib >= 0.3x unsafe per author, on 2 cores.

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


def best_rate(fn, programs, repeats: int) -> tuple[float, int]:
    best, ok = 0.0, 0
    for _ in range(repeats):
        t0 = time.perf_counter()
        ok = fn(programs)
        best = max(best, len(programs) / (time.perf_counter() - t0))
    return best, ok


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
            rows = [
                ("unsafe in-process exec", *best_rate(run_unsafe, programs, args.repeats)),
                ("azr-style single worker", *best_rate(run_azr_style, programs, args.repeats)),
                ("azrlib Executor", *best_rate(lambda p: run_azrlib(ex, p), programs, args.repeats)),
            ]
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
    print(f"| workload | executor | calls/s | ok | vs unsafe | vs azr-style |")
    print(f"|---|---|---:|---:|---:|---:|")
    for name, n, rows in table:
        unsafe, azr = rows[0][1], rows[1][1]
        for executor, rate, ok in rows:
            print(f"| {name} | {executor} | {rate:.0f} | {ok}/{n} | {rate / unsafe:.2f} | {rate / azr:.2f} |")
        if len({r[2] for r in rows}) != 1:
            print(f"warning: executors disagree on the number of ok calls in '{name}'")
    print()
    print("| workload | azrlib CPU per author-run | azrlib CPU per call | unsafe CPU per call |")
    print("|---|---:|---:|---:|")
    for name, ms_author, us_call, us_unsafe in cpu:
        print(f"| {name} | {ms_author:.2f} ms | {us_call:.0f} us | {us_unsafe:.0f} us |")
    per_author = table[0][2]
    print(f"\nazrlib / unsafe, per author = {per_author[2][1] / per_author[0][1]:.2f}  (goal >= 0.3)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
