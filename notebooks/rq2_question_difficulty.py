# ---
# jupyter:
#   jupytext:
#     formats: ipynb,py:percent
#     text_representation:
#       extension: .py
#       format_name: percent
#       format_version: '1.3'
#       jupytext_version: 1.19.6
#   kernelspec:
#     display_name: Python 3 (ipykernel)
#     language: python
#     name: python3
# ---

# %% [markdown]
# # RQ2: do the proposer's questions get harder over training? (paper Fig. 2)
#
# Valid deduction questions sampled evenly from the self-play run's `tasks.jsonl`, binned by the training
# step they were proposed at, each answered `m` times by the base and by the final self-play model
# (`R/rq2/questions.jsonl`, from `azrlib.metrics.difficulty.evaluate_questions`). Per bin: mean solve rate
# and mean response length with normal-approximation 95% CIs over questions
# (`azrlib.metrics.difficulty.summarize_by_bin`); the trend is the least-squares slope over questions with a
# bootstrap CI.

# %% tags=["parameters"]
results_dir = "data/reference/tiny"  # relative paths are relative to the repository root
preset = "tiny"
figures_dir = "figures/tiny"
base_model = "base"
selfplay_model = None  # None: selfplay_s<first seed>
n_bootstrap = 2000
seed = 0

# %%
from IPython.display import display

from azrlib.report import ResultsDir, notebook as nbk, difficulty as rq2
from azrlib.report.plots import FigureWriter

nbk.setup()
rd = ResultsDir(results_dir)
figs = FigureWriter(figures_dir, "rq2_question_difficulty")
models = [base_model, selfplay_model or f"selfplay_s{rd.first_seed}"]

# %%
rows = rd.rq2_rows()
questions = rq2.question_frame(rows)
table = rq2.bin_table(rows, models)
display(nbk.table(table))

# %%
fig = rq2.plot_bins(table, models)
figs.save(fig, "by_bin", table)
fig

# %%
trends = rq2.trend_table(questions, models, n_bootstrap=n_bootstrap, seed=seed)
display(nbk.table(trends))

# %% [markdown]
# ## Takeaway
#
# The paper's claim, and what this run's numbers say (computed below).

# %%
display(nbk.markdown(rq2.verdict(trends, table, models)))

# %% [markdown]
# ## Checks
#
# Both models answered the same questions; solve rates lie in [0, 1] and lengths are non-negative; every per-bin CI contains its mean.

# %%
rq2.check_results(questions, table, models)
figs.check()
print("rq2 checks passed")
