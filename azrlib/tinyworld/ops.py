"""Tiny-world program pieces: argument kinds and their value samplers, the table of expression
operations, and the program builder with the level 1-2 templates (one operation; two nested
operations, a helper variable, a conditional or a tuple). Loops (levels 3-4) are in `loops.py`;
`programs.py` puts it together."""

from __future__ import annotations

import ast
import random
from dataclasses import dataclass, field
from typing import Callable, Sequence

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
