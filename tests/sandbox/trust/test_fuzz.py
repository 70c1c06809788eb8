"""Fuzzing the trusted side of the sandbox with hypothesis: whatever a program makes its runner
write, the worker's frame check and the executor's line parser return a verdict and never raise;
canonical values and call arguments survive the round trip through the parser."""

from __future__ import annotations

import json
import marshal
import math
import os
import struct
import sys

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from azrlib.sandbox import STATUSES, ExecResult, Executor, detect_isolation
from azrlib.sandbox.canon import (NotALiteral, call_args, call_args_text, call_args_wire, canonical_repr,
                                  is_canonical, parse_literal)
from azrlib.sandbox.executor import _parse_result

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "..", "..", "azrlib", "sandbox"))
import runner  # noqa: E402  (the worker's own module, stdlib only)

KEYS = ["job", "i", "status", "value", "error", "seconds", "done", "restart"]
scalars = st.one_of(st.none(), st.booleans(), st.integers(), st.integers(min_value=10**300, max_value=10**400),
                    st.floats(allow_nan=True), st.text(max_size=20), st.sampled_from(STATUSES))
json_values = st.recursive(scalars, lambda inner: st.one_of(
    st.lists(inner, max_size=4), st.dictionaries(st.sampled_from(KEYS), inner, max_size=6)), max_leaves=20)


def _object_text(pairs) -> bytes:
    """A JSON object written by hand, so that keys may repeat."""
    return ("{" + ", ".join(f"{json.dumps(k)}: {json.dumps(v)}" for k, v in pairs) + "}").encode()


lines = st.one_of(
    st.binary(max_size=300),
    json_values.map(lambda v: json.dumps(v).encode()),
    st.lists(scalars, max_size=8).map(lambda v: json.dumps(v).encode()),
    st.lists(scalars, max_size=4).map(lambda v: json.dumps([1, 0] + v).encode()),
    st.lists(st.tuples(st.sampled_from(KEYS), scalars), max_size=8).map(_object_text),
    st.integers(1, 20_000).map(lambda n: b"[" * n + b"]" * n),
    st.integers(1, 20_000).map(lambda n: b'{"job": 1, "i": 0, "value": ' + b"[" * n + b"]" * n + b"}"),
    st.sampled_from([b'{"job": 1, "done": true}', b'[2, "done"]', b'[1, true]', b'[1, "done", "done"]',
                     b'[true, "done"]', b'[1.0, 0, "ok", "1", null, 0]', b'[1, 0, "ok", "1", null, NaN]',
                     b'{"job": 1, "i": 0, "status": "ok", "value": "1", "error": null, "seconds": 0, "i": 1}']),
)
frames = st.one_of(  # what a runner could write as one frame: near the format and far from it
    st.binary(max_size=40),
    st.tuples(st.integers(0, 255), st.floats(allow_nan=True), st.text(max_size=30)).map(
        lambda t: struct.pack(">Bd", t[0], t[1]) + t[2].encode("utf-8", "surrogatepass")),
    st.tuples(st.integers(0, 2), st.floats(0, 10), json_values).map(
        lambda t: struct.pack(">Bd", t[0], t[1]) + repr(t[2]).encode("utf-8", "surrogatepass")),
)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(lines)
def test_parse_result_never_raises_and_attributes_only_pending_items(line):
    kind, i, result = _parse_result(line, 1, {0, 1})
    assert kind in ("done", "result", "junk")
    if kind == "result":
        assert i in (0, 1) and isinstance(result, ExecResult) and result.status in STATUSES
        assert result.value is None or type(result.value) is str
        assert type(result.seconds) is float and math.isfinite(result.seconds)
    else:
        assert i is None and result is None


