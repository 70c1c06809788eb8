"""An out-of-distribution split of the tiny-world benchmark (for RQ1: the paper's pass@k is
measured on benchmarks outside AZR's training tasks): programs that compose two operations whose
pair never appears in any pretraining program. Held out are operation pairs, not depth: the
pretraining generator composes two operations at level 2, so a split of such pairs is as deep as
what the base has seen, but each composition is new to it.

Construction: two families, in equal shares, each balanced over the three return kinds:
"pair_nested" returns the two operations nested in one expression (`_expr(b, out, 2)`, level 2's
"nested" form); "pair_helper" computes the first into a helper variable and returns the second on
it (level 2's "helper" form). A program's composition is its returned expression's shape with
straight-line helper variables inlined, names canonicalized and constants blanked
(`returned_shape`); a candidate is dropped if that shape is the shape of any expression of the
reference pretraining programs, inlined the same way (`reference_shapes`: the corpus's candidate
stream, a superset of what any corpus of that size keeps), or of a single operation, or of an
earlier task of the split (one task per composition). The seed reference of self-play, AZR's zero
triplet (`def f(a): return a`), composes nothing. Nothing in the construction looks at a model.
`tests/tinyworld/test_tinyworld_ood.py` checks the committed file against the pretraining stream
and that `python -m azrlib.tinyworld.ood` (deterministic) rebuilds it byte for byte.

Tasks: one per program (deduction, abduction or induction, filling the type whose quota in its
(family, return kind) cell is least filled), validated like the benchmark (`validate.py`);
`meta["level"]` is 5 (a label for the split: the depth is level 2's), `meta["family"]` the family.
An earlier split of three nested operations ("nested3") was too hard for the committed base
(deduction 0.020, induction 0.004): docs/experiments/tiny_base.md.
"""

from __future__ import annotations

import ast
import copy
import itertools
import random
from typing import Iterable, Sequence

from azrlib.tasks.types import TASK_TYPES, Task
from azrlib.tinyworld.holdout import _keys
from azrlib.tinyworld.ops import (
    OPS, RETURN_KINDS, _Builder, _expr, _GenerationFailed, _op_on, _program, _sentence, sample_inputs,
)
from azrlib.tinyworld.programs import N_INDUCTION_CANDIDATES, ProgramSpec, generate_programs
from azrlib.tinyworld.validate import _validated_tasks

OOD_SEED = 4242
OOD_PER_TYPE = 180
OOD_LEVEL = 5
OOD_FAMILIES = ("pair_nested", "pair_helper")
# the pretraining stream the split is checked against: the committed base used 6,000 candidates
# (seed 0); a stream is a prefix of any longer one, so checking the longest covers the shorter
REFERENCE_SEED, REFERENCE_PROGRAMS = 0, 12000


def _canonical_shape(node: ast.expr) -> str:
    """An expression's text with names renamed n0, n1, ... in order of appearance and every
    constant blanked (0, '', ...): what it computes, up to argument names and constants. Function
    names are renamed too (`str(a - 3)` and `abs(a - 3)` share a shape), which only makes the
    disjointness check stricter."""
    node = copy.deepcopy(node)
    names: dict[str, str] = {}
    for n in ast.walk(node):
        if isinstance(n, ast.Name):
            n.id = names.setdefault(n.id, f"n{len(names)}")
        elif isinstance(n, ast.Constant) and not isinstance(n.value, bool):
            n.value = {int: 0, str: "", float: 0.0}.get(type(n.value), n.value)
    return ast.unparse(node)


class _Inline(ast.NodeTransformer):
    def __init__(self, values: dict[str, ast.expr]):
        self.values = values

    def visit_Name(self, node: ast.Name):
        if isinstance(node.ctx, ast.Load) and node.id in self.values:
            return copy.deepcopy(self.values[node.id])
        return node


