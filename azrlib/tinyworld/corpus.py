"""Tiny world: generated Python programs, a pretraining corpus in AZR's six prompt forms, and a
held-out benchmark, so that the project can ship its own small base model (a 1-5M parameter Qwen2
pretrained on CPU) that is a useful start for self-play.

Pipeline:
1. `generate_programs` writes small deterministic programs `def f(...)` (1-3 arguments: ints,
   strings, int lists, word lists, str->int dicts) at four difficulty levels, from a seeded
   `random.Random` per program index (so a run is reproducible and a prefix of a longer run):
   level 1 one operation (`return a + 3`, `return s[::-1]`); level 2 two nested operations, a
   helper variable, a conditional or a tuple; level 3 a loop with one accumulator, a while loop or
   a three-step chain; level 4 a loop with an if/else inside, two accumulators, enumerate, pairwise
   or two-variable recurrences. Each program comes with a one-sentence description (the induction
   message) and candidate inputs of the right types with small values.
2. `build_corpus` runs every (program, input) in the sandbox through the project's own validator
   (`validate_triplets` with a 1 s timeout and a 60-character output cap), drops constant
   functions and duplicates (by normalized text: names canonicalized, formatting by ast.unparse),
   and keeps verified deduction/abduction triplets and 10-pair induction tasks. Deduction tasks get
   an execution trace, made by running an instrumented copy of the program in the sandbox (see
   `instrument_program`; `trace_elements` adds one line per element of a top-level
   comprehension); the traced run must return the same value as the plain one.
3. `build_documents` / `pretraining_documents` write prompt + gold completion for all six forms
   with `templates.propose_prompt/solve_prompt(style="compact")` and `render_*_answer`; every
   document is parsed back with `parsing.parse_proposal` / `parse_solver_answer` before it is kept
   (`verify_documents` additionally checks solver answers with `verify.verify_answers`).
   `drill_documents` (optional, `pretrain-tiny drills=true`; tried once and not used by the
   committed base) writes a program followed by traces of it on fresh inputs.
4. `build_benchmark` makes a held-out benchmark (fixed seed, balanced over levels) from programs
   the corpus can never contain: every program has a holdout key (its normalized text; for the
   composed loop/chain families of levels 3-4 its skeleton, i.e. normalized text with constants
   blanked, so a benchmark loop is never a pretraining loop with other constants) and a stable
   hash of that key puts it on the benchmark side or the training side (`HOLDOUT_FRACTION`).
   Corpus, RLVR tasks (`rlvr_tasks`) and benchmark are therefore disjoint whatever seeds they use.
   `TASK_SOURCE` fixes the seeds and levels of all three.

Where this departs from AZR: AZR starts from a pretrained coder LLM and a single zero triplet; this
world exists only so that a tiny model trained from scratch has something to start from. The
`<think>` part of the gold completions is synthetic (execution traces for deduction,
candidate-and-check lines for abduction, an argument-types-and-check note for induction, the description as
the proposer's plan), and its length grows with the program's level, which the RQ2 response-length
analysis relies on. Induction tasks are built from the same validated runs as the triplets (same
checks as `validate_induction`: static check, ok run, small output, distinct inputs), so programs
run only once per input.
"""

from __future__ import annotations

import ast
import copy
import hashlib
import json
import random
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterable, Iterator, Sequence

from azrlib.tasks import parsing, templates
from azrlib.tasks.types import TASK_TYPES, Task
from azrlib.tasks.validation import AZR_BANNED_MODULES, ValidationConfig, validate_triplets
from azrlib.tasks.values import NotALiteral, parse_literal, values_equal

LEVELS = (1, 2, 3, 4)
DOCUMENT_FORMS = ("propose_deduction", "propose_abduction", "propose_induction",
                  "solve_deduction", "solve_abduction", "solve_induction")

MAX_OUTPUT_CHARS = 60  # longer outputs make answers the tiny model cannot write in its context
RUN_TIMEOUT_S = 1.0  # every generated program finishes in microseconds; anything slow is a bug
N_TRIPLET_INPUTS = 4  # inputs tried per program for deduction/abduction
N_INDUCTION_CANDIDATES = 14  # inputs tried for a program that also becomes an induction task
N_INDUCTION_PAIRS = 10  # pairs kept per induction task (5 shown, 5 hidden)
MIN_INDUCTION_DISTINCT_OUTPUTS = 3  # fewer leaves the hidden function underdetermined
# share of holdout keys reserved for the benchmark, per level: level 1 has only a few hundred
# distinct one-liners, so it gives a larger share to have enough distinct benchmark programs
HOLDOUT_FRACTION = {1: 0.3, 2: 0.15, 3: 0.15, 4: 0.15}
# levels whose benchmark programs may serve all three task types (with different inputs)
SHARED_PROGRAM_LEVELS = (1,)
# deduction (and abduction) tasks per program and level in the corpus: level 1 has few distinct
# programs, so each gives all its inputs
TASKS_PER_PROGRAM = {1: 4, 2: 2, 3: 2, 4: 2}
# the pretraining corpus tries more inputs per simple program (the benchmark keeps
# N_TRIPLET_INPUTS): a one-operation program teaches its operation only through varied inputs, and
# level 1 has few distinct programs (inputs are capped by N_INDUCTION_CANDIDATES, sampled per program)
CORPUS_TRIPLET_INPUTS = {1: 12, 2: 6, 3: 4, 4: 4}
CORPUS_TASKS_PER_PROGRAM = {1: 12, 2: 4, 3: 2, 4: 2}
MAX_TRACE_LINES = 14  # lines between the argument line and the return line
MAX_TRACE_EVENTS = 200  # cap inside the sandbox, so a long loop cannot blow up the output

VALIDATION = ValidationConfig(timeout_s=RUN_TIMEOUT_S, max_output_chars=MAX_OUTPUT_CHARS)


# ============================================================================================
# Argument kinds: names and value samplers
# ============================================================================================

# "cnt" is an int used as a count, repetition or slice bound, so it is sampled small.
ARG_KINDS = ("int", "cnt", "str", "list", "words", "dict")
_ARG_NAMES = {"int": ("a", "b", "c", "k"), "cnt": ("n", "m"), "str": ("s", "t", "word"),
              "list": ("xs", "nums", "arr"), "words": ("words", "names"), "dict": ("d", "table")}
_KIND_WORDS = {"int": "a number", "cnt": "a small count", "str": "a string",
               "list": "a list of numbers", "words": "a list of words", "dict": "a dict"}
# Letters of sampled strings; program constants are drawn from the same letters so that
# `s.count('e')`, `'a' in s` and friends are not constant functions.
LETTERS = "abcdeilnorst"
CONST_LETTERS = "aeinorst"
DICT_KEYS = "abcde"


def _sample_int(rng: random.Random) -> int:
    r = rng.random()
    if r < 0.7:
        return rng.randint(0, 9)
    if r < 0.85:
        return rng.randint(10, 20)
    return rng.randint(-6, -1)


def _sample_word(rng: random.Random, lengths: Sequence[int]) -> str:
    return "".join(rng.choice(LETTERS) for _ in range(rng.choice(lengths)))


def sample_value(kind: str, rng: random.Random):
    """A small random value of an argument kind."""
    if kind == "int":
        return _sample_int(rng)
    if kind == "cnt":
        return rng.randint(0, 5) if rng.random() < 0.15 else rng.randint(1, 5)
    if kind == "str":
        return _sample_word(rng, (1, 2, 3, 3, 4, 4, 5, 6))
    if kind == "list":
        return [rng.randint(-3, 9) if rng.random() < 0.2 else rng.randint(0, 9)
                for _ in range(rng.choice((1, 2, 3, 3, 4, 4, 5, 6)))]
    if kind == "words":
        return [_sample_word(rng, (1, 2, 3, 3, 4)) for _ in range(rng.randint(1, 4))]
    if kind == "dict":
        keys = rng.sample(DICT_KEYS, rng.randint(1, 4))
        return {key: rng.randint(0, 9) for key in keys}
    raise ValueError(f"unknown argument kind {kind!r}")


def sample_inputs(arg_kinds: Sequence[str], rng: random.Random, n: int) -> tuple[str, ...]:
    """Up to `n` distinct argument texts (`repr`s joined by ', ', as a model would write them)."""
    seen: dict[str, None] = {}
    for _ in range(n * 6):
        text = ", ".join(repr(sample_value(kind, rng)) for kind in arg_kinds)
        seen.setdefault(text, None)
        if len(seen) == n:
            break
    return tuple(seen)


# ============================================================================================
# Expression operations (levels 1-2 and post-processing at levels 3-4)
# ============================================================================================

@dataclass(frozen=True)
class Op:
    """One operation: result kind, operand kinds, code and description templates.
    Placeholders: {0} {1} operands; {c} 1..12; {c2} 2..5; {ch} {ch2} letters."""

    out: str
    ins: tuple[str, ...]
    code: str
    say: str

    @property
    def atomic_only(self) -> bool:
        """Templates that repeat an operand take only a plain name (no duplicated subexpression)."""
        return any(self.code.count("{%d}" % i) > 1 for i in range(len(self.ins)))


def _ops(out: str, ins: tuple[str, ...], *pairs: tuple[str, str]) -> list[Op]:
    return [Op(out, ins, code, say) for code, say in pairs]


