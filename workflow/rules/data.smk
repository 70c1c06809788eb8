# The inputs of the training runs: the base model, the evaluation subset, the RLVR/SFT tasks.


rule base:
    """The base model resolves locally (directory, $AZR_MODELS_DIR or the HF cache) and has weights."""
    output:
        "data/base.json",
    params:
        model=BASE,
    log:
        "logs/base.log",
    benchmark:
        "benchmarks/base.tsv"
    shell:
        "{AZR} check-base {params.model} --out {R}/{output} > {R}/{log} 2>&1"


rule eval_tasks:
    """Tiny world: eval_per_type tasks per task type of a split (tinyworld: the held-out benchmark,
    tinyworld_ood: the out-of-distribution split), spread over the levels."""
    input:
        lambda wc: TINYWORLD_SPLITS[wc.split],
    output:
        "data/{split}_eval.jsonl",
    wildcard_constraints:
        split="|".join(TINYWORLD_SPLITS),
    params:
        per_type=S.eval_per_type,
    log:
        "logs/data/eval_tasks_{split}.log",
    benchmark:
        "benchmarks/data/eval_tasks_{split}.tsv"
    shell:
        "{AZR} eval-tasks --benchmark {input} --per-type {params.per_type} --out {R}/{output} > {R}/{log} 2>&1"


rule rlvr_tasks:
    """Verified tasks for the RLVR and SFT baselines (the tiny world's, or AZR's seed files on GPU presets)."""
    output:
        "data/rlvr_tasks.jsonl",
    params:
        n=S.rlvr_tasks,
        source=S.rlvr_source,
    log:
        "logs/data/rlvr_tasks.log",
    benchmark:
        "benchmarks/data/rlvr_tasks.tsv"
    shell:
        "{AZR} rlvr-tasks {params.n} --source {params.source} --out {R}/{output} > {R}/{log} 2>&1"
