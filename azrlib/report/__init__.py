"""Reading `make reproduce` results directories (docs/results_layout.md) into tidy tables, the
paper's figures, and the verdicts the notebooks print. One module per research question:

    results     ResultsDir: manifest, runs, metrics, eval rows, RQ2 rows, sparsity files
    overview    00_overview      passk       rq1_pass_at_k       difficulty  rq2_question_difficulty
    entropy     rq3_entropy      sparsity    rq4_update_sparsity rewards     rq5_proposer_reward
    plots       figures (Agg, deterministic PNG/PDF + CSV)      tables      intervals and rounding
    execute_notebooks   run every notebook with papermill

Nothing here imports torch (except the opt-in public-checkpoint sparsity of RQ4).
"""

from azrlib.report.paths import display_path, repo_root, resolve
from azrlib.report.results import ResultsDir, ResultsError, expected_runs, parse_run_name

__all__ = ["ResultsDir", "ResultsError", "display_path", "expected_runs", "parse_run_name", "repo_root", "resolve"]