OPS: list[Op] = [
    *_ops("int", ("int",),
          ("{0} + {c}", "{0} plus {c}"), ("{0} - {c}", "{0} minus {c}"),
          ("{0} * {c2}", "{0} times {c2}"), ("{0} // {c2}", "{0} divided by {c2}, rounded down"),
          ("{0} % {c2}", "the remainder of {0} divided by {c2}"),
          ("abs({0} - {c})", "the distance between {0} and {c}"),
          ("max({0}, {c})", "the larger of {0} and {c}"), ("min({0}, {c})", "the smaller of {0} and {c}"),
          ("{0} * {0}", "{0} squared"), ("-{0}", "minus {0}"),
          ("{0} * {c2} + {c}", "{0} times {c2} plus {c}")),
    *_ops("int", ("int", "int"),
          ("{0} + {1}", "the sum of {0} and {1}"), ("{0} - {1}", "{0} minus {1}"),
          ("{0} * {1}", "the product of {0} and {1}"), ("max({0}, {1})", "the larger of {0} and {1}"),
          ("min({0}, {1})", "the smaller of {0} and {1}"), ("abs({0} - {1})", "the distance between {0} and {1}")),
    *_ops("int", ("str",),
          ("len({0})", "the length of {0}"), ("{0}.count('{ch}')", "how many times '{ch}' occurs in {0}"),
          ("{0}.find('{ch}')", "the position of the first '{ch}' in {0}, or -1"),
          ("len(set({0}))", "the number of different letters in {0}"),
          ("ord({0}[0]) - ord('a')", "the alphabet position of the first letter of {0} (a=0)")),
    *_ops("int", ("list",),
          ("len({0})", "the number of items in {0}"), ("sum({0})", "the sum of {0}"),
          ("max({0})", "the largest item of {0}"), ("min({0})", "the smallest item of {0}"),
          ("{0}[0]", "the first item of {0}"), ("{0}[-1]", "the last item of {0}"),
          ("{0}.count({c})", "how many times {c} occurs in {0}"),
          ("len(set({0}))", "the number of different items in {0}"),
          ("max({0}) - min({0})", "the gap between the largest and smallest items of {0}"),
          ("sum(v * v for v in {0})", "the sum of the squares of the items of {0}"),
          ("sum(1 for v in {0} if v > {c})", "how many items of {0} are greater than {c}"),
          ("sum({0}[::2])", "the sum of every other item of {0}, from the first")),
    *_ops("int", ("list", "int"), ("{0}.count({1})", "how many times {1} occurs in {0}")),
    *_ops("int", ("dict",),
          ("len({0})", "the number of keys of {0}"), ("sum({0}.values())", "the sum of the values of {0}"),
          ("{0}.get('{ch}', 0)", "the value of key '{ch}' in {0}, or 0")),
    *_ops("int", ("words",), ("len({0})", "the number of words in {0}"),
          ("len({0}[0])", "the length of the first word of {0}")),
    *_ops("str", ("str",),
          ("{0}[::-1]", "{0} reversed"), ("{0}.upper()", "{0} in upper case"),
          ("{0} + '{ch}'", "{0} followed by '{ch}'"), ("'{ch}' + {0}", "'{ch}' followed by {0}"),
          ("{0} * 2", "{0} repeated twice"), ("{0}[1:]", "{0} without its first letter"),
          ("{0}[:{c2}]", "the first {c2} letters of {0}"), ("{0}[::2]", "every other letter of {0}"),
          ("{0}.replace('{ch}', '{ch2}')", "{0} with each '{ch}' replaced by '{ch2}'"),
          ("{0}.capitalize()", "{0} with a capital first letter"),
          ("''.join(sorted({0}))", "the letters of {0} in sorted order"),
          ("{0}[-1]", "the last letter of {0}"), ("{0}[0]", "the first letter of {0}"),
          ("{0}[{c2}:]", "{0} without its first {c2} letters"), ("{0}[1:-1]", "{0} without its first and last letters"),
          ("{0} + {0}[::-1]", "{0} followed by its reverse"), ("'{ch}'.join({0})", "the letters of {0} joined by '{ch}'"),
          ("{0}.strip('{ch}')", "{0} without '{ch}' at either end")),
    *_ops("str", ("str", "str"), ("{0} + {1}", "{0} followed by {1}"),
          ("{0} + '{ch}' + {1}", "{0} and {1} joined by '{ch}'")),
    *_ops("str", ("str", "cnt"), ("{0} * {1}", "{0} repeated {1} times"),
          ("{0}[:{1}]", "the first {1} letters of {0}"), ("{0}[{1}:]", "{0} without its first {1} letters")),
    *_ops("str", ("str", "int"), ("{0} + str({1})", "{0} followed by the digits of {1}")),
    *_ops("str", ("int",), ("str({0})", "{0} written as text")),
    *_ops("str", ("list",), ("''.join(str(v) for v in {0})", "the items of {0} written one after another")),
    *_ops("str", ("words",), ("' '.join({0})", "the words of {0} joined by spaces"),
          ("'-'.join({0})", "the words of {0} joined by dashes"), ("max({0})", "the last word of {0} in sorted order"),
          ("{0}[-1]", "the last word of {0}")),
    *_ops("list", ("list",),
          ("sorted({0})", "{0} sorted"), ("{0}[::-1]", "{0} reversed"), ("{0}[1:]", "{0} without its first item"),
          ("{0}[:{c2}]", "the first {c2} items of {0}"), ("{0} + [{c}]", "{0} with {c} appended"),
          ("[v * {c2} for v in {0}]", "each item of {0} times {c2}"),
          ("[v + {c} for v in {0}]", "each item of {0} plus {c}"),
          ("[v for v in {0} if v > {c}]", "the items of {0} greater than {c}"),
          ("[v % {c2} for v in {0}]", "each item of {0} modulo {c2}"),
          ("sorted({0}, reverse=True)", "{0} sorted from largest to smallest"), ("{0}[::2]", "every other item of {0}"),
          ("sorted(set({0}))", "the distinct items of {0}, sorted"),
          ("[v * v for v in {0}]", "the square of each item of {0}"),
          ("[v for v in {0} if v % 2 == 0]", "the even items of {0}"),
          ("[v for v in {0} if v % 2 == 1]", "the odd items of {0}"),
          ("[v // {c2} for v in {0}]", "each item of {0} divided by {c2}, rounded down"),
          ("[max(v, {c}) for v in {0}]", "each item of {0}, raised to at least {c}"),
          ("[abs(v - {c}) for v in {0}]", "the distance of each item of {0} from {c}"),
          ("[i * v for i, v in enumerate({0})]", "each item of {0} times its position"),
          ("[v for v in {0} if v != {c}]", "{0} without the items equal to {c}")),
    *_ops("list", ("list", "int"), ("{0} + [{1}]", "{0} with {1} appended"),
          ("[v * {1} for v in {0}]", "each item of {0} times {1}"),
          ("[v for v in {0} if v > {1}]", "the items of {0} greater than {1}"),
          ("[v - {1} for v in {0}]", "each item of {0} minus {1}")),
    *_ops("list", ("list", "cnt"), ("{0}[:{1}]", "the first {1} items of {0}"),
          ("{0}[{1}:]", "{0} without its first {1} items")),
    *_ops("list", ("str",), ("list({0})", "the letters of {0} as a list"), ("sorted({0})", "the letters of {0}, sorted"),
          ("{0}.split('{ch}')", "{0} split at each '{ch}'"),
          ("[ch for ch in {0} if ch in 'aeiou']", "the vowels of {0}"),
          ("[ord(ch) - ord('a') for ch in {0}]", "the alphabet position (a=0) of each letter of {0}"),
          ("[ch for ch in {0} if ch > '{ch}']", "the letters of {0} that come after '{ch}' in the alphabet")),
    *_ops("list", ("dict",), ("sorted({0})", "the keys of {0}, sorted"),
          ("sorted({0}.values())", "the values of {0}, sorted"),
          ("[key for key in {0} if {0}[key] > {c}]", "the keys of {0} whose value is greater than {c}")),
    *_ops("list", ("words",), ("sorted({0})", "the words of {0} in sorted order"),
          ("[len(w) for w in {0}]", "the length of each word of {0}"),
          ("[w.upper() for w in {0}]", "each word of {0} in upper case"),
          ("[w[0] for w in {0}]", "the first letter of each word of {0}")),
    *_ops("list", ("cnt",), ("list(range({0}))", "the numbers from 0 below {0}"),
          ("[i * i for i in range({0})]", "the squares of the numbers from 0 below {0}")),
    *_ops("dict", ("words",), ("{{w: len(w) for w in {0}}}", "each word of {0} mapped to its length")),
    *_ops("dict", ("list",), ("{{v: v * v for v in {0}}}", "each item of {0} mapped to its square")),
    *_ops("dict", ("dict",), ("{{key: v + {c} for key, v in {0}.items()}}", "{0} with {c} added to every value")),
    *_ops("dict", ("str",), ("{{ch: {0}.count(ch) for ch in {0}}}", "how many times each letter occurs in {0}")),
    *_ops("bool", ("int",), ("{0} > {c}", "whether {0} is greater than {c}"), ("{0} % 2 == 0", "whether {0} is even"),
          ("{0} % {c2} == 0", "whether {0} is divisible by {c2}")),
    *_ops("bool", ("int", "int"), ("{0} > {1}", "whether {0} is greater than {1}"),
          ("{0} == {1}", "whether {0} equals {1}")),
    *_ops("bool", ("str",), ("'{ch}' in {0}", "whether {0} contains '{ch}'"),
          ("{0}.startswith('{ch}')", "whether {0} starts with '{ch}'"),
          ("{0} == {0}[::-1]", "whether {0} is a palindrome"),
          ("len({0}) > {c2}", "whether {0} is longer than {c2} letters")),
    *_ops("bool", ("list",), ("{c} in {0}", "whether {0} contains {c}"),
          ("sum({0}) > {c}", "whether the sum of {0} exceeds {c}")),
    *_ops("bool", ("list", "int"), ("{1} in {0}", "whether {0} contains {1}")),
]
_OPS_BY_OUT: dict[str, list[Op]] = {}
for _op in OPS:
    _OPS_BY_OUT.setdefault(_op.out, []).append(_op)
RETURN_KINDS = ("int", "str", "list")  # what level 1-2 programs return (dict/bool/tuple more rarely)


def _constants(rng: random.Random) -> dict[str, object]:
    ch, ch2 = rng.sample(CONST_LETTERS, 2)
    return {"c": rng.randint(1, 12), "c2": rng.randint(2, 5), "ch": ch, "ch2": ch2}


# ============================================================================================
# Program builder: arguments are created on demand, so the signature follows the operations
# ============================================================================================

class _GenerationFailed(Exception):
    """The random choices led nowhere (too many arguments, no operation fits); try again."""


@dataclass
class _Builder:
    rng: random.Random
    max_args: int = 3
    args: list[tuple[str, str]] = field(default_factory=list)  # (name, kind)

    def arg(self, kind: str, reuse: float = 0.5) -> str:
        """An argument of this kind: an existing one (with probability `reuse`) or a new one."""
        existing = [name for name, k in self.args if k == kind]
        if existing and (self.rng.random() < reuse or len(self.args) >= self.max_args):
            return self.rng.choice(existing)
        if len(self.args) >= self.max_args:
            raise _GenerationFailed("too many arguments")
        taken = {name for name, _ in self.args}
        free = [name for name in _ARG_NAMES[kind] if name not in taken]
        name = self.rng.choice(free)
        self.args.append((name, kind))
        return name

    def signature(self) -> str:
        return ", ".join(name for name, _ in self.args)

    def kinds(self) -> tuple[str, ...]:
        return tuple(kind for _, kind in self.args)


def _fill(template: str, operands: Sequence[str], consts: dict[str, object]) -> str:
    return template.format(*operands, **consts)


def _apply(b: _Builder, op: Op, operands: Sequence[tuple[str, str]]) -> tuple[str, str]:
    """(code, description) of `op` on operands given as (code, description) pairs."""
    consts = _constants(b.rng)
    codes = [c for c, _ in operands]
    wrapped = _fill(op.code, [c if c.isidentifier() else f"({c})" for c in codes], consts)
    bare = _fill(op.code, codes, consts)
    # parentheses only where they change the meaning (`(a + 3) * 2`, not `(sorted(xs))[1:]`)
    try:
        same = "--" not in bare and ast.dump(ast.parse(bare, mode="eval")) == ast.dump(ast.parse(wrapped, mode="eval"))
    except SyntaxError:  # `t * 2.replace(...)`
        same = False
    return bare if same else wrapped, _fill(op.say, [s for _, s in operands], consts)


def _pick_op(b: _Builder, out: str, allow: Callable[[Op], bool] = lambda op: True) -> Op:
    candidates = [op for op in _OPS_BY_OUT[out] if allow(op)]
    if not candidates:
        raise _GenerationFailed(f"no operation returns {out}")
    return b.rng.choice(candidates)


