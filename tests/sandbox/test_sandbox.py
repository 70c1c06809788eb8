"""Adversarial tests of azrlib.sandbox: one hostile property per test.

Each test checks that the program is contained (sensible status), that the executor still answers
a benign program correctly afterwards, that no process is left behind, and that host files are
untouched. The suite runs against every isolation mode this machine supports: bubblewrap
(namespaces + seccomp + Landlock + uid) and, without bubblewrap, Landlock + seccomp alone.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import textwrap
import threading
import time

import pytest

from azrlib.sandbox import Executor, SandboxUnavailable, detect_isolation
from azrlib.sandbox import executor as executor_module

CAPS = detect_isolation()
MODES = []
if CAPS["bubblewrap"]:
    MODES.append("bwrap")
if CAPS["seccomp"] and CAPS["landlock_abi"] > 0:
    MODES.append("landlock")
if not MODES:  # pragma: no cover - CI installs bubblewrap
    pytest.skip("no sandbox isolation available on this machine: install bubblewrap", allow_module_level=True)

BENIGN = ("def f(a, b):\n    return [a * k for k in range(b)]", "'x', 3")
BENIGN_VALUE = "['', 'x', 'xx']"


@pytest.fixture(scope="module", params=MODES)
def ex(request):
    with Executor(workers=2, timeout_s=2.0, use_bwrap=(request.param == "bwrap")) as executor:
        yield executor


def _children(pid: int) -> list[int]:
    parents: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        parents.setdefault(int(fields[1]), []).append(int(entry))
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        for c in parents.get(p, []):
            out.append(c)
            todo.append(c)
    return out


def sandbox_processes(ex: Executor) -> int:
    """Processes under the workers (bwrap monitors, the zygotes, runners)."""
    return sum(1 + len(_children(w.proc.pid)) for w in ex._workers)


def settled_count(ex: Executor, expected: int, wait_s: float = 3.0) -> int:
    deadline = time.time() + wait_s
    n = sandbox_processes(ex)
    while n != expected and time.time() < deadline:
        time.sleep(0.05)
        n = sandbox_processes(ex)
    return n


@pytest.fixture
def baseline(ex):
    """Process count before the hostile program; checked again after it, with a benign run."""
    before = sandbox_processes(ex)
    yield before
    r = ex.run(*BENIGN)
    assert r.status == "ok" and r.value == BENIGN_VALUE, r
    assert settled_count(ex, before) == before, "a sandbox process was left behind"


@pytest.fixture
def canary(tmp_path):
    d = tmp_path / "canary"
    d.mkdir()
    (d / "keep.txt").write_text("precious")
    yield d
    assert (d / "keep.txt").read_text() == "precious", "host file was touched"


def prog(body: str, args: str = "") -> str:
    return f"def f({args}):\n" + textwrap.indent(textwrap.dedent(body).strip("\n"), "    ") + "\n"


# --------------------------------------------------------------------------- resource abuse

def test_infinite_loop_times_out(ex, baseline):
    t0 = time.time()
    r = ex.run(prog("while True:\n    pass"), "", timeout_s=1.0)
    assert r.status == "timeout"
    assert time.time() - t0 < 8


def test_memory_bomb_is_stopped(ex, baseline):
    """The address-space limit (1 GiB here) stops the bomb: MemoryError, or a kill when the limit
    bites inside the interpreter. `bytearray(n)` writes every page, which takes seconds on a loaded
    host, so the clock is set well beyond it: a timeout would only mean the machine was slow, and
    would not show that the limit holds."""
    r = ex.run(prog("x = []\nwhile True:\n    x.append(bytearray(50 * 2**20))"), "", timeout_s=60.0)
    assert r.status == "crashed" or (r.status == "error" and "MemoryError" in r.error), r


def test_memory_limit_is_the_configured_one(ex, baseline):
    """Direct evidence that the bomb was stopped by the limit and not by luck: the program catches
    MemoryError and reports how much it got, which must stay under the 1 GiB address space."""
    body = """
    x = []
    try:
        while True:
            x.append(bytearray(50 * 2**20))
    except MemoryError:
        pass
    n = len(x)
    del x
    return n
    """
    r = ex.run(prog(body), "", timeout_s=60.0)
    # 20 blocks (1000 MiB) fit beside a small interpreter; a 21st cannot fit under 1024 MiB
    assert r.status == "ok" and 1 <= int(r.value) <= 1024 // 50, r


def test_fork_bomb_is_blocked(ex, baseline):
    r = ex.run(prog("import os\nwhile True:\n    os.fork()"), "")
    assert r.status == "error" and "PermissionError" in r.error


def test_thread_bomb_is_contained(ex, baseline):
    body = """
    import threading, time
    ts = []
    while True:
        t = threading.Thread(target=time.sleep, args=(60,))
        t.start()
        ts.append(t)
    """
    r = ex.run(prog(body), "")
    assert r.status in ("error", "timeout", "crashed")


def test_print_100mb_is_discarded(ex, baseline):
    r = ex.run(prog("print('x' * 100_000_000)\nreturn 7"), "", timeout_s=10.0)
    assert r.status == "ok" and r.value == "7"


def test_return_100mb_is_rejected(ex, baseline):
    r = ex.run(prog("return 'y' * 100_000_000"), "", timeout_s=10.0)
    assert r.status == "rejected" and "too large" in r.error


def test_deep_recursion_is_an_error(ex, baseline):
    r = ex.run(prog("return f(n + 1)", "n"), "0")
    assert r.status == "error" and "RecursionError" in r.error


def test_deep_recursion_with_raised_limit_is_contained(ex, baseline):
    body = "import sys\nsys.setrecursionlimit(10**7)\ndef g(n):\n    return g(n + 1)\nreturn g(0)"
    r = ex.run(prog(body), "", timeout_s=3.0)
    # Python 3.11 keeps Python frames on the heap: this ends in MemoryError, a crash, or the clock
    assert r.status in ("crashed", "error", "timeout")


def test_200mb_file_write_fails(ex, baseline):
    body = """
    with open('big.bin', 'wb') as fh:
        for _ in range(200):
            fh.write(b'z' * 2**20)
    return 'written'
    """
    r = ex.run(prog(body), "", timeout_s=10.0)
    assert r.status == "error" and ("File too large" in r.error or "No space" in r.error), r


def test_signals_cannot_stop_the_timeout(ex, baseline):
    body = """
    import signal
    signal.signal(signal.SIGALRM, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    while True:
        pass
    """
    r = ex.run(prog(body), "", timeout_s=1.0)
    assert r.status == "timeout"


# --------------------------------------------------------------------------- escapes

def test_os_system_rm_rf_cannot_run(ex, baseline, canary):
    r = ex.run(prog(f"import os\nreturn os.system('rm -rf {canary}')"), "")
    assert r.status == "error" or (r.status == "ok" and r.value != "0")


def test_shutil_rmtree_cannot_reach_host(ex, baseline, canary):
    r = ex.run(prog(f"import shutil\nshutil.rmtree({str(canary)!r})\nreturn 'gone'"), "")
    assert r.status == "error"


def test_write_outside_private_tmp_fails(ex, baseline, tmp_path):
    target = tmp_path / "escaped.txt"
    for path in (str(target), "/usr/escaped.txt", "/escaped.txt"):
        r = ex.run(prog(f"open({path!r}, 'w').write('x')\nreturn 'wrote'"), "")
        assert r.status == "error", (path, r)
    assert not target.exists()


def test_private_tmp_is_writable_and_cleaned(ex, baseline):
    body = "import os\np = os.path.join(os.environ['TMPDIR'], 's.txt')\nopen(p, 'w').write('abc')\nreturn open(p).read()"
    r = ex.run(prog(body), "")
    assert r.status == "ok" and r.value == "'abc'"
    r = ex.run(prog("import os\nreturn os.listdir(os.environ['TMPDIR'])"), "")
    assert r.value == "[]"


def test_etc_passwd_is_not_readable(ex, baseline):
    r = ex.run(prog("return open('/etc/passwd').read()"), "")
    assert r.status == "error"


def test_parent_environment_secret_is_invisible(monkeypatch, tmp_path):
    monkeypatch.setenv("AZR_TEST_SECRET", "s3cr3t-value")
    for mode in MODES:
        with Executor(workers=2, use_bwrap=(mode == "bwrap")) as ex:
            body = """
            import os
            found = [v for v in os.environ.values()]
            for p in ('/proc/1/environ', '/proc/self/environ'):
                try:
                    found.append(open(p, 'rb').read().decode('latin-1'))
                except OSError:
                    pass
            return ' '.join(found)
            """
            r = ex.run(prog(body), "")
            assert r.status in ("ok", "error", "rejected")
            assert "s3cr3t-value" not in (r.value or "") + (r.error or "")


def test_socket_to_localhost_listener_fails(ex, baseline):
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(5)
    server.settimeout(0.5)
    port = server.getsockname()[1]
    accepted = []

    def accept():
        try:
            accepted.append(server.accept())
        except OSError:
            pass

    t = threading.Thread(target=accept)
    t.start()
    body = f"import socket\ns = socket.create_connection(('127.0.0.1', {port}), timeout=1)\nreturn 'connected'"
    r = ex.run(prog(body), "")
    t.join()
    server.close()
    assert r.status == "error"
    assert not accepted


def test_ctypes_segfault_is_a_crash(ex, baseline):
    r = ex.run(prog("import ctypes\nreturn ctypes.string_at(0)"), "")
    assert r.status == "crashed" and "SIGSEGV" in r.error


@pytest.mark.parametrize("body,status,text", [
    ("import sys\nsys.exit(3)", "error", "SystemExit"),
    ("raise KeyboardInterrupt", "error", "KeyboardInterrupt"),
    ("import os\nos._exit(0)", "crashed", "exited"),
])
def test_exits_and_interrupts(ex, baseline, body, status, text):
    r = ex.run(prog(body), "")
    assert r.status == status and text in r.error


def test_killing_the_parent_fails(ex, baseline):
    body = """
    import os, signal
    out = []
    for pid in (os.getppid(), 1):
        try:
            os.kill(pid, signal.SIGKILL)
            out.append('killed')
        except OSError as e:
            out.append(type(e).__name__)
    return out
    """
    before = [w.proc.pid for w in ex._workers]
    r = ex.run(prog(body), "")
    assert r.status == "ok" and "killed" not in r.value, r
    assert [w.proc.pid for w in ex._workers] == before  # no worker had to be replaced


def test_setsid_double_fork_orphan_cannot_start(ex, baseline, tmp_path):
    body = f"""
    import os, time
    if os.fork() == 0:
        os.setsid()
        if os.fork() == 0:
            time.sleep(1.5)
            open({str(tmp_path / 'late.txt')!r}, 'w').write('late')
        os._exit(0)
    return 'parent'
    """
    r = ex.run(prog(body), "")
    assert r.status == "error"
    time.sleep(2.0)
    assert not (tmp_path / "late.txt").exists()


# --------------------------------------------------------------------------- hostile values

def test_object_with_eq_always_true_is_rejected(ex, baseline):
    body = "class A:\n    def __eq__(self, other):\n        return True\nreturn A()"
    r = ex.run(prog(body), "")
    assert r.status == "rejected" and "unsupported output type" in r.error


def test_int_subclass_is_rejected(ex, baseline):
    r = ex.run(prog("class I(int):\n    def __repr__(self):\n        return '1'\nreturn I(5)"), "")
    assert r.status == "rejected"


def test_self_referencing_list_is_rejected(ex, baseline):
    r = ex.run(prog("x = []\nx.append(x)\nreturn x"), "")
    assert r.status == "rejected"


def test_patched_builtins_do_not_leak_to_next_program(ex, baseline):
    patch = prog("import builtins\nbuiltins.len = lambda x: 42\nbuiltins.sorted = None\nreturn 1")
    clean = prog("return [len(s), sorted(s)]", "s")
    results = ex.run_many([(patch, "")] + [(clean, "'cab'")] * 20)
    assert all(r.status == "ok" and r.value == "[3, ['a', 'b', 'c']]" for r in results[1:])


def test_one_round_never_lets_a_patch_reach_another_author(ex, baseline):
    """Even in a single family (no double run to fall back on), a program that patches builtins
    cannot change another program's result: every author gets its own fresh process."""
    patch = prog("import builtins\nbuiltins.len = lambda x: 42\nreturn 1")
    clean = prog("return len(s)", "s")
    items = [[0, "call", patch, "((), {})", 2.0]] + [[k, "call", clean, "(('abc',), {})", 2.0] for k in range(1, 10)]
    runs = ex._run_round(items, (0,))
    assert [runs[0][k].value for k in range(1, 10)] == ["3"] * 9


def test_stdlib_class_patch_is_caught_by_double_run(ex, baseline):
    patch = prog("import collections\ncollections.Counter.most_common = lambda self, n=None: 'poisoned'\nreturn 1")
    clean = prog("import collections\nreturn collections.Counter(s).most_common(1)", "s")
    results = ex.run_many([(patch, "")] + [(clean, "'aab'")] * 10)
    assert all(r.value == "[('a', 2)]" for r in results[1:]), results


@pytest.mark.parametrize("body", [
    "import random\nreturn random.random()",
    "import time\nreturn time.time()",
    "return id(object())",
    "return list({str(i) for i in range(40)})",
    "return ''.join({chr(97 + i): 0 for i in range(26)}.keys() & set('abcdefghijklmnop'))",
])
def test_nondeterminism_is_rejected(ex, baseline, body):
    r = ex.run(prog(body), "")
    assert r.status == "rejected" and "nondeterministic" in r.error, r


# --------------------------------------------------------------------------- plumbing

def test_canonical_values(ex):
    cases = {
        "{3, 1, 2}": "{1, 2, 3}",
        "{'b': 2, 'a': 1}": "{'a': 1, 'b': 2}",
        "(1,)": "(1,)",
        "set()": "set()",
        "frozenset({2, 1})": "frozenset({1, 2})",
        "float('nan')": "float('nan')",
        "[1.5, -0.0, True, None, b'x']": "[1.5, -0.0, True, None, b'x']",
        "{1: 'a', 'b': 2}": "{1: 'a', 'b': 2}",
    }
    results = ex.run_many([(prog(f"return {expr}"), "") for expr in cases])
    assert [r.value for r in results] == list(cases.values())


def test_run_many_keeps_order_with_mixed_outcomes(ex):
    pairs = [(prog("return x * 2", "x"), str(k)) for k in range(50)]
    pairs[10] = (prog("while True:\n    pass"), "")
    pairs[20] = (prog("import os\nos._exit(1)"), "")
    pairs[30] = (prog("return 1 / 0"), "")
    results = ex.run_many(pairs, timeout_s=1.0)
    statuses = [r.status for r in results]
    assert statuses[10] == "timeout" and statuses[20] == "crashed" and statuses[30] == "error"
    for k in set(range(50)) - {10, 20, 30}:
        assert results[k].status == "ok" and results[k].value == str(2 * k)


def test_syntax_errors_and_missing_f(ex):
    assert ex.run("def f(:\n  pass", "").status == "error"
    r = ex.run("def g():\n    return 1", "")
    assert r.status == "error" and "no function f" in r.error
    assert ex.run(prog("return a", "a"), "1, 2").status == "error"


def test_run_script(ex):
    assert ex.run_script("assert sum(range(5)) == 10").status == "ok"
    r = ex.run_script("assert 1 == 2, 'nope'")
    assert r.status == "error" and "AssertionError" in r.error


def test_dead_worker_is_replaced(ex):
    victim = ex._workers[0]
    os.killpg(victim.proc.pid, signal.SIGKILL)
    victim.proc.wait()
    results = ex.run_many([BENIGN] * 5)
    assert all(r.status == "ok" and r.value == BENIGN_VALUE for r in results)


def test_workers_die_with_their_owner(tmp_path):
    script = textwrap.dedent(f"""
        import sys, time
        sys.path.insert(0, {os.getcwd()!r})
        from azrlib.sandbox import Executor
        ex = Executor(workers=2)
        print(' '.join(str(w.proc.pid) for w in ex._workers), flush=True)
        time.sleep(60)
    """)
    owner = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    pids = [int(p) for p in owner.stdout.readline().split()]
    assert pids
    descendants = [c for p in pids for c in _children(p)] + pids
    owner.kill()
    owner.wait()
    deadline = time.time() + 5
    alive = descendants
    while alive and time.time() < deadline:
        time.sleep(0.1)
        alive = [p for p in descendants if _alive(p)]
    assert not alive, f"processes left behind: {alive}"


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def test_isolation_is_reported(ex):
    iso = ex.isolation
    assert iso["seccomp"] is True and iso["landlock_abi"] > 0 and iso["weak"] is False
    assert iso["network"] == "none"
    if iso["bubblewrap"]:
        assert "pid" in iso["namespaces"] and iso["non_root_uid"]


def test_refuses_weak_isolation(monkeypatch):
    weak = dict(CAPS, bubblewrap=False, seccomp=False, landlock_abi=0, can_switch_uid=False)
    monkeypatch.setattr(executor_module, "detect_isolation", lambda: weak)
    with pytest.raises(SandboxUnavailable, match="bubblewrap"):
        Executor(workers=2)
    with Executor(workers=2, allow_weak_isolation=True) as ex:
        assert ex.isolation["weak"] is True
        assert ex.run(*BENIGN).value == BENIGN_VALUE
