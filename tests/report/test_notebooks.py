"""The notebooks: their structure, their jupytext pairs, headless execution on a synthetic results
directory, and nbval of the committed notebooks against the committed reference results
(data/reference/tiny).

Refresh the committed outputs with `azr notebooks --inplace` after the reference data or the
analysis changes; nbval then checks that re-running reproduces them exactly. Each notebook is paired
with a percent-format script (notebooks/<name>.py) so a change reads as a diff; after editing one
side outside JupyterLab, `jupytext --sync notebooks/*.ipynb` brings the other in step.
"""

import os
import subprocess
import sys

import nbformat
import pytest

from azrlib.report import execute_notebooks as ex
from azrlib.report.paths import repo_root

from report_synthetic import make_results

ROOT = repo_root()
NB_DIR = ROOT / "notebooks"
REFERENCE = ROOT / "data" / "reference" / "tiny"
FIGURES = {  # notebook -> figure names it must write
    "00_overview": ["training_curves"],
    "rq1_pass_at_k": ["curves"],
    "rq2_question_difficulty": ["by_bin"],
    "rq3_entropy": ["fixed_prompts", "overall", "by_role_and_type", "response_length"],
    "rq4_update_sparsity": ["vs_step", "overall", "per_module"],
    "rq5_proposer_reward": ["curves"],
}


def _read(name: str):
    return nbformat.read(str(NB_DIR / f"{name}.ipynb"), as_version=4)


def _executed(nb) -> bool:
    return any(c.cell_type == "code" and c.get("outputs") for c in nb.cells)


def test_every_notebook_is_listed_and_has_the_contract_parameters():
    assert sorted(p.stem for p in NB_DIR.glob("*.ipynb")) == sorted(ex.NOTEBOOKS) == sorted(FIGURES)
    for name in ex.NOTEBOOKS:
        nb = _read(name)
        nbformat.validate(nb)
        tagged = [c for c in nb.cells if "parameters" in c.metadata.get("tags", [])]
        assert len(tagged) == 1, f"{name}: needs exactly one cell tagged 'parameters'"
        defaults = ex.notebook_defaults(NB_DIR / f"{name}.ipynb")
        assert defaults["results_dir"] == "data/reference/tiny" and defaults["preset"] == "tiny"
        assert defaults["figures_dir"] == "figures/tiny"
        assert nb.metadata["kernelspec"]["name"] == "python3"
        assert not any("injected-parameters" in c.metadata.get("tags", []) for c in nb.cells), name
        code = "\n".join(c.source for c in nb.cells if c.cell_type == "code")
        assert "check_results" in code and "figs.check()" in code, f"{name}: must end with its checks"


def jupytext_differences(ipynb) -> list[str]:
    """Why `ipynb` and its paired percent-format .py disagree (empty: in sync)."""
    import jupytext

    py = ipynb.with_suffix(".py")
    if not py.is_file():
        return [f"{py.name} is missing (jupytext --set-formats ipynb,py:percent {ipynb.name})"]
    nb, paired = nbformat.read(str(ipynb), as_version=4), jupytext.read(str(py))
    problems = []
    if nb.metadata.get("jupytext", {}).get("formats") != "ipynb,py:percent":
        problems.append(f"{ipynb.name}: not paired (metadata jupytext.formats)")

    def cells(book):
        return [(c.cell_type, c.source.strip(), sorted(c.metadata.get("tags", []))) for c in book.cells]

    mine, theirs = cells(nb), cells(paired)
    if len(mine) != len(theirs):
        problems.append(f"{ipynb.name}: {len(mine)} cells, {py.name}: {len(theirs)}")
    problems += [f"{ipynb.name} cell {i} differs from {py.name}" for i, (a, b) in enumerate(zip(mine, theirs)) if a != b]
    return problems


def test_every_notebook_is_paired_with_a_jupytext_script_in_sync():
    assert sorted(p.stem for p in NB_DIR.glob("*.py")) == sorted(ex.NOTEBOOKS), "a .py without its notebook"
    problems = [p for name in ex.NOTEBOOKS for p in jupytext_differences(NB_DIR / f"{name}.ipynb")]
    assert not problems, "\n".join(problems) + "\n(run: jupytext --sync notebooks/*.ipynb)"