def test_parse_result_takes_exact_lines_of_the_job_in_flight_only():
    """Lines are arrays (no keys that could repeat); objects, other jobs, items not pending, extra
    fields and a bool for an int are junk; a wrong field of a pending item is its crash."""
    for line in (b'{"job": 1, "i": 0, "status": "ok", "value": "1", "error": null, "seconds": 0, "i": 1}',
                 b'[2, "done"]', b'[1, 2, "ok", "1", null, 0.5]', b'[1, 0, "ok", "1", null, 0.5, 0]',
                 b'[1, false, "ok", "1", null, 0.5]', b'[true, 0, "ok", "1", null, 0.5]', b'[1, "done "]'):
        assert _parse_result(line, 1, {0, 1})[0] == "junk", line
    assert _parse_result(b'[1, "done"]', 1, {0}) == ("done", None, None)
    ok = _parse_result(b'[1, 0, "ok", "1", null, 0.5]', 1, {0})
    assert ok == ("result", 0, ExecResult("ok", "1", None, 0.5))
    for line in (b'[1, 0, "ok", "1", "x", 0.5]', b'[1, 0, "fine", "1", null, 0.5]', b'[1, 0, "error", "1", "x", 0]',
                 b'[1, 0, "ok", "1", null, -1]', b'[1, 0, "ok", "1", null, NaN]', b'[1, 0, "ok", 1, null, 0]'):
        bad = _parse_result(line, 1, {0})
        assert bad[0] == "result" and bad[1] == 0 and bad[2].status == "crashed", line


@settings(max_examples=600, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.one_of(lines, frames), st.sampled_from(["call", "script"]))
def test_worker_frame_check_never_raises(payload, kind):
    got = runner.check_frame(payload, 1000, kind)
    if got is not None:
        status, value, error, seconds = got
        assert status in ("ok", "error", "rejected")
        assert type(seconds) is float and 0 <= seconds < 1e9
        if status == "ok" and kind == "call":
            assert canonical_repr(parse_literal(value), 1000) == value
        elif status == "ok":
            assert value is None and error is None
        else:
            assert value is None and type(error) is str and len(error) <= runner.MAX_ERROR_CHARS


def test_worker_frame_check_is_exact():
    frame = runner.result_frame("ok", "[1, 'a']", 0.25)
    assert runner.check_frame(frame[4:], 1000) == ("ok", "[1, 'a']", None, 0.25)
    assert runner.check_frame(runner.result_frame("error", "E: x", 0.5)[4:], 1000) == ("error", None, "E: x", 0.5)
    assert runner.check_frame(runner.result_frame("ok", None, 0.5)[4:], 1000, "script") == ("ok", None, None, 0.5)
    for status, text, kind in (("ok", "[1,'a']", "call"), ("ok", "f(1)", "call"), ("ok", "x", "script"),
                               ("ok", "-0", "call"), ("ok", "01", "call"), ("ok", "'" + "a" * 2000 + "'", "call")):
        assert runner.check_frame(runner.result_frame(status, text, 0.5)[4:], 1000, kind) is None, text
    assert runner.check_frame(struct.pack(">Bd", 3, 0.5) + b"1", 1000) is None
    assert runner.check_frame(struct.pack(">Bd", 0, float("nan")) + b"1", 1000) is None
    assert runner.check_frame(struct.pack(">Bd", 0, 0.5) + b"'\xff'", 1000) is None
    assert runner.check_frame(struct.pack(">Bd", 0, 0.5)[:8], 1000) is None


texts = st.one_of(st.text(max_size=12), st.from_regex(r"-?[0-9]{1,5}", fullmatch=True),
                  st.from_regex(r"'[ -~]{0,6}'", fullmatch=True), st.sampled_from(["True", "None", "-0", "'\\'"]),
                  # near-canonical flat containers: spacing, commas, signs, quotes, nesting
                  st.from_regex(r"""[\[(](?:(?:-?[0-9]{1,3}|'[a-c ,'\\]{0,3}'|"a"|True|None|\[\]|\(\))(?:,|, |,  | ,)?){0,4}[\])]""",
                                fullmatch=True))


@settings(max_examples=400, deadline=None)
@given(st.one_of(texts, st.builds(lambda v: canonical_repr(v, 10**6), st.deferred(lambda: literals))))
def test_the_canonical_shortcut_agrees_with_the_round_trip(text):
    for cap in (1000, len(text), 2 * len(text) - 1, 2 * len(text) + 2):  # at the budget's edges too
        try:
            want = canonical_repr(parse_literal(text, max_chars=cap), cap) == text
        except Exception:  # noqa: BLE001
            want = False
        assert is_canonical(text, cap) == want, (text, cap)


