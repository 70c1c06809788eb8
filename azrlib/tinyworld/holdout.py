"""The holdout split between pretraining and benchmark programs: every program has a holdout
key (its normalized text; for the composed loop/chain families of levels 3-4 its skeleton, i.e.
normalized text with constants blanked, so a benchmark loop is never a pretraining loop with other
constants) and a stable hash of that key puts it on the benchmark side or the training side
(`HOLDOUT_FRACTION`). Corpus, RLVR tasks and benchmark are therefore disjoint whatever seeds they use."""

from __future__ import annotations

import ast
import hashlib

# share of holdout keys reserved for the benchmark, per level: level 1 has only a few hundred
# distinct one-liners, so it gives a larger share to have enough distinct benchmark programs
HOLDOUT_FRACTION = {1: 0.3, 2: 0.15, 3: 0.15, 4: 0.15}


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
