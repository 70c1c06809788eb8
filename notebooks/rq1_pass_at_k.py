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
# # RQ1: does self-play expand the reasoning boundary? pass@k vs the base and RLVR (paper Fig. 1)
#
# Protocol (docs/experiments/protocol.md): every self-play seed and every RLVR seed, final checkpoints,
# against the base, on the in-distribution held-out split and the out-of-distribution split, n samples per
# problem at T = 0.6, top-p 0.95 (Yue et al.). Unbiased pass@k per problem; intervals from a two-level
# bootstrap (problems paired across all models, seeds within arm), Holm over every test this notebook
# reports. The paper's takeaway has parts, each a test: (a) self-play beats the base at k = 1; (b) the base
# catches up by the largest k (a difference of differences, gap at k_max minus gap at 1, < 0); (c) that drop
# is smaller than RLVR's (difference of the two arms' gap changes, > 0). The invisible-leash check (paper
# Appendix C) closes the notebook.

# %% tags=["parameters"]
results_dir = "data/reference/tiny"  # relative paths are relative to the repository root
preset = "tiny"
figures_dir = "figures/tiny"
n_bootstrap = 10000
seed = 0

# %%
from IPython.display import display

from azrlib.report import ResultsDir, notebook as nbk, protocol as pr, protocol_figures as pf
from azrlib.report.plots import FigureWriter

nbk.setup()
rd = ResultsDir(results_dir)
figs = FigureWriter(figures_dir, "rq1_pass_at_k")

# %%
tests, curves, notes = pr.rq1(rd, n_bootstrap=n_bootstrap, seed=seed)
table = pf.table_of(tests)
display(nbk.table(table, 3))
print("\n".join(notes) or "every model answered every problem")

# %%
fig, caption = pf.rq1_figure(curves)
figs.save(fig, "curves", curves)
print(caption)
fig

# %% [markdown]
# ## Takeaway
#
# The paper: self-play improves pass@1 over the base, but at large k the base catches up, and the gap shrinks
# less than RLVR's. Verdicts below come from the intervals (supports only when the whole interval lies on the
# claimed side and the Holm-adjusted p < 0.05); the claim as a whole needs (a), (b) and (c) together.

# %%
display(nbk.markdown(pf.verdict_markdown(tests, conjunction=("self-play beats the base", "the base catches up",
                                                             "drop is smaller than RLVR"))))

# %% [markdown]
# ## Invisible leash (paper Appendix C)
#
# Problems some self-play seed solves within k samples and the base never solves in its evaluation samples;
# the base is then sampled n more times on that subset only.

# %%
leash, leash_info = pr.leash(rd)
display(nbk.markdown(pr.leash_sentence(leash, leash_info)))

# %% [markdown]
# ## Checks
#
# Every estimate lies in its interval; p and Holm p lie in [0, 1] with Holm at least the raw p; every band
# contains its curve; pass@k never decreases with k.

# %%
pf.check_results(tests, curves, "pass@k")
pf.check_results_passk(curves)
figs.check()
print("rq1 checks passed")
