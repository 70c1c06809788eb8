"""Per-sample result rows (the JSONL `azr passk` reads) and resuming a half-written file.

One row per sample: {"problem_id": str, "sample_idx": int, "correct": bool, "response_length": int
(generated tokens), "benchmark": str, ...} plus informational keys (finish_reason, answer_found,
detail, prompt_style; response and answer with --save-text). Rows are appended one batch of problems
at a time, flushed and fsync'ed, so a killed run leaves complete lines plus at most one partial
last line.

Resuming: `ResultsFile.open()` cuts a trailing partial line off the file, reads which
(problem_id, sample_idx) pairs exist, and `missing(problem_id, n)` says which samples a problem
still needs, so a problem with all n samples is skipped and no row is ever written twice. The
settings of the run that started the file are kept beside it (`<out>.meta.json`); resuming with
settings that change the samples' distribution (model, benchmark, prompt style, n, temperature,
top-p, max new tokens, seed, engine) is refused, since the rows would not be exchangeable.
"""

from __future__ import annotations

import json
import os
from collections import defaultdict
from pathlib import Path
from typing import Any, Iterable

ROW_KEYS = ("problem_id", "sample_idx", "correct", "response_length", "benchmark")
# Settings that must match between the run that wrote a file and a run that resumes it.
RESUME_KEYS = ("model", "benchmark", "prompt_style", "n", "temperature", "top_p", "max_new_tokens",
               "seed", "engine")


class ResumeMismatch(ValueError):
    """The output file was written by a run with other settings."""


def meta_path(out: str | Path) -> Path:
    out = Path(out)
    return out.with_name(out.name + ".meta.json")


class ResultsFile:
    """Append-only per-sample rows with resume bookkeeping."""

    def __init__(self, path: str | Path, settings: dict[str, Any]):
        self.path = Path(path)
        self.settings = dict(settings)
        self.done: dict[str, set[int]] = defaultdict(set)
        self.dropped_partial_line = False
        self._handle = None

    # ---------------------------------------------------------------- opening

    def open(self) -> "ResultsFile":
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._check_meta()
        if self.path.exists():
            self._repair_tail()
            self._read_existing()
        self._handle = self.path.open("a", encoding="utf-8")
        return self

    def _check_meta(self) -> None:
        meta = meta_path(self.path)
        if meta.exists():
            previous = json.loads(meta.read_text())
            changed = {k: (previous.get(k), self.settings.get(k)) for k in RESUME_KEYS
                       if previous.get(k) != self.settings.get(k)}
            if changed and self.path.exists() and self.path.stat().st_size > 0:
                listed = ", ".join(f"{k}: {old!r} -> {new!r}" for k, (old, new) in changed.items())
                raise ResumeMismatch(f"{self.path} was written with other settings ({listed}); "
                                     f"use another --out, or delete it and {meta.name} to start over")
        tmp = meta.with_name(meta.name + ".tmp")
        tmp.write_text(json.dumps(self.settings, indent=1, sort_keys=True, default=str) + "\n")
        os.replace(tmp, meta)

    def _repair_tail(self) -> None:
        """Cut a last line that has no newline (a write interrupted by a kill)."""
        size = self.path.stat().st_size
        if size == 0:
            return
        with self.path.open("rb+") as f:
            f.seek(-1, os.SEEK_END)
            if f.read(1) == b"\n":
                return
            # scan back to the last newline, in blocks
            position = size
            cut = 0
            while position > 0:
                step = min(1 << 16, position)
                position -= step
                f.seek(position)
                block = f.read(step)
                newline = block.rfind(b"\n")
                if newline >= 0:
                    cut = position + newline + 1
                    break
            f.truncate(cut)
        self.dropped_partial_line = True

    def _read_existing(self) -> None:
        benchmark = self.settings.get("benchmark")
        with self.path.open(encoding="utf-8") as f:
            for line_number, line in enumerate(f, 1):
                if not line.strip():
                    continue
                try:
                    row = json.loads(line)
                except json.JSONDecodeError as e:
                    raise ValueError(f"{self.path}:{line_number}: corrupt row ({e}); the file was edited "
                                     "or written by something else") from None
                missing = [k for k in ROW_KEYS if k not in row]
                if missing:
                    raise ValueError(f"{self.path}:{line_number}: row lacks {', '.join(missing)}")
                if benchmark is not None and row["benchmark"] != benchmark:
                    raise ResumeMismatch(f"{self.path}:{line_number}: a {row['benchmark']!r} row, but this "
                                         f"run evaluates {benchmark!r}; use another --out")
                self.done[str(row["problem_id"])].add(int(row["sample_idx"]))

    # ---------------------------------------------------------------- bookkeeping

    def missing(self, problem_id: str, n: int) -> list[int]:
        have = self.done.get(str(problem_id), set())
        return [j for j in range(n) if j not in have]

    def write_rows(self, rows: Iterable[dict[str, Any]]) -> int:
        """Append rows (skipping any (problem_id, sample_idx) already present); returns how many."""
        if self._handle is None:
            raise RuntimeError("ResultsFile is not open")
        lines = []
        for row in rows:
            key, j = str(row["problem_id"]), int(row["sample_idx"])
            if j in self.done[key]:
                continue
            self.done[key].add(j)
            lines.append(json.dumps(row, ensure_ascii=False) + "\n")
        if lines:
            self._handle.write("".join(lines))
            self._handle.flush()
            os.fsync(self._handle.fileno())
        return len(lines)

    def close(self) -> None:
        if self._handle is not None:
            self._handle.close()
            self._handle = None

    def __enter__(self) -> "ResultsFile":
        return self.open()

    def __exit__(self, *exc) -> None:
        self.close()


def read_rows(path: str | Path) -> list[dict[str, Any]]:
    """All complete rows of a results file (a trailing partial line is ignored, not repaired)."""
    rows = []
    with Path(path).open(encoding="utf-8") as f:
        for line in f:
            if line.endswith("\n") and line.strip():
                rows.append(json.loads(line))
    return rows
