"""Values as text, both ways: the canonical repr of a program's result, and the literal parser.

Stdlib only: the sandbox worker imports this file as a top-level module (`python -S`), and the
trusted side imports it as `azrlib.sandbox.canon`, so both ends of the wire share one definition.

- `canonical_repr(value, max_chars)`: the text of a result made of builtin literal types only
  (sets and dict keys sorted, so equal values give equal text in any interpreter); anything else
  raises `Unsupported`, anything too big or too deep raises `TooLarge`.
- `parse_literal(text)`: the value of a literal, built from a whitelist over the AST with size and
  depth limits; it compiles and runs nothing. `canonical_repr(parse_literal(t)) == t` for every
  canonical `t` (the round trip that validation checks before a value becomes a gold).
- `call_args_text(inputs)`: argument text as a model writes it (`'ab', 3, k=[1]`) checked to be
  literals only and re-written as the canonical literal `((args...), {kwargs...})` that the runner
  parses; insertion order (dicts, sets) is kept, so the call sees the values as written.
- `call_args_wire(inputs)`: the same check; what the executor sends a runner: `marshal` bytes of
  `(args, kwargs)` (built by the trusted side from the parsed literals; the runner loads them in a
  microsecond instead of parsing), or the canonical text when a set is among them.
- `is_canonical(text)`: the round trip that the worker requires of every value a runner writes.
"""

import ast
import marshal
import math
import re

MAX_LITERAL_CHARS = 100_000
MAX_DEPTH = 100  # containers nested deeper are neither produced nor parsed

_SPECIAL_FLOATS = {"nan": math.nan, "inf": math.inf, "-inf": -math.inf, "infinity": math.inf,
                   "-infinity": -math.inf}


class Unsupported(Exception):
    """The value is not made of builtin literal types."""


class TooLarge(Exception):
    """The canonical repr would exceed the size or depth cap."""


class NotALiteral(ValueError):
    """The text is not a plain Python literal (it may still be a valid expression)."""


# ----------------------------------------------------------------------------- canonical repr

_NUMERIC = (bool, int, float)
import collections as _collections  # noqa: E402  (captured before any user code runs)

# Stdlib mappings whose `==` is dict's: canonicalised as plain dicts.
_DICT_LIKE = (_collections.Counter, _collections.defaultdict, _collections.OrderedDict)


def _sorted_reprs(items, budget, depth):
    reprs = [_canon(x, budget, depth + 1) for x in items]
    kinds = {type(x) for x in items}
    if kinds and (kinds <= set(_NUMERIC) or kinds == {str} or kinds == {bytes}):
        order = sorted(range(len(items)), key=lambda k: items[k])  # builtins only: no user code
    else:
        order = sorted(range(len(items)), key=lambda k: (type(items[k]).__name__, reprs[k]))
    return [reprs[k] for k in order], order


def _float_repr(x):
    if x != x:
        return "float('nan')"
    if x in (math.inf, -math.inf):
        return "float('inf')" if x > 0 else "float('-inf')"
    return repr(x)


def _canon(x, budget, depth):
    """budget is a one-element list holding the characters still allowed."""
    if depth > MAX_DEPTH:
        raise TooLarge("nesting deeper than %d" % MAX_DEPTH)
    t = type(x)
    if x is None or t is bool:
        s = repr(x)
    elif t is int:
        if x.bit_length() > 4 * max(budget[0], 1) + 8:
            raise TooLarge("integer too large")
        try:
            s = repr(x)
        except ValueError:  # beyond sys.int_info.str_digits_check_threshold
            raise TooLarge("integer too large")
    elif t is float:
        s = _float_repr(x)
    elif t is complex:
        s = "complex(%s, %s)" % (_float_repr(x.real), _float_repr(x.imag))
    elif t is str or t is bytes:
        if len(x) > budget[0]:
            raise TooLarge("string longer than the output cap")
        s = repr(x)
    elif t is list or t is tuple:
        if len(x) > budget[0]:
            raise TooLarge("sequence longer than the output cap")
        parts = [_canon(v, budget, depth + 1) for v in x]
        if t is list:
            s = "[" + ", ".join(parts) + "]"
        elif len(parts) == 1:
            s = "(" + parts[0] + ",)"
        else:
            s = "(" + ", ".join(parts) + ")"
    elif t is dict or t in _DICT_LIKE:
        if len(x) > budget[0]:
            raise TooLarge("dict longer than the output cap")
        keys = list(x.keys())
        key_reprs, order = _sorted_reprs(keys, budget, depth)
        parts = [kr + ": " + _canon(x[keys[k]], budget, depth + 1) for kr, k in zip(key_reprs, order)]
        s = "{" + ", ".join(parts) + "}"
    elif t is set or t is frozenset:
        if len(x) > budget[0]:
            raise TooLarge("set longer than the output cap")
        reprs, _ = _sorted_reprs(list(x), budget, depth)
        if t is set:
            s = "{" + ", ".join(reprs) + "}" if reprs else "set()"
        else:
            s = "frozenset({" + ", ".join(reprs) + "})" if reprs else "frozenset()"
    else:
        raise Unsupported("unsupported output type %s" % t.__name__)
    budget[0] -= len(s)
    if budget[0] < 0:
        raise TooLarge("output larger than the cap")
    return s


