"""Python values written as text: literal parsing, matchability and comparison.

Gold outputs are canonical reprs from the sandbox (builtin literal types only); model answers are
whatever the model wrote. Both are read by `parse_literal` (`azrlib.sandbox.canon`, shared with the
sandbox worker): a whitelist over the AST with size and depth limits that compiles and runs
nothing. A model's answer that is an expression rather than a literal (`dict(a=1)`, `[0] * 3`) is
not a value: it is wrong (AZR `eval`s it; see `literals_of`). Comparison is Python `==` on such
values: 1 == 1.0 == True, dict order ignored, tuple != list (as AZR's `eval(gold) == eval(answer)`),
which is safe here because no user type can reach it.

`values_of` additionally evaluates expressions in the sandbox; it is for trusted text only (the
recorded outputs of task files that `azr check-tasks` compares with), never for model output.
"""

from __future__ import annotations

import ast

from azrlib.sandbox.canon import MAX_DEPTH as MAX_LITERAL_DEPTH
from azrlib.sandbox.canon import (MAX_LITERAL_CHARS, NotALiteral, TooLarge, Unsupported, call_args_text,
                                  canonical_repr, has_nan, parse_literal)

__all__ = ["MAX_LITERAL_CHARS", "MAX_LITERAL_DEPTH", "NotALiteral", "parse_literal", "call_args_text",
           "values_equal", "literals_of", "values_of", "matchable", "expression_program"]


def values_equal(a, b) -> bool:
    """Python `==` on parsed literal values; never raises."""
    try:
        return bool(a == b)
    except (RecursionError, MemoryError, TypeError, ValueError):
        return False


def matchable(text: str, max_chars: int = MAX_LITERAL_CHARS, canonical: bool = True) -> str:
    """'' when `text` can serve as a gold: it parses as a literal, holds no NaN (which no answer
    can ever `==`) and, when `canonical` (golds made by validation), is the canonical repr of what
    it parses to; otherwise the reason it cannot. Golds from task files (CRUXEval writes dicts in
    insertion order) are checked with `canonical=False`."""
    try:
        value = parse_literal(text, max_chars=max(max_chars, len(text)))
    except NotALiteral as e:
        return f"does not parse back: {e}"
    if has_nan(value):
        return "holds a NaN (equal to nothing)"
    if not canonical:
        return ""
    try:
        again = canonical_repr(value, max(max_chars, len(text)))
    except (TooLarge, Unsupported, RecursionError) as e:
        return f"does not round-trip: {e}"
    return "" if again == text else "does not round-trip"


def literals_of(texts: list[str]) -> list[tuple[bool, object, str | None]]:
    """(ok, value, error) for each text, read as a literal only (nothing is evaluated)."""
    out = []
    for text in texts:
        try:
            out.append((True, parse_literal(text), None))
        except NotALiteral as e:
            out.append((False, None, f"not a literal: {e}"))
    return out


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
    """(ok, value, error) for each *trusted* text: parsed as a literal when it is one, else
    evaluated as an expression in the sandbox (canonical repr back, then parsed)."""
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
            except NotALiteral as e:  # pragma: no cover - the worker checks that values parse
                out[k] = (False, None, f"canonical value does not parse: {e}")
    return out
