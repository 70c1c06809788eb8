"""Static screen: may a program share a runner process with other programs ("batch" mode)?

Batch mode forks one runner for many programs, which is ~10x faster than a fork per program but
lets a program that mutates interpreter-wide state (builtins, a stdlib module or class, the decimal
context, the recursion limit) poison the programs after it. This screen sends every program that
*could* do that to isolated mode (a fresh fork each). It is conservative, not a proof: the runner
also checks builtins and sys.modules after each program and restarts when they changed, and the
second interpreter of the determinism double run sees the batch in another order, so a poisoning
that slips through shows up as a disagreement, which is re-run in isolated mode.
"""

from __future__ import annotations

import ast
import functools

# Stdlib modules without interpreter-wide mutable state that a plain program would touch.
BATCH_SAFE_MODULES = frozenset({
    "collections", "itertools", "functools", "math", "re", "string", "heapq", "bisect", "operator",
    "typing", "copy", "fractions", "statistics", "cmath", "array", "textwrap", "json", "unicodedata",
    "dataclasses", "enum", "numbers", "collections.abc",
})

# Builtins that reach outside a pure computation or around the screen.
RISKY_NAMES = frozenset({
    "open", "exec", "eval", "compile", "__import__", "globals", "locals", "vars", "getattr",
    "setattr", "delattr", "breakpoint", "input", "exit", "quit", "help", "memoryview",
})


@functools.lru_cache(maxsize=65536)
def batch_safe(program: str, inputs: str = "") -> bool:
    """True when the program (called on `inputs`) can run in a shared runner."""
    try:
        tree = ast.parse(program)
        call = ast.parse("f(" + inputs + "\n)", mode="eval")
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        return True  # fails to compile in the runner too, touching nothing
    return batch_safe_trees(tree, call)


def batch_safe_trees(*trees: ast.AST) -> bool:
    """The screen on already parsed trees (the sandbox worker parses once, screens, compiles)."""
    imported: set[str] = set()
    value_uses: set[str] = set()  # names used as plain values (not `x.attr`, not `x(...)`)
    A = ast
    stack: list = [(t, None) for t in trees]
    while stack:
        node, parent = stack.pop()
        t = type(node)
        if t is A.Name:
            name = node.id
            if name in RISKY_NAMES or name.startswith("__"):
                return False
            if not (type(parent) is A.Attribute and parent.value is node
                    or type(parent) is A.Call and parent.func is node):
                value_uses.add(name)
            continue
        if t is A.Attribute:
            if node.attr.startswith("_"):
                return False
            if type(node.ctx) is not A.Load and not _is_self_attr(node):
                return False
        elif t is A.Import or t is A.ImportFrom:
            if t is A.ImportFrom:
                if node.level or node.module not in BATCH_SAFE_MODULES:
                    return False
            elif any(a.name not in BATCH_SAFE_MODULES for a in node.names):
                return False
            imported.update((a.asname or a.name).split(".")[0] for a in node.names)
            continue
        elif t is A.FunctionDef or t is A.Lambda:
            args = node.args
            for d in args.defaults + [d for d in args.kw_defaults if d is not None]:
                if not _is_literal(d):
                    return False
        elif t in _ASYNC:
            return False
        for field in node._fields:
            value = getattr(node, field, None)
            if type(value) is list:
                for v in value:
                    if isinstance(v, A.AST):
                        stack.append((v, node))
            elif isinstance(value, A.AST):
                stack.append((value, node))
    # A module object used as a value (aliased, passed, stored) escapes the screen.
    return not (imported & value_uses)


_ASYNC = (ast.AsyncFunctionDef, ast.Await, ast.AsyncFor, ast.AsyncWith)


def _is_self_attr(node: ast.Attribute) -> bool:
    return isinstance(node.value, ast.Name) and node.value.id in ("self", "cls")


def _is_literal(node: ast.AST) -> bool:
    try:
        ast.literal_eval(node)
        return True
    except (ValueError, TypeError, SyntaxError, RecursionError, MemoryError):
        return False
