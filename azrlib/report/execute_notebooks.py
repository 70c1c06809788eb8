"""Run notebooks headless with papermill against one results directory (the one notebook runner:
the workflow's notebook rules call it too).

    azr notebooks --results-dir runs/quick --preset quick --figures-dir figures/quick
                                         # executed copies into reports/quick/
    azr notebooks --inplace              # refresh the committed notebooks' outputs
                                         # (defaults: data/reference/tiny, tiny), then
    jupytext --sync notebooks/*.ipynb    # keep the paired .py files in step

Only parameters that differ from a notebook's own defaults are injected, so refreshing the
committed notebooks with their defaults adds no injected-parameters cell. Papermill's timing
metadata and absolute paths are stripped from the written notebooks so their diffs show only
real changes. Exit status 1 when any notebook failed (each failure is named).
"""

from __future__ import annotations

import argparse
import ast
import os
import sys
import time
from pathlib import Path

from azrlib.report.paths import display_path, repo_root, resolve

NOTEBOOKS = ("00_overview", "rq1_pass_at_k", "rq2_question_difficulty", "rq3_entropy",
             "rq4_update_sparsity", "rq5_proposer_reward")
_PAPERMILL_CELL_KEYS = ("papermill", "execution")


def notebooks_dir() -> Path:
    return repo_root() / "notebooks"


def notebook_defaults(path: Path) -> dict:
    """The parameters cell's values (literals only; others are left out)."""
    import papermill

    out = {}
    for name, spec in papermill.inspect_notebook(str(path)).items():
        try:
            out[name] = ast.literal_eval(spec["default"])
        except (ValueError, SyntaxError):
            pass
    return out


def changed_parameters(defaults: dict, wanted: dict) -> dict:
    """The wanted parameters whose value differs from the notebook's default (or that it lacks)."""
    return {k: v for k, v in wanted.items() if k not in defaults or defaults[k] != v}


def strip_volatile(nb) -> None:
    """Drop papermill's timings and paths (notebook and cell metadata) in place."""
    nb.metadata.pop("papermill", None)
    for cell in nb.cells:
        for key in _PAPERMILL_CELL_KEYS:
            cell.metadata.pop(key, None)


def execute(name: str, parameters: dict, output: Path, timeout: int | None = 600) -> float:
    import nbformat
    import papermill

    src = notebooks_dir() / f"{name}.ipynb"
    params = changed_parameters(notebook_defaults(src), parameters)
    output.parent.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    tmp = output.with_name(output.name + ".tmp.ipynb")
    try:
        papermill.execute_notebook(str(src), str(tmp), parameters=params, cwd=str(notebooks_dir()),
                                   kernel_name="python3", progress_bar=False, log_output=False,
                                   request_save_on_cell_execute=False, execution_timeout=timeout)
    except Exception:
        if tmp.exists():  # keep the failed notebook (with its traceback) beside the output
            tmp.replace(output.with_name(f"{name}.failed.ipynb"))
        raise
    nb = nbformat.read(str(tmp), as_version=4)
    strip_volatile(nb)
    nbformat.write(nb, str(output))
    tmp.unlink()
    output.with_name(f"{name}.failed.ipynb").unlink(missing_ok=True)
    return time.perf_counter() - t0


def execute_all(results_dir: str, preset: str, figures_dir: str, out_dir: str | Path, only=None,
                timeout: int | None = 600, log=None) -> dict[str, str]:
    """Run the notebooks (all, or `only`) into out_dir; returns notebook -> "ok" or the error line.
    `log(text)` receives one progress line per notebook (default: stderr)."""
    log = log or (lambda text: print(text, file=sys.stderr, flush=True))
    os.environ["TQDM_DISABLE"] = "1"
    os.environ.setdefault("MPLBACKEND", "Agg")
    parameters = {"results_dir": str(results_dir), "preset": preset, "figures_dir": str(figures_dir)}
    out_dir = resolve(out_dir)
    status: dict[str, str] = {}
    for name in only or NOTEBOOKS:
        output = out_dir / f"{name}.ipynb"
        try:
            seconds = execute(name, parameters, output, timeout)
            status[name] = "ok"
            log(f"{name}: ok ({seconds:.1f} s) -> {display_path(output)}")
        except Exception as e:  # papermill raises PapermillExecutionError naming the failing cell
            lines = str(e).strip().splitlines()
            status[name] = f"{type(e).__name__}: {lines[-1] if lines else ''}"
            log(f"{name}: FAILED: {status[name]} (see {display_path(output.with_name(name + '.failed.ipynb'))})")
    return status


def configure_parser(p: argparse.ArgumentParser) -> None:
    p.add_argument("--results-dir", default=None, help="results directory (default data/reference/tiny with --inplace, else runs/<preset>)")
    p.add_argument("--preset", default="tiny")
    p.add_argument("--figures-dir", default=None, help="default figures/<preset>")
    p.add_argument("--inplace", action="store_true", help="overwrite notebooks/*.ipynb with the executed notebooks")
    p.add_argument("--out-dir", default=None, help="where executed copies go without --inplace (default reports/<preset>)")
    p.add_argument("--only", nargs="*", choices=NOTEBOOKS, help="run only these notebooks")
    p.add_argument("--timeout", type=int, default=600, help="per-cell timeout in seconds")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="azr notebooks", description=__doc__.split("\n\n")[0])
    configure_parser(p)
    return run_cli(p.parse_args(argv))


def run_cli(args: argparse.Namespace) -> int:
    results_dir = args.results_dir or ("data/reference/tiny" if args.inplace else f"runs/{args.preset}")
    figures_dir = args.figures_dir or f"figures/{args.preset}"
    if not resolve(results_dir).is_dir():
        print(f"azr notebooks: results directory {results_dir} not found", file=sys.stderr)
        return 2
    out_dir = notebooks_dir() if args.inplace else (args.out_dir or f"reports/{args.preset}")
    t0 = time.perf_counter()
    status = execute_all(results_dir, args.preset, figures_dir, out_dir, args.only, args.timeout)
    failed = [n for n, s in status.items() if s != "ok"]
    print(f"notebooks: {len(failed)} failed of {len(status)} in {time.perf_counter() - t0:.1f} s"
          + (f" ({', '.join(failed)})" if failed else ""), file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
