"""pass@k estimator, paired bootstrap, McNemar, Holm, the results loader and `azr passk`."""

from __future__ import annotations

import contextlib
import io
import json
import math
import random
from fractions import Fraction

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.stats import binom

from azrlib.cli import main as azr_main
from azrlib.metrics.passk import (
    ResultsFileError,
    SampleCounts,
    compare,
    counts_from_rows,
    dataset_pass_at_k,
    default_k_grid,
    holm_adjust,
    load_results,
    mcnemar_exact,
    paired_bootstrap,
    pass_at_k,
    pass_at_k_matrix,
)


def exact_pass_at_k(n: int, c: int, k: int) -> Fraction:
    """1 - C(n-c, k) / C(n, k) in exact rational arithmetic (math.comb is 0 when k > n - c)."""
    return 1 - Fraction(math.comb(n - c, k), math.comb(n, k))


# ---------------------------------------------------------------------------------- estimator


@settings(max_examples=300, deadline=None)
@given(st.integers(1, 300).flatmap(lambda n: st.tuples(st.just(n), st.integers(0, n), st.integers(1, n))))
def test_pass_at_k_matches_exact_rational(nck):
    n, c, k = nck
    assert pass_at_k(n, c, k) == pytest.approx(float(exact_pass_at_k(n, c, k)), abs=1e-12)


def test_pass_at_k_matrix_matches_exact_on_random_problems():
    rng = random.Random(7)
    n = [rng.choice([16, 50, 64, 128, 1024]) for _ in range(60)]
    c = [rng.randint(0, ni) for ni in n]
    ks = [1, 2, 4, 8, 16]
    matrix = pass_at_k_matrix(n, c, ks)
    assert matrix.shape == (60, 5)
    for i in range(60):
        for j, k in enumerate(ks):
            assert matrix[i, j] == pytest.approx(float(exact_pass_at_k(n[i], c[i], k)), abs=1e-12)
    dataset = dataset_pass_at_k(n, c, ks)
    for j, k in enumerate(ks):
        expected = sum(exact_pass_at_k(n[i], c[i], k) for i in range(60)) / 60
        assert dataset[j] == pytest.approx(float(expected), abs=1e-12)


def test_pass_at_k_edge_cases():
    assert pass_at_k(10, 0, 1) == 0.0
    assert pass_at_k(10, 0, 10) == 0.0
    assert pass_at_k(10, 10, 1) == 1.0
    assert pass_at_k(10, 7, 4) == 1.0  # n - c = 3 < k: every draw of 4 contains a correct one
    assert pass_at_k(10, 7, 3) == pytest.approx(1 - 1 / math.comb(10, 3))
    assert pass_at_k(1, 1, 1) == 1.0
    assert pass_at_k(10, 3, 1) == pytest.approx(0.3)
    # Large n: C(1024, 512) overflows float64, the product form does not.
    assert pass_at_k(1024, 1, 512) == pytest.approx(0.5)
    assert pass_at_k(1024, 3, 512) == pytest.approx(float(exact_pass_at_k(1024, 3, 512)), abs=1e-12)


def test_pass_at_k_vectorised_broadcast():
    out = pass_at_k(np.array([10, 20, 5]), np.array([3, 0, 5]), 2)
    assert out.shape == (3,)
    assert out[0] == pytest.approx(float(exact_pass_at_k(10, 3, 2)))
    assert out[1] == 0.0 and out[2] == 1.0


def test_k_larger_than_n_is_an_error():
    with pytest.raises(ValueError, match="k=11 exceeds n=10"):
        pass_at_k(10, 3, 11)
    with pytest.raises(ValueError, match=r"k=16 exceeds.*problem #1 has only n=8"):
        pass_at_k_matrix([32, 8], [1, 1], [1, 16])
    with pytest.raises(ValueError, match="0 <= c <= n"):
        pass_at_k(5, 6, 1)


def test_default_k_grid():
    assert default_k_grid(1) == [1]
    assert default_k_grid(8) == [1, 2, 4, 8]
    assert default_k_grid(100) == [1, 2, 4, 8, 16, 32, 64]


# ---------------------------------------------------------------------------------- bootstrap


def make_counts(n: np.ndarray, c: np.ndarray, prefix: str = "p") -> SampleCounts:
    return SampleCounts([f"{prefix}{i}" for i in range(len(n))], np.asarray(n), np.asarray(c))


