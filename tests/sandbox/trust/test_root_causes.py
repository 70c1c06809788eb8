"""One test per way a model could forge its reward through the sandbox (the root causes in the
threat model, `azrlib/sandbox/THREAT_MODEL.md`), run against every isolation mode here.

Each test is written against the public API (`Executor.run_many`, `validate_triplets`,
`verify_answers`) so that it can also be run against an older tree to show the hole it closes.
"""

from __future__ import annotations

import textwrap

import pytest

from azrlib.sandbox import Executor, detect_isolation
from azrlib.tasks.types import Task
from azrlib.tasks.validation import ValidationConfig, validate_triplets
from azrlib.tasks.values import parse_literal
from azrlib.tasks.verify import verify_answers

CAPS = detect_isolation()
MODES = (["bwrap"] if CAPS["bubblewrap"] else []) + (["landlock"] if CAPS["seccomp"] and CAPS["landlock_abi"] > 0 else [])
if not MODES:  # pragma: no cover
    pytest.skip("no sandbox isolation available on this machine", allow_module_level=True)


@pytest.fixture(scope="module", params=MODES)
def ex(request):
    with Executor(workers=2, timeout_s=5.0, use_bwrap=(request.param == "bwrap")) as executor:
        yield executor


def prog(body: str, args: str = "") -> str:
    return f"def f({args}):\n" + textwrap.indent(textwrap.dedent(body).strip("\n"), "    ") + "\n"


def writer(line: bytes) -> str:
    """A program that writes `line` to every descriptor it has (its result channel among them)."""
    return prog(f"""
    import os
    for fd in range(3, 64):
        try:
            os.write(fd, {line!r})
        except OSError:
            pass
    return 0
    """)


# ----------------------------------------------------------------------------- 1. result channel

def test_a_program_cannot_write_another_items_result(ex):
    """Forger k claims victim k's result in the runner's own line format (a duplicate "i" key, the
    last one wins in a lax parser). Victims use `os`, so on a lax design they run in the same
    worker after their forger; 20 pairs make the double run's shuffle no rescue."""
    pairs = []
    for k in range(20):
        forged = b'{"i": %d, "status": "ok", "value": "-1", "error": null, "seconds": 0.0, ' \
                 b'"restart": false, "i": %d}\n' % (2 * k, 2 * k + 1)
        pairs.append((writer(forged), ""))
        pairs.append((prog("import os\nreturn x + 1", "x"), str(k)))
    results = ex.run_many(pairs)
    assert [r.value for r in results[1::2]] == [str(k + 1) for k in range(20)], results[1::2]
    assert all(r.status == "crashed" for r in results[0::2]), results[0::2]


@pytest.mark.parametrize("line", [
    b'{"i": 0, "status": "ok", "value": "1", "error": null, "seconds": 1' + b"0" * 400 + b', "restart": false}\n',
    b'{"i": 0, "status": "ok", "value": ' + b"[" * 50_000 + b"]" * 50_000 + b', "error": null, "seconds": 0.0, "restart": false}\n',
    b'{"i": 0, "status": "ok", "value": {"a": 1}, "error": null, "seconds": 0.0, "restart": false}\n',
    b"\xff\xfe" * 1000 + b"\n",
])
def test_junk_on_the_result_channel_is_a_crash_of_that_item_only(ex, line):
    """Huge numbers, deep nesting, wrong types, bytes that are not UTF-8: the parent never raises,
    the writer's item is `crashed` (or its own honest result), the other items are untouched."""
    results = ex.run_many([(writer(line), "")] + [(prog("return x * 3", "x"), str(k)) for k in range(5)])
    assert results[0].status in ("crashed", "ok") and results[0].value in (None, "0"), results[0]
    assert [r.value for r in results[1:]] == [str(3 * k) for k in range(5)]


def test_no_stale_line_survives_into_the_next_call(ex):
    """Lines a program leaves behind (for every item number of a next call) are not read as the
    next call's results."""
    lines = b"".join(b'{"i": %d, "status": "ok", "value": "-7", "error": null, "seconds": 0.0, "restart": false}\n' % k
                     for k in range(8))
    ex.run_many([(writer(lines), "")])
    results = ex.run_many([(prog("return x", "x"), str(k)) for k in range(8)])
    assert [r.value for r in results] == [str(k) for k in range(8)]


# ----------------------------------------------------------------------------- 2. answers are data