def test_the_pair_check_sees_an_edit_on_either_side(tmp_path):
    import shutil

    for suffix in (".ipynb", ".py"):
        shutil.copy(NB_DIR / f"rq3_entropy{suffix}", tmp_path)
    nb_path, py_path = tmp_path / "rq3_entropy.ipynb", tmp_path / "rq3_entropy.py"
    assert jupytext_differences(nb_path) == []
    py_path.write_text(py_path.read_text().replace("figs.check()", "figs.check()  # edited", 1))
    assert any("differs" in p for p in jupytext_differences(nb_path))
    shutil.copy(NB_DIR / "rq3_entropy.py", py_path)
    nb = nbformat.read(str(nb_path), as_version=4)
    nb.cells.append(nbformat.v4.new_code_cell("1 + 1"))
    nbformat.write(nb, str(nb_path))
    assert any("cells" in p for p in jupytext_differences(nb_path))


def test_changed_parameters_and_strip_volatile():
    assert ex.changed_parameters({"a": 1, "b": "x"}, {"a": 1, "b": "y", "c": 2}) == {"b": "y", "c": 2}
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("1")])
    nb.metadata["papermill"] = {"input_path": "/abs/x.ipynb"}
    nb.cells[0].metadata["papermill"] = {"duration": 1.0}
    nb.cells[0].metadata["execution"] = {"iopub.status.busy": "2026-01-01"}
    ex.strip_volatile(nb)
    assert "papermill" not in nb.metadata and nb.cells[0].metadata == {}


@pytest.mark.slow
def test_notebooks_execute_headless_on_synthetic_results(tmp_path, monkeypatch):
    """Every notebook runs under papermill against a synthetic results directory, writes its
    figures (PNG, PDF, CSV) and passes its own checks."""
    results = make_results(tmp_path / "R")
    figures, out = tmp_path / "figures", tmp_path / "reports"
    rc = ex.main(["--results-dir", str(results), "--preset", "synthetic", "--figures-dir", str(figures),
                  "--out-dir", str(out)])
    assert rc == 0
    for name, figs in FIGURES.items():
        nb = nbformat.read(str(out / f"{name}.ipynb"), as_version=4)
        assert "papermill" not in nb.metadata
        printed = "".join(o.get("text", "") for c in nb.cells if c.cell_type == "code" for o in c.outputs)
        assert "checks passed" in printed, name
        params = [c for c in nb.cells if "injected-parameters" in c.metadata.get("tags", [])]
        assert params and str(results) in params[0].source
        for fig in figs:
            for ext in ("png", "pdf", "csv"):
                f = figures / f"{name}_{fig}.{ext}"
                assert f.is_file() and f.stat().st_size > 0, f


@pytest.mark.slow
def test_committed_notebooks_match_reference_outputs(tmp_path):
    """nbval: re-running each committed notebook on data/reference/tiny reproduces its outputs."""
    if not (REFERENCE / "manifest.json").is_file():
        pytest.skip("data/reference/tiny is not committed yet")
    stale = [n for n in ex.NOTEBOOKS if not _executed(_read(n))]
    if stale:
        pytest.skip(f"notebooks without committed outputs: {stale} "
                    "(run azr notebooks --inplace)")
    cmd = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "--nbval", "--nbval-current-env",
           "--nbval-sanitize-with", str(ROOT / "tests" / "nbval_sanitize.cfg"),
           *[str(NB_DIR / f"{n}.ipynb") for n in ex.NOTEBOOKS]]
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=1200,
                          env={**os.environ, "TQDM_DISABLE": "1", "MPLBACKEND": "Agg",
                               "AZR_FIGURES_DIR": str(tmp_path / "figures")})  # leave figures/ alone
    assert proc.returncode == 0, proc.stdout[-6000:] + proc.stderr[-2000:]


@pytest.mark.slow  # executes a real notebook in a kernel
def test_a_failing_notebook_is_reported_and_kept(tmp_path):
    """A notebook whose checks fail (an expected run is missing) makes the command fail, and the
    executed notebook with its traceback is kept as <name>.failed.ipynb."""
    results = make_results(tmp_path / "R", drop=("band_s2",))
    status = ex.execute_all(str(results), "synthetic", str(tmp_path / "figures"), tmp_path / "out",
                            only=["00_overview"], log=lambda text: None)
    assert status["00_overview"].startswith("PapermillExecutionError") and "band_s2" in status["00_overview"]
    assert (tmp_path / "out" / "00_overview.failed.ipynb").is_file()
    assert not (tmp_path / "out" / "00_overview.ipynb").exists()