def _expr(b: _Builder, out: str, depth: int, inputs: dict[str, list[tuple[str, str]]] | None = None
          ) -> tuple[str, str]:
    """An expression of kind `out` with `depth` nested operations. Leaves are arguments, or
    names from `inputs` (kind -> [(code, description)]) when given (helper variables)."""
    if depth == 0:
        if inputs and inputs.get(out) and b.rng.random() < 0.85:
            return b.rng.choice(inputs[out])
        name = b.arg(out)
        return name, name
    op = _pick_op(b, out, lambda op: depth == 1 or not op.atomic_only)
    operands = []
    for position, kind in enumerate(op.ins):
        # only the first operand nests; the others are leaves, which keeps expressions readable
        sub_depth = depth - 1 if position == 0 else 0
        if kind not in RETURN_KINDS:
            # counts, word lists and dicts stay plain arguments (`s * (n * 4)` only makes long
            # outputs; nothing builds word lists; dict-building subexpressions read badly)
            sub_depth = 0
        operands.append(_expr(b, kind, sub_depth, inputs))
    return _apply(b, op, operands)


def _op_on(b: _Builder, out: str, first: tuple[str, str], first_kind: str,
           inputs: dict[str, list[tuple[str, str]]] | None = None) -> tuple[str, str]:
    """An operation returning `out` whose first operand is `first` (a helper variable of kind
    `first_kind`); other operands are leaves (arguments, or names from `inputs`)."""
    op = _pick_op(b, out, lambda op: op.ins[0] == first_kind)
    operands = [first] + [_expr(b, kind, 0, inputs) for kind in op.ins[1:]]
    return _apply(b, op, operands)


def _program(b: _Builder, body_lines: Sequence[str]) -> str:
    code = f"def f({b.signature()}):\n" + "\n".join("    " + line for line in body_lines)
    ast.parse(code)  # templates are written in one style (single quotes, 4 spaces); must parse
    return code


def _sentence(text: str) -> str:
    text = text.strip()
    return text[:1].upper() + text[1:] + ("" if text.endswith(".") else ".")


# ---------------------------------------------------------------------------- level 1

def _level1(rng: random.Random) -> tuple[str, _Builder, str, str]:
    b = _Builder(rng)
    out = rng.choice(RETURN_KINDS + ("bool", "dict") if rng.random() < 0.15 else RETURN_KINDS)
    code, say = _expr(b, out, 1)
    return _program(b, [f"return {code}"]), b, "Returns " + say, "one_op"


# ---------------------------------------------------------------------------- level 2

def _level2(rng: random.Random) -> tuple[str, _Builder, str, str]:
    b = _Builder(rng)
    form = rng.choice(("nested", "nested", "helper", "helper", "ternary", "if_return", "tuple"))
    out = rng.choice(RETURN_KINDS)
    if form == "nested":
        code, say = _expr(b, out, 2)
        return _program(b, [f"return {code}"]), b, "Returns " + say, form
    if form == "helper":
        mid = rng.choice(RETURN_KINDS)
        first, first_say = _expr(b, mid, 1)
        helper = {"int": "x", "str": "y", "list": "z"}[mid]
        final, final_say = _op_on(b, out, (helper, "it"), mid)
        body = [f"{helper} = {first}", f"return {final}"]
        return _program(b, body), b, f"Computes {first_say}, then returns {final_say}", form
    if form == "tuple":
        left, left_say = _expr(b, rng.choice(RETURN_KINDS), 1)
        right, right_say = _expr(b, rng.choice(RETURN_KINDS), 1)
        if left == right:
            raise _GenerationFailed("same expression twice")
        return (_program(b, [f"return ({left}, {right})"]), b,
                f"Returns a pair: {left_say}, and {right_say}", form)
    cond, cond_say = _expr(b, "bool", 1)
    yes, yes_say = _expr(b, out, 1)
    no, no_say = _expr(b, out, 1)
    if yes == no:
        raise _GenerationFailed("both branches equal")
    say = f"Returns {yes_say} if {cond_say.removeprefix('whether ')}, otherwise {no_say}"
    if form == "ternary":
        return _program(b, [f"return {yes} if {cond} else {no}"]), b, say, form
    return _program(b, [f"if {cond}:", f"    return {yes}", f"return {no}"]), b, say, form


# ---------------------------------------------------------------------------- loops (levels 3-4)

@dataclass(frozen=True)
class _Source:
    """What a for loop iterates over: the argument kind, the kind of the loop variable, and the
    views of the argument it may iterate (iterable template, description)."""

    arg_kind: str
    var_kind: str  # "num" | "ch" | "word" | "idx"
    var_names: tuple[str, ...]
    views: tuple[tuple[str, str], ...]  # {arg} argument; the first view is the plain one


SOURCES = (
    _Source("list", "num", ("v", "x", "num"), (
        ("{arg}", "goes through the items of {arg}"), ("sorted({arg})", "goes through the items of {arg} in sorted order"),
        ("{arg}[::-1]", "goes through the items of {arg} from the last"),
        ("{arg}[1:]", "goes through the items of {arg} after the first"))),
    _Source("str", "ch", ("ch", "letter"), (
        ("{arg}", "goes through the letters of {arg}"), ("{arg}[::-1]", "goes through the letters of {arg} from the last"),
        ("sorted({arg})", "goes through the letters of {arg} in sorted order"))),
    _Source("cnt", "idx", ("i", "j"), (
        ("range({arg})", "counts {var} from 0 below {arg}"), ("range(1, {arg} + 1)", "counts {var} from 1 to {arg}"),
        ("range({arg}, 0, -1)", "counts {var} down from {arg} to 1"),
        ("range(0, {arg} * 2, 2)", "counts {var} over the even numbers below twice {arg}"))),
    _Source("words", "word", ("w", "name"), (
        ("{arg}", "goes through the words of {arg}"),
        ("sorted({arg})", "goes through the words of {arg} in sorted order"))),
)

# (accumulator kind, loop variable kind) -> [(initial value, update, description)]
# {acc} accumulator, {var} loop variable, constants as in Op templates.
UPDATES: dict[tuple[str, str], list[tuple[str, str, str]]] = {
    ("int", "num"): [("0", "{acc} += {var}", "adds {var} to {acc}"),
                     ("0", "{acc} += {var} * {c2}", "adds {var} times {c2} to {acc}"),
                     ("0", "{acc} -= {var}", "subtracts {var} from {acc}"),
                     ("0", "{acc} += 1", "adds 1 to {acc}"),
                     ("0", "{acc} = max({acc}, {var})", "keeps the larger of {acc} and {var}"),
                     ("1", "{acc} *= {var}", "multiplies {acc} by {var}"),
                     ("0", "{acc} = {acc} * 2 + {var}", "doubles {acc} and adds {var}"),
                     ("0", "{acc} += {var} % {c2}", "adds {var} modulo {c2} to {acc}"),
                     ("0", "{acc} += {var} * {k}", "adds {var} times {k} to {acc}"),
                     ("0", "{acc} += abs({var} - {k})", "adds the distance between {var} and {k} to {acc}")],
    ("int", "idx"): [("0", "{acc} += {var}", "adds {var} to {acc}"),
                     ("0", "{acc} += {var} * {var}", "adds the square of {var} to {acc}"),
                     ("1", "{acc} *= {var}", "multiplies {acc} by {var}"),
                     ("0", "{acc} += {var} * {c2}", "adds {var} times {c2} to {acc}"),
                     ("{c}", "{acc} -= {var}", "subtracts {var} from {acc}"),
                     ("0", "{acc} += {var} % {c2}", "adds {var} modulo {c2} to {acc}"),
                     ("{k}", "{acc} += {var}", "adds {var} to {acc}")],
    ("int", "ch"): [("0", "{acc} += 1", "adds 1 to {acc}"),
                    ("0", "{acc} += ord({var}) - ord('a')", "adds the alphabet position of {var} (a=0) to {acc}"),
                    ("0", "{acc} = {acc} * 2 + 1", "doubles {acc} and adds 1")],
    ("int", "word"): [("0", "{acc} += len({var})", "adds the length of {var} to {acc}"),
                      ("0", "{acc} += 1", "adds 1 to {acc}")],
    ("str", "ch"): [("''", "{acc} += {var}", "appends {var} to {acc}"),
                    ("''", "{acc} = {var} + {acc}", "puts {var} in front of {acc}"),
                    ("''", "{acc} += {var} * 2", "appends {var} twice to {acc}"),
                    ("''", "{acc} += {var}.upper()", "appends {var} in upper case to {acc}"),
                    ("''", "{acc} += {var} + '{ch}'", "appends {var} and '{ch}' to {acc}"),
                    ("''", "{acc} = {acc} + {var} + {acc}", "puts {var} between two copies of {acc}")],
    ("str", "num"): [("''", "{acc} += str({var})", "appends the digits of {var} to {acc}"),
                     ("''", "{acc} = str({var}) + {acc}", "puts the digits of {var} in front of {acc}")],
    ("str", "idx"): [("''", "{acc} += str({var})", "appends the digits of {var} to {acc}")],
    ("str", "word"): [("''", "{acc} += {var}[0]", "appends the first letter of {var} to {acc}"),
                      ("''", "{acc} += {var}[-1]", "appends the last letter of {var} to {acc}"),
                      ("''", "{acc} = {var} + {acc}", "puts {var} in front of {acc}")],
    ("list", "num"): [("[]", "{acc}.append({var} * {c2})", "appends {var} times {c2} to {acc}"),
                      ("[]", "{acc}.append({var} + {c})", "appends {var} plus {c} to {acc}"),
                      ("[]", "{acc}.insert(0, {var})", "puts {var} at the front of {acc}"),
                      ("[]", "{acc}.append({var} % {c2})", "appends {var} modulo {c2} to {acc}"),
                      ("[]", "{acc}.append({var})", "appends {var} to {acc}"),
                      ("[]", "{acc}.append({var} - {k})", "appends {var} minus {k} to {acc}")],
    ("list", "ch"): [("[]", "{acc}.append({var})", "appends {var} to {acc}"),
                     ("[]", "{acc}.insert(0, {var})", "puts {var} at the front of {acc}"),
                     ("[]", "{acc}.append({var} * 2)", "appends {var} doubled to {acc}"),
                     ("[]", "{acc}.append(ord({var}) - ord('a'))",
                      "appends the alphabet position of {var} (a=0) to {acc}")],
    ("list", "idx"): [("[]", "{acc}.append({var} * {var})", "appends the square of {var} to {acc}"),
                      ("[]", "{acc}.append({var} * {c2})", "appends {var} times {c2} to {acc}"),
                      ("[]", "{acc}.append({var} % {c2})", "appends {var} modulo {c2} to {acc}")],
    ("list", "word"): [("[]", "{acc}.append(len({var}))", "appends the length of {var} to {acc}"),
                       ("[]", "{acc}.append({var}[::-1])", "appends {var} reversed to {acc}")],
    ("dict", "ch"): [("{{}}", "{acc}[{var}] = {acc}.get({var}, 0) + 1", "counts each letter in {acc}")],
    ("dict", "num"): [("{{}}", "{acc}[{var} % {c2}] = {var}", "stores {var} under key {var} modulo {c2} in {acc}"),
                      ("{{}}", "{acc}[{var}] = {acc}.get({var}, 0) + 1", "counts each item in {acc}")],
    ("dict", "word"): [("{{}}", "{acc}[{var}] = len({var})", "maps {var} to its length in {acc}"),
                       ("{{}}", "{acc}[{var}[0]] = {var}", "stores {var} under its first letter in {acc}")],
}
_ACC_NAMES = {"int": ("total", "count", "acc", "res"), "str": ("out", "res", "acc", "text"),
              "list": ("out", "res", "result", "items"), "dict": ("counts", "seen", "freq")}

