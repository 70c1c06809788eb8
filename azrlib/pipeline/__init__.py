"""The paper's workflow around the library: settings per preset, its own steps, the manifest.

    settings   configs/pipeline/<preset>.yaml -> PipelineSettings; the training runs of a preset
    steps      `azr check-base | eval-tasks | rlvr-tasks | rq2 | prepare-run`
    manifest   R/manifest.json (versions, sandbox isolation, per-step seconds, total)

The DAG itself is workflow/Snakefile (Snakemake); `make reproduce PRESET=...` runs it.
"""