def _inlined_body(program: str) -> list[ast.stmt]:
    """`f`'s statements with the helper variables of straight-line code (`x = ...` at the top of
    `f`, assigned once) replaced by their values in every later statement."""
    fn = ast.parse(program).body[0]
    values: dict[str, ast.expr] = {}
    assigned: dict[str, int] = {}
    for st in ast.walk(fn):
        for target in getattr(st, "targets", []) + ([st.target] if isinstance(st, (ast.AugAssign, ast.For)) else []):
            for n in ast.walk(target):
                if isinstance(n, ast.Name):
                    assigned[n.id] = assigned.get(n.id, 0) + 1
    body = []
    for st in fn.body:
        inlined = _Inline(values).visit(copy.deepcopy(st))
        if (isinstance(st, ast.Assign) and len(st.targets) == 1 and isinstance(st.targets[0], ast.Name)
                and assigned.get(st.targets[0].id) == 1):
            values[st.targets[0].id] = inlined.value
        body.append(inlined)
    return body


def composed_shapes(program: str) -> set[str]:
    """Shapes of every expression in `program`, helper variables inlined (`_inlined_body`), so
    that `x = sorted(a); return x[1:]` also counts as `sorted(a)[1:]`."""
    return {_canonical_shape(n) for st in _inlined_body(program) for n in ast.walk(st) if isinstance(n, ast.expr)}


def reference_shapes(n_programs: int = REFERENCE_PROGRAMS, seed: int = REFERENCE_SEED) -> set[str]:
    """Every composed expression shape of the first `n_programs` pretraining candidates."""
    shapes: set[str] = set()
    for spec in generate_programs(n_programs, seed):
        shapes |= composed_shapes(spec.program)
    return shapes


def returned_shape(program: str) -> str:
    """The shape of what `f` returns (its last statement, a `return`), helper variables inlined."""
    return _canonical_shape(_inlined_body(program)[-1].value)


def _single_op_shapes() -> set[str]:
    """The shape of every single operation of `OPS`, with any pattern of repeated arguments: a
    draw of `_expr(b, out, 2)` whose first operand cannot nest is one of these, not a pair."""
    shapes = set()
    for op in OPS:
        for names in itertools.product("abc", repeat=len(op.ins)):
            code = op.code.format(*names, c=1, c2=2, ch="a", ch2="b")
            shapes.add(_canonical_shape(ast.parse(code, mode="eval").body))
    return shapes


def generate_ood_program(seed: int, index: int, out: str, family: str = OOD_FAMILIES[0]) -> ProgramSpec:
    """Two operations composed, returning `out`: nested in the `return` (family "pair_nested",
    level 2's "nested" form) or through a helper variable (family "pair_helper", level 2's
    "helper" form: `y = op1(...)`, `return op2(y, ...)`)."""
    rng = random.Random(f"tinyworld-ood:{seed}:{family}:{index}")
    for _ in range(100):
        b = _Builder(rng)
        try:
            if family == "pair_nested":
                code, say = _expr(b, out, 2)
                body, message = [f"return {code}"], "Returns " + say
            elif family == "pair_helper":
                mid = rng.choice(RETURN_KINDS)
                first, first_say = _expr(b, mid, 1)
                helper = {"int": "x", "str": "y", "list": "z"}[mid]
                final, final_say = _op_on(b, out, (helper, "it"), mid)
                body, message = [f"{helper} = {first}", f"return {final}"], f"Computes {first_say}, then returns {final_say}"
            else:
                raise ValueError(f"unknown OOD family {family!r}; known: {OOD_FAMILIES}")
        except _GenerationFailed:
            continue
        program = _program(b, body)
        inputs = sample_inputs(b.kinds(), rng, N_INDUCTION_CANDIDATES)
        return ProgramSpec(program, b.kinds(), OOD_LEVEL, family, _sentence(message), inputs, index,
                           *_keys(program, 2, family))  # normalized text (the dedup key)
    raise RuntimeError(f"no OOD program for seed={seed} index={index} family={family}")