# loop variable kind -> [(condition, description)]; {k} an int argument when the condition uses one
CONDITIONS: dict[str, list[tuple[str, str]]] = {
    "num": [("{var} > {c}", "{var} is greater than {c}"), ("{var} % 2 == 0", "{var} is even"),
            ("{var} > {k}", "{var} is greater than {k}"), ("{var} < {c}", "{var} is less than {c}"),
            ("{var} % {c2} == 0", "{var} is divisible by {c2}")],
    "idx": [("{var} % 2 == 0", "{var} is even"), ("{var} > {c2}", "{var} is greater than {c2}"),
            ("{var} % 3 == 1", "{var} modulo 3 is 1"), ("{var} < {c2}", "{var} is less than {c2}")],
    "ch": [("{var} in 'aeiou'", "{var} is a vowel"), ("{var} == '{ch}'", "{var} is '{ch}'"),
           ("{var} < '{ch}'", "{var} comes before '{ch}' in the alphabet"),
           ("{var} not in 'aeiou'", "{var} is not a vowel")],
    "word": [("len({var}) > {c2}", "{var} is longer than {c2} letters"),
             ("{var}[0] in 'aeiou'", "{var} starts with a vowel"), ("'{ch}' in {var}", "{var} contains '{ch}'")],
}


EXPRESSION_UPDATE_SHARE = 0.4  # loop updates built from a generated expression of the loop variable
_VAR_OP_KIND = {"num": "int", "idx": "int", "ch": "str", "word": "str"}


def _escape(text: str) -> str:
    return text.replace("{", "{{").replace("}", "}}")


def _expression_update(b: _Builder, acc_kind: str, var: str, var_kind: str) -> tuple[str, str, str]:
    """An update template (initial value, update, description) whose new value is one generated
    operation on the loop variable (`total += abs(v - 3)`, `out.append(w[::-1])`), so loops are
    not limited to the fixed `UPDATES` table. Dict accumulators keep the table."""
    if acc_kind == "dict":
        return b.rng.choice(UPDATES[(acc_kind, var_kind)])
    out = b.rng.choice(("int", "str")) if acc_kind == "list" else acc_kind
    code, say = _op_on(b, out, (var, var), _VAR_OP_KIND[var_kind])
    code, say = _escape(code), _escape(say)
    if acc_kind == "int":
        return "0", f"{{acc}} += {code}", f"adds {say} to {{acc}}"
    if acc_kind == "str":
        if b.rng.random() < 0.5:
            return "''", f"{{acc}} = {code} + {{acc}}", f"puts {say} in front of {{acc}}"
        return "''", f"{{acc}} += {code}", f"appends {say} to {{acc}}"
    return "[]", f"{{acc}}.append({code})", f"appends {say} to {{acc}}"


def _fmt(template: str, consts: dict[str, object], **names: str) -> str:
    return template.format(**consts, **names)


def _loop(rng: random.Random, level: int) -> tuple[str, _Builder, str, str]:
    """A for loop with accumulators. Level 3: one accumulator, no condition. Level 4: an if/else
    (or if) inside, or two accumulators, or enumerate with a condition on the index."""
    b = _Builder(rng)
    source = rng.choice(SOURCES)
    use_enumerate = level == 4 and source.arg_kind in ("list", "str", "words") and rng.random() < 0.25
    arg = b.arg(source.arg_kind)
    var = rng.choice(source.var_names)
    consts = _constants(rng)
    # the plain view most of the time; sorted/reversed/shifted views for variety
    view, view_say = source.views[0] if rng.random() < 0.6 else rng.choice(source.views)
    view, view_say = _fmt(view, consts, arg=arg), _fmt(view_say, consts, arg=arg, var=var)
    acc_kinds = [ak for ak, vk in UPDATES if vk == source.var_kind]
    n_accs = 2 if level == 4 and rng.random() < 0.3 else 1
    accs: list[tuple[str, str]] = []  # (name, kind)
    for _ in range(n_accs):
        kind = rng.choice(acc_kinds)
        free = [n for n in _ACC_NAMES[kind] if n not in {a for a, _ in accs}]
        accs.append((rng.choice(free), kind))
    chosen = [_expression_update(b, kind, var, source.var_kind) if rng.random() < EXPRESSION_UPDATE_SHARE
              else rng.choice(UPDATES[(kind, source.var_kind)]) for _, kind in accs]
    index = "i" if var != "i" else "j"
    has_condition = level == 4 and (n_accs == 1 or rng.random() < 0.5)
    cond_template = ("", "")
    if has_condition:
        cond_template = rng.choice(CONDITIONS["idx" if use_enumerate else source.var_kind])
    alt_template = None
    if has_condition and n_accs == 1 and rng.random() < 0.6:
        # an else branch must start from the same initial value (`*=` needs 1, `+=` 0)
        alt_template = rng.choice([u for u in UPDATES[(accs[0][1], source.var_kind)] if u[0] == chosen[0][0]])
    templates_used = [t for u in chosen for t in u] + list(cond_template) + list(alt_template or ())
    k_name = b.arg("int", reuse=0.0) if any("{k}" in t for t in templates_used) else ""

    def fill(template: str, acc: str = "", loop_var: str = var) -> str:
        return _fmt(template, consts, acc=acc, var=loop_var, k=k_name)

    inits = [f"{name} = {fill(init)}" for (name, _), (init, _, _) in zip(accs, chosen)]
    updates = [fill(update, name) for (name, _), (_, update, _) in zip(accs, chosen)]
    update_says = [fill(say, name) for (name, _), (_, _, say) in zip(accs, chosen)]
    header, description = f"for {var} in {view}:", view_say
    if use_enumerate:
        header = f"for {index}, {var} in enumerate({view}):"
        description = f"{view_say}, with positions {index}"
    if has_condition:
        cond_var = index if use_enumerate else var  # enumerate loops test the position
        cond, cond_say = fill(cond_template[0], loop_var=cond_var), fill(cond_template[1], loop_var=cond_var)
        body = [f"    if {cond}:", f"        {updates[0]}"]
        say = f"{description}; when {cond_say} it {update_says[0]}"
        if n_accs == 2:
            body += ["    else:", f"        {updates[1]}"]
            say += f", otherwise it {update_says[1]}"
        elif alt_template is not None and fill(alt_template[1], accs[0][0]) != updates[0]:
            body += ["    else:", f"        {fill(alt_template[1], accs[0][0])}"]
            say += f", otherwise it {fill(alt_template[2], accs[0][0])}"
    else:
        body = [f"    {u}" for u in updates]
        say = f"{description} and " + " and ".join(update_says)
    # what comes back: the accumulator, a pair of them, or one operation on it
    if n_accs == 2:
        ret, ret_say = f"({accs[0][0]}, {accs[1][0]})", f"both {accs[0][0]} and {accs[1][0]}"
    elif rng.random() < 0.35 and accs[0][1] in RETURN_KINDS:
        op = _pick_op(b, rng.choice(RETURN_KINDS), lambda op: op.ins == (accs[0][1],))
        ret, ret_say = _apply(b, op, [(accs[0][0], accs[0][0])])
    else:
        ret, ret_say = accs[0][0], accs[0][0]
    start = ", ".join(f"{n} from {i.split(' = ', 1)[1]}" for (n, _), i in zip(accs, inits))
    lines = [*inits, header, *body, f"return {ret}"]
    message = f"Starting with {start}, {say}; returns {ret_say}"
    family = "loop_if" if has_condition else ("loop_two" if n_accs == 2 else "loop")
    return _program(b, lines), b, message, family + ("_enum" if use_enumerate else "")


def _while(rng: random.Random) -> tuple[str, _Builder, str, str]:
    """Level 3: a while loop on an int argument (digits, halving, counting down)."""
    b = _Builder(rng)
    n = b.arg("int")
    acc = rng.choice(("count", "total", "steps"))
    c, c2 = rng.randint(1, 9), rng.randint(2, 4)
    form = rng.choice(("digits", "halve", "down", "digits_str"))
    if form == "digits":
        lines = [f"{acc} = 0", f"while {n} > 0:", f"    {acc} += {n} % 10", f"    {n} //= 10", f"return {acc}"]
        say = f"Adds up the decimal digits of {n} (0 if it is not positive)"
    elif form == "halve":
        lines = [f"{acc} = 0", f"while {n} > {c2 - 1}:", f"    {n} //= {c2}", f"    {acc} += 1", f"return {acc}"]
        say = f"Counts how many times {n} can be divided by {c2} (rounding down) before it is below {c2}"
    elif form == "down":
        lines = [f"{acc} = 0", f"while {n} > {c}:", f"    {n} -= {c2}", f"    {acc} += {n}", f"return {acc}"]
        say = f"While {n} is above {c}, lowers {n} by {c2} and adds the new {n} to {acc}; returns {acc}"
    else:
        acc = "digits"
        lines = [f"{acc} = ''", f"while {n} > 0:", f"    {acc} = str({n} % {c2}) + {acc}", f"    {n} //= {c2}",
                 f"return {acc}"]
        say = f"Writes {n} in base {c2} (empty if it is not positive)"
    return _program(b, lines), b, say, "while_" + form


def _chain(rng: random.Random) -> tuple[str, _Builder, str, str]:
    """Level 3: three steps through two helper variables."""
    b = _Builder(rng)
    kinds = [rng.choice(RETURN_KINDS) for _ in range(3)]
    first, first_say = _expr(b, kinds[0], 1)
    second, second_say = _op_on(b, kinds[1], ("x", "it"), kinds[0])
    third, third_say = _op_on(b, kinds[2], ("y", "that"), kinds[1], {kinds[0]: [("x", "the first result")]})
    lines = [f"x = {first}", f"y = {second}", f"return {third}"]
    return _program(b, lines), b, f"Computes {first_say}, then {second_say}, and returns {third_say}", "chain"


