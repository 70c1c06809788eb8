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
# # 00 Overview: what was run
#
# The results directory of one `make reproduce` preset (layout: `docs/results_layout.md`): configs, package
# versions, sandbox isolation, the pipeline's steps, and every training run's curves at a glance.
# Parameters (cell below, tagged `parameters`): `results_dir`, `preset`, `figures_dir`.

# %% tags=["parameters"]
results_dir = "data/reference/tiny"  # relative paths are relative to the repository root
preset = "tiny"
figures_dir = "figures/tiny"
n_bootstrap = 10000
seed = 0

# %%
from IPython.display import display

from azrlib.report import ResultsDir, notebook as nbk, overview as ov
from azrlib.report.plots import FigureWriter

nbk.setup()
rd = ResultsDir(results_dir)
figs = FigureWriter(figures_dir, "00_overview")

# %%
display(nbk.markdown(ov.summary(rd)))
display(ov.manifest_summary(rd))

# %% [markdown]
# ## The paper's takeaways, tested
#
# Every test the RQ notebooks make (docs/experiments/protocol.md), with its estimate, 95% interval and the
# verdict computed from it (`azrlib.report.verdicts`): supports only when the whole interval lies on the side
# the paper claims and the Holm-adjusted p (over this whole table) is below 0.05; contradicts when it lies on
# the other side; inconclusive otherwise. "n" states the problems, samples and seeds behind each row.

# %%
from azrlib.report import protocol as pr, protocol_figures as pf

tests, test_notes = pr.all_tests(rd, n_bootstrap=n_bootstrap, seed=seed)
takeaways = pf.table_of(tests)
display(nbk.table(takeaways[["rq", "paper takeaway", "test", "estimate [95% CI]", "p (Holm)", "n", "verdict"]], 3))
print(f"preset {preset}: seeds {rd.seeds}; {len(tests)} tests, Holm over all of them")
print("\n".join(test_notes) or "every RQ computed")

# %% [markdown]
# ## Runs and their configs
#
# One row per training run under `train/`: the overrides the pipeline passed and the config values that tell the variants apart.

# %%
display(nbk.table(ov.runs_table(rd), 6))

# %% [markdown]
# ## Pipeline steps, versions, sandbox isolation
#
# As recorded in `manifest.json` (falling back to the first run's `environment.json`).

# %%
display(nbk.table(ov.pipeline_table(rd), 1))

# %%
display(ov.versions_table(rd))
display(ov.isolation_table(ov.isolation(rd)))

# %% [markdown]
# ## Training curves at a glance
#
# Mean over seeds per run kind; the band spans the seeds' minimum to maximum.

# %%
curves = ov.curves_long(rd)
fig, band = ov.plot_curves(curves)
figs.save(fig, "training_curves", band)
fig

# %%
display(nbk.table(ov.final_table(rd)))

# %% [markdown]
# ## Checks
#
# Every expected run is present with contiguous steps, no pipeline step failed, the sandbox isolation is strong and the same in every run, rates lie in [0, 1], and the figure files were written.

# %%
ov.check_results(rd, curves)
pf.check_results(tests)
assert not test_notes, test_notes
figs.check()
print("overview checks passed")
