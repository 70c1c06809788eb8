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
# # RQ4: how sparse are self-play's updates? (paper Fig. 5)
#
# Fraction of parameters left unchanged by the final checkpoint of self-play, RLVR and SFT relative to the
# same base (`R/sparsity/<run>.json`, from `azr sparsity BASE FINAL --dtype all --json`): compared in bf16
# (Mukherjee et al.'s convention), in fp32 and as stored, exactly and within a tolerance |delta| <= atol, pooled
# over every parameter (tied weights once), plus the per-module breakdown.

# %% tags=["parameters"]
results_dir = "data/reference/tiny"  # relative paths are relative to the repository root
preset = "tiny"
figures_dir = "figures/tiny"
dtype = "bf16"  # comparison dtype of the verdict and the per-module figure
public_search_roots = None  # folders holding public checkpoints (None: models/ and the HF cache for GPU presets, none otherwise)

# %%
from IPython.display import display

from azrlib.report import ResultsDir, notebook as nbk, sparsity as rq4
from azrlib.report.plots import FigureWriter

nbk.setup()
rd = ResultsDir(results_dir)
figs = FigureWriter(figures_dir, "rq4_update_sparsity")

# %%
overall = rq4.overall_table(rd)
display(nbk.table(rq4.wide_table(overall)))

# %%
fig = rq4.plot_overall(overall)
figs.save(fig, "overall", overall)
fig

# %%
modules = rq4.module_table(rd, dtype=dtype)
fig = rq4.plot_modules(modules, dtype)
figs.save(fig, "per_module", modules)
display(nbk.table(modules))
fig

# %% [markdown]
# ## Takeaway
#
# The paper's claim, and what this run's numbers say (computed below).

# %%
display(nbk.markdown(rq4.verdict(overall, dtype)))

# %% [markdown]
# ## Public checkpoints (AZR-Coder vs Qwen2.5-Coder)
#
# Computed only when both checkpoints of a pair are on local disk (minutes and ~30 GB of page cache for 7B); skipped otherwise.

# %%
roots = public_search_roots if public_search_roots is not None else (
    ["models", "~/.cache/huggingface/hub"] if preset.startswith("coder") else [])
pairs = rq4.find_public_pairs(roots)
if pairs:
    public = rq4.compute_public(pairs)
    display(nbk.table(public))
else:
    print(f"skipped: no public checkpoint pair found locally ({len(roots)} search root(s))")

# %% [markdown]
# ## Checks
#
# Every expected run has all three comparison dtypes; sparsities lie in [0, 1]; the tolerance count is never below the exact one; every run counts the same parameters.

# %%
rq4.check_results(overall, [f"{kind}_s{rd.first_seed}" for kind in ("selfplay", "rlvr", "sft")])
figs.check()
print("rq4 checks passed")