def _level4_special(rng: random.Random) -> tuple[str, _Builder, str, str]:
    """Level 4 templates that the loop builder does not cover: pairwise comparison and
    two-variable recurrences."""
    b = _Builder(rng)
    form = rng.choice(("pairs", "recurrence", "running"))
    if form == "pairs":
        xs = b.arg("list")
        cmp_, say = rng.choice((("{v} > {p}", "goes up"), ("{v} < {p}", "goes down"), ("{v} == {p}", "repeats")))
        lines = ["count = 0", f"prev = {xs}[0]", f"for v in {xs}[1:]:", f"    if {cmp_.format(v='v', p='prev')}:",
                 "        count += 1", "    prev = v", "return count"]
        return _program(b, lines), b, f"Counts how many times the list {xs} {say} from one item to the next", "pairs"
    if form == "recurrence":
        n = b.arg("cnt")
        x0, y0 = rng.randint(0, 2), rng.randint(1, 3)
        step, say = rng.choice((("a, b = b, a + b", "each new value is the sum of the last two"),
                                ("a, b = b, a + 2 * b", "each new value is the older one plus twice the newer"),
                                ("a, b = b, b - a", "each new value is the newer minus the older")))
        lines = [f"a, b = {x0}, {y0}", f"for _ in range({n}):", f"    {step}", "return a"]
        return (_program(b, lines), b,
                f"Starts a sequence with {x0} and {y0} where {say}; returns the value at position {n}", "recurrence")
    xs = b.arg("list")
    lines = ["total = 0", "out = []", f"for v in {xs}:", "    total += v", "    out.append(total)", "return out"]
    return _program(b, lines), b, f"Returns the running sums of {xs}", "running"


def _generate_one(rng: random.Random, level: int) -> tuple[str, _Builder, str, str]:
    if level == 1:
        return _level1(rng)
    if level == 2:
        return _level2(rng)
    if level == 3:
        r = rng.random()
        return _loop(rng, 3) if r < 0.6 else (_while(rng) if r < 0.75 else _chain(rng))
    if level == 4:
        return _loop(rng, 4) if rng.random() < 0.85 else _level4_special(rng)
    raise ValueError(f"level must be one of {LEVELS}, got {level}")


# ============================================================================================
# Program specs, normalization, holdout split
# ============================================================================================

@dataclass(frozen=True)
class ProgramSpec:
    """A generated program with its level, family (template name), description and candidate
    inputs (argument texts; the first `N_TRIPLET_INPUTS` are the triplet inputs)."""

    program: str
    arg_kinds: tuple[str, ...]
    level: int
    family: str
    message: str
    inputs: tuple[str, ...]
    index: int  # position in the generated stream (the per-program seed)
    key: str  # normalized text (dedup key)
    holdout_key: str  # decides the benchmark/training side (`holdout_key`)


def _canonical_texts(program: str, with_skeleton: bool) -> tuple[str, str]:
    """(normalized text, skeleton or ''). Arguments become a0, a1, ... and every other bound
    name v0, v1, ... in the order `ast.walk` meets them (the same for any two programs of the same
    shape); the skeleton also blanks every constant (0, '', ...)."""
    tree = ast.parse(program)
    nodes = list(ast.walk(tree))
    bound = {n.arg for n in nodes if isinstance(n, ast.arg)}
    bound |= {n.id for n in nodes if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Store)}
    names: dict[str, str] = {}
    n_args = n_vars = 0
    for node in nodes:
        if isinstance(node, ast.arg):
            if node.arg not in names:
                names[node.arg] = f"a{n_args}"
                n_args += 1
            node.arg = names[node.arg]
        elif isinstance(node, ast.Name) and node.id in bound:
            if node.id not in names:
                names[node.id] = f"v{n_vars}"
                n_vars += 1
            node.id = names[node.id]
    normalized = ast.unparse(tree)
    if not with_skeleton:
        return normalized, ""
    for node in nodes:
        if isinstance(node, ast.Constant) and not isinstance(node.value, bool):
            node.value = {int: 0, str: "", float: 0.0}.get(type(node.value), node.value)
    return normalized, ast.unparse(tree)


def normalize_program(program: str) -> str:
    """Program text with names canonicalized and formatting by ast.unparse: two programs that
    differ only in variable names or layout normalize to the same text (the dedup key)."""
    return _canonical_texts(program, with_skeleton=False)[0]


def program_skeleton(program: str) -> str:
    """Normalized text with every constant blanked: the template instance without its numbers
    and letters."""
    return _canonical_texts(program, with_skeleton=True)[1]


# Families built from many interchangeable parts (thousands of skeletons): these hold out whole
# skeletons. The fixed templates (while loops, pairwise, recurrences, running sums) have one to
# three skeletons each, so a skeleton holdout would move a whole family to the benchmark side.
SKELETON_HOLDOUT_FAMILIES = frozenset({"loop", "loop_if", "loop_two", "loop_if_enum", "loop_two_enum", "chain"})


def _keys(program: str, level: int, family: str) -> tuple[str, str]:
    """(normalized text, holdout key). Levels 1-2 have few skeletons (`return a + N`), so holding
    skeletons out would hide whole operations from pretraining; there the exact normalized program
    is the unit. Composed families at levels 3-4 hold out whole skeletons, so a benchmark loop is
    never a pretraining loop with other constants."""
    by_skeleton = level >= 3 and family in SKELETON_HOLDOUT_FAMILIES
    normalized, skeleton = _canonical_texts(program, with_skeleton=by_skeleton)
    return normalized, skeleton or normalized


def holdout_key(program: str, level: int, family: str) -> str:
    """What decides the benchmark or training side of a program (see `_keys`)."""
    return _keys(program, level, family)[1]


def is_benchmark_side(key: str, level: int) -> bool:
    """Stable (hash-seed independent) split of holdout keys: True for the benchmark side."""
    digest = hashlib.sha256(f"{level}:{key}".encode("utf-8")).digest()
    return int.from_bytes(digest[:8], "big") / 2**64 < HOLDOUT_FRACTION[level]


def _level_for_index(seed: int, index: int, levels: Sequence[int], weights: Sequence[float] | None) -> int:
    return random.Random(f"tinyworld-level:{seed}:{index}").choices(list(levels), weights=weights)[0]


def generate_program(seed: int, index: int, level: int, n_inputs: int = N_INDUCTION_CANDIDATES
                     ) -> ProgramSpec:
    """The `index`-th program of a stream: its own `random.Random`, so any program can be
    regenerated alone. Retries internally when random choices lead nowhere."""
    rng = random.Random(f"tinyworld:{seed}:{index}")
    for _ in range(100):
        try:
            program, builder, message, family = _generate_one(rng, level)
        except _GenerationFailed:
            continue
        if not builder.args:
            continue
        inputs = sample_inputs(builder.kinds(), rng, n_inputs)
        return ProgramSpec(program, builder.kinds(), level, family, _sentence(message), inputs, index,
                           *_keys(program, level, family))
    raise RuntimeError(f"no program generated for seed={seed} index={index} level={level}")


def generate_programs(n: int, seed: int, levels: Sequence[int] = LEVELS,
                      weights: Sequence[float] | None = None, start: int = 0,
                      n_inputs: int = N_INDUCTION_CANDIDATES) -> list[ProgramSpec]:
    """`n` programs (indices start..start+n-1) with levels drawn from `levels` (`weights`)."""
    for level in levels:
        if level not in LEVELS:
            raise ValueError(f"levels must be among {LEVELS}, got {level}")
    return [generate_program(seed, i, _level_for_index(seed, i, levels, weights), n_inputs)
            for i in range(start, start + n)]


# ============================================================================================
# Execution traces (the <think> of deduction documents)
# ============================================================================================

TRACE_NAME = "_trace"


def _record_expr(depth: int, kind: str, *items: ast.expr) -> ast.expr:
    """`len(_trace) < CAP and _trace.append((depth, kind, ...))` (screens as batch-safe in the
    sandbox: no dunder names, no private attributes)."""
    entry = ast.Tuple([ast.Constant(depth), ast.Constant(kind), *items], ast.Load())
    append = ast.Call(ast.Attribute(ast.Name(TRACE_NAME, ast.Load()), "append", ast.Load()), [entry], [])
    guard = ast.Compare(ast.Call(ast.Name("len", ast.Load()), [ast.Name(TRACE_NAME, ast.Load())], []),
                        [ast.Lt()], [ast.Constant(MAX_TRACE_EVENTS)])
    return ast.BoolOp(ast.And(), [guard, append])


def _record(depth: int, kind: str, *items: ast.expr) -> ast.stmt:
    return ast.Expr(_record_expr(depth, kind, *items))


def _repr_of(node: ast.expr) -> ast.expr:
    return ast.Call(ast.Name("repr", ast.Load()), [node], [])


def _if_outcome(depth: int, test: ast.expr) -> ast.expr:
    """The "if" record: the test's text and the repr of its truth."""
    return _record_expr(depth, "if", ast.Constant(ast.unparse(test)),
                        _repr_of(ast.Call(ast.Name("bool", ast.Load()), [test], [])))


def _then(records: list[ast.expr], value: ast.expr) -> ast.expr:
    """`(record, ..., value)[-1]`: the records run, then the value is the expression's value."""
    return ast.Subscript(ast.Tuple([*records, value], ast.Load()), ast.UnaryOp(ast.USub(), ast.Constant(1)),
                         ast.Load())


_COMPREHENSIONS = (ast.ListComp, ast.GeneratorExp, ast.SetComp, ast.DictComp)


def _trace_comprehension(node: ast.expr) -> bool:
    """Rewrite a one-generator comprehension in place so that each element records a "loop"
    event (the loop variables), the outcome of its filter ("if") and the value it computes
    ("expr", unless it is just a loop variable or a constant). Returns False (node untouched)
    for shapes it does not trace (several generators or filters, nested comprehensions)."""
    if len(node.generators) != 1 or len(node.generators[0].ifs) > 1:
        return False
    if any(isinstance(n, _COMPREHENSIONS) for n in ast.walk(node) if n is not node):
        return False
    gen = node.generators[0]
    names = [n for n in _target_names(gen.target) if n != "_"]
    loop = _record_expr(1, "loop", *_name_value_items(names))
    value_attr = "value" if isinstance(node, ast.DictComp) else "elt"
    value = getattr(node, value_attr)
    shown = not isinstance(value, (ast.Name, ast.Constant))
    computed = [_record_expr(1, "expr", ast.Constant(ast.unparse(value)), _repr_of(value))] if shown else []
    if gen.ifs:
        test = gen.ifs[0]
        gen.ifs = [_then([loop, _if_outcome(1, test)], test)]
        setattr(node, value_attr, _then(computed, value) if computed else value)
    else:
        setattr(node, value_attr, _then([loop, *computed], value))
    return True


def _always_evaluated(node: ast.expr) -> Iterator[ast.expr]:
    """`node` and the parts of it the program always evaluates, innermost first. Branches of
    `x if c else y` (only its test), operands of and/or and the inside of comprehensions are not
    entered, so re-evaluating what this yields never runs anything the program would not."""
    if isinstance(node, ast.IfExp):
        yield from _always_evaluated(node.test)
        return
    for name in _DESCEND.get(type(node), ()):
        child = getattr(node, name)
        for c in child if isinstance(child, list) else [child]:
            if isinstance(c, ast.expr):
                yield from _always_evaluated(c)
    yield node


def _name_value_items(names: Iterable[str]) -> list[ast.expr]:
    items: list[ast.expr] = []
    for name in names:
        items += [ast.Constant(name), ast.Call(ast.Name("repr", ast.Load()), [ast.Name(name, ast.Load())], [])]
    return items


