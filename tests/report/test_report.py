"""azrlib.report: loaders, tidy tables, verdicts and figure files, on a synthetic results directory."""

import json
import math

import pandas as pd
import pytest

from azrlib.report import entropy, overview, rewards, sparsity
from azrlib.report.paths import display_path, figure_stem, repo_root, resolve
from azrlib.report.plots import FigureWriter, new_figure
from azrlib.report.results import ResultsDir, ResultsError, expected_runs, metrics_frame, parse_run_name, read_jsonl
from azrlib.report.tables import fmt_ci, rounded, seed_band, t_interval, welch_interval

from report_synthetic import make_results


@pytest.fixture(scope="module")
def rd(tmp_path_factory):
    return ResultsDir(make_results(tmp_path_factory.mktemp("results") / "R"))


# ---------------------------------------------------------------- paths and loading

def test_paths_resolve_against_repo_root():
    assert (repo_root() / "azrlib" / "report").is_dir()
    assert resolve("data/x") == repo_root() / "data" / "x"
    assert display_path(repo_root() / "figures" / "a.png") == "figures/a.png"
    assert display_path("/somewhere/else/a.png") == "a.png"
    assert figure_stem("figures/tiny", "rq1_pass_at_k", "curves") == repo_root() / "figures/tiny/rq1_pass_at_k_curves"
    with pytest.raises(ValueError):
        figure_stem("f", "nb", "a/b")


def test_run_names_and_expected_runs():
    assert parse_run_name("selfplay_s3") == ("selfplay", 3)
    assert parse_run_name("azr_code_s1") == ("azr_code", 1)
    assert parse_run_name("other") is None
    assert expected_runs([1, 2]) == ["selfplay_s1", "selfplay_s2", "frozen_s1", "frozen_s2", "band_s1", "band_s2",
                                     "azr_code_s1", "rlvr_s1", "rlvr_s2", "sft_s1"]


def test_results_dir_reads_the_contract(rd):
    assert rd.seeds == [1, 2, 3] and rd.first_seed == 1
    assert rd.missing_runs() == []
    assert rd.runs_of("selfplay") == ["selfplay_s1", "selfplay_s2", "selfplay_s3"]
    m = rd.metrics("selfplay_s1")
    assert list(m["step"]) == list(range(7))
    assert set(rd.eval_models()) == {"base", *(f"{k}_s{s}" for k in ("selfplay", "rlvr", "band") for s in (1, 2, 3))}
    assert rd.eval_benchmarks("base") == ["tinyworld", "tinyworld_ood"]
    assert rd.sparsity_runs() == ["selfplay_s1", "rlvr_s1", "sft_s1"]
    assert rd.manifest_runs()["band_s2"]["overrides"] == ["seed=2", "proposer_reward=band"]
    assert rd.config("rlvr_s1")["mode"] == "rlvr"


def test_results_dir_errors_name_the_missing_file(tmp_path):
    with pytest.raises(ResultsError, match="not found"):
        ResultsDir(tmp_path / "nope")
    (tmp_path / "R").mkdir()
    r = ResultsDir(tmp_path / "R")
    with pytest.raises(ResultsError, match="manifest.json"):
        r.manifest
    with pytest.raises(ResultsError, match="sparsity/x.json"):
        r.sparsity("x")


def test_missing_runs_are_reported(tmp_path):
    r = ResultsDir(make_results(tmp_path / "R", drop=("band_s2",)))
    assert r.missing_runs() == ["band_s2"]


def test_read_jsonl_skips_partial_last_line_only(tmp_path):
    p = tmp_path / "m.jsonl"
    p.write_text('{"step": 1}\n\n{"step": 2}\n{"step": 3, "x"')
    assert read_jsonl(p) == [{"step": 1}, {"step": 2}]
    p.write_text('{"step": 1}\nbroken\n{"step": 2}\n')
    with pytest.raises(ValueError, match=":2:"):
        read_jsonl(p)


def test_metrics_frame_keeps_last_record_of_a_step():
    df = metrics_frame([{"step": 2, "a": 1}, {"step": 1, "a": 2}, {"step": 2, "a": 3}])
    assert list(df["step"]) == [1, 2] and list(df["a"]) == [2, 3]


# ---------------------------------------------------------------- tables

def test_intervals():
    m, lo, hi = t_interval([1.0, 2.0, 3.0])
    assert m == 2.0 and lo < 2.0 < hi and math.isclose(hi - 2.0, 4.302652729911275 / math.sqrt(3), rel_tol=1e-9)
    assert math.isnan(t_interval([1.0])[1]) and math.isnan(t_interval([])[0])
    d, lo, hi = welch_interval([0.0, 0.1, 0.2], [1.0, 1.1, 1.3])
    assert lo < d < hi and lo > 0
    assert math.isnan(welch_interval([1.0], [2.0, 3.0])[1])


