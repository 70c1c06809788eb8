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
# # RQ1: does self-play expand the reasoning boundary? pass@k vs the base (paper Fig. 1)
#
# Unbiased pass@k (Chen et al. 2021) of the self-play model and its base on the preset's benchmarks (tiny
# presets: the tiny-world benchmark, one panel per task type), on a log2 k axis, with 95% percentile bootstrap
# bands over problems. The table tests, per k, the paired difference self-play minus base: paired bootstrap
# over problems (CI, p), Holm's correction across the k grid, and the exact McNemar test on pass@n
# (`azrlib.metrics.passk.compare`).

# %% tags=["parameters"]
results_dir = "data/reference/tiny"  # relative paths are relative to the repository root
preset = "tiny"
figures_dir = "figures/tiny"
base_model = "base"
selfplay_model = None  # None: selfplay_s<first seed>
benchmarks = None  # None: every benchmark evaluated for both models
k_grid = None  # None: 1, 2, 4, ... up to the smallest number of samples per problem of each benchmark
n_bootstrap = 10000
seed = 0

# %%
from IPython.display import display

from azrlib.report import ResultsDir, notebook as nbk, passk as rq1
from azrlib.report.plots import FigureWriter

nbk.setup()
rd = ResultsDir(results_dir)
figs = FigureWriter(figures_dir, "rq1_pass_at_k")
models = (base_model, selfplay_model or f"selfplay_s{rd.first_seed}")

# %%
groups = rq1.load_groups(rd, models, benchmarks)
ks = rq1.k_grid(groups, k_grid)
curves = rq1.curves_table(groups, models, ks, n_bootstrap=n_bootstrap, seed=seed)
sig = rq1.significance_table(groups, models, ks, n_bootstrap=n_bootstrap, seed=seed)
display(nbk.table(sig))

# %%
fig = rq1.plot_curves(curves, models)
figs.save(fig, "curves", curves)
fig

# %% [markdown]
# ## Takeaway
#
# The paper's claim, and what this run's numbers say (computed below from the table above).

# %%
display(nbk.markdown(rq1.verdict(sig, models)))

# %% [markdown]
# ## Checks
#
# pass@k lies in [0, 1] and never decreases with k; every band contains its estimate; every paired CI contains its delta; p-values lie in [0, 1] with Holm's at least the raw ones.

# %%
rq1.check_results(curves, sig)
figs.check()
print("rq1 checks passed")
