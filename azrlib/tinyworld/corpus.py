"""Tiny world: generated Python programs, a pretraining corpus in AZR's six prompt forms, and a
held-out benchmark, so that the project can ship its own small base model (a 1-5M parameter Qwen2
pretrained on CPU) that is a useful start for self-play. This module is the pipeline's front door;
each step lives in its own file:

1. `programs.py` (`generate_programs`; templates in `ops.py`, levels 1-2, and `loops.py`, levels
   3-4): small deterministic programs `def f(...)` at four difficulty levels, from a seeded
   `random.Random` per program index, each with a one-sentence description (the induction
   message) and candidate inputs.
2. `validate.py` (`build_corpus`): every (program, input) run in the sandbox through the project's
   validator; constant functions and duplicates dropped; verified deduction/abduction triplets and
   10-pair induction tasks kept; deduction tasks get an execution trace (`trace.py`).
3. `documents.py` (`build_documents`): prompt + gold completion for all six forms, each parsed
   back before it is kept.
4. `benchmark.py` (`build_benchmark`, `rlvr_tasks`): held-out tasks from programs the corpus can
   never contain, by the holdout split of `holdout.py`; `TASK_SOURCE` fixes seeds and levels.
   `ood.py`: an out-of-distribution split (operation pairs no pretraining program composes).

Where this departs from AZR: AZR starts from a pretrained coder LLM and a single zero triplet; this
world exists only so that a tiny model trained from scratch has something to start from (see
`documents.py` for the synthetic `<think>` parts).
"""

from azrlib.tasks.types import Task
from azrlib.tinyworld.benchmark import (
    SHARED_PROGRAM_LEVELS, TASK_SOURCE, TaskSource, build_benchmark, load_benchmark, rlvr_tasks, save_benchmark,
)
from azrlib.tinyworld.documents import (
    DOCUMENT_FORMS, NUMBERED_THINK, Document, build_documents, document_stats, numbered_proposal_answer, pretraining_documents,
    verify_documents,
)
from azrlib.tinyworld.holdout import HOLDOUT_FRACTION, holdout_key, is_benchmark_side, normalize_program, program_skeleton
from azrlib.tinyworld.ops import ARG_KINDS, sample_inputs, sample_value
from azrlib.tinyworld.programs import (
    LEVELS, N_INDUCTION_CANDIDATES, N_TRIPLET_INPUTS, RUN_TIMEOUT_S, ProgramSpec, generate_program, generate_programs,
)
from azrlib.tinyworld.trace import MAX_TRACE_EVENTS, MAX_TRACE_LINES, compute_traces, format_trace, instrument_program
from azrlib.tinyworld.validate import (
    MAX_OUTPUT_CHARS, MIN_INDUCTION_DISTINCT_OUTPUTS, N_INDUCTION_PAIRS, TASKS_PER_PROGRAM, VALIDATION, Corpus,
    build_corpus,
)

__all__ = [
    "ARG_KINDS", "DOCUMENT_FORMS", "HOLDOUT_FRACTION", "LEVELS", "MAX_OUTPUT_CHARS", "MAX_TRACE_EVENTS",
    "MAX_TRACE_LINES", "MIN_INDUCTION_DISTINCT_OUTPUTS", "N_INDUCTION_CANDIDATES", "N_INDUCTION_PAIRS",
    "N_TRIPLET_INPUTS", "NUMBERED_THINK", "RUN_TIMEOUT_S", "SHARED_PROGRAM_LEVELS", "TASKS_PER_PROGRAM", "TASK_SOURCE", "VALIDATION",
    "Corpus", "Document", "ProgramSpec", "Task", "TaskSource", "build_benchmark", "build_corpus", "build_documents",
    "compute_traces", "document_stats", "format_trace", "generate_program", "generate_programs", "holdout_key",
    "instrument_program", "is_benchmark_side", "load_benchmark", "normalize_program", "numbered_proposal_answer",
    "pretraining_documents", "program_skeleton", "rlvr_tasks", "sample_inputs", "sample_value", "save_benchmark",
    "verify_documents",
]
