"""Verdicts follow the interval, never the point estimate alone; the overview table lists them."""

from __future__ import annotations

import math

import pytest

from azrlib.metrics.stats import Estimate
from azrlib.report.verdicts import conjunction_verdict, overview_table, verdict


@pytest.mark.parametrize(
    "est,lo,hi,direction,want",
    [
        (0.05, 0.01, 0.09, "greater", "supports"),
        (0.05, -0.01, 0.09, "greater", "inconclusive"),  # right sign, interval across 0
        (-0.05, -0.09, -0.01, "greater", "contradicts"),
        (0.05, 0.0, 0.09, "greater", "inconclusive"),  # touching 0 is not excluding it
        (-0.05, -0.09, -0.01, "less", "supports"),
        (0.05, 0.01, 0.09, "less", "contradicts"),
        (-0.05, -0.09, 0.02, "less", "inconclusive"),
        (0.05, 0.01, 0.09, "two-sided", "no claim"),
        (0.05, math.nan, math.nan, "greater", "inconclusive"),
    ],
)
def test_directional_verdicts(est, lo, hi, direction, want):
    assert verdict(est, lo, hi, direction) == want


def test_within_bounds_is_an_equivalence_test():
    b = (-0.04, 0.0)
    assert verdict(-0.02, -0.03, -0.01, "within", b) == "supports"
    assert verdict(-0.02, -0.05, 0.01, "within", b) == "inconclusive"
    assert verdict(0.03, 0.01, 0.05, "within", b) == "contradicts"
    with pytest.raises(ValueError, match="bounds"):
        verdict(0.0, -0.1, 0.1, "within")


def test_family_correction_can_only_weaken_a_verdict():
    assert verdict(0.05, 0.01, 0.09, "greater", p_adjusted=0.01) == "supports"
    assert verdict(0.05, 0.01, 0.09, "greater", p_adjusted=0.2) == "inconclusive"
    assert verdict(-0.05, -0.09, -0.01, "greater", p_adjusted=0.2) == "inconclusive"
    assert verdict(0.05, -0.01, 0.09, "greater", p_adjusted=0.001) == "inconclusive"  # the CI still rules


def test_bad_input_is_rejected():
    with pytest.raises(ValueError, match="direction"):
        verdict(0.0, -1.0, 1.0, "up")
    with pytest.raises(ValueError, match="outside"):
        verdict(2.0, -1.0, 1.0, "greater")


def test_overview_table():
    e1 = Estimate("a", 0.031, 0.012, 0.05, 0.001, 0.01, 0.95, 1000, p_holm=0.004)
    e2 = Estimate("b", -0.01, -0.03, 0.01, 0.3, 0.01, 0.95, 1000)
    e3 = Estimate("c", 0.031, 0.002, 0.05, 0.03, 0.01, 0.95, 1000, p_holm=0.09)
    df = overview_table([
        {"rq": "RQ1", "takeaway": "self-play beats base at pass@1", "test": "sp - base", "direction": "greater",
         "estimate": e1, "n": "300 problems x 32 samples, 3 seeds"},
        {"rq": "RQ5", "takeaway": "about -2 points", "test": "band - azr", "direction": "within", "bounds": (-0.04, 0.0),
         "estimate": e2},
        {"takeaway": "t3", "test": "x", "direction": "greater", "estimate": e3},
    ])
    assert list(df.columns) == ["rq", "paper takeaway", "test", "estimate [95% CI]", "p", "p (Holm)", "n", "verdict"]
    assert df["verdict"].tolist() == ["supports", "inconclusive", "inconclusive"]  # e3: Holm p 0.09
    assert df["estimate [95% CI]"][0] == "+0.031 [+0.012, +0.050]"
    assert "claim within (-0.04, 0.0)" in df["test"][1]
    assert math.isnan(df["p (Holm)"][1])
    assert list(overview_table([]).columns)[-1] == "verdict"


def test_conjunction_needs_every_part():
    assert conjunction_verdict(["supports", "supports"]) == "supports"
    assert conjunction_verdict(["supports", "inconclusive"]) == "inconclusive"
    assert conjunction_verdict(["inconclusive", "contradicts", "supports"]) == "contradicts"
    with pytest.raises(ValueError):
        conjunction_verdict(["supports", "no claim"])
    with pytest.raises(ValueError):
        conjunction_verdict([])