def simulate(rng: np.random.Generator, n_problems: int, n_samples: int, shift: float):
    """Problem difficulty q ~ U(0, 1); model A solves with q, model B with q + shift (1 - q) (better)."""
    q = rng.uniform(size=n_problems)
    q_b = q + shift * (1 - q)
    n = np.full(n_problems, n_samples)
    return make_counts(n, rng.binomial(n_samples, q)), make_counts(n, rng.binomial(n_samples, q_b))


def test_bootstrap_detects_a_large_difference():
    rng = np.random.default_rng(1)
    a, b = simulate(rng, 200, 16, shift=0.3)
    result = compare(a, b, ks=[1, 4, 16], n_bootstrap=2000, seed=3)
    assert all(d > 0.05 for d in result.delta)
    assert all(lo > 0 for lo in result.ci_low)
    assert all(p < 0.01 for p in result.p_value)
    assert all(p < 0.05 for p in result.p_value_holm)
    # Two-level bootstrap: wider intervals, same conclusion.
    two_level = compare(a, b, ks=[1, 4, 16], n_bootstrap=2000, seed=3, resample_samples=True)
    assert all(lo > 0 for lo in two_level.ci_low)
    width = np.subtract(result.ci_high, result.ci_low)
    width_two = np.subtract(two_level.ci_high, two_level.ci_low)
    assert width_two[0] > width[0]


def test_bootstrap_identical_models_give_zero_delta_and_p_one():
    rng = np.random.default_rng(2)
    a, _ = simulate(rng, 50, 8, shift=0.0)
    result = compare(a, a, n_bootstrap=1000, seed=0)
    assert result.delta == [0.0] * len(result.k)
    assert result.p_value == [1.0] * len(result.k)
    assert result.p_value_holm == [1.0] * len(result.k)
    assert result.ci_low == [0.0] * len(result.k) and result.ci_high == [0.0] * len(result.k)
    assert result.mcnemar_p == 1.0


def test_bootstrap_is_seeded_and_matches_a_direct_loop():
    rng = np.random.default_rng(5)
    a, b = simulate(rng, 30, 8, shift=0.1)
    ks = [1, 2, 8]
    boot = paired_bootstrap(a, b, ks, n_bootstrap=300, seed=11)
    again = paired_bootstrap(a, b, ks, n_bootstrap=300, seed=11)
    np.testing.assert_array_equal(boot["replicates"], again["replicates"])
    # The same draws done the slow way: index lists, then the mean per-problem difference.
    per_problem = pass_at_k_matrix(b.n, b.c, ks) - pass_at_k_matrix(a.n, a.c, ks)
    draws = np.random.default_rng(11).integers(0, 30, size=(300, 30))
    direct = np.array([per_problem[row].mean(axis=0) for row in draws])
    np.testing.assert_allclose(boot["replicates"], direct, atol=1e-12)
    np.testing.assert_allclose(boot["delta"], per_problem.mean(axis=0))
    np.testing.assert_allclose(boot["ci_low"], np.quantile(direct, 0.025, axis=0))
    at_or_below = ((direct <= 0).sum(axis=0) + 1) / 301
    at_or_above = ((direct >= 0).sum(axis=0) + 1) / 301
    np.testing.assert_allclose(boot["p_value"], np.minimum(1, 2 * np.minimum(at_or_below, at_or_above)))


def test_bootstrap_ci_coverage():
    """95% intervals cover the true population difference in roughly 95% of simulated studies.

    With q ~ U(0, 1) and 1 - q_B = 0.8 (1 - q_A), the population pass@k difference is
    E[(1-q)^k] (1 - 0.8^k) = (1 - 0.8^k) / (k + 1), and the per-problem estimates are iid and
    unbiased, so the problem-level bootstrap targets it.
    """
    rng = np.random.default_rng(123)
    ks = [1, 4]
    truth = np.array([(1 - 0.8**k) / (k + 1) for k in ks])
    covered = np.zeros(len(ks))
    n_studies = 150
    for study in range(n_studies):
        a, b = simulate(rng, 60, 8, shift=0.2)
        boot = paired_bootstrap(a, b, ks, n_bootstrap=600, seed=study)
        covered += (boot["ci_low"] <= truth) & (truth <= boot["ci_high"])
    coverage = covered / n_studies
    assert np.all(coverage > 0.86) and np.all(coverage <= 1.0), coverage


def test_bootstrap_is_fast_at_paper_scale():
    import time

    rng = np.random.default_rng(0)
    a, b = simulate(rng, 1000, 128, shift=0.02)
    start = time.perf_counter()
    result = compare(a, b, n_bootstrap=10_000, seed=0)
    assert time.perf_counter() - start < 5.0
    assert len(result.k) == 8


