"""Shared by every test folder: puts tests/ on sys.path so that the fixtures next to this file
(`tiny_model`, `benchdata`, `report_synthetic`) import from any subfolder. pytest runs in
`--import-mode=importlib` (pyproject.toml), so test files in different folders may share a name."""

import sys
from pathlib import Path

TESTS = str(Path(__file__).resolve().parent)
if TESTS not in sys.path:
    sys.path.insert(0, TESTS)