def test_seed_band_and_rounding():
    df = pd.DataFrame({"kind": ["a"] * 3 + ["b"], "step": [1, 1, 1, 1], "value": [1.0, 2.0, 3.0, 5.0]})
    band = seed_band(df, ["kind", "step"])
    a, b = band.iloc[0], band.iloc[1]
    assert (a["n_seeds"], a["mean"], a["min"], a["max"]) == (3, 2.0, 1.0, 3.0)
    assert b["n_seeds"] == 1 and math.isnan(b["ci_low"])
    assert rounded(pd.DataFrame({"x": [1.23456789]}), 3)["x"][0] == 1.235
    assert fmt_ci(0.5, 0.4, 0.6) == "0.500 [0.400, 0.600]" and fmt_ci(0.5, math.nan, math.nan) == "0.500 (no CI)"


# ---------------------------------------------------------------- figures

def test_figure_writer_is_deterministic(tmp_path):
    def draw():
        fig, axes = new_figure(1, 2)
        axes[0][0].plot([1, 2, 3], [1, 4, 9], label="x")
        return fig

    data = pd.DataFrame({"x": [1, 2, 3], "y": [1.0, 4.0, 9.0]})
    w1, w2 = FigureWriter(tmp_path / "a", "nb"), FigureWriter(tmp_path / "b", "nb")
    p1, p2 = w1.save(draw(), "fig", data), w2.save(draw(), "fig", data)
    assert [p.name for p in p1] == ["nb_fig.png", "nb_fig.pdf", "nb_fig.csv"]
    for a, b in zip(p1, p2):
        assert a.read_bytes() == b.read_bytes(), a.name
    assert b"CreationDate" not in p1[1].read_bytes()
    w1.check()
    assert list(w1.listing()["file"]) == [p.name for p in p1]  # outside the repo: names only


# ---------------------------------------------------------------- RQ1

def test_entropy_long_aggregates():
    df = pd.DataFrame({"step": [1, 2], "entropy/propose/deduction": [1.0, 0.5], "entropy/solve/deduction": [3.0, 1.5],
                       "entropy_full/propose/deduction": [2.0, 1.0], "entropy_full/solve/deduction": [4.0, 2.0],
                       "entropy_full/all": [2.5, 1.25]})
    e = entropy.entropy_long(df)
    def get(est, role, t, step):
        return float(e[(e.estimator == est) & (e.role == role) & (e.task_type == t) & (e.step == step)]["value"].iloc[0])
    assert get("sampled", "all", "all", 1) == 2.0  # mean over groups
    assert get("full", "all", "all", 1) == 2.5     # the trainer's pooled value
    assert get("full", "solve", "all", 2) == 2.0 and get("sampled", "all", "deduction", 2) == 1.0


def test_rq3_tables_checks_and_verdict(rd):
    runs = entropy.default_runs(rd)
    assert runs == ["selfplay_s1", "selfplay_s2", "selfplay_s3", "frozen_s1", "frozen_s2", "frozen_s3"]
    long = entropy.runs_long(rd, runs, entropy.entropy_long)
    entropy.check_results(long, runs)
    band = entropy.band_by_kind(long, ["estimator", "role", "task_type"])
    changes = entropy.window_change(long)
    sp = changes[(changes["kind"] == "selfplay") & (changes["estimator"] == "full")]
    assert len(sp) == 3 and (sp["change"] < 0).all()
    text = entropy.verdict(changes)
    assert "significant decrease (supports collapse)" in text
    entropy.plot_overall(band)
    entropy.plot_breakdown(band)
    lengths = entropy.runs_long(rd, runs, entropy.length_long)
    entropy.plot_lengths(entropy.band_by_kind(lengths, ["role", "task_type"]))
    bad = long.copy()
    bad.loc[0, "value"] = float("nan")
    with pytest.raises(AssertionError, match="non-finite"):
        entropy.check_results(bad, runs)


# ---------------------------------------------------------------- RQ4

def test_rq4_tables_checks_and_verdict(rd, tmp_path):
    overall = sparsity.overall_table(rd)
    assert len(overall) == 9 and set(overall["dtype"]) == {"bf16", "fp32", "stored"}
    sparsity.check_results(overall, ["selfplay_s1", "rlvr_s1", "sft_s1"])
    wide = sparsity.wide_table(overall)
    assert list(wide.columns[:3]) == ["run", "bf16 exact", "bf16 atol"]
    mods = sparsity.module_table(rd)
    assert list(dict.fromkeys(mods["module"])) == ["q_proj", "embed_tokens", "norm"]
    assert list(mods["run"][:3]) == ["selfplay_s1", "rlvr_s1", "sft_s1"]
    text = sparsity.verdict(overall)
    assert "self-play lies between RLVR and SFT" in text
    sparsity.plot_overall(overall)
    sparsity.plot_modules(mods)
    with pytest.raises(AssertionError, match="missing"):
        sparsity.check_results(overall[overall["run"] != "sft_s1"], ["sft_s1"])
    assert sparsity.find_public_pairs([tmp_path]) == []
    (tmp_path / "Qwen" / "Qwen2.5-Coder-3B").mkdir(parents=True)
    (tmp_path / "Qwen" / "Qwen2.5-Coder-3B" / "config.json").write_text("{}")
    snap = tmp_path / "models--andrewzh--Absolute_Zero_Reasoner-Coder-3b" / "snapshots" / "abc"
    snap.mkdir(parents=True)
    (snap / "config.json").write_text("{}")
    (label, base, tuned), = sparsity.find_public_pairs([tmp_path])
    assert label == "Absolute_Zero_Reasoner-Coder-3b vs Qwen2.5-Coder-3B" and tuned == snap


