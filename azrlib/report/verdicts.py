"""Verdicts that follow from the statistics, and the overview table of the paper's takeaways.

`verdict(estimate, low, high, direction)` maps a claim's predicted sign and an estimate's interval
to one word:

* "greater" (the claim predicts > 0) / "less" (< 0): "supports" only when the whole interval lies
  on the predicted side of 0; "contradicts" when the whole interval lies on the other side;
  otherwise "inconclusive" (the interval contains 0). A point estimate on the right side with an
  interval across 0 is inconclusive, never "supports".
* "within" with bounds (lo, hi), for claims of a size ("little effect", "about -2 points"):
  "supports" when the interval lies inside the bounds (an equivalence test at the interval's
  level), "contradicts" when it lies entirely outside them, otherwise "inconclusive".
* "two-sided": reported for the record, no claim: "no claim".

When the estimate carries a Holm-adjusted p (over the whole table's family of tests), a
directional verdict other than "inconclusive" also needs that p below alpha (0.05).

The paper states its takeaways without intervals or tests; the bounds of a "within" claim are
this artifact's reading of the paper's words and must be stated next to the verdict.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import pandas as pd

VERDICTS = ("supports", "contradicts", "inconclusive", "no claim")
DIRECTIONS = ("greater", "less", "within", "two-sided")


def verdict(estimate: float, low: float, high: float, direction: str, bounds: tuple[float, float] | None = None,
            p_adjusted: float | None = None, alpha: float = 0.05) -> str:
    """One of VERDICTS (see the module docstring). Undefined intervals (NaN) are inconclusive.
    With `p_adjusted` (a family-wise p, e.g. Holm over every test reported), a directional test
    also needs p_adjusted < alpha to support or contradict: the interval is per test, the family
    correction keeps the whole table's error rate at alpha."""
    if direction not in DIRECTIONS:
        raise ValueError(f"unknown direction {direction!r}; choose from {', '.join(DIRECTIONS)}")
    if direction == "two-sided":
        return "no claim"
    if any(v is None or math.isnan(v) for v in (estimate, low, high)):
        return "inconclusive"
    if low > high:
        raise ValueError(f"interval low {low} > high {high}")
    if not low <= estimate <= high:
        raise ValueError(f"estimate {estimate} lies outside its interval [{low}, {high}]")
    if direction == "within":
        if bounds is None or len(bounds) != 2 or bounds[0] > bounds[1]:
            raise ValueError(f"direction 'within' needs bounds (lo, hi) with lo <= hi, got {bounds!r}")
        if bounds[0] <= low and high <= bounds[1]:
            return "supports"
        if high < bounds[0] or low > bounds[1]:
            return "contradicts"
        return "inconclusive"
    if p_adjusted is not None and not math.isnan(p_adjusted) and p_adjusted >= alpha:
        return "inconclusive"
    if direction == "greater":
        return "supports" if low > 0 else "contradicts" if high < 0 else "inconclusive"
    return "supports" if high < 0 else "contradicts" if low > 0 else "inconclusive"


def conjunction_verdict(verdicts: Sequence[str]) -> str:
    """A claim made of parts that must all hold (RQ1: self-play beats the base at small k AND the
    base catches up at large k): "supports" only when every part supports (an intersection-union
    test: no multiplicity correction is needed for it), "contradicts" when any part contradicts,
    otherwise "inconclusive"."""
    if not verdicts:
        raise ValueError("no verdicts to combine")
    for v in verdicts:
        if v not in VERDICTS or v == "no claim":
            raise ValueError(f"cannot combine verdict {v!r}")
    if "contradicts" in verdicts:
        return "contradicts"
    return "supports" if all(v == "supports" for v in verdicts) else "inconclusive"


def _fmt(x: float, digits: int) -> str:
    return "n/a" if x is None or math.isnan(x) else f"{x:+.{digits}f}"


def overview_table(tests: Sequence[dict], digits: int = 3) -> pd.DataFrame:
    """One row per test dict {"takeaway", "test", "direction", "estimate": Estimate, optional "rq",
    "bounds", "n"}: paper takeaway | test | estimate [95% CI] | verdict, plus p, Holm p and n.
    Run `stats.holm_family` over all the estimates first, so Holm covers the whole table."""
    rows = []
    for t in tests:
        e = t["estimate"]
        v = verdict(e.estimate, e.ci_low, e.ci_high, t["direction"], t.get("bounds"), e.p_holm)
        level = f"{round(e.confidence * 100)}%"
        rows.append({
            "rq": t.get("rq", ""),
            "paper takeaway": t["takeaway"],
            "test": t["test"] + (f" (claim within {t['bounds']})" if t["direction"] == "within" else ""),
            f"estimate [{level} CI]": f"{_fmt(e.estimate, digits)} [{_fmt(e.ci_low, digits)}, {_fmt(e.ci_high, digits)}]",
            "p": e.p_value,
            "p (Holm)": e.p_holm if e.p_holm is not None else float("nan"),
            "n": t.get("n", ""),
            "verdict": v,
        })
    columns = ["rq", "paper takeaway", "test", "estimate [95% CI]", "p", "p (Holm)", "n", "verdict"]
    df = pd.DataFrame(rows)
    return df if rows else pd.DataFrame(columns=columns)