def _target_names(target: ast.expr) -> list[str]:
    if isinstance(target, ast.Name):
        return [target.id]
    if isinstance(target, (ast.Tuple, ast.List)):
        return [n for elt in target.elts for n in _target_names(elt)]
    if isinstance(target, (ast.Subscript, ast.Attribute)):
        return _target_names(target.value)  # `d[k] = v` changes d
    return []


_DESCEND = {ast.Call: ("func", "args"), ast.BinOp: ("left", "right"), ast.Subscript: ("value",),
            ast.Attribute: ("value",), ast.Compare: ("left", "comparators"), ast.UnaryOp: ("operand",),
            ast.Tuple: ("elts",), ast.List: ("elts",)}
MAX_SUBEXPRESSIONS = 4


def _subexpressions(node: ast.expr) -> list[ast.expr]:
    """Intermediate values worth showing before a compound expression's value, innermost first:
    calls, arithmetic, subscripts, comparisons and conditional tests reached through parts that
    are always evaluated (`_always_evaluated`), so showing these values never evaluates anything
    the program itself would not (and cannot raise where the program does not)."""
    found: list[ast.expr] = []
    for n in _always_evaluated(node):
        worth = not isinstance(n, (ast.Name, ast.Constant, ast.Attribute, ast.Tuple, ast.List, ast.Starred,
                                   ast.Set, ast.SetComp, ast.GeneratorExp, ast.Lambda))
        if isinstance(n, ast.Call) and isinstance(n.func, ast.Name) and n.func.id in ("set", "frozenset"):
            worth = False  # a set's repr order depends on the hash seed (the double run would disagree)
        if n is not node and worth:
            found.append(n)
    return found[-MAX_SUBEXPRESSIONS:]


def _record_subexpressions(depth: int, value: ast.expr) -> list[ast.stmt]:
    return [_record(depth, "expr", ast.Constant(ast.unparse(sub)), _repr_of(sub)) for sub in _subexpressions(value)]


def _top_level_value(value: ast.expr, depth: int, elements: bool, in_loops: bool = False
                     ) -> tuple[list[ast.stmt], ast.expr]:
    """Records to run before a statement (intermediate values: outside loops, or anywhere with
    `in_loops`, as for `return`), and the value the statement should compute. With `elements`,
    comprehensions outside loops are rewritten to trace each element: inside the recorded
    intermediate value that contains them (`sum(...) -> 10` then follows its elements, and the
    statement computes the plain value, so nothing runs twice), or else in the statement's own
    value."""
    if depth != 0:
        return (_record_subexpressions(depth, value) if in_loops else []), value
    if not elements:
        return _record_subexpressions(depth, value), value
    traced_value = copy.deepcopy(value)
    traced = [c for c in _always_evaluated(traced_value)
              if isinstance(c, _COMPREHENSIONS) and _trace_comprehension(c)]
    subs = _subexpressions(traced_value)
    records = [_record(depth, "expr", ast.Constant(ast.unparse(_untraced(sub, value, traced_value))), _repr_of(sub))
               for sub in subs]
    inside = any(n is c for sub in subs for n in ast.walk(sub) for c in traced)
    return records, (value if inside else traced_value)


def _untraced(sub: ast.expr, value: ast.expr, traced_value: ast.expr) -> ast.expr:
    """The node of `value` at the position `sub` has in `traced_value` (its text without the
    tracing calls)."""
    pending = [(value, traced_value)]
    while pending:  # the trees agree outside comprehensions, where subexpressions live
        plain, traced = pending.pop()
        if traced is sub:
            return plain
        if not isinstance(traced, _COMPREHENSIONS):
            pending += zip(ast.iter_child_nodes(plain), ast.iter_child_nodes(traced))
    raise AssertionError("subexpression not found")


def _instrument_body(stmts: list[ast.stmt], depth: int, elements: bool = False) -> list[ast.stmt]:
    out: list[ast.stmt] = []
    for st in stmts:
        if isinstance(st, (ast.Assign, ast.AugAssign, ast.AnnAssign)):
            targets = st.targets if isinstance(st, ast.Assign) else [st.target]
            names = list(dict.fromkeys(n for t in targets for n in _target_names(t)))
            # intermediate values only outside loops, where they are few
            before: list[ast.stmt] = []
            if st.value is not None:
                before, st.value = _top_level_value(st.value, depth, elements)
            out += [*before, st, _record(depth, "set", *_name_value_items(names))]
        elif (isinstance(st, ast.Expr) and isinstance(st.value, ast.Call)
              and isinstance(st.value.func, ast.Attribute) and isinstance(st.value.func.value, ast.Name)):
            out += [st, _record(depth, "set", *_name_value_items([st.value.func.value.id]))]  # xs.append(..)
        elif isinstance(st, ast.For):
            names = [n for n in _target_names(st.target) if n != "_"]
            st.body = ([_record(depth + 1, "loop", *_name_value_items(names))]
                       + _instrument_body(st.body, depth + 1, elements))
            out.append(st)
        elif isinstance(st, ast.While):
            header = _record(depth + 1, "while", ast.Constant(ast.unparse(st.test)))
            st.body = [header] + _instrument_body(st.body, depth + 1, elements)
            out.append(st)
        elif isinstance(st, ast.If):
            out.append(ast.Expr(_if_outcome(depth, st.test)))
            st.body = _instrument_body(st.body, depth, elements)
            st.orelse = _instrument_body(st.orelse, depth, elements)
            out.append(st)
        elif isinstance(st, ast.Return):
            value = st.value if st.value is not None else ast.Constant(None)
            before, value = _top_level_value(value, depth, elements, in_loops=True)
            out += before
            out.append(ast.Return(ast.Tuple([value, ast.Name(TRACE_NAME, ast.Load())], ast.Load())))
        else:
            out.append(st)
    return out


def instrument_program(program: str, elements: bool = False) -> str:
    """A copy of `program` whose `f` returns `(result, trace)`: trace events are tuples
    (depth, kind, ...) recorded after each assignment or mutating call ("set", name/repr pairs),
    at the top of each loop iteration ("loop" with the loop variables, "while" with the test), and
    before each if ("if", test text, repr of its truth). Only conditions of `if` are evaluated
    twice, which is harmless for the pure programs generated here. Outside loops, intermediate
    values of compound expressions are recorded too ("expr", text, repr; see `_subexpressions`).
    `elements`: outside loops, a comprehension also records each element ("loop" with its
    variables, "if" with its filter's outcome, "expr" with the value it adds), like a for loop;
    the intermediate values that contain it are then not recorded."""
    tree = ast.parse(program)
    fn = next(n for n in tree.body if isinstance(n, ast.FunctionDef) and n.name == "f")
    arg_names = [a.arg for a in fn.args.args]
    init = ast.Assign([ast.Name(TRACE_NAME, ast.Store())], ast.List([], ast.Load()))
    fn.body = [init, _record(0, "args", *_name_value_items(arg_names))] + _instrument_body(fn.body, 0, elements)
    return ast.unparse(ast.fix_missing_locations(tree))


def _event_text(event: tuple) -> str:
    kind, items = event[1], event[2:]
    if kind in ("if", "expr"):
        return f"{items[0]} -> {items[1]}"
    if kind == "while":
        return f"while {items[0]}:"
    pairs = ", ".join(f"{items[i]}={items[i + 1]}" for i in range(0, len(items), 2))
    if kind == "loop":
        return (pairs or "repeat") + ":"  # `for _ in range(n)` has no variable to show
    return pairs


def format_trace(events: Sequence[tuple], output: str, max_lines: int = MAX_TRACE_LINES) -> str:
    """Trace text: the arguments, one line per top-level step or loop iteration (the iteration's
    steps joined by '; '), then `return <output>`. Longer traces keep their first lines and the
    last two, with '...' between."""
    head, lines = "", []
    for event in events:
        depth, kind = event[0], event[1]
        text = _event_text(event)
        if kind == "args":
            head = text
        elif kind in ("loop", "while") or depth == 0 or not lines:
            lines.append(text)
        else:
            lines[-1] += (" " if lines[-1].endswith(":") else "; ") + text
    if len(events) >= MAX_TRACE_EVENTS:
        lines.append("...")
    if len(lines) > max_lines:
        lines = lines[:max_lines - 3] + ["..."] + lines[-2:]
    return "\n".join([head, *lines, f"return {output}"])


def compute_traces(executor, tasks: Sequence[Task], elements: bool = False) -> list[str | None]:
    """Trace text per triplet task (None when the traced run failed or disagrees with the
    task's output, which would be a bug in the instrumentation). `elements`: see
    `instrument_program`."""
    runs = executor.run_many([(instrument_program(t.program, elements), t.input) for t in tasks],
                             timeout_s=RUN_TIMEOUT_S)
    traces: list[str | None] = []
    for task, run in zip(tasks, runs):
        if run.status != "ok":
            traces.append(None)
            continue
        try:
            value, events = parse_literal(run.value)
            same = values_equal(value, parse_literal(task.output))
        except (NotALiteral, ValueError, TypeError):
            same = False
        traces.append(format_trace(events, task.output) if same else None)
    return traces


# ============================================================================================
# Corpus: validated tasks
# ============================================================================================

@dataclass
class Corpus:
    """Validated tasks per type (deduction/abduction triplets, induction with 10 pairs), each with
    `meta` = {level, family, key, ...}; deduction tasks carry their trace text in meta["trace"]."""

    tasks: dict[str, list[Task]]
    specs: list[ProgramSpec]  # the kept programs
    pairs: dict[str, tuple[tuple[str, str], ...]]  # normalized text -> every verified (input, output)
    stats: dict

    def keys(self) -> set[str]:
        return {s.key for s in self.specs}


def _run_and_keep(executor, specs: Sequence[ProgramSpec], n_inputs: Callable[[ProgramSpec], int]
                  ) -> tuple[dict[int, list[tuple[str, str]]], dict[str, int]]:
    """Validated (input, output) pairs per spec position, with a count of rejection reasons."""
    proposals, owners = [], []
    for pos, spec in enumerate(specs):
        for x in spec.inputs[:n_inputs(spec)]:
            proposals.append(("deduction", spec.program, x))
            owners.append(pos)
    reasons: dict[str, int] = {}
    pairs: dict[int, list[tuple[str, str]]] = {}
    for pos, result in zip(owners, validate_triplets(executor, proposals, VALIDATION)):
        reasons[result.reason] = reasons.get(result.reason, 0) + 1
        if result.ok:
            pairs.setdefault(pos, []).append((result.task.input, result.task.output))
    return pairs, reasons