def canonical_repr(x, max_chars):
    return _canon(x, [max_chars], 0)


# ints (no sign on 0: repr(-0) is '0'), plain printable-ASCII strings without ' or \, constants
_SIMPLE = re.compile(r"0|-?[1-9][0-9]*|'[ -&(-\[\]-~]*'")
_CONSTANTS = frozenset({"True", "False", "None"})
# flat lists and tuples of those, written as canonical_repr writes them
_ATOM = r"(?:0|-?[1-9][0-9]*|'[ -&(-\[\]-~]*'|True|False|None)"
_FLAT = re.compile(r"\[(?:{a}(?:, {a})*)?\]|\((?:{a},|{a}(?:, {a})+)?\)".format(a=_ATOM))


def is_canonical(text, max_chars=MAX_LITERAL_CHARS):
    """Is `text` the canonical repr of a literal value: `canonical_repr(parse_literal(text)) ==
    text`? The commonest results (ints, bools, None, plain strings, flat lists and tuples of
    those) take a shortcut with the same answer; everything else is parsed. Never raises."""
    try:
        if type(text) is not str or len(text) > max_chars:
            return False
        if len(text) <= 4000 and (text in _CONSTANTS or _SIMPLE.fullmatch(text)):
            return True
        # a flat container: canonical_repr charges its atoms and then its whole text to the
        # budget, so it fits when twice the text does
        if len(text) <= 4000 and 2 * len(text) <= max_chars and _FLAT.fullmatch(text):
            return True
        return canonical_repr(parse_literal(text, max_chars=max_chars), max_chars) == text
    except Exception:  # noqa: BLE001 - NotALiteral, TooLarge, Unsupported, MemoryError...
        return False


# ----------------------------------------------------------------------------- literal parser

def parse_literal(text, max_chars=MAX_LITERAL_CHARS, max_depth=MAX_DEPTH):
    """Value of a literal: numbers, strings, bytes, bools, None, tuples, lists, dicts, sets, plus
    the canonical forms `set()`, `frozenset({...})`, `float('nan'|'inf'|'-inf')`, `complex(a, b)`,
    bare `inf`/`nan` (repr's spelling) and unary minus. Raises NotALiteral for anything else (and
    never anything else), never runs code."""
    return _value(_parse(text, max_chars), 0, max_depth)


def _parse(text, max_chars):
    if not isinstance(text, str):
        raise NotALiteral("not a string")
    if len(text) > max_chars:
        raise NotALiteral("longer than %d characters" % max_chars)
    try:
        return ast.parse(text.strip(), mode="eval").body
    except (SyntaxError, ValueError, RecursionError, MemoryError, OverflowError) as e:
        raise NotALiteral("does not parse: %s" % type(e).__name__) from None


def _value(node, depth, max_depth):
    try:
        return _value_of(node, depth, max_depth)
    except RecursionError:
        raise NotALiteral("nested too deeply") from None
    except (MemoryError, OverflowError, ValueError, TypeError) as e:
        if isinstance(e, NotALiteral):
            raise
        raise NotALiteral("cannot build the value: %s" % type(e).__name__) from None


def _value_of(node, depth, max_depth):
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
        return tuple(_value_of(e, d, max_depth) for e in node.elts)
    if t is ast.List:
        return [_value_of(e, d, max_depth) for e in node.elts]
    if t is ast.Set:
        return {_hashable(_value_of(e, d, max_depth)) for e in node.elts}
    if t is ast.Dict:
        if any(k is None for k in node.keys):
            raise NotALiteral("dict unpacking")
        return {_hashable(_value_of(k, d, max_depth)): _value_of(v, d, max_depth)
                for k, v in zip(node.keys, node.values)}
    # Signs, `a + bj` and the call forms are parts of one atom, not nesting: they keep the depth,
    # as canonical_repr counts it (else a gold at the depth limit would not parse back).
    if t is ast.UnaryOp and type(node.op) in (ast.USub, ast.UAdd):
        v = _value_of(node.operand, depth, max_depth)
        if type(v) not in (int, float, complex):
            raise NotALiteral("unary sign on a non-number")
        return -v if type(node.op) is ast.USub else +v
    if t is ast.BinOp and type(node.op) in (ast.Add, ast.Sub):
        # only `a + bj` / `a - bj` complex literals
        left, right = _value_of(node.left, depth, max_depth), _value_of(node.right, depth, max_depth)
        if type(left) in (int, float) and type(right) is complex:
            return left + right if type(node.op) is ast.Add else left - right
        raise NotALiteral("arithmetic")
    if t is ast.Call and type(node.func) is ast.Name and not node.keywords:
        name, args = node.func.id, node.args
        if name == "set" and not args:
            return set()
        if name == "frozenset" and len(args) <= 1:
            return frozenset(_hashable(x) for x in (_value_of(args[0], depth, max_depth) if args else ()))
        if name == "float" and len(args) == 1 and type(args[0]) is ast.Constant and isinstance(args[0].value, str):
            key = args[0].value.strip().lower()
            if key in _SPECIAL_FLOATS:
                return _SPECIAL_FLOATS[key]
        if name == "complex" and len(args) == 2:
            re_, im = _value_of(args[0], depth, max_depth), _value_of(args[1], depth, max_depth)
            if type(re_) in (int, float) and type(im) in (int, float):
                return complex(re_, im)
    raise NotALiteral("%s is not a literal" % t.__name__)


