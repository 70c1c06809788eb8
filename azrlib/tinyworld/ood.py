"""An out-of-distribution split of the tiny-world benchmark (for RQ1: the paper's pass@k is
measured on benchmarks outside AZR's training tasks): programs whose composition of operations
never appears in any pretraining program.

Construction: `return` one expression of three nested operations (`nested3`; `_expr(b, out, 3)`).
The pretraining generator nests at most two operations in one expression (level 2), and composes
three only through helper variables (level-3 chains: `x = ...; y = ...; return ...`). So that a
chain cannot teach the same composition under other names, pretraining programs are compared with
their straight-line helper variables inlined (`composed_shapes`), and a candidate whose returned
expression has the shape (names canonicalized, constants blanked) of any expression of the
reference pretraining programs (`reference_programs`: the corpus's candidate stream, a superset of
what any corpus of that size keeps) is dropped. The seed reference of self-play, AZR's zero triplet
(`def f(a): return a`), composes nothing. `tests/tinyworld/test_tinyworld_ood.py` checks the committed file
against the pretraining stream. Rebuild: `python -m azrlib.tinyworld.ood` (deterministic).

Tasks: one per program (deduction, abduction or induction, filling the type whose quota is least
filled), balanced over the three return kinds, validated like the benchmark (`validate.py`);
`meta["level"]` is 5 (beyond the four pretraining levels), `meta["family"]` is "nested3".
"""

from __future__ import annotations

import ast
import copy
import random
from typing import Iterable, Sequence

from azrlib.tasks.types import TASK_TYPES, Task
from azrlib.tinyworld.holdout import _keys
from azrlib.tinyworld.ops import RETURN_KINDS, _Builder, _expr, _GenerationFailed, _program, _sentence, sample_inputs
from azrlib.tinyworld.programs import N_INDUCTION_CANDIDATES, ProgramSpec, generate_programs
from azrlib.tinyworld.validate import _validated_tasks

OOD_SEED = 4242
OOD_PER_TYPE = 120
OOD_LEVEL = 5
OOD_FAMILY = "nested3"
# the pretraining stream the split is checked against: the committed base used 6,000 candidates
# (seed 0); a stream is a prefix of any longer one, so checking the longest covers the shorter
REFERENCE_SEED, REFERENCE_PROGRAMS = 0, 12000


def _canonical_shape(node: ast.expr) -> str:
    """An expression's text with names renamed n0, n1, ... in order of appearance and every
    constant blanked (0, '', ...): what it computes, up to argument names and constants."""
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


def composed_shapes(program: str) -> set[str]:
    """Shapes of every expression in `program`, with the helper variables of straight-line code
    (`x = ...` at the top of `f`, assigned once) replaced by their values first, so that
    `x = sorted(a); return x[1:]` also counts as `sorted(a)[1:]`."""
    fn = ast.parse(program).body[0]
    values: dict[str, ast.expr] = {}
    assigned: dict[str, int] = {}
    for st in ast.walk(fn):
        for target in getattr(st, "targets", []) + ([st.target] if isinstance(st, (ast.AugAssign, ast.For)) else []):
            for n in ast.walk(target):
                if isinstance(n, ast.Name):
                    assigned[n.id] = assigned.get(n.id, 0) + 1
    shapes: set[str] = set()
    for st in fn.body:
        inlined = _Inline(values).visit(copy.deepcopy(st))
        if (isinstance(st, ast.Assign) and len(st.targets) == 1 and isinstance(st.targets[0], ast.Name)
                and assigned.get(st.targets[0].id) == 1):
            values[st.targets[0].id] = inlined.value
        shapes.update(_canonical_shape(n) for n in ast.walk(inlined) if isinstance(n, ast.expr))
    return shapes


def reference_shapes(n_programs: int = REFERENCE_PROGRAMS, seed: int = REFERENCE_SEED) -> set[str]:
    """Every composed expression shape of the first `n_programs` pretraining candidates."""
    shapes: set[str] = set()
    for spec in generate_programs(n_programs, seed):
        shapes |= composed_shapes(spec.program)
    return shapes


