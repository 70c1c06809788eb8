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
# # RQ5: does a proposer reward that targets solve rate 0.5 help? (paper Fig. 6)
#
# Entropy and validation accuracy (`val/<type>/accuracy`, tiny-world benchmark) over training for the
# proposer rewards `azr` (learnability 1-p, the self-play runs), `band` (1-2|p-0.5|, the seed paper's
# difficulty peak) and `azr_code` (AZR's shipped code: -0.5 for trivial tasks). Lines are means over seeds,
# bands their minimum to maximum; the verdict compares final values across seeds (Welch t intervals).

# %% tags=["parameters"]
results_dir = "data/reference/tiny"  # relative paths are relative to the repository root
preset = "tiny"
figures_dir = "figures/tiny"

# %%
from IPython.display import display

from azrlib.report import ResultsDir, notebook as nbk, rewards as rq5
from azrlib.report.plots import FigureWriter

nbk.setup()
rd = ResultsDir(results_dir)
figs = FigureWriter(figures_dir, "rq5_proposer_reward")
runs = rq5.variant_runs(rd)

# %%
val = rq5.variants_long(rd, runs, rq5.val_long)
ent = rq5.variants_long(rd, runs, rq5.overall_entropy)
val_final = rq5.final_values(val, ["task_type"])
ent_final = rq5.final_values(ent, ["estimator"])
display(nbk.table(rq5.across_seeds(val_final, ["task_type"])))
display(nbk.table(rq5.across_seeds(ent_final, ["estimator"])))

# %%
val_band = rq5.across_seeds(val, ["task_type", "step"])
ent_band = rq5.across_seeds(ent, ["estimator", "step"])
fig = rq5.plot_curves(val_band, ent_band)
figs.save(fig, "curves", rq5.curves_data(val_band, ent_band))
fig

# %% [markdown]
# ## Takeaway
#
# The paper's claim, and what this run's numbers say (computed below).

# %%
display(nbk.markdown(rq5.verdict(val_final, ent_final, runs)))

# %% [markdown]
# ## Checks
#
# `azr` and `band` runs are present; every run logged validation accuracy in [0, 1] and finite positive entropy.

# %%
rq5.check_results(val, ent, runs)
figs.check()
print("rq5 checks passed")
