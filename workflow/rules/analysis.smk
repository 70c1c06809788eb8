# What the notebooks read: pass@k samples (RQ1), RQ2's questions, update sparsity (RQ4).


def _model_input(name):
    return "data/base.json" if name == "base" else f"{final_checkpoint(name)}/config.json"


def _eval_args(wildcards):
    s = S
    args = ["--benchmark", wildcards.bench, "--n", s.eval_n, "--temperature", s.eval_temperature,
            "--top-p", s.eval_top_p, "--max-new-tokens", s.eval_max_new_tokens, "--prompt-style", s.eval_prompt_style,
            "--engine", s.eval_engine, "--batch-size", s.eval_batch_size, "--seed", 0]
    if wildcards.bench == "tinyworld":
        args += ["--data", R / "data" / "tinyworld_eval.jsonl"]
    else:
        args += (["--data", s.eval_data] if s.eval_data else []) + (["--limit", s.eval_limit] if s.eval_limit else [])
    return shlex.join(map(str, args))


rule eval:
    """`azr eval`: eval_n samples per problem of a model on a benchmark, each checked in the sandbox."""
    input:
        model=lambda wc: _model_input(wc.model),
        tasks=lambda wc: ["data/tinyworld_eval.jsonl"] if wc.bench == "tinyworld" else [],
    output:
        rows="eval/{model}/{bench}.jsonl",
        meta="eval/{model}/{bench}.jsonl.meta.json",
    wildcard_constraints:
        model="|".join(MODELS),
    params:
        model_dir=lambda wc: MODELS[wc.model],
        args=_eval_args,
        perf=lambda wc, threads: f"--device {S.eval_device} --num-threads {threads}" if S.eval_engine == "hf" else "",
    threads: S.threads
    resources:
        gpu=1 if S.eval_engine == "vllm" else 0,
    log:
        "logs/eval/{model}/{bench}.log",
    benchmark:
        "benchmarks/eval/{model}/{bench}.tsv"
    shell:
        "{AZR} eval {params.model_dir} {params.args} --quiet {params.perf} --out {R}/{output.rows} > {R}/{log} 2>&1"


rule rq2:
    """RQ2: deduction questions from the first self-play run's tasks, solve rates of base and final."""
    input:
        base="data/base.json",
        run=f"{final_checkpoint(FIRST)}/config.json",
    output:
        "rq2/questions.jsonl",
    params:
        args=shlex.join(map(str, [
            "--tasks", R / "train" / FIRST / "tasks.jsonl", "--model", f"base={BASE}",
            "--model", f"{FIRST}={MODELS.get(FIRST, '')}", "--questions", S.rq2_questions,
            "--bin-size", S.rq2_bin_size, "--m", S.rq2_m, "--temperature", S.rq2_temperature,
            "--top-p", S.rq2_top_p, "--max-new-tokens", S.rq2_max_new_tokens,
            "--prompt-style", S.rq2_prompt_style, "--engine", S.rq2_engine, "--seed", 0, "--device", S.eval_device])),
    threads: S.threads
    resources:
        gpu=1 if S.rq2_engine == "vllm" else 0,
    log:
        "logs/rq2.log",
    benchmark:
        "benchmarks/rq2.tsv"
    shell:
        "{AZR} rq2 {params.args} --threads {threads} --out {R}/{output} > {R}/{log} 2>&1"


rule sparsity:
    """RQ4: the fraction of parameters unchanged between the base and a run's final checkpoint."""
    input:
        base="data/base.json",
        run=lambda wc: f"{final_checkpoint(wc.run)}/config.json",
    output:
        "sparsity/{run}.json",
    wildcard_constraints:
        run="|".join(SPARSITY) or "no-runs",
    params:
        final=lambda wc: R / final_checkpoint(wc.run),
    threads: S.threads
    log:
        "logs/sparsity/{run}.log",
    benchmark:
        "benchmarks/sparsity/{run}.tsv"
    shell:
        "{AZR} sparsity {BASE} {params.final} --dtype all --json --workers {threads} "
        "> {R}/{output}.tmp 2> {R}/{log} && mv {R}/{output}.tmp {R}/{output}"
