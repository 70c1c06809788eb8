"""Figures without pyplot state (matplotlib's Figure + Agg canvas, so headless runs need no
display), saved as PNG and PDF with the plotted data as CSV beside them, deterministically:
fixed DPI, no creation date in the PDF, no software stamp in the PNG."""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from azrlib.report.paths import display_path, figure_stem

# One colour per series name, stable across figures (tab10 order).
PALETTE = {
    "base": "#7f7f7f", "selfplay": "#1f77b4", "azr": "#1f77b4", "frozen": "#ff7f0e", "band": "#2ca02c",
    "azr_code": "#d62728", "rlvr": "#9467bd", "sft": "#8c564b",
    "deduction": "#1f77b4", "abduction": "#ff7f0e", "induction": "#2ca02c", "all": "#000000",
    "propose": "#9467bd", "solve": "#17becf",
}
_FALLBACK = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#bcbd22", "#17becf"]
PNG_DPI = 120


def color_for(name: str, index: int = 0) -> str:
    if name in PALETTE:
        return PALETTE[name]
    for key, colour in PALETTE.items():
        if name.startswith(key + "_") or name.startswith(key + " "):
            return colour
    return _FALLBACK[index % len(_FALLBACK)]


def new_figure(nrows: int = 1, ncols: int = 1, panel_size: tuple[float, float] = (4.2, 3.2),
               sharex: bool = False, sharey: bool = False):
    """(figure, 2-D array of axes) with an Agg canvas attached."""
    fig = Figure(figsize=(panel_size[0] * ncols, panel_size[1] * nrows), layout="constrained")
    FigureCanvasAgg(fig)
    axes = fig.subplots(nrows, ncols, sharex=sharex, sharey=sharey, squeeze=False)
    return fig, axes


def line_with_band(ax, x: Sequence[float], y: Sequence[float], lo: Sequence[float] | None = None,
                   hi: Sequence[float] | None = None, label: str | None = None, color: str | None = None,
                   marker: str | None = "o", alpha: float = 0.2, linestyle: str = "-") -> None:
    """A line with a shaded band between lo and hi (points where the band is undefined get none)."""
    x = np.asarray(x, dtype=float)
    y = np.asarray(y, dtype=float)
    ax.plot(x, y, marker=marker, markersize=3, label=label, color=color, linestyle=linestyle)
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))  # training steps and k are integers
    if lo is not None and hi is not None:
        lo = np.asarray(lo, dtype=float)
        hi = np.asarray(hi, dtype=float)
        ok = ~(np.isnan(lo) | np.isnan(hi))
        if ok.any():
            ax.fill_between(x, np.where(ok, lo, y), np.where(ok, hi, y), where=ok, color=color, alpha=alpha,
                            linewidth=0, interpolate=False)


def log2_k_axis(ax, ks: Sequence[int]) -> None:
    """x axis in log2 k with tick labels 1, 2, 4, ..."""
    ax.set_xscale("log", base=2)
    ax.set_xticks(list(ks))
    ax.set_xticklabels([str(int(k)) for k in ks])
    ax.set_xlabel("k")


def legend_once(fig, axes) -> None:
    """One legend for the figure built from the first axes that has labelled artists."""
    for ax in np.ravel(axes):
        handles, labels = ax.get_legend_handles_labels()
        if handles:
            ax.legend(handles, labels, fontsize=8, frameon=False)
            return


class FigureWriter:
    """Saves `<figures_dir>/<notebook>_<name>.{png,pdf,csv}` and remembers what it wrote.
    The environment variable AZR_FIGURES_DIR, when set, replaces figures_dir (tests re-running the
    committed notebooks use it so that figures/ is left alone)."""

    def __init__(self, figures_dir: str | Path, notebook: str):
        self.figures_dir = os.environ.get("AZR_FIGURES_DIR") or figures_dir
        self.notebook = notebook
        self.written: list[Path] = []

    def save(self, fig, name: str, data: pd.DataFrame) -> list[Path]:
        stem = figure_stem(self.figures_dir, self.notebook, name)
        stem.parent.mkdir(parents=True, exist_ok=True)
        paths = [stem.with_suffix(".png"), stem.with_suffix(".pdf"), stem.with_suffix(".csv")]
        fig.savefig(paths[0], dpi=PNG_DPI, metadata={"Software": None})
        fig.savefig(paths[1], metadata={"CreationDate": None, "Creator": None, "Producer": None})
        data.to_csv(paths[2], index=False, float_format="%.6g")
        self.written += paths
        return paths

    def listing(self) -> pd.DataFrame:
        """What was written (paths relative to the repository root), for a deterministic output cell."""
        return pd.DataFrame({"file": [display_path(p) for p in self.written]})

    def check(self) -> None:
        """Every written file exists and is not empty."""
        for p in self.written:
            if not p.is_file() or p.stat().st_size == 0:
                raise AssertionError(f"figure file missing or empty: {display_path(p)}")


def finite(values) -> bool:
    return all(v is not None and math.isfinite(float(v)) for v in values)
