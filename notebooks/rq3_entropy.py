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
# # RQ3: entropy over training (paper Figs. 3, 4 and the length curves of Fig. 7)
#
# Policy entropy of the self-play runs (every seed) and the frozen-proposer run, overall, by role
# (proposer vs solver) and by task type, with both estimators the trainer logs: the full-vocabulary entropy
# of the update's forward pass (`entropy_full/...`, what Cui et al. log) and the sampled-token estimate
# -log pi(y_t) of the seed paper's Eq. 1 (`entropy/...`). Bands span the seeds' minimum to maximum.
# Response length over training closes the notebook's figures.

# %% tags=["parameters"]
results_dir = "data/reference/tiny"  # relative paths are relative to the repository root
preset = "tiny"
figures_dir = "figures/tiny"
runs = None  # None: every selfplay_s<k> run and the frozen-proposer run(s)
window = None  # steps averaged at the start and at the end (None: a quarter of the steps)

# %%
from IPython.display import display

from azrlib.report import ResultsDir, notebook as nbk, entropy as rq3
from azrlib.report.plots import FigureWriter

nbk.setup()
rd = ResultsDir(results_dir)
figs = FigureWriter(figures_dir, "rq3_entropy")
runs = runs or rq3.default_runs(rd)

# %%
long = rq3.runs_long(rd, runs, rq3.entropy_long)
band = rq3.band_by_kind(long, ["estimator", "role", "task_type"])
changes = rq3.window_change(long, window)
display(nbk.table(changes))

# %%
fig = rq3.plot_overall(band)
figs.save(fig, "overall", band[(band["role"] == "all") & (band["task_type"] == "all")])
fig

# %%
fig = rq3.plot_breakdown(band)
figs.save(fig, "by_role_and_type", band)
fig

# %%
lengths = rq3.runs_long(rd, runs, rq3.length_long)
length_band = rq3.band_by_kind(lengths, ["role", "task_type"])
fig = rq3.plot_lengths(length_band)
figs.save(fig, "response_length", length_band)
fig

# %% [markdown]
# ## Takeaway
#
# The paper's claim, and what this run's numbers say (computed below from the table of changes).

# %%
display(nbk.markdown(rq3.verdict(changes)))

# %% [markdown]
# ## Checks
#
# Every run logged both estimators for both roles; every entropy is finite and non-negative, the full-vocabulary one positive.

# %%
rq3.check_results(long, runs)
assert (lengths["value"] >= 0).all(), "negative response length"
figs.check()
print("rq3 checks passed")