def test_mcnemar_against_hand_computed_binomial():
    # 10 problems only A solves, 3 only B solves, 7 both, 5 neither.
    solved_a = np.array([1] * 10 + [0] * 3 + [1] * 7 + [0] * 5, dtype=bool)
    solved_b = np.array([0] * 10 + [1] * 3 + [1] * 7 + [0] * 5, dtype=bool)
    p, a_only, b_only = mcnemar_exact(solved_a, solved_b)
    assert (a_only, b_only) == (10, 3)
    # Two-sided exact: 2 * P(X <= 3), X ~ Bin(13, 1/2), = 2 * (1 + 13 + 78 + 286) / 2**13.
    expected = 2 * sum(math.comb(13, i) for i in range(4)) / 2**13
    assert p == pytest.approx(expected)
    assert p == pytest.approx(2 * binom.cdf(3, 13, 0.5))
    assert mcnemar_exact(solved_a, solved_a)[0] == 1.0


def test_compare_mcnemar_uses_any_correct():
    n = np.full(6, 4)
    a = make_counts(n, np.array([0, 0, 0, 0, 2, 4]))
    b = make_counts(n, np.array([1, 3, 4, 2, 1, 0]))  # B solves 4 problems A never solves, A solves 1 B misses
    result = compare(a, b, n_bootstrap=200)
    assert (result.mcnemar_a_only, result.mcnemar_b_only) == (1, 4)
    assert result.mcnemar_p == pytest.approx(2 * sum(math.comb(5, i) for i in range(2)) / 2**5)


def test_holm_against_hand_worked_example():
    # Sorted p: 0.01 (x4 = 0.04), 0.02 (x3 = 0.06), 0.03 (x2 = 0.06), 0.04 (x1 = 0.04 -> max 0.06).
    raw = [0.03, 0.01, 0.04, 0.02]
    np.testing.assert_allclose(holm_adjust(raw), [0.06, 0.04, 0.06, 0.06])
    # Monotone step-down and capped at 1.
    np.testing.assert_allclose(holm_adjust([0.5, 0.001, 0.3]), [0.6, 0.003, 0.6])
    np.testing.assert_allclose(holm_adjust([0.9, 0.8]), [1.0, 1.0])


def test_compare_uses_intersection_and_notes_dropped():
    a = SampleCounts(["x", "y", "z"], np.array([4, 4, 4]), np.array([1, 2, 3]), "a.jsonl")
    b = SampleCounts(["y", "z", "w"], np.array([4, 4, 4]), np.array([2, 4, 0]), "b.jsonl")
    result = compare(a, b, ks=[1], n_bootstrap=100)
    assert result.n_problems == 2
    assert result.pass_at_k_a == [pytest.approx((2 / 4 + 3 / 4) / 2)]
    assert result.pass_at_k_b == [pytest.approx((2 / 4 + 4 / 4) / 2)]
    assert any("only in A" in note and "'x'" in note for note in result.notes)
    assert any("only in B" in note and "'w'" in note for note in result.notes)
    disjoint = SampleCounts(["q"], np.array([4]), np.array([1]), "c.jsonl")
    with pytest.raises(ValueError, match="share no problem_id"):
        compare(a, disjoint)


def test_compare_rejects_k_above_some_problems_n():
    a = SampleCounts(["x", "y"], np.array([8, 4]), np.array([1, 2]), "a.jsonl")
    with pytest.raises(ValueError, match=r"k=8 exceeds.*'y' has only n=4"):
        compare(a, a, ks=[1, 8], n_bootstrap=10)


# ---------------------------------------------------------------------------------- loader


def write_jsonl(path, rows):
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def test_loader_counts_and_extra_keys(tmp_path):
    rows = [
        {"problem_id": "a", "sample_idx": 0, "correct": True, "response_length": 120},
        {"problem_id": "a", "sample_idx": 1, "correct": False},
        {"problem_id": 7, "sample_idx": 0, "correct": 1},
    ]
    path = write_jsonl(tmp_path / "r.jsonl", rows)
    counts = load_results(path)
    assert counts.problem_ids == ["a", "7"]
    assert counts.n.tolist() == [2, 1] and counts.c.tolist() == [1, 1]


def test_loader_duplicate_row_names_line(tmp_path):
    rows = [
        {"problem_id": "a", "sample_idx": 0, "correct": True},
        {"problem_id": "a", "sample_idx": 1, "correct": False},
        {"problem_id": "a", "sample_idx": 0, "correct": False},
    ]
    path = write_jsonl(tmp_path / "dup.jsonl", rows)
    with pytest.raises(ResultsFileError, match=r"dup.jsonl:3: duplicate row for problem_id='a', sample_idx=0 \(first seen on line 1\)"):
        load_results(path)


