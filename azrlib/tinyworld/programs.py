"""Tiny-world programs: `generate_programs` writes small deterministic programs `def f(...)`
(1-3 arguments: ints, strings, int lists, word lists, str->int dicts) at four difficulty levels,
from a seeded `random.Random` per program index (so a run is reproducible and a prefix of a
longer run), each with a one-sentence description (the induction message), candidate inputs of the
right types with small values, and its keys for deduplication and the holdout split
(`holdout.py`). Templates: levels 1-2 in `ops.py`, levels 3-4 in `loops.py`."""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Sequence

from azrlib.tinyworld.holdout import _keys
from azrlib.tinyworld.loops import _chain, _level4_special, _loop, _while
from azrlib.tinyworld.ops import _Builder, _GenerationFailed, _level1, _level2, _sentence, sample_inputs

LEVELS = (1, 2, 3, 4)
RUN_TIMEOUT_S = 1.0  # every generated program finishes in microseconds; anything slow is a bug
N_TRIPLET_INPUTS = 4  # inputs tried per program for deduction/abduction
N_INDUCTION_CANDIDATES = 14  # inputs tried for a program that also becomes an induction task


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