def returned_shape(program: str) -> str:
    """The shape of what `f` returns (an OOD program is one `return` statement)."""
    return _canonical_shape(ast.parse(program).body[0].body[-1].value)


def generate_ood_program(seed: int, index: int, out: str) -> ProgramSpec:
    rng = random.Random(f"tinyworld-ood:{seed}:{index}")
    for _ in range(100):
        b = _Builder(rng)
        try:
            code, say = _expr(b, out, 3)
        except _GenerationFailed:
            continue
        program = _program(b, [f"return {code}"])
        inputs = sample_inputs(b.kinds(), rng, N_INDUCTION_CANDIDATES)
        return ProgramSpec(program, b.kinds(), OOD_LEVEL, OOD_FAMILY, _sentence("Returns " + say), inputs, index,
                           *_keys(program, OOD_LEVEL - 3, OOD_FAMILY))  # normalized text (the dedup key)
    raise RuntimeError(f"no OOD program for seed={seed} index={index}")


def build_ood_benchmark(executor, per_type: int = OOD_PER_TYPE, seed: int = OOD_SEED,
                        reference: Iterable[str] | None = None, max_rounds: int = 40) -> dict[str, list[Task]]:
    """`per_type` tasks per type, one per program, balanced over RETURN_KINDS; programs whose
    returned shape is in `reference` (default: `reference_shapes()`) are skipped."""
    known = set(reference_shapes() if reference is None else reference)
    kinds = RETURN_KINDS
    quota = {(t, k): per_type // len(kinds) + (1 if i < per_type % len(kinds) else 0)
             for t in TASK_TYPES for i, k in enumerate(kinds)}
    got: dict[str, list[Task]] = {t: [] for t in TASK_TYPES}
    seen: set[str] = set()
    index = 0
    for _ in range(max_rounds):
        if all(v <= 0 for v in quota.values()):
            break
        specs = []
        for _ in range(600):
            out = kinds[index % len(kinds)]
            spec = generate_ood_program(seed, index, out)
            index += 1
            if spec.key in seen or returned_shape(spec.program) in known:
                continue
            seen.add(spec.key)
            specs.append((spec, out))
        kind_of = {spec.index: out for spec, out in specs}
        kept, _ = _validated_tasks(executor, [s for s, _ in specs], 1, 1.0, seed)
        for spec, _pairs, tasks in kept:
            out = kind_of[spec.index]
            open_types = sorted((t for t in TASK_TYPES if quota[(t, out)] > 0 and tasks[t]),
                                key=lambda t: -quota[(t, out)])
            if not open_types:
                continue
            task = tasks[open_types[0]][0]
            task.meta.update(source=f"tinyworld-ood:{seed}", returns=out)
            got[open_types[0]].append(task)
            quota[(open_types[0], out)] -= 1
    if any(v > 0 for v in quota.values()):
        raise RuntimeError(f"could not fill the OOD quotas: {quota}")
    for t in TASK_TYPES:
        got[t].sort(key=lambda task: task.meta["index"])
    return got


def check_disjoint(tasks: Sequence[Task], reference: set[str]) -> list[str]:
    """Programs among `tasks` whose returned composition appears in `reference` (should be none)."""
    return [t.program for t in tasks if returned_shape(t.program) in reference]


def main(argv: Sequence[str] | None = None) -> int:
    """`python -m azrlib.tinyworld.ood [--out FILE]`: rebuild the committed split (deterministic)."""
    import argparse

    from azrlib.sandbox import Executor
    from azrlib.tinyworld.benchmark import save_benchmark

    ap = argparse.ArgumentParser(description="rebuild the out-of-distribution tiny-world split")
    ap.add_argument("--out", default="data/tinyworld/benchmark_ood.jsonl")
    ap.add_argument("--per-type", type=int, default=OOD_PER_TYPE)
    args = ap.parse_args(argv)
    with Executor() as ex:
        split = build_ood_benchmark(ex, per_type=args.per_type)
    save_benchmark(args.out, split)
    print({t: len(v) for t, v in split.items()}, "->", args.out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