# ---------------------------------------------------------------- RQ5

def test_rq5_tables_checks_and_verdict(rd):
    runs = rewards.variant_runs(rd)
    assert runs == {"azr": ["selfplay_s1", "selfplay_s2", "selfplay_s3"], "band": ["band_s1", "band_s2", "band_s3"],
                    "azr_code": ["azr_code_s1"]}
    val = rewards.variants_long(rd, runs, rewards.val_long)
    ent = rewards.variants_long(rd, runs, rewards.overall_entropy)
    rewards.check_results(val, ent, runs)
    vf = rewards.final_values(val, ["task_type"])
    assert (vf.groupby("run").size() == 4).all() and set(vf["step"]) == {6}
    ef = rewards.final_values(ent, ["estimator"])
    text = rewards.verdict(vf, ef, runs)
    assert "**azr** (3 seeds)" in text and "band - azr" in text and "azr_code - azr" in text
    rewards.plot_curves(rewards.across_seeds(val, ["task_type", "step"]), rewards.across_seeds(ent, ["estimator", "step"]))
    with pytest.raises(AssertionError, match="azr and band"):
        rewards.check_results(val, ent, {"azr": runs["azr"]})


# ---------------------------------------------------------------- overview

def test_overview_tables_and_checks(rd):
    s = overview.manifest_summary(rd)
    assert dict(zip(s["item"], s["value"]))["expected runs missing"] == "none"
    p = overview.pipeline_table(rd)
    assert list(p["step"]) == ["train", "eval"] and bool(p["skipped"][1])
    runs = overview.runs_table(rd)
    assert len(runs) == 14 and runs.set_index("run").loc["band_s2", "proposer_reward"] == "band"
    assert runs.set_index("run").loc["band_s2", "overrides"] == "proposer_reward=band"
    assert set(overview.versions_table(rd)["package"]) == {"torch", "numpy", "azrlib"}
    assert overview.isolation(rd)["seccomp"] is True and overview.isolation_consistent(rd) == []
    curves = overview.curves_long(rd)
    overview.check_results(rd, curves)
    fig, band = overview.plot_curves(curves)
    assert len(overview.final_table(rd)) == 14
    assert "seeds 1, 2, 3" in overview.summary(rd)


def test_rq5_curves_data_and_verdict_wording(rd):
    runs = rewards.variant_runs(rd)
    val = rewards.variants_long(rd, runs, rewards.val_long)
    ent = rewards.variants_long(rd, runs, rewards.overall_entropy)
    d = rewards.curves_data(rewards.across_seeds(val, ["task_type", "step"]), rewards.across_seeds(ent, ["estimator", "step"]))
    assert set(d["metric"]) == {"entropy", "val_accuracy"} and {"full", "sampled", "mean"} <= set(d["series"])
    text = rewards.verdict(rewards.final_values(val, ["task_type"]), rewards.final_values(ent, ["estimator"]), runs)
    assert "proposer reward" in text.split("Verdict:")[1]


def test_isolation_consistency_ignores_the_sandbox_uid(tmp_path):
    r = ResultsDir(make_results(tmp_path / "R"))
    env = r.path / "train" / "band_s2" / "environment.json"
    d = json.loads(env.read_text())
    d["sandbox_isolation"]["sandbox_uid"] = 12345
    env.write_text(json.dumps(d))
    assert overview.isolation_consistent(r) == []
    d["sandbox_isolation"]["seccomp"] = False
    env.write_text(json.dumps(d))
    assert overview.isolation_consistent(r) == ["band_s2"]


def test_expected_runs_follow_the_manifest_plan(tmp_path):
    """A preset that leaves a kind out (tiny: no azr_code) is not missing it."""
    root = make_results(tmp_path / "R")
    m = json.loads((root / "manifest.json").read_text())
    m["runs"] = [r for r in m["runs"] if not r["name"].startswith("azr_code")]
    (root / "manifest.json").write_text(json.dumps(m))
    r = ResultsDir(root)
    assert "azr_code_s1" not in r.expected_runs() and r.missing_runs() == []
