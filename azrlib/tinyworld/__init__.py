"""Tiny world: a generated world of small Python programs for pretraining a tiny base model and
for a held-out benchmark (see `corpus.py`)."""

from azrlib.tinyworld.corpus import (
    DOCUMENT_FORMS, LEVELS, TASK_SOURCE, Corpus, Document, ProgramSpec, TaskSource, build_benchmark,
    build_corpus, build_documents, document_stats, generate_programs, instrument_program, load_benchmark,
    normalize_program, pretraining_documents, rlvr_tasks, save_benchmark, verify_documents,
)

__all__ = [
    "DOCUMENT_FORMS", "LEVELS", "TASK_SOURCE", "Corpus", "Document", "ProgramSpec", "TaskSource",
    "build_benchmark", "build_corpus", "build_documents", "document_stats", "generate_programs",
    "instrument_program", "load_benchmark", "normalize_program", "pretraining_documents", "rlvr_tasks",
    "save_benchmark", "verify_documents",
]