def test_an_input_is_data_not_code(ex):
    r = ex.run(prog("return x", "x"), "__import__('os').getpid()")
    assert r.status == "rejected" and "not a literal" in r.error, r
    assert ex.run(prog("return x", "x"), "[1, {'a': (2, 3)}], ").value == "[1, {'a': (2, 3)}]"
    assert ex.run(prog("return [a, b]", "a, b=0"), "1, b={2: 3}").value == "[1, {2: 3}]"


def test_an_abduction_answer_cannot_close_the_call(ex):
    task = Task("abduction", prog("return x * 2", "x"), ("5",), ("10",))
    answers = ["5", "0) * 0 + (10", "x := 5", "*[5]"]
    got = [v.correct for v in verify_answers(ex, [task] * len(answers), answers)]
    assert got == [True, False, False, False]


def test_a_deduction_answer_is_never_evaluated(ex):
    task = Task("deduction", prog("return len(s)", "s"), ("'0123456789'",), ("10",))
    answers = ["10", "len('0123456789')", "f('0123456789')", "5 + 5", "10.0"]
    got = [v.correct for v in verify_answers(ex, [task] * len(answers), answers)]
    assert got == [True, False, False, False, True]


def test_a_proposed_input_cannot_bypass_f(ex):
    got = validate_triplets(ex, [("deduction", prog("return a", "a"), "0) or (7"),
                                 ("deduction", prog("return a", "a"), "7")], ValidationConfig(timeout_s=5.0))
    assert (got[0].ok, got[0].reason) == (False, "bad_input")
    assert got[1].ok and got[1].task.output == "7"


# ----------------------------------------------------------------------------- 3. shared runners

def test_a_string_driven_class_patch_never_reaches_another_program(ex):
    """`operator.methodcaller('__setattr__', ...)` patches a stdlib class without any attribute
    store or underscore name in the bytecode; the victims come after it in the same call."""
    poison = prog("import operator, collections\n"
                  "operator.methodcaller('__setattr__', 'most_common', lambda self, n=None: 'poisoned')"
                  "(collections.Counter)\nreturn 1")
    victim = prog("import collections\nreturn collections.Counter(s).most_common(1)", "s")
    results = ex.run_many([(poison, "")] + [(victim, repr("ab" + "c" * k)) for k in range(2, 42)])
    assert [r.value for r in results[1:]] == ["[('c', %d)]" % k for k in range(2, 42)]


def test_each_author_starts_from_fresh_state(ex):
    """A program that changes process state (env, umask, cwd, trace hook, recursion limit,
    threads, files in /tmp) leaves none of it to the next author, in the same call or the next."""
    spoil = prog("""
    import os, sys, threading, time
    os.environ['SPOILED'] = '1'
    os.umask(0o777)
    os.makedirs('d/e', exist_ok=True)
    open('d/e/f.txt', 'w').write('x')
    os.chmod('d/e', 0)
    os.chdir('d')
    sys.settrace(lambda *a: None)
    sys.setrecursionlimit(60)
    threading.Thread(target=time.sleep, args=(30,), daemon=True).start()
    return 1
    """)
    look = prog("""
    import os, sys, threading
    mask = os.umask(0o022)
    return [os.environ.get('SPOILED'), mask, os.getcwd() == os.environ['TMPDIR'], sys.gettrace() is None,
            sys.getrecursionlimit(), threading.active_count(), sorted(os.listdir(os.environ['TMPDIR']))]
    """, "k")
    first = ex.run_many([(spoil, "")] + [(look, str(k)) for k in range(3)])
    again = ex.run(look, "9")
    expected = "[None, 18, True, True, 1000, 1, []]"
    assert [r.value for r in first[1:]] == [expected] * 3, first
    assert again.value == expected, again


# ----------------------------------------------------------------------------- 4. inherited memory

SECRET = prog("s = 'AZR_SECRET' + 'x' * 300\nreturn len(s) + x", "x")


def test_a_runner_holds_no_other_programs_objects(ex):
    reader = prog("""
    import gc
    rev = 'TERCES_RZA'
    for o in gc.get_objects():
        if type(o) is list:
            for x in o:
                if type(x) is str and rev[::-1] in x:
                    return True
    return False
    """)
    results = ex.run_many([(SECRET, "1"), (reader, "")])
    assert results[1].value == "False", results[1]


