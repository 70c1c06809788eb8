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
# Protocol: valid deduction questions sampled evenly over training from **every self-play seed**'s
# `tasks.jsonl`, each answered m times by the **base** (a fixed reference, the same for every seed) and by
# that seed's **final** model (`R/rq2/selfplay_s<k>.jsonl`). Training is cut into fractional bins so presets
# of different length compare. Trend: OLS of a question's solve rate on the training fraction at which it was
# proposed, pooled over seeds, seed-clustered (CR1, t with seeds - 1 dof); a two-stage cluster bootstrap is
# shown beside it. Length: the model x difficulty interaction (difficulty = the base's failure rate, shared
# by both models). Holm over the notebook's tests.

# %% tags=["parameters"]
results_dir = "data/reference/tiny"  # relative paths are relative to the repository root
preset = "tiny"
figures_dir = "figures/tiny"
n_bins = None  # None: the pipeline setting rq2_bins
n_bootstrap = 2000
seed = 0

# %%
from IPython.display import display

from azrlib.report import ResultsDir, notebook as nbk, protocol as pr, protocol_figures as pf
from azrlib.report.plots import FigureWriter

nbk.setup()
rd = ResultsDir(results_dir)
figs = FigureWriter(figures_dir, "rq2_question_difficulty")

# %%
tests, table = pr.rq2(rd, n_bins=n_bins, n_bootstrap=n_bootstrap, seed=seed)
display(nbk.table(pf.table_of(tests), 3))
display(nbk.table(table, 3))

# %%
fig, caption = pf.rq2_figure(table)
figs.save(fig, "by_bin", table)
print(caption)
fig

# %% [markdown]
# ## Takeaway
#
# The paper: the proposer's questions become harder as training goes on, and AZR adapts its response length
# to the difficulty. Verdicts from the seed-clustered intervals (the "other interval" column is the cluster
# bootstrap, which under-covers with 3 seeds when seeds differ in slope: protocol.md).

# %%
display(nbk.markdown(pf.verdict_markdown(tests)))

# %% [markdown]
# ## Checks
#
# Every estimate lies in its interval, p values lie in [0, 1] with Holm at least raw; solve rates in [0, 1],
# lengths non-negative, every min-max band contains its mean.

# %%
pf.check_results(tests)
assert table["solve_rate"].between(0, 1).all() and (table["length"] >= 0).all()
assert (table["solve_min"] <= table["solve_rate"] + 1e-12).all() and (table["solve_rate"] <= table["solve_max"] + 1e-12).all()
figs.check()
print("rq2 checks passed")
