# The training runs: self-play per seed (AZR's and the band proposer reward), AZR's code reward,
# the frozen proposer, and the RLVR / SFT baselines. A run killed mid-way resumes from its last
# checkpoint (`azr prepare-run` keeps the run directory only when it holds a checkpoint of the
# same config); a changed config starts the run over.


def _train_inputs(wildcards):
    spec = RUNS[wildcards.run]["spec"]
    return ["data/base.json"] + (["data/rlvr_tasks.jsonl"] if spec.command != "train" and S.rlvr_tasks > 0 else [])


def _train_args(wildcards):
    return shlex.join(["--config", TRAIN_CONFIG, *RUNS[wildcards.run]["overrides"]])


def _launcher(wildcards, resources):
    if resources.gpu > 0:  # one process per GPU; FSDP shards over them (docs/gpu.md)
        return f"torchrun --standalone --nproc-per-node {resources.gpu} -m azrlib.cli"
    return f"{shlex.quote(PY)} -m azrlib.cli"


rule train:
    input:
        _train_inputs,
    output:
        f"train/{{run}}/checkpoints/{FINAL}/config.json",
    wildcard_constraints:
        run="|".join(RUNS) or "no-runs",
    params:
        config=lambda wc: RUNS[wc.run]["config"],
        command=lambda wc: RUNS[wc.run]["spec"].command,
        args=_train_args,
        launcher=_launcher,
    threads: S.threads
    resources:
        gpu=S.train_gpus,
    log:
        "logs/train/{run}.log",
    benchmark:
        "benchmarks/train/{run}.tsv"
    shell:
        "({AZR} prepare-run {params.args} && "
        "cd {ROOT} && {params.launcher} {params.command} --resume {params.args} torch_threads={threads}) "
        "> {R}/{log} 2>&1"
