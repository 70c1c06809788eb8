"""The unbiased pass@k estimator and per-sample result files (see `passk.py` for the formula, the
file format and the paired comparison built on top).
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

REQUIRED_KEYS = ("problem_id", "sample_idx", "correct")


# --------------------------------------------------------------------------------------------
# The estimator
# --------------------------------------------------------------------------------------------


def _pass_at_k_by_count(n: int, ks: np.ndarray) -> np.ndarray:
    """pass@k for every possible correct count c = 0..n of one sample size n: shape (len(ks), n+1).

    Built with the product form as a running product over c: going from c-1 to c correct samples
    multiplies the "all k draws miss" probability by (1 - k / (n - c + 1)). The factors lie in
    (0, 1) while n - c >= k, so the running product only shrinks and never divides; once
    n - c < k the value is exactly 1.
    """
    ks = np.asarray(ks, dtype=np.int64)
    c = np.arange(1, n + 1)
    j = n - c + 1  # the new denominator entering the product at count c
    factors = 1.0 - ks[:, None] / j[None, :]
    miss = np.cumprod(factors, axis=1)  # miss[:, c-1] = prod over the first c factors
    table = np.empty((len(ks), n + 1))
    table[:, 0] = 0.0
    table[:, 1:] = 1.0 - miss
    # n - c < k: at least one of any k draws is correct.
    table[(n - np.arange(n + 1))[None, :] < ks[:, None]] = 1.0
    return table


def _check_counts(n: np.ndarray, c: np.ndarray) -> None:
    if np.any(n < 1):
        raise ValueError(f"every problem needs at least one sample (got n = {int(n.min())})")
    if np.any(c < 0) or np.any(c > n):
        bad = int(np.flatnonzero((c < 0) | (c > n))[0])
        raise ValueError(f"correct count c must satisfy 0 <= c <= n (problem #{bad}: n={n[bad]}, c={c[bad]})")


def _check_ks(ks: np.ndarray, n_min: int, problem_ids: Sequence[str] | None = None, n: np.ndarray | None = None) -> None:
    if ks.ndim != 1 or len(ks) == 0:
        raise ValueError("k grid must be a non-empty list of integers")
    if np.any(ks < 1):
        raise ValueError(f"k must be >= 1 (got {ks.tolist()})")
    too_big = ks[ks > n_min]
    if len(too_big):
        where = ""
        if n is not None:
            idx = int(np.argmin(n))
            label = repr(problem_ids[idx]) if problem_ids is not None else f"#{idx}"
            where = f" (problem {label} has only n={int(n[idx])} samples)"
        raise ValueError(f"k={int(too_big[0])} exceeds the number of samples n={n_min}{where}; pass@k needs k <= n")


def pass_at_k(n, c, k):
    """Unbiased pass@k (Chen et al. 2021). Scalars give a float; arrays broadcast elementwise.

    >>> round(pass_at_k(10, 3, 1), 6)
    0.3
    """
    n_arr, c_arr, k_arr = np.broadcast_arrays(np.asarray(n, dtype=np.int64), np.asarray(c, dtype=np.int64), np.asarray(k, dtype=np.int64))
    _check_counts(n_arr.ravel(), c_arr.ravel())
    if np.any(k_arr < 1):
        raise ValueError("k must be >= 1")
    if np.any(k_arr > n_arr):
        bad = np.flatnonzero((k_arr > n_arr).ravel())[0]
        raise ValueError(f"k={int(k_arr.ravel()[bad])} exceeds n={int(n_arr.ravel()[bad])}; pass@k needs k <= n")
    flat_n, flat_c, flat_k = n_arr.ravel(), c_arr.ravel(), k_arr.ravel()
    distinct_k, k_column = np.unique(flat_k, return_inverse=True)
    # One table per distinct n holds every (k, c); pick each element's k column.
    by_k = _PassAtKTable(flat_n, distinct_k).lookup(np.arange(len(flat_n)), flat_c)  # (elements, distinct k)
    out = by_k[np.arange(len(flat_n)), k_column].reshape(n_arr.shape)
    return float(out) if out.ndim == 0 else out


class _PassAtKTable:
    """Lookup of pass@k for each (distinct n, c) so resampled counts cost one gather, not a product."""

    def __init__(self, n: np.ndarray, ks: np.ndarray):
        self.ks = ks
        distinct = np.unique(n)
        self.n_index = np.searchsorted(distinct, n)  # per problem: row of its n in the table
        width = int(distinct.max()) + 1
        table = np.ones((len(ks), len(distinct), width))  # padding past n is never read
        for row, n_value in enumerate(distinct):
            table[:, row, : n_value + 1] = _pass_at_k_by_count(int(n_value), ks)
        self.table = table
        self.width = width
        self._flat = table.reshape(len(ks), -1)  # (k, distinct n * width): one flat gather per k

    def lookup(self, problem_rows: np.ndarray, c: np.ndarray) -> np.ndarray:
        """pass@k for problems (indices into the original arrays) with counts c: shape c.shape + (k,)."""
        values = self.table[:, self.n_index[problem_rows], c]  # (k, *c.shape)
        return np.moveaxis(values, 0, -1)

    def mean_over_last_axis(self, problem_rows: np.ndarray, c: np.ndarray) -> np.ndarray:
        """Mean of pass@k over the last axis of (problem_rows, c): shape c.shape[:-1] + (k,)."""
        flat_index = self.n_index[problem_rows] * self.width + c
        return np.stack([np.take(row, flat_index).mean(axis=-1) for row in self._flat], axis=-1)


def pass_at_k_matrix(n, c, ks) -> np.ndarray:
    """pass@k for every problem (rows) and every k in `ks` (columns); n and c are per-problem arrays."""
    n = np.atleast_1d(np.asarray(n, dtype=np.int64))
    c = np.atleast_1d(np.asarray(c, dtype=np.int64))
    ks = np.atleast_1d(np.asarray(ks, dtype=np.int64))
    if n.shape != c.shape or n.ndim != 1:
        raise ValueError(f"n and c must be 1-D arrays of the same length (got {n.shape} and {c.shape})")
    _check_counts(n, c)
    _check_ks(ks, int(n.min()), n=n)
    table = _PassAtKTable(n, ks)
    return table.lookup(np.arange(len(n)), c)


def dataset_pass_at_k(n, c, ks) -> np.ndarray:
    """Dataset pass@k per k: the mean over problems of the per-problem estimate."""
    return pass_at_k_matrix(n, c, ks).mean(axis=0)


def default_k_grid(n_min: int) -> list[int]:
    """Powers of two up to the smallest per-problem sample count (1, 2, 4, ... <= n_min)."""
    if n_min < 1:
        raise ValueError("need at least one sample per problem")
    return [2**i for i in range(int(math.floor(math.log2(n_min))) + 1)]


# --------------------------------------------------------------------------------------------
# Loading per-sample results
# --------------------------------------------------------------------------------------------


class ResultsFileError(ValueError):
    """A per-sample results file is malformed; the message names the file and line."""


@dataclass
class SampleCounts:
    """Per-problem sample and correct counts, in first-seen order of the problems."""

    problem_ids: list[str]
    n: np.ndarray  # samples per problem
    c: np.ndarray  # correct samples per problem
    source: str = ""

    def subset(self, ids: Sequence[str]) -> "SampleCounts":
        position = {pid: i for i, pid in enumerate(self.problem_ids)}
        rows = np.array([position[pid] for pid in ids], dtype=np.int64)
        return SampleCounts(list(ids), self.n[rows], self.c[rows], self.source)


def counts_from_rows(rows: Iterable[dict], source: str = "<rows>") -> SampleCounts:
    """Validate per-sample rows and count samples and correct answers per problem.

    Rows are numbered from 1 in error messages (the JSONL line number when loaded from a file).
    """
    n: dict[str, int] = {}
    c: dict[str, int] = {}
    first_line: dict[tuple[str, int], int] = {}
    for line_no, row in enumerate(rows, start=1):
        _add_row(row, line_no, source, n, c, first_line)
    return _finish_counts(n, c, source)


def _add_row(row, line_no: int, source: str, n: dict, c: dict, first_line: dict) -> None:
    if not isinstance(row, dict):
        raise ResultsFileError(f"{source}:{line_no}: expected a JSON object, got {type(row).__name__}")
    for key in REQUIRED_KEYS:
        if key not in row:
            raise ResultsFileError(f"{source}:{line_no}: missing key {key!r} (each row needs {', '.join(REQUIRED_KEYS)})")
    pid_raw = row["problem_id"]
    if isinstance(pid_raw, bool) or not isinstance(pid_raw, (str, int)):
        raise ResultsFileError(f"{source}:{line_no}: problem_id must be a string or an integer, got {pid_raw!r}")
    sample_idx = row["sample_idx"]
    if isinstance(sample_idx, bool) or not isinstance(sample_idx, int) or sample_idx < 0:
        raise ResultsFileError(f"{source}:{line_no}: sample_idx must be a non-negative integer, got {sample_idx!r}")
    correct = row["correct"]
    if isinstance(correct, bool):
        is_correct = correct
    elif isinstance(correct, int) and correct in (0, 1):
        is_correct = bool(correct)  # 0/1 written by tools that have no JSON booleans
    else:
        raise ResultsFileError(f"{source}:{line_no}: correct must be true/false (or 0/1), got {correct!r}")
    pid = str(pid_raw)
    key = (pid, sample_idx)
    if key in first_line:
        raise ResultsFileError(
            f"{source}:{line_no}: duplicate row for problem_id={pid_raw!r}, sample_idx={sample_idx} "
            f"(first seen on line {first_line[key]})"
        )
    first_line[key] = line_no
    n[pid] = n.get(pid, 0) + 1
    c[pid] = c.get(pid, 0) + int(is_correct)


def _finish_counts(n: dict, c: dict, source: str) -> SampleCounts:
    if not n:
        raise ResultsFileError(f"{source}: no result rows")
    ids = list(n)
    return SampleCounts(ids, np.array([n[i] for i in ids], dtype=np.int64), np.array([c[i] for i in ids], dtype=np.int64), source)


def load_results(path: str | Path) -> SampleCounts:
    """Read a per-sample correctness JSONL file into per-problem counts (blank lines are skipped)."""
    path = Path(path)
    n: dict[str, int] = {}
    c: dict[str, int] = {}
    first_line: dict[tuple[str, int], int] = {}
    with path.open("r", encoding="utf-8") as fh:
        for line_no, line in enumerate(fh, start=1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as exc:
                raise ResultsFileError(f"{path}:{line_no}: not valid JSON ({exc.msg})") from None
            _add_row(row, line_no, str(path), n, c, first_line)
    return _finish_counts(n, c, str(path))