def _make_tasks(spec: ProgramSpec, pairs: list[tuple[str, str]], per_type: int | None, with_induction: bool,
                n_triplet: int = N_TRIPLET_INPUTS) -> dict[str, list[Task]]:
    """Tasks of one program: `per_type` (None: `TASKS_PER_PROGRAM[level]`) deduction and
    abduction triplets, and an induction task when asked for and enough pairs ran."""
    per_type = TASKS_PER_PROGRAM[spec.level] if per_type is None else per_type
    meta = {"level": spec.level, "family": spec.family, "key": spec.key, "index": spec.index,
            "arg_kinds": list(spec.arg_kinds)}
    triplet_pairs = [p for p in pairs if p[0] in spec.inputs[:n_triplet]]
    tasks: dict[str, list[Task]] = {t: [] for t in TASK_TYPES}
    # deduction from the first pairs, abduction from the last, so both see different inputs
    for x, y in triplet_pairs[:per_type]:
        tasks["deduction"].append(Task("deduction", spec.program, (x,), (y,), message=spec.message, meta=dict(meta)))
    for x, y in triplet_pairs[::-1][:per_type]:
        tasks["abduction"].append(Task("abduction", spec.program, (x,), (y,), message=spec.message, meta=dict(meta)))
    if with_induction and len(pairs) >= N_INDUCTION_PAIRS:
        chosen = pairs[:N_INDUCTION_PAIRS]
        if len({y for _, y in chosen}) >= MIN_INDUCTION_DISTINCT_OUTPUTS:
            tasks["induction"].append(Task("induction", spec.program, tuple(x for x, _ in chosen),
                                           tuple(y for _, y in chosen), message=spec.message, meta=dict(meta)))
    return tasks


def _validated_tasks(executor, specs: Sequence[ProgramSpec], per_type: int | dict | None, induction_share: float,
                     seed: int, triplet_inputs: dict[int, int] | None = None,
                     ) -> tuple[list[tuple[ProgramSpec, list[tuple[str, str]], dict[str, list[Task]]]], dict]:
    """Run specs (already deduplicated), drop failing/constant programs, build their tasks.
    `per_type`: tasks per program and type (an int, a {level: int} dict, None: TASKS_PER_PROGRAM);
    `triplet_inputs`: {level: inputs tried for triplets} (None: N_TRIPLET_INPUTS everywhere)."""
    def n_triplet(spec: ProgramSpec) -> int:
        return min(N_INDUCTION_CANDIDATES, (triplet_inputs or {}).get(spec.level, N_TRIPLET_INPUTS))

    def wants_induction(spec: ProgramSpec) -> bool:
        return random.Random(f"tinyworld-ind:{seed}:{spec.index}").random() < induction_share

    pairs_by_pos, reasons = _run_and_keep(
        executor, specs, lambda s: N_INDUCTION_CANDIDATES if wants_induction(s) else n_triplet(s))
    kept, constant = [], 0
    for pos, spec in enumerate(specs):
        pairs = pairs_by_pos.get(pos, [])
        triplet_outputs = {y for x, y in pairs if x in spec.inputs[:n_triplet(spec)]}
        if not triplet_outputs:
            continue
        if len(triplet_outputs) < 2 and len(pairs) >= 2:
            constant += 1  # a constant function: nothing to deduce, any input answers abduction
            continue
        level_per_type = per_type.get(spec.level) if isinstance(per_type, dict) else per_type
        kept.append((spec, pairs, _make_tasks(spec, pairs, level_per_type, wants_induction(spec), n_triplet(spec))))
    return kept, {"run_reasons": reasons, "constant_outputs": constant}


def _dedupe(specs: Iterable[ProgramSpec], exclude: set[str], side: str) -> tuple[list[ProgramSpec], dict]:
    """Unique programs (by normalized text) on one side of the holdout split."""
    seen: set[str] = set(exclude)
    out, duplicates, other_side = [], 0, 0
    for spec in specs:
        key = spec.key
        if key in seen:
            duplicates += 1
            continue
        if is_benchmark_side(spec.holdout_key, spec.level) != (side == "benchmark"):
            other_side += 1
            continue
        seen.add(key)
        out.append(spec)
    return out, {"duplicates": duplicates, "other_side": other_side}


def build_corpus(executor, n_programs: int, seed: int = 0, levels: Sequence[int] = LEVELS,
                 weights: Sequence[float] | None = None, tasks_per_program: int | dict | None = None,
                 induction_share: float = 0.35, exclude: Iterable[str] = (), with_traces: bool = True,
                 triplet_inputs: dict[int, int] | None = None, trace_elements: bool = False) -> Corpus:
    """Generate `n_programs` candidates, keep the training-side, unique, validated ones, and build
    their tasks (up to `tasks_per_program` deduction and abduction triplets each, an int or a
    {level: int} dict, by default `TASKS_PER_PROGRAM[level]`, from the first
    `triplet_inputs[level]` sampled inputs (default N_TRIPLET_INPUTS); an induction task for about
    `induction_share` of them). `trace_elements`: deduction traces show each element of a
    top-level comprehension (`instrument_program(elements=True)`).
    `exclude`: normalized program texts to leave out. `n_programs` counts generated candidates."""
    started = time.perf_counter()
    generated = generate_programs(n_programs, seed, levels, weights)
    generation_s = time.perf_counter() - started
    specs, dedupe_stats = _dedupe(generated, set(exclude), side="train")
    kept, run_stats = _validated_tasks(executor, specs, tasks_per_program, induction_share, seed, triplet_inputs)
    tasks: dict[str, list[Task]] = {t: [] for t in TASK_TYPES}
    for _, _, per_type in kept:
        for task_type, items in per_type.items():
            tasks[task_type].extend(items)
    trace_failures = 0
    if with_traces and tasks["deduction"]:
        traces = compute_traces(executor, tasks["deduction"], trace_elements)
        with_trace = []
        for task, trace in zip(tasks["deduction"], traces):
            if trace is None:
                trace_failures += 1
                continue
            task.meta["trace"] = trace
            with_trace.append(task)
        tasks["deduction"] = with_trace
    stats = {
        "seed": seed, "generated": n_programs, "unique_train_side": len(specs), "kept_programs": len(kept),
        "kept_fraction": len(kept) / max(1, n_programs), **dedupe_stats, **run_stats,
        "trace_failures": trace_failures, "seconds": time.perf_counter() - started,
        "generation_seconds": generation_s,
        "generated_per_level": _count(s.level for s in generated),
        "kept_per_level": _count(s.level for s, _, _ in kept),
        "tasks": {t: len(v) for t, v in tasks.items()},
    }
    return Corpus(tasks, [s for s, _, _ in kept], {s.key: tuple(p) for s, p, _ in kept}, stats)


def _count(values: Iterable) -> dict:
    out: dict = {}
    for v in values:
        out[v] = out.get(v, 0) + 1
    return dict(sorted(out.items()))


# ============================================================================================
# Pretraining documents
# ============================================================================================

@dataclass(frozen=True)
class Document:
    """One pretraining document: a prompt (ending with `Assistant: <think>`) and its gold
    completion. `text` is what the model is trained on; `task` is the task the completion answers
    (for proposer forms: the proposed task)."""

    form: str
    prompt: str
    completion: str
    task: Task
    level: int

    @property
    def text(self) -> str:
        return self.prompt + self.completion


def _abduction_think(task: Task, other_pairs: Sequence[tuple[str, str]], rng: random.Random) -> str:
    """Candidate-and-check lines: wrong candidates (other inputs of the same program, with their
    true, different outputs) before the right one; about (level - 1) / 2 of them, so harder
    programs get longer searches."""
    wrong = [(x, y) for x, y in other_pairs if y != task.output and x != task.input]
    n_wrong = min(len(wrong), sum(rng.random() < 0.5 for _ in range(task.meta["level"] - 1)))
    lines = [f"try {x} -> {y}, no" for x, y in rng.sample(wrong, n_wrong)]
    lines.append(f"try {task.input} -> {task.output}, yes")
    return "\n".join(lines)


def _induction_think(task: Task, arg_kinds: Sequence[str]) -> str:
    """What f takes, then one shown pair checked against the program (the hint is in the prompt)."""
    shown, _ = templates.split_induction_pairs(task)
    x, y = shown[-1]
    takes = " and ".join(_KIND_WORDS[k] for k in arg_kinds)
    return f"f takes {takes}\ncheck f({x}) = {y}"


def _proposer_think(task: Task) -> str:
    if task.task_type == "induction":
        return f"vary the inputs; hint: {task.message}"
    return f"idea: {task.message}"


def _check_document(doc: Document) -> str | None:
    """None when the completion parses back to the document's task, else the reason."""
    task = doc.task
    if doc.form.startswith("propose"):
        parsed = parsing.parse_proposal(task.task_type, doc.completion, require_format=True)
        if not parsed.ok:
            return parsed.reason
        if task.task_type == "induction":
            same = parsed.inputs == task.inputs and parsed.message == task.message
        else:
            same = parsed.program == task.program and parsed.input == task.input
        return None if same else "proposal differs"
    parsed = parsing.parse_solver_answer(task.task_type, doc.completion, require_format=True)
    if not parsed.ok:
        return parsed.reason
    expected = {"deduction": task.output, "abduction": task.input, "induction": task.program}[task.task_type]
    return None if parsed.answer == expected else "answer differs"


def build_documents(corpus: Corpus, seed: int = 0, style: str = "compact", proposer_ratio: float = 0.5,
                    num_references: int = 2, banned_modules: Sequence[str] = AZR_BANNED_MODULES,
                    induction_proposer_ratio: float | None = None) -> list[Document]:
    """Documents in all six forms: one solver document per corpus task, and about
    `proposer_ratio` proposer documents per solver document of each type (references: K random
    corpus triplets of that type; proposal: another corpus task); `induction_proposer_ratio`
    (None: `proposer_ratio`) overrides it for induction; with it, a program drawn again for an
    induction proposal gets its inputs in another order. Shuffled; deterministic for a seed.
    Every document is parsed back; one that does not round-trip raises (a bug here)."""
    rng = random.Random(f"tinyworld-docs:{seed}")
    docs: list[Document] = []
    for task in corpus.tasks["deduction"]:
        think = task.meta.get("trace", "")
        docs.append(Document("solve_deduction", templates.solve_prompt(task, style=style),
                             templates.render_solver_answer(task, think), task, task.meta["level"]))
    for task in corpus.tasks["abduction"]:
        think = _abduction_think(task, corpus.pairs.get(task.meta["key"], ()), rng)
        docs.append(Document("solve_abduction", templates.solve_prompt(task, style=style),
                             templates.render_solver_answer(task, think), task, task.meta["level"]))
    for task in corpus.tasks["induction"]:
        docs.append(Document("solve_induction", templates.solve_prompt(task, style=style),
                             templates.render_solver_answer(task, _induction_think(task, task.meta["arg_kinds"])), task,
                             task.meta["level"]))
    for task_type in TASK_TYPES:
        pool = corpus.tasks[task_type]
        references_pool = corpus.tasks["deduction" if task_type == "induction" else task_type]
        if not pool or len(references_pool) <= num_references:
            continue
        # with an explicit induction ratio, a program drawn again gets its ten inputs in another
        # order (a new document); without one the corpus stays the committed base's
        reorder_repeats = task_type == "induction" and induction_proposer_ratio is not None
        used: set[int] = set()
        for _ in range(round((induction_proposer_ratio if reorder_repeats else proposer_ratio) * len(pool))):
            proposal = rng.choice(pool)
            if reorder_repeats and id(proposal) in used:
                order = random.Random(f"tinyworld-reorder:{seed}:{len(docs)}").sample(
                    range(len(proposal.inputs)), len(proposal.inputs))
                proposal = Task("induction", proposal.program, tuple(proposal.inputs[i] for i in order),
                                tuple(proposal.outputs[i] for i in order), message=proposal.message,
                                meta=dict(proposal.meta))
            else:
                used.add(id(proposal))
            if task_type == "induction":
                prompt = templates.propose_prompt("induction", style=style, program_for_induction=proposal,
                                                  banned_modules=banned_modules)
            else:
                references = []
                while len(references) < num_references:
                    ref = rng.choice(references_pool)
                    if ref.meta["key"] != proposal.meta["key"] and ref not in references:
                        references.append(ref)
                prompt = templates.propose_prompt(task_type, references, style=style, banned_modules=banned_modules)
            completion = templates.render_proposal_answer(proposal, _proposer_think(proposal))
            docs.append(Document(f"propose_{task_type}", prompt, completion, proposal, proposal.meta["level"]))
    for doc in docs:
        problem = _check_document(doc)
        if problem is not None:
            raise AssertionError(f"{doc.form} document does not round-trip ({problem}):\n{doc.text}")
    rng.shuffle(docs)
    return docs