def test_a_runner_cannot_read_earlier_jobs_from_freed_memory(ex):
    """The reader scans the mapped memory around its own heap objects for a marker that only an
    earlier job held. A SIGBUS (a file mapping's end) is fine: the point is that it finds nothing."""
    scan = prog("""
    import ctypes
    libc = ctypes.CDLL(None)
    vec = ctypes.create_string_buffer(1)
    rev = b'TERCES_RZA'
    def mapped(a):
        return libc.mincore(ctypes.c_void_p(a), ctypes.c_size_t(4096), vec) == 0
    found = 0
    for obj in (object(), 'x' * 2000):
        base = id(obj) & ~4095
        lo = hi = base
        while mapped(lo - 4096) and base - lo < (64 << 20):
            lo -= 4096
        while mapped(hi) and hi - base < (64 << 20):
            hi += 4096
        found += ctypes.string_at(lo, hi - lo)[::-1].count(rev)
    return found > 0
    """)
    ex.run_many([(SECRET + "# AZR_SECRET" * 50, str(k)) for k in range(20)])
    r = ex.run(scan, "")
    assert r.value != "True" and r.status in ("ok", "crashed"), r


# ----------------------------------------------------------------------------- 5. state between calls

def test_tmp_is_emptied_between_calls_even_when_locked(ex):
    body = """
    import os
    t = os.environ['TMPDIR']
    os.makedirs(os.path.join(t, 'a', 'b'))
    open(os.path.join(t, 'a', 'b', 'x'), 'w').write('x')
    open(os.path.join(t, 'top.txt'), 'w').write('x')
    os.chmod(os.path.join(t, 'a', 'b'), 0)
    os.chmod(os.path.join(t, 'a'), 0o500)
    return sorted(os.listdir(t))
    """
    assert ex.run(prog(body), "").value == "['a', 'top.txt']"
    assert ex.run(prog("import os\nreturn os.listdir(os.environ['TMPDIR'])"), "").value == "[]"


# ----------------------------------------------------------------------------- 6. golds

def test_a_nan_gold_is_not_accepted(ex):
    got = validate_triplets(ex, [("deduction", prog("return [1.0, float('nan')]", "a"), "1")], ValidationConfig())
    assert (got[0].ok, got[0].reason) == (False, "unmatchable_output")


def test_a_gold_at_the_depth_limit_parses_back(ex):
    """-1 nested in 100 lists is the deepest value the worker writes; it must parse back (a sign
    is part of its number, not one more level)."""
    body = "x = -1\nfor _ in range(100):\n    x = [x]\nreturn x"
    got = validate_triplets(ex, [("deduction", prog(body, "a"), "1")], ValidationConfig(max_output_chars=1000))[0]
    expected = -1
    for _ in range(100):
        expected = [expected]
    assert got.ok and parse_literal(got.task.output) == expected, got


@pytest.mark.parametrize("mode", MODES)
def test_a_pid_is_not_deterministic(mode):
    """In fresh pid namespaces both families would hand out the same pids; the second family's are
    offset. (Retries can realign the two sequences later on; a gold that depends on the pid is
    then still caught when it is used, since pids only grow.)"""
    with Executor(workers=2, timeout_s=5.0, use_bwrap=(mode == "bwrap")) as fresh:
        r = fresh.run(prog("import os\nreturn os.getpid()"), "")
    assert r.status == "rejected" and "nondeterministic" in r.error, r


def test_a_gold_that_no_longer_reproduces_drops_the_task(ex):
    """A task whose recorded gold is not what its program returns now (a coarse clock that moved
    on, say) makes every answer wrong and is flagged for removal; an honest task is unaffected."""
    stale = Task("deduction", prog("return x + 1", "x"), ("1",), ("3",))
    fresh = Task("deduction", prog("return x + 1", "x"), ("2",), ("3",))
    got = verify_answers(ex, [stale, fresh], ["3", "3"])
    assert (got[0].correct, got[0].gold_ok) == (False, False) and "no longer reproduces" in got[0].detail
    assert (got[1].correct, got[1].gold_ok) == (True, True)


def test_the_buffer_drops_a_task_whose_gold_failed():
    from azrlib.tasks.buffer import TaskBuffer
    buf = TaskBuffer("deduction")
    stale = Task("deduction", prog("return x + 1", "x"), ("1",), ("3",))
    buf.add(stale)
    buf.add(stale)
    assert buf.remove(stale) == 2 and stale not in buf and len(buf) == 1 and buf.n_removed == 2
    assert TaskBuffer.from_state_dict(buf.state_dict()).n_removed == 2


def test_a_large_non_ascii_result_is_not_mistaken_for_junk(ex):
    """A value at the output cap made of characters JSON escapes six-fold is a result, not junk."""
    r = ex.run(prog("return 'é' * 90_000"), "")
    assert r.status == "ok" and len(r.value) == 90_002, (r.status, r.error)