literals = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(-10**30, 10**30), st.floats(allow_nan=False),
              st.text(max_size=8), st.binary(max_size=8), st.complex_numbers(allow_nan=False)),
    lambda inner: st.one_of(st.lists(inner, max_size=4), st.tuples(inner, inner),
                            st.dictionaries(st.one_of(st.text(max_size=4), st.integers()), inner, max_size=4),
                            st.frozensets(st.integers(), max_size=4), st.sets(st.text(max_size=3), max_size=4)),
    max_leaves=15)


@settings(max_examples=300, deadline=None)
@given(literals)
def test_canonical_values_round_trip(value):
    text = canonical_repr(value, 10**6)
    assert canonical_repr(parse_literal(text), 10**6) == text


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(literals, max_size=3), st.dictionaries(st.sampled_from(["a", "b", "k"]), literals, max_size=2))
def test_call_args_keep_the_values_as_written(args, kwargs):
    text = ", ".join([repr(a) for a in args] + [f"{k}={v!r}" for k, v in kwargs.items()])
    # Python's own reading of the same text (generated here, so eval is safe): same values, same
    # dict order, same types. (`repr(complex(0, inf))` is `infj`, which is no
    # literal: Python cannot read it back either.)
    try:
        want = eval(f"(lambda *a, **k: (a, k))({text})", {"inf": math.inf, "nan": math.nan})
    except NameError:
        with pytest.raises(NotALiteral):
            call_args_text(text)
        return
    assert _shape(call_args(call_args_text(text))) == _shape(want)
    wire = call_args_wire(text)  # what the runner gets: marshal bytes, or the text with a set
    got = marshal.loads(wire) if type(wire) is bytes else call_args(wire)
    assert _shape(got) == _shape(want)
    if _set_marks(want):
        assert type(wire) is str and wire == call_args_text(text)
    else:
        assert type(wire) is bytes


def _set_marks(v):
    """'{' once for every set or frozenset inside v (dicts do not count)."""
    if type(v) in (set, frozenset):
        return "{" + "".join(_set_marks(x) for x in v)
    if type(v) in (list, tuple):
        return "".join(_set_marks(x) for x in v)
    if type(v) is dict:
        return "".join(_set_marks(k) + _set_marks(x) for k, x in v.items())
    return ""


def _shape(v):
    """A comparable picture of a value that keeps dict order and types; a set's iteration order
    is left out (it depends on the hash seed, which differs between the two sandbox families)."""
    if type(v) in (list, tuple):
        return (type(v).__name__, [_shape(x) for x in v])
    if type(v) is dict:
        return ("dict", [(_shape(k), _shape(x)) for k, x in v.items()])
    if type(v) in (set, frozenset):
        return (type(v).__name__, sorted(repr(_shape(x)) for x in v))
    return (type(v).__name__, repr(v))


CAPS = detect_isolation()


@pytest.fixture(scope="module")
def ex():
    if not (CAPS["bubblewrap"] or (CAPS["seccomp"] and CAPS["landlock_abi"] > 0)):
        pytest.skip("no sandbox isolation available on this machine")
    with Executor(workers=2, timeout_s=5.0) as executor:
        yield executor


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.one_of(st.binary(max_size=2000), lines.map(lambda b: b + b"\n"),
                 st.integers(0, 2**32 - 1).map(lambda n: n.to_bytes(4, "big") + b'{"status": "ok"}'),
                 st.tuples(st.integers(0, 2**32 - 1), frames).map(lambda t: t[0].to_bytes(4, "big") + t[1])))
def test_a_program_writing_anything_on_its_channel_harms_only_itself(ex, data):
    """The runner protocol, end to end: a program writes fuzzed bytes to every descriptor it has
    (its result channel among them) and returns; the other program's result is exact. Its own
    result may be whatever a well-formed frame says (e.g. `error`, or another value): a program
    can make its own result anything it could also have produced (THREAT_MODEL.md), never a
    malformed one."""
    writer = ("def f():\n    import os\n    for fd in range(3, 64):\n        try:\n"
              f"            os.write(fd, {data!r})\n        except OSError:\n            pass\n    return 0\n")
    results = ex.run_many([(writer, ""), ("def f(x):\n    return x * 2", "21")])
    assert results[0].status in ("ok", "error", "rejected", "crashed"), results[0]
    assert (results[0].value is not None) == (results[0].status == "ok"), results[0]
    assert results[0].value is None or is_canonical(results[0].value), results[0]
    assert results[1].status == "ok" and results[1].value == "42"