def build_ood_benchmark(executor, per_type: int = OOD_PER_TYPE, seed: int = OOD_SEED,
                        reference: Iterable[str] | None = None, families: Sequence[str] = OOD_FAMILIES,
                        max_rounds: int = 40) -> dict[str, list[Task]]:
    """`per_type` tasks per type, one per returned shape (one per held-out operation pair and
    way of filling its operands), balanced over `families` x RETURN_KINDS; programs whose
    returned shape is in `reference` (default: `reference_shapes()`) or is a single operation are
    skipped. Nothing here looks at a model."""
    known = set(reference_shapes() if reference is None else reference) | _single_op_shapes()
    cells = [(fam, k) for fam in families for k in RETURN_KINDS]
    quota = {(t, cell): per_type // len(cells) + (1 if i < per_type % len(cells) else 0)
             for t in TASK_TYPES for i, cell in enumerate(cells)}
    got: dict[str, list[Task]] = {t: [] for t in TASK_TYPES}
    seen: set[str] = set()
    index = 0
    for _ in range(max_rounds):
        if all(v <= 0 for v in quota.values()):
            break
        specs = []
        for _ in range(600):
            cell = cells[index % len(cells)]
            spec = generate_ood_program(seed, index, cell[1], cell[0])
            index += 1
            shape = returned_shape(spec.program)
            if shape in seen or shape in known:
                continue
            seen.add(shape)
            specs.append((spec, cell))
        cell_of = {spec.index: cell for spec, cell in specs}
        kept, _ = _validated_tasks(executor, [s for s, _ in specs], 1, 1.0, seed)
        for spec, _pairs, tasks in kept:
            cell = cell_of[spec.index]
            open_types = sorted((t for t in TASK_TYPES if quota[(t, cell)] > 0 and tasks[t]),
                                key=lambda t: -quota[(t, cell)])
            if not open_types:
                continue
            task = tasks[open_types[0]][0]
            task.meta.update(source=f"tinyworld-ood:{seed}", returns=cell[1])
            got[open_types[0]].append(task)
            quota[(open_types[0], cell)] -= 1
    if any(v > 0 for v in quota.values()):
        raise RuntimeError(f"could not fill the OOD quotas: {quota}")
    return {t: _interleave(got[t], cells, f"tinyworld-ood-order:{seed}:{t}") for t in TASK_TYPES}


def _interleave(tasks: list[Task], cells: Sequence[tuple[str, str]], seed: str) -> list[Task]:
    """`tasks` ordered so that every run of len(cells) positions holds one task of each cell, in
    a rotating order (position p takes cell (p + p // len(cells)) % len(cells)), each cell's
    tasks in a seeded shuffle: the pipeline evaluates an evenly spaced subset (`eval_subset`), and
    program order would crowd the front with the cells that fill first (int results)."""
    rng = random.Random(seed)
    queues = {cell: sorted((x for x in tasks if (x.meta["family"], x.meta["returns"]) == cell),
                           key=lambda x: x.meta["index"]) for cell in cells}
    for queue in queues.values():
        rng.shuffle(queue)
    out: list[Task] = []
    for p in range(len(tasks)):
        for step in range(len(cells)):  # the next cell in rotation that still has tasks
            queue = queues[cells[(p + p // len(cells) + step) % len(cells)]]
            if queue:
                out.append(queue.pop(0))
                break
    return out


def check_disjoint(tasks: Sequence[Task], reference: set[str]) -> list[str]:
    """Programs among `tasks` whose returned composition appears in `reference` (should be none)."""
    return [t.program for t in tasks if returned_shape(t.program) in reference]


def main(argv: Sequence[str] | None = None) -> int:
    """`python -m azrlib.tinyworld.ood [--out FILE]`: rebuild the committed split (deterministic).
    `--families pair_helper` (or `pair_nested`) builds one family alone, as measured in
    docs/experiments/tiny_base.md."""
    import argparse

    from azrlib.sandbox import Executor
    from azrlib.tinyworld.benchmark import save_benchmark

    ap = argparse.ArgumentParser(description="rebuild the out-of-distribution tiny-world split")
    ap.add_argument("--out", default="data/tinyworld/benchmark_ood.jsonl")
    ap.add_argument("--per-type", type=int, default=OOD_PER_TYPE)
    ap.add_argument("--families", nargs="+", default=list(OOD_FAMILIES), choices=OOD_FAMILIES)
    args = ap.parse_args(argv)
    with Executor() as ex:
        split = build_ood_benchmark(ex, per_type=args.per_type, families=args.families)
    save_benchmark(args.out, split)
    print({t: len(v) for t, v in split.items()}, "->", args.out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