DRILL_FORM = "drill_trace"
DRILL_BLOCKS_PER_DOCUMENT = 10
DRILL_INPUTS_PER_LEVEL = {1: 60, 2: 16, 3: 4}


def drill_documents(executor, corpus: Corpus, seed: int = 0, inputs_per_level: dict[int, int] | None = None,
                    blocks_per_document: int = DRILL_BLOCKS_PER_DOCUMENT) -> list[Document]:
    """Trace drills: a corpus program (a ```python block) followed by up to `blocks_per_document`
    execution traces of it on fresh inputs, in the deduction `<think>` format (arguments, one line
    per step, `return <output>`), blank-line separated, with no prompt. They stand in for the REPL
    sessions a code LLM has read: many evaluations of each operation per token, where a solver
    document spends ~400 characters on one. Only training-side corpus programs of the levels in
    `inputs_per_level` ({level: fresh inputs per program}, default DRILL_INPUTS_PER_LEVEL) are
    used, so the benchmark stays held out. Each (program, input) is validated and traced in the
    sandbox like a corpus task; the traced run must agree with the plain one. Deterministic for a seed."""
    inputs_per_level = DRILL_INPUTS_PER_LEVEL if inputs_per_level is None else inputs_per_level
    candidates: list[tuple[ProgramSpec, str]] = []
    for spec in corpus.specs:
        want = inputs_per_level.get(spec.level, 0)
        if want <= 0:
            continue
        rng = random.Random(f"tinyworld-drill:{seed}:{spec.index}")
        fresh = [x for x in sample_inputs(spec.arg_kinds, rng, want + len(spec.inputs)) if x not in spec.inputs]
        candidates += [(spec, x) for x in fresh[:want]]
    checked = validate_triplets(executor, [("deduction", s.program, x) for s, x in candidates], VALIDATION)
    runs = [(spec, Task("deduction", spec.program, (x,), (r.task.output,), meta={"level": spec.level, "key": spec.key}))
            for (spec, x), r in zip(candidates, checked) if r.ok]
    by_program: dict[str, list[tuple[Task, str]]] = {}
    specs: dict[str, ProgramSpec] = {}
    for (spec, task), trace in zip(runs, compute_traces(executor, [t for _, t in runs])):
        if trace is not None:
            by_program.setdefault(spec.key, []).append((task, trace))
            specs[spec.key] = spec
    docs = []
    for key, traced in by_program.items():
        header = f"```python\n{specs[key].program}\n```\n"
        for start in range(0, len(traced), blocks_per_document):
            chunk = traced[start:start + blocks_per_document]
            docs.append(Document(DRILL_FORM, "", header + "\n\n".join(trace for _, trace in chunk) + "\n",
                                 chunk[0][0], specs[key].level))
    random.Random(f"tinyworld-drill-order:{seed}").shuffle(docs)
    return docs


def pretraining_documents(corpus: Corpus, seed: int = 0, style: str = "compact", **kwargs) -> list[str]:
    """Texts (prompt + gold completion) of `build_documents`."""
    return [d.text for d in build_documents(corpus, seed, style, **kwargs)]


def verify_documents(executor, docs: Sequence[Document]) -> list[bool]:
    """Per document: its completion parses back to its task and, for solver documents, the parsed
    answer verifies with `verify_answers` (proposer documents: the parse check only)."""
    ok = [_check_document(d) is None for d in docs]
    solver = [k for k, d in enumerate(docs) if d.form.startswith("solve") and ok[k]]
    answers = [parsing.parse_solver_answer(docs[k].task.task_type, docs[k].completion).answer for k in solver]
    from azrlib.tasks.verify import verify_answers  # import here: only checks need the verifier

    verdicts = verify_answers(executor, [docs[k].task for k in solver], answers)
    for k, verdict in zip(solver, verdicts):
        ok[k] = verdict.correct
    return ok


def document_stats(docs: Sequence[Document]) -> dict:
    """Count and mean prompt/completion length (characters) per form and per (form, level)."""
    out: dict = {}
    for form in (*DOCUMENT_FORMS, DRILL_FORM):
        chosen = [d for d in docs if d.form == form]
        if not chosen:
            continue
        row = {"n": len(chosen), "prompt_chars": _mean(len(d.prompt) for d in chosen),
               "completion_chars": _mean(len(d.completion) for d in chosen), "by_level": {}}
        for level in sorted({d.level for d in chosen}):
            at = [d for d in chosen if d.level == level]
            row["by_level"][level] = {"n": len(at), "prompt_chars": _mean(len(d.prompt) for d in at),
                                      "completion_chars": _mean(len(d.completion) for d in at)}
        out[form] = row
    return out


def _mean(values: Iterable[float]) -> float:
    values = list(values)
    return round(sum(values) / len(values), 1) if values else 0.0


# ============================================================================================
# Held-out benchmark and RLVR task source
# ============================================================================================

@dataclass(frozen=True)
class TaskSource:
    """The fixed tiny-world task source: seeds for the pretraining corpus, the benchmark and the
    RLVR/SFT task stream, and the levels they cover. Seeds only pick programs; disjointness
    comes from the holdout split (`is_benchmark_side`) and the normalized-text exclusion."""

    name: str = "tinyworld-v1"
    levels: tuple[int, ...] = LEVELS
    corpus_seed: int = 0
    benchmark_seed: int = 1234
    rlvr_seed: int = 777
    benchmark_per_type: int = 300
    holdout_fraction: tuple[tuple[int, float], ...] = tuple(HOLDOUT_FRACTION.items())


TASK_SOURCE = TaskSource()


def _balanced_tasks(executor, seed: int, per_type: int, side: str, levels: Sequence[int], exclude: set[str],
                    task_types: Sequence[str] = TASK_TYPES, max_rounds: int = 40) -> dict[str, list[Task]]:
    """Tasks on one side of the holdout split, `per_type` per type, spread evenly over `levels`.
    A program gives one task, to the type whose quota at its level is least filled, except at
    `SHARED_PROGRAM_LEVELS`, where it serves every open type (deduction and abduction then use
    different inputs). Generates in rounds until the quotas are met."""
    quota = {(t, lvl): per_type // len(levels) + (1 if i < per_type % len(levels) else 0)
             for t in task_types for i, lvl in enumerate(levels)}
    got: dict[str, list[Task]] = {t: [] for t in task_types}
    seen = set(exclude)
    start, batch = 0, max(400, per_type * len(task_types) * (4 if side == "benchmark" else 1))
    for _ in range(max_rounds):
        if all(v <= 0 for v in quota.values()):
            break
        open_levels = [lvl for lvl in levels if any(quota[(t, lvl)] > 0 for t in task_types)]
        # only open levels are generated; the stream stays deterministic because the quotas are
        generated = generate_programs(batch, seed, open_levels, start=start)
        start += batch
        wanted = generated
        specs, _ = _dedupe(wanted, seen, side)
        seen.update(s.key for s in specs)
        kept, _ = _validated_tasks(executor, specs, 1, 1.0 if "induction" in task_types else 0.0, seed)
        for spec, _pairs, per_type_tasks in kept:
            open_types = sorted((t for t in task_types if quota[(t, spec.level)] > 0 and per_type_tasks[t]),
                                key=lambda t: -quota[(t, spec.level)])
            for task_type in open_types[:None if spec.level in SHARED_PROGRAM_LEVELS else 1]:
                task = per_type_tasks[task_type][0]
                task.meta["source"] = f"{TASK_SOURCE.name}:{side}:{seed}"
                got[task_type].append(task)
                quota[(task_type, spec.level)] -= 1
    if any(v > 0 for v in quota.values()):
        raise RuntimeError(f"could not fill the quotas: {quota}")
    for t in task_types:
        got[t].sort(key=lambda task: (task.meta["level"], task.meta["index"]))
    return got


def build_benchmark(executor, seed: int = TASK_SOURCE.benchmark_seed, per_type: int = TASK_SOURCE.benchmark_per_type,
                    exclude: Corpus | Iterable[str] = (), levels: Sequence[int] = LEVELS) -> dict[str, list[Task]]:
    """Held-out tiny-world benchmark: `per_type` tasks per type, evenly over `levels`, from the
    benchmark side of the holdout split only, and never a program whose normalized text is in
    `exclude` (a Corpus or normalized texts). Triplets for deduction/abduction; induction tasks
    have 10 pairs (5 shown, 5 hidden) and a message. meta has level, family, key."""
    excluded = exclude.keys() if isinstance(exclude, Corpus) else set(exclude)
    return _balanced_tasks(executor, seed, per_type, "benchmark", levels, excluded)


def rlvr_tasks(executor, n: int, seed: int = TASK_SOURCE.rlvr_seed, task_types: Sequence[str] = TASK_TYPES,
               levels: Sequence[int] = LEVELS) -> list[Task]:
    """`n` verified solver tasks (spread over `task_types` and `levels`) from the training side of
    the holdout split, so never a benchmark program: the task source for RLVR/SFT baselines."""
    per_type = -(-n // len(task_types))
    by_type = _balanced_tasks(executor, seed, per_type, "train", levels, set(), task_types)
    mixed = [task for group in zip(*(by_type[t] for t in task_types)) for task in group]
    random.Random(f"tinyworld-rlvr:{seed}").shuffle(mixed)
    return mixed[:n]


def save_benchmark(path: str | Path, benchmark: dict[str, list[Task]]) -> None:
    """JSONL, one `Task.to_json()` row per task (meta has level, family, key)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", encoding="utf-8") as fh:
        for task_type in TASK_TYPES:
            for task in benchmark.get(task_type, []):
                fh.write(json.dumps(task.to_json(), sort_keys=True) + "\n")


def load_benchmark(path: str | Path) -> dict[str, list[Task]]:
    out: dict[str, list[Task]] = {t: [] for t in TASK_TYPES}
    with Path(path).open(encoding="utf-8") as fh:
        for line in fh:
            if line.strip():
                task = Task.from_json(json.loads(line))
                out[task.task_type].append(task)
    return out
