"""Execution traces, the `<think>` of deduction documents: `instrument_program` makes a copy of a
program that records its arguments, each assignment, loop iteration and if outcome, and the
intermediate values of compound expressions; `compute_traces` runs it in the sandbox and
`format_trace` writes the lines (the traced run must return what the plain run returned)."""

from __future__ import annotations

import ast
from typing import Iterable, Iterator, Sequence

from azrlib.tasks.types import Task
from azrlib.tasks.values import NotALiteral, parse_literal, values_equal
from azrlib.tinyworld.programs import RUN_TIMEOUT_S

MAX_TRACE_LINES = 14  # lines between the argument line and the return line
MAX_TRACE_EVENTS = 200  # cap inside the sandbox, so a long loop cannot blow up the output

TRACE_NAME = "_trace"


def _record_expr(depth: int, kind: str, *items: ast.expr) -> ast.expr:
    """`len(_trace) < CAP and _trace.append((depth, kind, ...))`: plain names and calls only (no
    dunder names, no private attributes), like the programs it traces."""
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


def _top_level_value(value: ast.expr, depth: int, in_loops: bool = False) -> list[ast.stmt]:
    """Records to run before a statement: its intermediate values, outside loops (or anywhere
    with `in_loops`, as for `return`)."""
    return _record_subexpressions(depth, value) if depth == 0 or in_loops else []


def _instrument_body(stmts: list[ast.stmt], depth: int) -> list[ast.stmt]:
    out: list[ast.stmt] = []
    for st in stmts:
        if isinstance(st, (ast.Assign, ast.AugAssign, ast.AnnAssign)):
            targets = st.targets if isinstance(st, ast.Assign) else [st.target]
            names = list(dict.fromkeys(n for t in targets for n in _target_names(t)))
            # intermediate values only outside loops, where they are few
            before = _top_level_value(st.value, depth) if st.value is not None else []
            out += [*before, st, _record(depth, "set", *_name_value_items(names))]
        elif (isinstance(st, ast.Expr) and isinstance(st.value, ast.Call)
              and isinstance(st.value.func, ast.Attribute) and isinstance(st.value.func.value, ast.Name)):
            out += [st, _record(depth, "set", *_name_value_items([st.value.func.value.id]))]  # xs.append(..)
        elif isinstance(st, ast.For):
            names = [n for n in _target_names(st.target) if n != "_"]
            st.body = ([_record(depth + 1, "loop", *_name_value_items(names))]
                       + _instrument_body(st.body, depth + 1))
            out.append(st)
        elif isinstance(st, ast.While):
            header = _record(depth + 1, "while", ast.Constant(ast.unparse(st.test)))
            st.body = [header] + _instrument_body(st.body, depth + 1)
            out.append(st)
        elif isinstance(st, ast.If):
            out.append(ast.Expr(_if_outcome(depth, st.test)))
            st.body = _instrument_body(st.body, depth)
            st.orelse = _instrument_body(st.orelse, depth)
            out.append(st)
        elif isinstance(st, ast.Return):
            value = st.value if st.value is not None else ast.Constant(None)
            out += _top_level_value(value, depth, in_loops=True)
            out.append(ast.Return(ast.Tuple([value, ast.Name(TRACE_NAME, ast.Load())], ast.Load())))
        else:
            out.append(st)
    return out


def instrument_program(program: str) -> str:
    """A copy of `program` whose `f` returns `(result, trace)`: trace events are tuples
    (depth, kind, ...) recorded after each assignment or mutating call ("set", name/repr pairs),
    at the top of each loop iteration ("loop" with the loop variables, "while" with the test), and
    before each if ("if", test text, repr of its truth). Only conditions of `if` are evaluated
    twice, which is harmless for the pure programs generated here. Outside loops, intermediate
    values of compound expressions are recorded too ("expr", text, repr; see `_subexpressions`)."""
    tree = ast.parse(program)
    fn = next(n for n in tree.body if isinstance(n, ast.FunctionDef) and n.name == "f")
    arg_names = [a.arg for a in fn.args.args]
    init = ast.Assign([ast.Name(TRACE_NAME, ast.Store())], ast.List([], ast.Load()))
    fn.body = [init, _record(0, "args", *_name_value_items(arg_names))] + _instrument_body(fn.body, 0)
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


def compute_traces(executor, tasks: Sequence[Task]) -> list[str | None]:
    """Trace text per triplet task (None when the traced run failed or disagrees with the
    task's output, which would be a bug in the instrumentation)."""
    runs = executor.run_many([(instrument_program(t.program), t.input) for t in tasks],
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