def test_loader_missing_key_names_line_and_key(tmp_path):
    path = tmp_path / "missing.jsonl"
    path.write_text(json.dumps({"problem_id": "a", "sample_idx": 0, "correct": True}) + "\n\n"
                    + json.dumps({"problem_id": "a", "correct": True}) + "\n")
    with pytest.raises(ResultsFileError, match=r"missing.jsonl:3: missing key 'sample_idx'"):
        load_results(path)


def test_loader_other_bad_input(tmp_path):
    bad_json = tmp_path / "bad.jsonl"
    bad_json.write_text('{"problem_id": "a", "sample_idx": 0, "correct": true}\n{not json\n')
    with pytest.raises(ResultsFileError, match="bad.jsonl:2: not valid JSON"):
        load_results(bad_json)
    with pytest.raises(ResultsFileError, match="correct must be true/false"):
        counts_from_rows([{"problem_id": "a", "sample_idx": 0, "correct": "yes"}])
    with pytest.raises(ResultsFileError, match="sample_idx must be a non-negative integer"):
        counts_from_rows([{"problem_id": "a", "sample_idx": -1, "correct": True}])
    empty = tmp_path / "empty.jsonl"
    empty.write_text("\n")
    with pytest.raises(ResultsFileError, match="no result rows"):
        load_results(empty)


# ---------------------------------------------------------------------------------- CLI


def run_azr(argv: list[str]) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = azr_main(argv)
    return code, out.getvalue(), err.getvalue()


def generated_results(tmp_path, name: str, p_correct: list[float], n: int, seed: int, extra_problem: str | None = None):
    rng = np.random.default_rng(seed)
    rows = []
    ids = [f"task/{i}" for i in range(len(p_correct))] + ([extra_problem] if extra_problem else [])
    probs = list(p_correct) + ([0.5] if extra_problem else [])
    for pid, p in zip(ids, probs):
        for s in range(n):
            rows.append({"problem_id": pid, "sample_idx": s, "correct": bool(rng.random() < p), "response_length": 10})
    return write_jsonl(tmp_path / name, rows)


def test_cli_single_file_json(tmp_path):
    path = generated_results(tmp_path, "a.jsonl", [0.1, 0.5, 0.9, 0.0], n=8, seed=0)
    code, out, _ = run_azr(["passk", str(path), "--json"])
    assert code == 0
    data = json.loads(out)
    assert data["k"] == [1, 2, 4, 8]
    counts = load_results(path)
    expected = [float(sum(exact_pass_at_k(8, int(c), k) for c in counts.c) / 4) for k in data["k"]]
    assert data["pass_at_k"] == pytest.approx(expected, abs=1e-12)


def test_cli_paired_json(tmp_path):
    probs = list(np.linspace(0.05, 0.6, 40))
    a = generated_results(tmp_path, "a.jsonl", probs, n=8, seed=1, extra_problem="only-a")
    b = generated_results(tmp_path, "b.jsonl", [min(1.0, p + 0.35) for p in probs], n=8, seed=2)
    code, out, err = run_azr(["passk", str(a), "--vs", str(b), "--k", "1,2,8", "--bootstrap", "2000", "--seed", "4", "--json"])
    assert code == 0
    data = json.loads(out)
    for key in ("k", "pass_at_k", "pass_at_k_other", "delta", "ci_low", "ci_high", "p_value", "p_value_holm", "mcnemar_p"):
        assert key in data
    assert data["k"] == [1, 2, 8]
    assert data["delta"] == pytest.approx(np.subtract(data["pass_at_k_other"], data["pass_at_k"]).tolist())
    assert data["ci_low"][0] > 0 and data["p_value"][0] < 0.01
    assert all(h >= p for h, p in zip(data["p_value_holm"], data["p_value"]))
    assert "only-a" in err  # the dropped problem is reported
    code, table, _ = run_azr(["passk", str(a), "--vs", str(b), "--k", "1,2", "--bootstrap", "200"])
    assert code == 0 and "McNemar" in table and "95% CI" in table


def test_cli_errors_are_clean(tmp_path):
    path = generated_results(tmp_path, "a.jsonl", [0.5], n=4, seed=0)
    code, _, err = run_azr(["passk", str(path), "--k", "1,8", "--json"])
    assert code == 2 and "k=8 exceeds" in err
    code, _, err = run_azr(["passk", str(tmp_path / "nope.jsonl")])
    assert code == 2 and "nope.jsonl" in err
