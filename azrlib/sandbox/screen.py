"""Static screen: may a program share a runner process with other programs ("batch" mode)?

Batch mode forks one runner for many programs, which is far faster than a fork per program but
lets a program that mutates interpreter-wide state (builtins, a stdlib module or class, an ABC
registry, the decimal context, the recursion limit) poison the programs after it. This screen
sends every program that *could* do that to isolated mode (a fresh fork each).

It reads the compiled code objects, which the sandbox worker needs anyway, so it costs almost
nothing beyond compiling. A program may share a runner only if, in all its code objects:
- it stores or deletes no attribute at all (no STORE_ATTR / DELETE_ATTR instruction), so it cannot
  patch a module, a class or a function it did not create in this very call... nor one it did:
  being blunt keeps the rule independent of aliasing;
- it names no underscore name (dunders, private attributes) except the ones the compiler emits in
  class bodies, and none of the reflective builtins in RISKY_NAMES;
- it names no standard-library module outside BATCH_SAFE_MODULES (names are checked wherever they
  appear, so `x.time` is treated like `import time`: conservative, never permissive).
It is conservative, not a proof: the runner also checks builtins and sys.modules after each program
and restarts when they changed, and the second interpreter of the determinism double run sees the
programs in another order, so a poisoning that slips through shows up as a disagreement, which is
re-run in isolated mode.
"""

from __future__ import annotations

import dis
import sys

# Stdlib modules without interpreter-wide mutable state that a plain program would touch.
BATCH_SAFE_MODULES = frozenset({
    "collections", "itertools", "functools", "math", "re", "string", "heapq", "bisect", "operator",
    "typing", "copy", "fractions", "statistics", "cmath", "array", "textwrap", "json", "unicodedata",
    "dataclasses", "enum", "numbers",
})

# Builtins (and one method name) that reach outside a pure computation or around the screen.
RISKY_NAMES = frozenset({
    "open", "exec", "eval", "compile", "globals", "locals", "vars", "getattr", "setattr",
    "delattr", "breakpoint", "input", "exit", "quit", "help", "memoryview",
    "register",  # abc registries are global state
})

_COMPILER_DUNDERS = frozenset({"__name__", "__module__", "__qualname__", "__doc__"})
_STDLIB = frozenset(getattr(sys, "stdlib_module_names", ()) or ("os", "sys", "builtins", "gc", "ctypes"))
_UNSAFE_MODULES = (_STDLIB | {"os", "sys", "builtins", "gc", "ctypes", "importlib"}) - BATCH_SAFE_MODULES
_ATTR_WRITES = frozenset(dis.opmap[name] for name in ("STORE_ATTR", "DELETE_ATTR") if name in dis.opmap)
_CODE = type(compile("", "", "exec"))


def batch_safe_code(*codes) -> bool:
    """The screen on compiled code objects (nested code objects are followed)."""
    stack = list(codes)
    while stack:
        co = stack.pop()
        if not _ATTR_WRITES.isdisjoint(co.co_code[0::2]):  # wordcode: opcodes at even offsets
            return False
        for name in co.co_names:
            if name[0] == "_":
                if name not in _COMPILER_DUNDERS:
                    return False
            elif name in RISKY_NAMES or name.split(".", 1)[0] in _UNSAFE_MODULES:
                return False
        for const in co.co_consts:
            if type(const) is _CODE:
                stack.append(const)
    return True


def compile_call(program: str, inputs: str):
    """The two code objects the runner executes: the program, and the call `f(<inputs>)`."""
    return compile(program, "<program>", "exec"), compile("f(" + inputs + "\n)", "<input>", "eval")


def batch_safe(program: str, inputs: str = "") -> bool:
    """True when the program (called on `inputs`) can run in a shared runner."""
    try:
        codes = compile_call(program, inputs)
    except (SyntaxError, ValueError, RecursionError, MemoryError, OverflowError):
        return True  # fails to compile in the runner too, touching nothing
    return batch_safe_code(*codes)
