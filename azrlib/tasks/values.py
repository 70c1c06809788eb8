"""Python values written as text: safe literal parsing and comparison.

Gold outputs are canonical reprs from the sandbox (builtin literal types only); model answers are
whatever the model wrote. `parse_literal` turns literal text into a value without running any
code (a whitelist over the AST, with size and depth limits); text that is an expression rather
than a literal (`dict(a=1)`, `[0] * 3`) is evaluated in the sandbox by `values_of`. Comparison is
Python `==` on such values: 1 == 1.0 == True, dict order ignored, tuple != list (as AZR's
`eval(gold) == eval(answer)`), which is safe here because no user type can reach it.
"""

from __future__ import annotations

import ast
import math

MAX_LITERAL_CHARS = 100_000
MAX_LITERAL_DEPTH = 100

_SPECIAL_FLOATS = {"nan": math.nan, "inf": math.inf, "-inf": -math.inf, "infinity": math.inf,
                   "-infinity": -math.inf}


class NotALiteral(ValueError):
    """The text is not a plain Python literal (it may still be a valid expression)."""


def parse_literal(text: str, max_chars: int = MAX_LITERAL_CHARS, max_depth: int = MAX_LITERAL_DEPTH):
    """Value of a literal: numbers, strings, bytes, bools, None, tuples, lists, dicts, sets, plus
    the canonical forms `set()`, `frozenset({...})`, `float('nan'|'inf'|'-inf')`, `complex(a, b)`,
    bare `inf`/`nan` (repr's spelling) and unary minus. Raises NotALiteral for anything else, never runs code."""
    if not isinstance(text, str):
        raise NotALiteral("not a string")
    if len(text) > max_chars:
        raise NotALiteral(f"longer than {max_chars} characters")
    try:
        tree = ast.parse(text.strip(), mode="eval")
    except (SyntaxError, ValueError, RecursionError, MemoryError) as e:
        raise NotALiteral(f"does not parse: {type(e).__name__}") from None
    try:
        return _value(tree.body, 0, max_depth)
    except RecursionError:
        raise NotALiteral("nested too deeply") from None


def _value(node: ast.AST, depth: int, max_depth: int):
    if depth > max_depth:
        raise NotALiteral("nested too deeply")
    t = type(node)
    d = depth + 1
    if t is ast.Constant:
        if node.value is Ellipsis:
            raise NotALiteral("Ellipsis")
        return node.value
    if t is ast.Name and node.id in ("inf", "nan"):
        return _SPECIAL_FLOATS[node.id]  # how repr() prints them, as AZR stored them
    if t is ast.Tuple:
        return tuple(_value(e, d, max_depth) for e in node.elts)
    if t is ast.List:
        return [_value(e, d, max_depth) for e in node.elts]
    if t is ast.Set:
        return {_hashable(_value(e, d, max_depth)) for e in node.elts}
    if t is ast.Dict:
        if any(k is None for k in node.keys):
            raise NotALiteral("dict unpacking")
        return {_hashable(_value(k, d, max_depth)): _value(v, d, max_depth) for k, v in zip(node.keys, node.values)}
    if t is ast.UnaryOp and type(node.op) in (ast.USub, ast.UAdd):
        v = _value(node.operand, d, max_depth)
        if type(v) not in (int, float, complex):
            raise NotALiteral("unary sign on a non-number")
        return -v if type(node.op) is ast.USub else +v
    if t is ast.BinOp and type(node.op) in (ast.Add, ast.Sub):
        # only `a + bj` / `a - bj` complex literals
        left, right = _value(node.left, d, max_depth), _value(node.right, d, max_depth)
        if type(left) in (int, float) and type(right) is complex:
            return left + right if type(node.op) is ast.Add else left - right
        raise NotALiteral("arithmetic")
    if t is ast.Call and type(node.func) is ast.Name and not node.keywords:
        name, args = node.func.id, node.args
        if name == "set" and not args:
            return set()
        if name == "frozenset" and len(args) <= 1:
            return frozenset(_hashable(x) for x in (_value(args[0], d, max_depth) if args else ()))
        if name == "float" and len(args) == 1 and type(args[0]) is ast.Constant and isinstance(args[0].value, str):
            key = args[0].value.strip().lower()
            if key in _SPECIAL_FLOATS:
                return _SPECIAL_FLOATS[key]
        if name == "complex" and len(args) == 2:
            re_, im = _value(args[0], d, max_depth), _value(args[1], d, max_depth)
            if type(re_) in (int, float) and type(im) in (int, float):
                return complex(re_, im)
    raise NotALiteral(f"{t.__name__} is not a literal")


def _hashable(v):
    try:
        hash(v)
    except TypeError:
        raise NotALiteral("unhashable set element or dict key") from None
    return v


def values_equal(a, b) -> bool:
    """Python `==` on parsed literal values; never raises."""
    try:
        return bool(a == b)
    except (RecursionError, MemoryError, TypeError, ValueError):
        return False


def expression_program(text: str, preamble: str = "") -> str:
    """A program whose `f()` returns the value of an expression (evaluated in the sandbox);
    `preamble` (e.g. import lines) comes first."""
    return preamble + ("\n" if preamble else "") + "def f():\n    return (\n" + text + "\n    )\n"


def _is_expression(text: str) -> bool:
    try:
        ast.parse(text.strip(), mode="eval")
        return len(text) <= MAX_LITERAL_CHARS
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        return False


def values_of(executor, texts: list[str], timeout_s: float | None = None,
              preamble: str = "") -> list[tuple[bool, object, str | None]]:
    """(ok, value, error) for each text: parsed as a literal when it is one, else evaluated as an
    expression in the sandbox (canonical repr back, then parsed)."""
    out: list = [None] * len(texts)
    todo = []
    for k, text in enumerate(texts):
        try:
            out[k] = (True, parse_literal(text), None)
        except NotALiteral:
            if _is_expression(text):
                todo.append(k)
            else:
                out[k] = (False, None, "error: not a Python expression")
    if todo:
        results = executor.run_many([(expression_program(texts[k], preamble), "") for k in todo], timeout_s=timeout_s)
        for k, r in zip(todo, results):
            if r.status != "ok":
                out[k] = (False, None, f"{r.status}: {r.error}")
                continue
            try:
                out[k] = (True, parse_literal(r.value), None)
            except NotALiteral as e:  # pragma: no cover - canonical reprs always parse
                out[k] = (False, None, f"canonical value does not parse: {e}")
    return out
