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
    return _clean(tree) and _clean(call)


def _clean(tree: ast.AST) -> bool:
    imported: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else [node.module or ""]
            if node.__class__ is ast.ImportFrom and node.level:
                return False
            if any(n not in BATCH_SAFE_MODULES for n in names):
                return False
            imported.update((a.asname or a.name).split(".")[0] for a in node.names)
        elif isinstance(node, (ast.Global, ast.Nonlocal)):
            continue
        elif isinstance(node, ast.Name):
            if node.id in RISKY_NAMES or node.id.startswith("__"):
                return False
        elif isinstance(node, ast.Attribute):
            if node.attr.startswith("_"):
                return False
            if isinstance(node.ctx, (ast.Store, ast.Del)) and not _is_self_attr(node):
                return False
        elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)):
            defaults = list(node.args.defaults) + [d for d in node.args.kw_defaults if d is not None]
            if any(not _is_literal(d) for d in defaults):
                return False
        elif isinstance(node, (ast.AsyncFunctionDef, ast.Await, ast.AsyncFor, ast.AsyncWith)):
            return False
    if imported:
        # A module object used as a value (aliased, passed, stored) escapes the screen.
        for node in ast.walk(tree):
            for child in ast.iter_child_nodes(node):
                if isinstance(child, ast.Name) and child.id in imported and not (
                    isinstance(node, ast.Attribute) and node.value is child
                    or isinstance(node, ast.Call) and node.func is child
                ):
                    if isinstance(node, (ast.Import, ast.ImportFrom, ast.alias)):
                        continue
                    return False
    return True


def _is_self_attr(node: ast.Attribute) -> bool:
    return isinstance(node.value, ast.Name) and node.value.id in ("self", "cls")


def _is_literal(node: ast.AST) -> bool:
    try:
        ast.literal_eval(node)
        return True
    except (ValueError, TypeError, SyntaxError, RecursionError, MemoryError):
        return False