def _hashable(v):
    try:
        hash(v)
    except TypeError:
        raise NotALiteral("unhashable set element or dict key") from None
    return v


def has_nan(value, depth=0):
    """Does the value hold a NaN anywhere (a gold that no answer can ever `==`)?"""
    if depth > MAX_DEPTH + 1:
        return False
    t = type(value)
    if t is float:
        return value != value
    if t is complex:
        return value.real != value.real or value.imag != value.imag
    if t in (list, tuple, set, frozenset):
        return any(has_nan(v, depth + 1) for v in value)
    if t is dict:
        return any(has_nan(k, depth + 1) or has_nan(v, depth + 1) for k, v in value.items())
    return False


# ----------------------------------------------------------------------------- call arguments

def _call_node(inputs, max_chars):
    """The checked `f(...)` node of argument text and the values of its arguments."""
    if not isinstance(inputs, str):
        raise NotALiteral("not a string")
    if len(inputs) > max_chars:
        raise NotALiteral("longer than %d characters" % max_chars)
    node = _parse("f(" + inputs + "\n)", max_chars + 4)
    if type(node) is not ast.Call or type(node.func) is not ast.Name or node.func.id != "f":
        raise NotALiteral("not a plain argument list")
    args = []
    for a in node.args:
        if type(a) is ast.Starred:
            raise NotALiteral("*-unpacking")
        args.append(_value(a, 2, MAX_DEPTH))  # at the depth it will have inside the canonical text
    kwargs = {}
    for kw in node.keywords:
        if kw.arg is None:
            raise NotALiteral("**-unpacking")
        kwargs[kw.arg] = _value(kw.value, 2, MAX_DEPTH)
    return node, (tuple(args), kwargs)


def _unparse(node):
    call = ast.Tuple([ast.Tuple(list(node.args), ast.Load()),
                      ast.Dict([ast.Constant(kw.arg) for kw in node.keywords], [kw.value for kw in node.keywords]),
                      ], ast.Load())
    try:
        return ast.unparse(call)
    except (RecursionError, ValueError, MemoryError) as e:  # pragma: no cover - depth is capped
        raise NotALiteral("cannot write the arguments: %s" % type(e).__name__) from None


def call_args_text(inputs, max_chars=MAX_LITERAL_CHARS):
    """`inputs` is argument text for `f(...)`; returns the canonical literal
    `((arg, ...), {'name': value, ...})` or raises NotALiteral. Only literal positional and keyword
    arguments are accepted (no `*`/`**`, no names, calls or operators beyond literal forms)."""
    return _unparse(_call_node(inputs, max_chars)[0])


def call_args_wire(inputs, max_chars=MAX_LITERAL_CHARS):
    """What a runner gets for argument text, checked as `call_args_text` checks it: `marshal` bytes
    of `(args, kwargs)`, or the canonical text when a set or frozenset is among the values
    (`marshal` writes a set in its iteration order here, so the runner would insert its elements
    in another order than written, which can change its iteration order there)."""
    node, values = _call_node(inputs, max_chars)
    if _has_set(values):
        return _unparse(node)
    return marshal.dumps(values)


def _has_set(v):
    stack = [v]
    while stack:
        x = stack.pop()
        t = type(x)
        if t is set or t is frozenset:
            return True
        if t is tuple or t is list:
            stack.extend(x)
        elif t is dict:
            stack.extend(x)
            stack.extend(x.values())
    return False


def call_args(text):
    """The (args, kwargs) of a canonical `call_args_text`."""
    value = parse_literal(text, max_chars=4 * MAX_LITERAL_CHARS + 64, max_depth=MAX_DEPTH)
    if type(value) is not tuple or len(value) != 2 or type(value[0]) is not tuple or type(value[1]) is not dict:
        raise NotALiteral("not canonical call arguments")
    return value[0], value[1]
