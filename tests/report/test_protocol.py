"""The protocol's tests per RQ (azrlib.report.protocol) against direct computations on a synthetic
results directory."""

import json
import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from report_synthetic import make_results  # noqa: E402

from azrlib.metrics.passk import holm_adjust  # noqa: E402
from azrlib.report import ResultsDir, protocol as pr, protocol_figures as pf  # noqa: E402


@pytest.fixture(scope="module")
def rd(tmp_path_factory):
    return ResultsDir(make_results(tmp_path_factory.mktemp("protocol") / "R"))


def _pass1(rd, model, bench="tinyworld"):
    per = {}
    for r in rd.eval_rows(model, bench):
        per.setdefault(r["problem_id"], []).append(bool(r["correct"]))
    return {p: np.mean(v) for p, v in per.items()}


def test_rq1_parts_are_the_direct_differences_of_seed_means(rd):
    tests, curves, notes = pr.rq1(rd, n_bootstrap=300)
    base = _pass1(rd, "base")
    sp = [_pass1(rd, f"selfplay_s{k}") for k in (1, 2, 3)]
    ids = sorted(base)
    direct = np.mean([np.mean([s[p] for p in ids]) for s in sp]) - np.mean([base[p] for p in ids])
    a = [t for t in tests if t.get("benchmark") == "tinyworld" and t["takeaway"].startswith("self-play beats")][0]
    assert a["estimate"].estimate == pytest.approx(direct, abs=1e-12)
    assert a["direction"] == "greater" and "3" in a["n"]
    # pass@1 curve of base equals the direct mean; the largest k is n = 8
    c = curves[(curves["benchmark"] == "tinyworld") & (curves["arm"] == "base") & (curves["k"] == 1)]
    assert c["pass@k"].iloc[0] == pytest.approx(np.mean(list(base.values())))
    assert curves["k"].max() == 8 and set(curves["benchmark"]) == {"tinyworld", "tinyworld_ood"}
    # Holm over the notebook's family: adjusted p equal Holm of the raw p
    raw = [t["estimate"].p_value for t in tests]
    assert [t["estimate"].p_holm for t in tests] == pytest.approx(list(holm_adjust(raw)))
    pf.check_results(tests, curves, "pass@k")


def test_leash_counts_the_base_samples_directly(rd):
    result, info = pr.leash(rd)
    rows = [json.loads(x) for x in (rd.path / "leash" / "base.jsonl").read_text().splitlines()]
    assert result.n_subset == 1 and info["n"] == 256 and not info["below_paper_n"]
    assert result.solved_counts == {"deduction/0": sum(r["correct"] for r in rows)} and result.still_unsolved == []
    assert "still never solves 0 of them" in pr.leash_sentence(result, info)


def test_rq2_slope_is_the_pooled_least_squares_slope(rd):
    tests, table = pr.rq2(rd, n_bootstrap=200)
    rows = pr.rq2_rows(rd)
    steps = pr.training_steps(rd)
    base = [r for r in rows if r["model"] == "base"]
    x = np.array([(r["step"] - 0.5) / steps for r in base])
    y = np.array([r["solve_rate"] for r in base])
    assert tests[0]["estimate"].estimate == pytest.approx(np.polyfit(x, y, 1)[0])
    assert {r["seed"] for r in rows} == {1, 2, 3} and set(table["model"]) == {"base", "final"}
    assert tests[0]["direction"] == "less" and tests[2]["direction"] == "greater"


def test_rq3_entropy_change_is_the_direct_mean_over_seeds_and_prompts(rd):
    tests, curves, notes = pr.rq3(rd, n_bootstrap=300)
    df = pr.rq3_frame(rd)
    sp = df[(df["kind"] == "selfplay") & (df["role"] == "solve")]
    last, first = sp[sp["step"] == sp["step"].max()], sp[sp["step"] == 0]
    direct = last["entropy_full"].mean() - first["entropy_full"].mean()
    fall = [t for t in tests if t["takeaway"] == "entropy falls during self-play" and t["estimator"] == "entropy_full"][0]
    assert fall["estimate"].estimate == pytest.approx(direct)
    assert len(tests) == 6 and not notes


def test_rq4_compares_final_sparsity_and_budgets_are_matched(rd):
    tests, df, budgets = pr.rq4(rd)
    final = df[(df["step"] == df["step"].max()) & (df["dtype"] == "bf16")]
    direct = final[final["kind"] == "selfplay"]["sparsity"].mean() - final[final["kind"] == "sft"]["sparsity"].mean()
    sft = [t for t in tests if "sft, bf16" in t["test"]][0]
    assert sft["estimate"].estimate == pytest.approx(direct) and sft["direction"] == "greater"
    assert all(t["direction"] == "two-sided" for t in tests if "- rlvr" in t["test"])  # no claim
    assert budgets["optimizer_steps"].nunique() == 1


def test_rq5_is_the_paired_difference_and_the_overview_holds_every_test(rd):
    tests, out = pr.rq5(rd, n_bootstrap=300)
    diffs = []
    for k in (1, 2, 3):
        a, b = _pass1(rd, f"band_s{k}"), _pass1(rd, f"selfplay_s{k}")
        diffs.append(np.mean([a[p] - b[p] for p in a]))
    assert tests[0]["estimate"].estimate == pytest.approx(np.mean(diffs))
    assert out["per_seed_difference"] == pytest.approx(diffs)
    # the entropy test: band - self-play solver entropy at the last checkpoint, the direct mean
    df = pr.rq3_frame(rd)
    last = df[(df["role"] == "solve") & (df["step"] == df["step"].max())]
    h = {kind: last[last["kind"] == kind]["entropy_full"].mean() for kind in ("band", "selfplay")}
    entropy = [t for t in tests if "entropy" in t["takeaway"]][0]
    assert entropy["estimate"].estimate == pytest.approx(h["band"] - h["selfplay"])
    assert entropy["direction"] == "within" and entropy["bounds"] == pytest.approx(
        (-0.2 * h["selfplay"], 0.2 * h["selfplay"]), abs=1e-4)
    table = pr.rq5_intervals(out)
    assert list(table["interval"]) == ["bootstrap", "moment", "t_over_seeds"]
    everything, notes = pr.all_tests(rd, n_bootstrap=200)
    assert not notes and {t["rq"] for t in everything} == {"RQ1", "RQ2", "RQ3", "RQ4", "RQ5"}
    assert [t["estimate"].p_holm for t in everything] == pytest.approx(
        list(holm_adjust([t["estimate"].p_value for t in everything])))
    overview = pf.table_of(everything)
    assert set(overview["verdict"]) <= {"supports", "contradicts", "inconclusive", "no claim"}
