"""Tiny-world loop programs (levels 3-4): a for loop with one accumulator over a view of an
argument (level 3), with an if/else inside, two accumulators, enumerate or pairwise (level 4),
while loops, three-step chains, recurrences and running sums."""

from __future__ import annotations

import random
from dataclasses import dataclass

from azrlib.tinyworld.ops import RETURN_KINDS, _apply, _Builder, _constants, _expr, _op_on, _pick_op, _program


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

