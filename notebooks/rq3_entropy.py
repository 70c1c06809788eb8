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
# Protocol: the paper's three statements (entropy falls during self-play; a frozen proposer keeps it higher;
# the proposer's entropy exceeds the solver's) are tested on a **fixed prompt set**: every kept checkpoint
# (every 10% of training) of every self-play, frozen-proposer and RLVR seed answers the same held-out solver
# and proposer prompts (`R/rq3/<run>.jsonl`, `azr rq3-entropy`, T = 1, top-p 1), so a change is the policy's,
# not the prompt drift of the proposer. Both estimators; intervals from a two-level bootstrap (prompts, seeds
# within arm), Holm over the notebook's tests. The training-rollout curves follow as the picture.
#
# Training-rollout curves: policy entropy of the self-play runs (every seed) and the frozen-proposer runs, overall, by role
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
n_bootstrap = 10000
seed = 0

# %%
from IPython.display import display

from azrlib.report import ResultsDir, notebook as nbk, entropy as rq3
from azrlib.report.plots import FigureWriter

nbk.setup()
rd = ResultsDir(results_dir)
figs = FigureWriter(figures_dir, "rq3_entropy")
runs = runs or rq3.default_runs(rd)

# %% [markdown]
# ## Fixed prompt set (the test)

# %%
from azrlib.report import protocol as pr, protocol_figures as pf

tests, fixed, notes = pr.rq3(rd, n_bootstrap=n_bootstrap, seed=seed)
display(nbk.table(pf.table_of(tests), 3))
print("\n".join(notes) or "no prompt left out")

# %%
fig, caption = pf.rq3_figure(fixed)
figs.save(fig, "fixed_prompts", fixed)
print(caption)
fig

# %% [markdown]
# ## Training-rollout curves (prompts drift with the proposer)

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
# The paper: entropy falls during self-play; with a frozen proposer it stays higher; the proposer's entropy is
# higher than the solver's. Verdicts from the fixed-prompt tests above (both estimators); the training-rollout
# changes are descriptive only. Length curves: per-step means, no smoothing.

# %%
display(nbk.markdown(pf.verdict_markdown(tests)))

# %% [markdown]
# ## Checks
#
# Every run logged both estimators for both roles; every entropy is finite and non-negative, the full-vocabulary one positive;
# every test's estimate lies in its interval with valid p values; every fixed-prompt band contains its curve.

# %%
rq3.check_results(long, runs)
pf.check_results(tests, fixed, "entropy")
assert (lengths["value"] >= 0).all(), "negative response length"
figs.check()
print("rq3 checks passed")
