"""What every notebook does first and last: quiet, deterministic output, and Markdown from numbers."""

from __future__ import annotations

import os
import warnings

import pandas as pd

from azrlib.report.tables import rounded


def setup() -> None:
    """No progress bars, no warnings in cell outputs (nbval compares them), stable pandas display."""
    os.environ.setdefault("TQDM_DISABLE", "1")
    os.environ.setdefault("MPLBACKEND", "Agg")
    warnings.filterwarnings("ignore")
    pd.set_option("display.max_rows", 200)
    pd.set_option("display.max_columns", 50)
    pd.set_option("display.width", 160)
    pd.set_option("display.precision", 4)


def table(df: pd.DataFrame, digits: int = 4) -> pd.DataFrame:
    """A rounded copy for display (nbval compares the printed numbers exactly)."""
    return rounded(df.reset_index(drop=True), digits)


def markdown(text: str):
    """display()-able Markdown (IPython's, imported here so the library does not need IPython)."""
    from IPython.display import Markdown

    return Markdown(text)
