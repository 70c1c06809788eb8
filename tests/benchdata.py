"""Where the tests read benchmark data: the full public copies when they are at hand
($AZR_DATA_DIR, else ../shared/data next to the clone), otherwise the small slice vendored in
tests/data (see its README), so that no test skips in a clean clone. `FULL` says which one."""

from __future__ import annotations

import os
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
VENDORED = ROOT / "tests" / "data"


def _data_dir() -> Path:
    for candidate in (os.environ.get("AZR_DATA_DIR"), ROOT.parent / "shared" / "data"):
        if candidate and (Path(candidate) / "benchmarks" / "MbppPlus.jsonl").is_file():
            return Path(candidate)
    return VENDORED


DATA = _data_dir()
BENCH = DATA / "benchmarks"
FULL = DATA != VENDORED


def rows(full: int, vendored: int) -> int:
    """The row count a test expects from the data in use."""
    return full if FULL else vendored
