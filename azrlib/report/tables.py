"""Small tidy-table helpers shared by the notebooks: intervals across seeds, bands, rounding."""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import pandas as pd
from scipy import stats

TASK_TYPES = ("deduction", "abduction", "induction")


def t_interval(values: Sequence[float], confidence: float = 0.95) -> tuple[float, float, float]:
    """(mean, low, high): Student-t interval of the mean; low/high are NaN with fewer than two values."""
    x = np.asarray([v for v in values if v is not None and not (isinstance(v, float) and math.isnan(v))], dtype=float)
    if len(x) == 0:
        return (math.nan, math.nan, math.nan)
    mean = float(x.mean())
    if len(x) < 2:
        return (mean, math.nan, math.nan)
    half = float(stats.t.ppf(0.5 + confidence / 2, len(x) - 1) * x.std(ddof=1) / math.sqrt(len(x)))
    return (mean, mean - half, mean + half)


def welch_interval(a: Sequence[float], b: Sequence[float], confidence: float = 0.95) -> tuple[float, float, float]:
    """(mean(b) - mean(a), low, high): Welch's t interval; NaN bounds when either side has < 2 values
    or both have zero variance and differ (no spread to estimate)."""
    a = np.asarray(a, dtype=float)
    b = np.asarray(b, dtype=float)
    if len(a) == 0 or len(b) == 0:
        return (math.nan, math.nan, math.nan)
    diff = float(b.mean() - a.mean())
    if len(a) < 2 or len(b) < 2:
        return (diff, math.nan, math.nan)
    va, vb = a.var(ddof=1) / len(a), b.var(ddof=1) / len(b)
    se = math.sqrt(va + vb)
    if se == 0:
        return (diff, diff, diff)
    df = (va + vb) ** 2 / (va**2 / (len(a) - 1) + vb**2 / (len(b) - 1))
    half = float(stats.t.ppf(0.5 + confidence / 2, df) * se)
    return (diff, diff - half, diff + half)


def seed_band(df: pd.DataFrame, by: Sequence[str], value: str = "value", confidence: float = 0.95) -> pd.DataFrame:
    """Across-seed summary of `value` for every group of `by` (e.g. variant, metric, step):
    n seeds, mean, min, max and a t interval of the mean (NaN with one seed)."""
    rows = []
    for key, g in df.dropna(subset=[value]).groupby(list(by), sort=True):
        key = key if isinstance(key, tuple) else (key,)
        mean, lo, hi = t_interval(g[value].tolist(), confidence)
        rows.append({**dict(zip(by, key)), "n_seeds": int(len(g)), "mean": mean, "min": float(g[value].min()),
                     "max": float(g[value].max()), "ci_low": lo, "ci_high": hi})
    columns = list(by) + ["n_seeds", "mean", "min", "max", "ci_low", "ci_high"]
    return pd.DataFrame(rows, columns=columns)


def mean_over_types(df: pd.DataFrame, template: str, types: Sequence[str] = TASK_TYPES) -> pd.Series:
    """Row-wise mean of the columns template.format(t=type) that exist (NaN where none has a value)."""
    cols = [template.format(t=t) for t in types if template.format(t=t) in df.columns]
    if not cols:
        return pd.Series(np.nan, index=df.index)
    return df[cols].astype(float).mean(axis=1, skipna=True)


def last_value(df: pd.DataFrame, column: str) -> tuple[int, float]:
    """(step, value) of the last step where `column` has a value; (-1, NaN) when it never does."""
    if column not in df.columns:
        return (-1, math.nan)
    rows = df.dropna(subset=[column])
    if rows.empty:
        return (-1, math.nan)
    last = rows.iloc[-1]
    return (int(last["step"]), float(last[column]))


def rounded(df: pd.DataFrame, digits: int = 4) -> pd.DataFrame:
    """A copy with float columns rounded, for display: notebook outputs are compared exactly by
    nbval, and the last bits of a float may differ between BLAS builds."""
    out = df.copy()
    for c in out.columns:
        if pd.api.types.is_float_dtype(out[c]):
            out[c] = out[c].round(digits)
    return out


def fmt_ci(est: float, lo: float, hi: float, digits: int = 3, signed: bool = False) -> str:
    """'0.123 [0.100, 0.150]' (or the estimate alone when the interval is undefined)."""
    f = f"{{:+.{digits}f}}" if signed else f"{{:.{digits}f}}"
    if est is None or math.isnan(est):
        return "n/a"
    if lo is None or hi is None or math.isnan(lo) or math.isnan(hi):
        return f.format(est) + " (no CI)"
    return f"{f.format(est)} [{f.format(lo)}, {f.format(hi)}]"


def fmt_p(p: float) -> str:
    if p is None or math.isnan(p):
        return "n/a"
    return f"{p:.2g}" if p < 0.001 else f"{p:.3f}"
